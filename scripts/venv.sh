# Sourced by scripts/dev and scripts/test: make sure .venv exists (installing Debian's
# venv support first if this Python lacks it), leave its python in $VENV_PY, and define
# install_once. Run from the repository root.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PYTHON" -m venv .venv
fi
VENV_PY=.venv/bin/python

# install_once [EXTRA]: upgrade pip and `pip install -e .[EXTRA]` only when no stamp
# .venv/.installed-<hash of pyproject.toml>[-EXTRA] says this exact pyproject.toml is
# installed already (the install is editable: code edits need no reinstall; delete the
# stamps to force one). Without EXTRA, a stamp for any extra of the same pyproject.toml
# will do: extras only add packages.
install_once() {
    local extra=${1:-} hash stamp spec=.
    hash=$(sha256sum pyproject.toml | cut -c1-16)
    stamp=.venv/.installed-$hash${extra:+-$extra}
    if [ -z "$extra" ]; then
        compgen -G ".venv/.installed-$hash*" >/dev/null && return 0
    else
        [ -e "$stamp" ] && return 0
        spec=".[$extra]"
    fi
    "$VENV_PY" -m pip install -q --upgrade pip
    "$VENV_PY" -m pip install -q -e "$spec"
    rm -f .venv/.installed-*
    touch "$stamp"
}
