"""Epoch fencing: a volume refuses to stage or commit for a ring epoch older than it knows.

Gateways send their ring epoch with every write (`x-shardgate-epoch`). The volume keeps
the newest epoch it has seen, from its own view of the cluster map or from any request,
and answers 409 StaleEpoch to a stage, commit, repair, in-place attribute change, version
delete or upload write (create, claim, Complete) placed by an older ring: a gateway whose
map lags (a watch held back, a process paused past its lease) cannot put data where the
rebalancer will not look (docs/cluster-map.md). Requests without the header (tools,
older gateways) are let through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shardgate import jsonio

EPOCH_HEADER = b"x-shardgate-epoch"
# Every PUT and POST that places something by the ring: staged fragments, object and part
# rows, repairs, in-place attribute changes (tags, ACLs), version deletes (tombstones),
# and upload records, their claims and Complete. (DELETEs are not: letting go of a claim
# or dropping a moved copy must work whatever the epoch.)
FENCED = ("/stage/", "/objects/commit", "/parts/commit", "/objects/repair",
          "/objects/attribute", "/objects/forget", "/uploads/")


class EpochsSeen:
    """The newest ring epoch this volume has seen (shared by the fence and the map)."""

    def __init__(self) -> None:
        self.seen = 0

    def learn(self, epoch: int) -> None:
        self.seen = max(self.seen, epoch)


class EpochFence:
    def __init__(self, app: ASGIApp, epochs: EpochsSeen) -> None:
        self.app = app
        self.epochs = epochs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("PUT", "POST"):
            sent = _epoch_of(scope)
            if sent is not None:
                path = scope["path"]
                if sent < self.epochs.seen and path.startswith(FENCED):
                    await _refuse(send, sent, self.epochs.seen)
                    return
                self.epochs.learn(sent)
        await self.app(scope, receive, send)


def _epoch_of(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == EPOCH_HEADER:
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, sent: int, seen: int) -> None:
    body = jsonio.dumps({"error": f"StaleEpoch: ring epoch {sent} is older than {seen}",
                         "code": "StaleEpoch", "epoch": seen})
    await send({"type": "http.response.start", "status": 409,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
