"""Run the Ceph s3-tests suite against a fresh local shardgate cluster and ratchet its passes.

Usage: s3-compat-tests/run --suite PATH [--keep] [-k EXPR] [--update-expected]
(see README.md next to this file). Exit status: 0 when every test listed in
expected-pass.txt passed, 1 when one did not, 2 when the run itself could not be made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ratchet import ratchet, read_expected, read_junit, say, write_expected

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARDGATE = REPO / ".venv" / "bin" / "shardgate"
SUITE_VENV = HERE / ".venv"
RESULTS = HERE / "results"
EXPECTED = HERE / "expected-pass.txt"
SUITE_FILES = ("test_s3.py", "test_headers.py")
# Layouts of the suite over time: the functional tests moved from s3tests_boto3/ to s3tests/.
FUNCTIONAL_DIRS = ("s3tests/functional", "s3tests_boto3/functional")
EXTRA_REQUIREMENTS = ("pytest-timeout",)
READY_SECONDS = 90
STOP_SECONDS = 30
DEFAULT_TIMEOUT = 180

# Markers left out, and why (README.md says the same at more length):
EXCLUDED_MARKERS = (
    # AWS behaviour the suite documents as RGW-only: AWS itself fails these.
    "fails_on_aws",
    # IAM, STS, SNS and web identity: other AWS services, not S3.
    "iam_account", "iam_cross_account", "iam_role", "iam_tenant", "iam_user",
    "user_policy", "role_policy", "group_policy", "session_policy", "abac_test",
    "test_of_sts", "webidentity_test", "sns",
    "token_claims_trust_policy_test", "token_principal_tag_role_policy_test",
    "token_request_tag_trust_policy_test", "token_resource_tags_test",
    "token_role_tags_test", "token_tag_keys_test",
    # RGW-only knobs: storage classes and cloud tiers configured inside RGW, and RGW's
    # bucket-logging rollover setting.
    "lifecycle_transition", "cloud_transition", "cloud_restore", "target_by_bucket",
    "fails_without_logging_rollover",
)
MARKER_EXPR = " and ".join(f"not {m}" for m in EXCLUDED_MARKERS)
# Unmarked tests that depend on an RGW-only knob: rgw_lc_debug_interval (a lifecycle
# "day" lasts 10 seconds); on S3 the expiry this waits for takes a day.
DESELECTED = ("test_s3.py::test_delete_marker_expiration",)

USERS = {  # the suite's three users; ids, names and emails as its s3tests.conf.SAMPLE has
    "main": {"access_key": "0555b35654ad1656d804",
             "secret_key": "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==",
             "display_name": "M. Tester", "user_id": "testid", "email": "tester@ceph.com"},
    "alt": {"access_key": "NOPQRSTUVWXYZABCDEFG",
            "secret_key": "nopqrstuvwxyzabcdefghijklmnabcdefghijklm",
            "display_name": "john.doe", "email": "john.doe@example.com",
            "user_id": "56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234"},
    "tenant": {"access_key": "HIJKLMNOPQRSTUVWXYZA",
               "secret_key": "opqrstuvwxyzabcdefghijklmnopqrstuvwxyzab",
               "display_name": "testx$tenanteduser", "email": "tenanteduser@example.com",
               "user_id": "testx$9876543210abcdef0123456789abcdef0123456789abcdef0123456789"
                          "abcdef"},
}
# The suite reads these sections even when no IAM test runs (its teardown lists IAM roles
# and ignores the error): keys the cluster does not know.
IAM_SECTIONS = {
    "iam": ("ABCDEFGHIJKLMNOPQRST", "abcdefghijklmnopqrstuvwxyzabcdefghijklmn", "iamuser"),
    "iam root": ("AAAAAAAAAAAAAAAAAAaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "RGW11111111111111111"),
    "iam alt root": ("BBBBBBBBBBBBBBBBBBbb", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                     "RGW22222222222222222"),
}
class RunError(RuntimeError):
    """The run cannot go on (no suite, no cluster, no results): printed, exit status 2."""


# ---------------------------------------------------------------- suite checkout and venv

def find_functional(suite: Path) -> Path:
    """The directory holding test_s3.py in this checkout, whichever layout it has."""
    for rel in FUNCTIONAL_DIRS:
        if all((suite / rel / name).is_file() for name in SUITE_FILES):
            return suite / rel
    raise RunError(f"{suite} is not a checkout of ceph/s3-tests (no "
                   f"{' or '.join(FUNCTIONAL_DIRS)} with {', '.join(SUITE_FILES)})")


def ensure_suite_venv(suite: Path) -> Path:
    """A venv of the suite's own requirements (plus pytest-timeout), apart from the project's
    .venv; reinstalled only when the suite's requirements.txt changes. Returns its python."""
    python = SUITE_VENV / "bin" / "python"
    reqs = suite / "requirements.txt"
    digest = hashlib.sha256(reqs.read_bytes() + repr(EXTRA_REQUIREMENTS).encode()).hexdigest()
    stamp = SUITE_VENV / f".installed-{digest[:16]}"
    if stamp.exists() and python.exists():
        return python
    if not python.exists():
        say(f"creating {SUITE_VENV.relative_to(REPO)}")
        subprocess.run([sys.executable, "-m", "venv", str(SUITE_VENV)], check=True)
    say(f"installing the suite's requirements into {SUITE_VENV.relative_to(REPO)}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(reqs), *EXTRA_REQUIREMENTS], check=True)
    for old in SUITE_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return python


def has_module(python: Path, module: str) -> bool:
    """Whether the suite venv can import a module (pytest-timeout is optional there)."""
    return subprocess.run([str(python), "-c", f"import {module}"],
                          capture_output=True).returncode == 0


# ---------------------------------------------------------------- the cluster

def free_port() -> int:
    """A port free on 127.0.0.1 now, so our cluster never takes 9000 from another one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_users(path: Path) -> None:
    """The three users as `shardgate dev --users` reads them ([[users]] tables)."""
    lines = []
    for user in USERS.values():
        lines.append("[[users]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in user.items()]
        lines.append("")
    path.write_text("\n".join(lines))


@dataclass
class Cluster:
    """One `shardgate dev` this runner started; stopped by its pid, never by name."""

    proc: subprocess.Popen
    port: int
    data: Path
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM the dev process (it stops its gateway and volumes), SIGKILL if it hangs."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        say(f"stopped the cluster (pid {self.proc.pid})")


def start_cluster(data: Path, log: Path, attempts: int = 3) -> Cluster:
    """Start `shardgate dev` on a free port with the suite's users and wait until ready;
    a port taken between choosing and binding it gets another try."""
    if not SHARDGATE.exists():
        raise RunError(f"{SHARDGATE} is missing: run ./scripts/dev or ./scripts/test once")
    users = data.parent / "users.toml"
    write_users(users)
    for attempt in range(1, attempts + 1):
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(SHARDGATE), "dev", "--data", str(data), "--port", str(port),
                 "--users", str(users)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # Ctrl-C reaches the runner, which stops it
        cluster = Cluster(proc, port, data, log)
        if wait_ready(cluster):
            say(f"cluster ready at {cluster.endpoint} (pid {proc.pid}, data {data})")
            return cluster
        cluster.stop()
        tail = log.read_text(errors="replace").splitlines()[-10:]
        if attempt == attempts or not any("in use" in line for line in tail):
            raise RunError("shardgate dev did not start; last lines of "
                           f"{log}:\n    " + "\n    ".join(tail))
    raise AssertionError("unreachable")


def wait_ready(cluster: Cluster) -> bool:
    """True once the gateway answers /-/ready with 200; False if dev exits or time runs out."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if cluster.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{cluster.endpoint}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def write_conf(path: Path, port: int) -> None:
    """s3tests.conf (layout of the suite's s3tests.conf.SAMPLE) pointing at our cluster.

    No api_name: it names an RGW zonegroup; our region is us-east-1, where S3 takes no
    LocationConstraint, so test_bucket_get_location skips as it would against AWS there."""
    out = ["[DEFAULT]", "host = 127.0.0.1", f"port = {port}", "is_secure = False",
           "ssl_verify = False", "", "[fixtures]", "bucket prefix = shardgate-{random}-",
           "iam name prefix = s3-tests-", "iam path prefix = /s3-tests/", ""]
    for section, user in USERS.items():
        out.append(f"[s3 {section}]")
        out += [f"{key} = {value}" for key, value in user.items()]
        if section == "tenant":
            out.append("tenant = testx")
        out.append("")
    for section, (access, secret, user_id) in IAM_SECTIONS.items():
        out += [f"[{section}]", f"access_key = {access}", f"secret_key = {secret}",
                f"user_id = {user_id}", f"display_name = {user_id}",
                f"email = {user_id.lower()}@example.com", ""]
    path.write_text("\n".join(out))


# ---------------------------------------------------------------- pytest

QUIET_SECTIONS = re.compile(r"^=+ (FAILURES|ERRORS|warnings summary|short test summary info)")
# "3 passed, 2 errors in 4.1s" (-q) or the same inside "=== ... ===".
FINAL_LINE = re.compile(r"^=*\s*(\d+ \w+|no tests ran).* in [0-9.]+s\b")


def run_pytest(python: Path, suite: Path, functional: Path, conf: Path, junit: Path,
               log: Path, keyword: str | None, timeout: int) -> tuple[int, str]:
    """Run the two suite files; the full output goes to log, the terminal gets progress and
    the final line (tracebacks are in the log and the junit XML). Returns (status, final)."""
    rel = functional.relative_to(suite)
    args = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short",
            "-rfE", f"--junitxml={junit}", "-m", MARKER_EXPR,
            *[f"--deselect={rel}/{name}" for name in DESELECTED],
            *[str(rel / name) for name in SUITE_FILES]]
    if has_module(python, "pytest_timeout"):
        args[3:3] = [f"--timeout={timeout}"]
    else:
        say("pytest-timeout is not installed in the suite venv: no per-test timeout")
    if keyword:
        args += ["-k", keyword]
    env = {**os.environ, "S3TEST_CONF": str(conf), "PYTHONUNBUFFERED": "1"}
    say("running: " + " ".join(args[1:]))
    final = ""
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=suite, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            quiet = False
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if QUIET_SECTIONS.match(line):
                    quiet = True
                if FINAL_LINE.match(line.rstrip()):
                    quiet, final = False, line.strip().strip("= ")
                if not quiet:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            return proc.wait(), final
        finally:
            if proc.poll() is None:  # interrupted: stop our pytest, by its pid
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def git_commit(path: Path) -> str:
    """Short commit of a checkout, for the summary: which code met which suite."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def summarize(outcomes: dict[str, str], final: str, seconds: float, suite: Path,
              keyword: str | None) -> str:
    """The text of results/summary.txt."""
    counts = {key: sum(v == key for v in outcomes.values())
              for key in ("passed", "failed", "error", "skipped")}
    ran = counts["passed"] + counts["failed"] + counts["error"]
    pct = 100 * counts["passed"] / ran if ran else 0.0
    deselected = re.search(r"(\d+) deselected", final)
    lines = [f"shardgate {git_commit(REPO)} against ceph/s3-tests {git_commit(suite)}",
             f"files:      {', '.join(SUITE_FILES)}",
             f"markers:    -m \"{MARKER_EXPR}\"",
             f"deselected: {', '.join(DESELECTED)}"
             + (f" ({deselected.group(1)} in all with the markers)" if deselected else "")]
    if keyword:
        lines.append(f"narrowed:   -k \"{keyword}\"")
    lines += [f"passed:     {counts['passed']}", f"failed:     {counts['failed']}",
              f"error:      {counts['error']}", f"skipped:    {counts['skipped']}",
              f"total:      {len(outcomes)} ({ran} run, {counts['skipped']} skipped)",
              "outcome:    each test's worst phase (setup, call, teardown): pytest's own "
              "count below calls a test that passed but failed its teardown both passed "
              "and error; here it is error",
              f"pass rate:  {pct:.1f}% of the tests run (passed / (passed+failed+error))",
              f"duration:   {seconds:.0f} s", f"pytest:     {final or '(no final line)'}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options; a missing suite or --update-expected with -k is a usage error (status 2)."""
    parser = argparse.ArgumentParser(
        prog="s3-compat-tests/run", description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--suite", default=os.environ.get("S3TESTS_DIR"),
                        help="checkout of https://github.com/ceph/s3-tests (env S3TESTS_DIR)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="pytest -k expression to narrow the run")
    parser.add_argument("--keep", action="store_true",
                        help="leave the cluster running afterwards (its pid is printed)")
    parser.add_argument("--update-expected", action="store_true",
                        help=f"rewrite {EXPECTED.name} from this run's passes")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds per test before pytest-timeout fails it")
    args = parser.parse_args(argv)
    if not args.suite:
        parser.error("give --suite PATH or set S3TESTS_DIR (a checkout of ceph/s3-tests)")
    if args.update_expected and args.keyword:
        parser.error("--update-expected needs a full run: drop -k")
    return args


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    """Suite venv, cluster, conf, pytest, results, ratchet; the cluster stops on every exit
    path unless --keep."""
    suite = Path(args.suite).expanduser().resolve()
    functional = find_functional(suite)
    python = ensure_suite_venv(suite)
    if RESULTS.exists():
        shutil.rmtree(RESULTS)
    RESULTS.mkdir()
    data = Path(tempfile.mkdtemp(prefix="shardgate-s3tests-")) / "data"
    cluster = None
    started = time.monotonic()
    try:
        cluster = start_cluster(data, RESULTS / "cluster.log")
        conf = RESULTS / "s3tests.conf"
        write_conf(conf, cluster.port)
        junit = RESULTS / "junit.xml"
        status, final = run_pytest(python, suite, functional, conf, junit,
                                   RESULTS / "pytest.log", args.keyword, args.timeout)
    finally:
        if cluster and not args.keep:
            cluster.stop()
            gateway_log = data / "logs" / "gateway.log"
            if gateway_log.exists():
                shutil.copy(gateway_log, RESULTS / "gateway.log")
            shutil.rmtree(data.parent, ignore_errors=True)
        elif cluster:
            say(f"cluster left running: {cluster.endpoint}, pid {cluster.proc.pid}, data "
                f"{data}, conf {RESULTS / 's3tests.conf'}; stop it with kill {cluster.proc.pid}")
    seconds = time.monotonic() - started
    if status > 1 or not junit.exists():
        raise RunError(f"pytest ended with status {status} ({final or 'no summary'}); "
                       f"see {RESULTS / 'pytest.log'}")
    outcomes = read_junit(junit)
    (RESULTS / "tests.txt").write_text(
        "".join(f"{name} {outcomes[name]}\n" for name in sorted(outcomes)))
    summary = summarize(outcomes, final, seconds, suite, args.keyword)
    (RESULTS / "summary.txt").write_text(summary)
    print(summary, end="", flush=True)
    if args.update_expected:
        passed = [name for name, outcome in outcomes.items() if outcome == "passed"]
        write_expected(EXPECTED, passed, git_commit(suite))
        say(f"rewrote {EXPECTED.relative_to(REPO)}: {len(passed)} tests")
        return 0
    return ratchet(outcomes, read_expected(EXPECTED), bool(args.keyword), EXPECTED.name)


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit status 0 (ratchet holds), 1 (a listed test broke), 2 (no run)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run(args)
    except RunError as exc:
        say(str(exc))
        return 2
    except subprocess.CalledProcessError as exc:
        say(f"{' '.join(map(str, exc.cmd))} failed with status {exc.returncode}")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
