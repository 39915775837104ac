"""Named kill points for the fault suite: a process SIGKILLs itself exactly where named.

Production code calls `kill_point("commit.after_txn")` at the moments the durability
argument is about (docs/durability.md). A point does nothing unless the process was
started with SHARDGATE_FAULT_POINTS=1 *and* a test armed it (volume: `POST /faults`,
gateway: `POST /-/faults`, rebalancer: SHARDGATE_FAULT_ARM at start); an armed point
fires once, at its N-th hit, so a test hits it deterministically rather than by timing.
SIGKILL keeps the page cache, like a process crash; it is not a power cut (a unit test
checks the fsync order for that).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "SHARDGATE_FAULT_POINTS"
ARM_ENV = "SHARDGATE_FAULT_ARM"  # "point@N,...": armed at start (a process with no port)

POINTS = (
    "stage.after_blocks",     # volume: a stage's whole blocks written (around the page
                              # cache where asked), its tail and fsync not yet
    "stage.after_fsync",      # volume: staged file fsynced, not yet renamed into staging
    "commit.before_txn",      # volume: archive renamed into place, row not yet written
    "commit.mid_txn",         # volume: inside the SQLite transaction of the commit
    "commit.after_txn",       # volume: row committed, answer not yet sent
    "durable.before_txn",     # volume: durable notice received, not yet applied
    "durable.after_txn",      # volume: notice applied, older rows superseded
    "gateway.after_stage",    # gateway: body staged on the quorum, nothing committed
    "gateway.after_one_commit",  # gateway: one more volume answered its commit (N-th hit:
                                 # N commits answered, the rest not yet)
    "gateway.after_commit",   # gateway: commit quorum reached, no durable notice sent
    "gateway.after_notice",   # gateway: durable notices sent, client not yet answered
    "gateway.after_claim",    # gateway: a conditional write holds its key's claim and
                              # has evaluated, nothing committed
    "gateway.after_heal_lease",  # gateway: the healer holds a version's heal lease,
                                 # nothing of the heal done
    "gateway.after_tombstones",  # gateway: a version delete's tombstones on the quorum,
                                 # the volumes not yet told to drop the row
    "gateway.before_forget_kept",  # gateway: a small PUT's two-phase write committed,
                                   # its refused one-trip version kept, not yet deleted
    "forget.after_txn",       # volume: a version tombstone (pending or durable) applied
    "latest.after_rows",      # volume: a `latest` answer's rows sent, the fragment bytes
                              # read along with them (a GET's read-ahead) not yet
    "archive.after_first",    # volume: a plain read's first 1 MiB of an archive sent,
                              # the next not yet (a heal's rebuild reading its sources)
    "slices.after_first",     # volume: a sliced read's first run of fragment slices
                              # (up to 1 MiB of fragments) sent, the next not yet
    "rebalance.after_part_moved",  # rebalancer: an open upload's part fragment committed
                                   # on its new volume, the leaving copy not yet dropped
)

# Named holds: not a kill, a part of the process that stops acting until released.
HOLDS = (
    "map.watch",              # gateway: ignore map watch events and periodic re-reads
                              # (a lagging watch; a fencing refusal still re-reads)
    "heal.rounds",            # gateway: the healer starts nothing: no membership check,
                              # no heal queue polled (the others heal); a rebuild already
                              # running goes on
    "stage.body",             # volume: a stage takes none of its body (a stuck disk or
                              # process: the connection stays open, nothing is read)
)

_armed: dict[str, int] = {}
_held: set[str] = set()
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def arm(name: str, at_hit: int = 1) -> None:
    """Make the `at_hit`-th hit of point `name` kill this process (tests only)."""
    if name not in POINTS:
        raise ValueError(f"unknown kill point {name!r}")
    if at_hit < 1:
        raise ValueError("at_hit must be >= 1")
    with _lock:
        _armed[name] = at_hit


def arm_from_env() -> None:
    """Arm the points SHARDGATE_FAULT_ARM names, for processes no test can reach by HTTP
    (the rebalancer); nothing unless kill points are enabled."""
    if not enabled():
        return
    for item in filter(None, os.environ.get(ARM_ENV, "").split(",")):
        name, _, at_hit = item.partition("@")
        arm(name, int(at_hit or 1))


def disarm_all() -> None:
    with _lock:
        _armed.clear()
        _held.clear()


def hold(name: str, on: bool = True) -> None:
    """Hold (or release) the named part of this process (tests only)."""
    if name not in HOLDS:
        raise ValueError(f"unknown hold {name!r}")
    with _lock:
        if on:
            _held.add(name)
        else:
            _held.discard(name)


def held(name: str) -> bool:
    return name in _held


def kill_point(name: str) -> None:
    """Die here if this point is armed and this is the hit it waits for."""
    if not _armed:
        return
    with _lock:
        left = _armed.get(name)
        if left is None:
            return
        if left > 1:
            _armed[name] = left - 1
            return
    os.kill(os.getpid(), signal.SIGKILL)
