"""Optional py-spy recording of server processes during a measurement, and a stack summary.

`python -m bench.pyspy FILE... [--top N]` summarises recordings written by `--profile` (all
the files given are added up, e.g. the rounds of one measurement)
(py-spy's raw format: one folded stack per line per thread, idle samples included, plus a
last `# seconds=` line). A sample counts as idle when its innermost Python frame is one
that waits in C: the event loop's select, an idle worker thread, the index writer's queue.
py-spy's own idle detection is not used: it counts such waits as busy on this kind of VM.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE = 100
IDLE_LEAVES = ("select (selectors.py)", "_worker (concurrent/futures/thread.py)",
               "wait (threading.py)", "get (queue.py)", "_write_loop (volume_server/index.py)")
_LINE = re.compile(r":\d+\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None


@contextlib.contextmanager
def record(pids: dict[str, int], outdir: Path, label: str) -> Iterator[list[Path]]:
    """Record every process in `pids` (role -> pid) until the block ends."""
    outdir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    paths: list[Path] = []
    for role, pid in pids.items():
        path = outdir / f"profile-{label}-{role}.txt"
        paths.append(path)
        procs.append(subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
             "--idle", "--threads", "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    start = time.monotonic()
    try:
        yield paths
    finally:
        seconds = time.monotonic() - start
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for path in paths:
            if path.exists():
                with open(path, "a") as fh:
                    fh.write(f"# seconds={seconds:.2f} rate={RATE}\n")


def _frame(raw: str) -> str:
    """'encode (erasure/codec.py:42)' -> 'encode (erasure/codec.py)'."""
    name = _LINE.sub(")", raw.strip())
    return re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+|main)/", "(", name)


def summarize(paths: list[Path], top: int = 25) -> str:
    """Per thread, the share of the wall time it was busy; then the hottest frames."""
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    seconds, rate = 0.0, RATE
    for line in (line for path in paths for line in path.read_text().splitlines()):
        if line.startswith("# seconds="):
            fields = dict(f.split("=") for f in line[2:].split())
            seconds, rate = seconds + float(fields["seconds"]), int(fields["rate"])
            continue
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        thread, *frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): ", "", thread)
        frames = [_frame(f) for f in frames]
        leaf = frames[-1] if frames else thread
        if leaf.endswith(IDLE_LEAVES):
            continue
        count = int(count_text)
        threads[thread] += count
        leaves[leaf] += count
        for frame in set(frames):
            inclusive[frame] += count
    busy = sum(threads.values())
    names = ", ".join(p.name for p in paths)
    if not busy:
        return f"{names}: no busy samples"
    wall = seconds * rate
    out = [f"{names}: {seconds:.1f} s, {busy} busy samples at {rate} Hz"]
    out += [f"  {t}: busy {100 * n / wall:.0f}% of the time" if wall else f"  {t}: {n}"
            for t, n in threads.most_common(8)]
    out.append(f"  hottest leaves (% of busy samples, top {top}):")
    out += [f"    {100 * n / busy:5.1f}%  {f}" for f, n in leaves.most_common(top)]
    out.append("  inclusive (% of busy samples):")
    out += [f"    {100 * n / busy:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pyspy", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarize(args.files, args.top))


if __name__ == "__main__":
    main()
