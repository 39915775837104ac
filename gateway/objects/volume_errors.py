"""What a volume request can end in, besides an answer: the data path reasons only about
"this volume answered" or "it did not", and a 4xx tells our mistake from a volume down."""

from __future__ import annotations


class VolumeUnavailable(Exception):
    def __init__(self, volume_id: str, reason: str) -> None:
        super().__init__(f"volume {volume_id}: {reason}")
        self.volume_id = volume_id


class VolumeRebuilding(VolumeUnavailable):
    """The volume answered, but it is rebuilding lost data: its answer must not count."""


class VolumeNotFound(Exception):
    pass


class VolumeRejected(Exception):
    """The volume answered 4xx: our request was wrong, not the volume down."""

    def __init__(self, volume_id: str, status: int, text: str) -> None:
        super().__init__(f"volume {volume_id} answered {status}: {text}")
        self.status = status

    @property
    def conflict(self) -> bool:
        """409 for the volume's state: a newer version there, a claim another holds."""
        return self.status == 409


class StaleEpoch(VolumeRejected):
    """409 because the volume knows a newer ring epoch than ours: not a conflict of the
    object's state, a request placed by a ring that is gone (counts as a failed volume;
    the map is re-read, and the client's retry is placed by the new ring)."""

    @property
    def conflict(self) -> bool:
        return False
