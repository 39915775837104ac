"""The s3-tests ratchet: outcomes from pytest's junit XML, the expected-pass list, the check."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

OUTCOME_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def say(message: str) -> None:
    print(f"s3-compat: {message}", flush=True)


def test_name(classname: str, name: str) -> str:
    """'test_s3.py::test_bucket_list_empty': stable across the suite's directory moves."""
    return f"{classname.rsplit('.', 1)[-1]}.py::{name}"


def read_junit(path: Path) -> dict[str, str]:
    """Outcome per test from pytest's junit XML; a test reported twice (say, passed and then
    an error in teardown) keeps its worst outcome."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = ("error" if "error" in tags else "failed" if "failure" in tags
                   else "skipped" if "skipped" in tags else "passed")
        name = test_name(case.get("classname", ""), case.get("name", ""))
        if OUTCOME_RANK[outcome] >= OUTCOME_RANK.get(outcomes.get(name, "passed"), 0):
            outcomes[name] = outcome
    return outcomes


def read_expected(path: Path) -> list[str]:
    """Test names, one a line; '#' starts a comment."""
    if not path.exists():
        return []
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [name for name in names if name]


def write_expected(path: Path, passed: list[str], suite_commit: str) -> None:
    """Rewrite the ratchet list, sorted, under a header saying how it is kept."""
    header = ("# Ceph s3-tests (https://github.com/ceph/s3-tests) that pass against shardgate:\n"
              "# s3-compat-tests/run fails when one of these does not pass. Rewrite this\n"
              "# list from a full run with `s3-compat-tests/run --update-expected`.\n"
              f"# Suite commit of the last rewrite: {suite_commit}\n")
    path.write_text(header + "".join(f"{name}\n" for name in sorted(passed)))


def ratchet(outcomes: dict[str, str], expected: list[str], narrowed: bool,
            list_name: str) -> int:
    """1 if a listed test did not pass (a listed test a -k run left out does not count);
    new passes are printed so they can be added."""
    listed = set(expected)
    checked = [n for n in expected if n in outcomes or not narrowed]
    broken = [n for n in checked if outcomes.get(n) != "passed"]
    new = sorted(n for n, outcome in outcomes.items() if outcome == "passed" and n not in listed)
    if new:
        say(f"{len(new)} passing tests not yet in {list_name} (add them, or rerun with "
            "--update-expected):")
        for name in new:
            print(f"    {name}")
    if broken:
        say(f"FAIL: {len(broken)} tests in {list_name} did not pass:")
        for name in broken:
            print(f"    {name} {outcomes.get(name, 'not run')}")
        return 1
    skipped = f" ({len(expected) - len(checked)} not in this -k run)" if narrowed else ""
    say(f"ok: all {len(checked)} tests in {list_name} that ran passed{skipped}")
    return 0
