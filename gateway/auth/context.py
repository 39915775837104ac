"""What a verified request carries onward: the AuthContext and the payload modes."""

from __future__ import annotations

from dataclasses import dataclass, field

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
SHA256_PAYLOAD = "SHA256"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
PAYLOAD_MODES = (UNSIGNED_PAYLOAD, *STREAMING_MODES, SHA256_PAYLOAD)


@dataclass(frozen=True)
class AuthContext:
    """A verified request: who signed it and what the body decoder needs to go on verifying."""

    access_key: str
    signing_key: bytes = field(repr=False)
    scope: str  # date/region/s3/aws4_request
    amz_date: str  # the request timestamp, ISO 8601 basic (20130524T000000Z)
    seed_signature: str  # the request signature: first link of an aws-chunked chain
    payload_mode: str  # one of PAYLOAD_MODES
    payload_sha256: str | None = None  # declared hex hash when payload_mode == "SHA256"
    presigned: bool = False

    @property
    def streaming(self) -> bool:
        """The body is aws-chunked (Content-Encoding: aws-chunked)."""
        return self.payload_mode in STREAMING_MODES
