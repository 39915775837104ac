"""Volume calls that end a multipart upload: claim, release, complete, abort.

Kept beside VolumeClient as plain functions over its `_request`, so the multipart
protocol (docs/volume-api.md, "Multipart uploads") has its calls in one place. Errors
are VolumeClient's: VolumeNotFound (404: no such upload on that volume), VolumeRejected
(409: another Complete or Abort holds the upload), VolumeUnavailable (down or 5xx).
"""

from __future__ import annotations

from gateway.volume_client import VolumeClient


async def claim_upload(client: VolumeClient, volume_id: str, upload_id: str, token: str,
                       op: str) -> None:
    """Hold the upload for `token` ("complete" or "abort") on one volume."""
    await client._request(volume_id, "POST", f"/uploads/{upload_id}/claim",
                          json_body={"token": token, "op": op})


async def release_claim(client: VolumeClient, volume_id: str, upload_id: str,
                        token: str) -> None:
    await client._request(volume_id, "DELETE", f"/uploads/{upload_id}/claim",
                          params={"token": token})


async def complete_upload(client: VolumeClient, volume_id: str, upload_id: str,
                          payload: dict) -> dict:
    """The compare-and-set commit of a claimed upload: `/objects/commit` body + token."""
    return await client._request(volume_id, "POST", f"/uploads/{upload_id}/complete",
                                 json_body=payload)


async def abort_upload(client: VolumeClient, volume_id: str, upload_id: str,
                       token: str) -> None:
    """Delete a claimed upload and free its archives; 404 (VolumeNotFound) if it is gone."""
    await client._request(volume_id, "DELETE", f"/uploads/{upload_id}",
                          params={"token": token})
