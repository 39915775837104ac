# Sourced by scripts/dev and scripts/test: make sure .venv exists (installing Debian's
# venv support first if this Python lacks it) and leave its python in $VENV_PY.
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
VENV_PY=.venv/bin/python
"$VENV_PY" -m pip install -q --upgrade pip
