"""The gateway's client for volume servers: one method per route (docs/volume-api.md).

The transport (session, tokens, epoch, what each status means) is volume_transport.py.
Object commits and `latest` questions to one volume go in batches (volume_batches.py).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import quote

import aiohttp

from erasure import SliceSpec
from gateway.objects.volume_batches import VolumeBatches
from gateway.objects.volume_errors import (
    VolumeNotFound,
    VolumeRebuilding,
    VolumeRejected,
    VolumeUnavailable,
)
from gateway.objects.volume_transport import ArchiveStream, VolumeTransport, decoded
from shardgate import jsonio
from shardgate.config import ClusterConfig

LATEST_BATCH = 256  # keys per batched `latest` (the volume takes up to 1000)
COMMIT_BATCH = 64  # object commits per request (the volume takes up to 256)
SHARED_COMMIT_BYTES = 192 << 10  # larger commits go alone: a batch stays under 12 MiB


class VolumeClient(VolumeTransport):
    """Every request a gateway makes of a volume, by route."""

    def __init__(self, config: ClusterConfig, connect_timeout: float = 3.0,
                 metadata_timeout: float = 10.0) -> None:
        super().__init__(config, connect_timeout, metadata_timeout)
        self._latest_batches: VolumeBatches[tuple[str, str, bool], list[dict]] = (
            VolumeBatches(self._latest_many, LATEST_BATCH))
        # One set of batches per ring epoch: a batch's request carries one epoch, and
        # each commit the epoch of its own write's placement.
        self._commit_batches: dict[int, VolumeBatches[dict, dict]] = {}

    async def stage(self, volume_id: str, stage_id: str, body: AsyncIterator[bytes],
                    size: int | None = None, inline: bool = False,
                    around_cache: bool = False) -> dict:
        """Stage one archive; `inline` lets the volume hold it in memory until the commit
        (the object is below the inline threshold, so its archive goes into SQLite), and
        `around_cache` has it written around the volume's page cache (not read soon)."""
        params = {"size": str(size)} if size is not None else {}
        if inline:
            params["inline"] = "1"
        if around_cache:
            params["cache"] = "0"
        return await self._request(volume_id, "PUT", f"/stage/{stage_id}", params=params or None,
                                   data=body)

    async def abort_stage(self, volume_id: str, stage_id: str) -> None:
        await self._request(volume_id, "DELETE", f"/stage/{stage_id}", allow_404=True)

    async def commit_object(self, volume_id: str, payload: dict) -> dict:
        """Commit an object row; sent in a batch with the other commits queued meanwhile
        for the same volume (volume_batches.py), each answered or refused alone. A big
        one (a manifest of many parts, inline data past the usual) goes alone, so that a
        batch stays far below the volume's JSON limit."""
        epoch = self.write_epoch()  # asked now, in the writer's task
        if len(jsonio.dumps(payload)) > SHARED_COMMIT_BYTES:
            return await self._commit_one(volume_id, payload, epoch)
        batches = self._commit_batches.get(epoch)
        if batches is None:
            batches = self._commit_batches[epoch] = VolumeBatches(
                partial(self._commit_many, epoch=epoch), COMMIT_BATCH)
        return await batches.send(volume_id, payload)

    async def _commit_many(self, volume_id: str, payloads: list[dict], epoch: int
                           ) -> list[dict | BaseException]:
        if len(payloads) == 1:
            return [await self._commit_one(volume_id, payloads[0], epoch)]
        try:
            answer = await self._request(volume_id, "POST", "/objects/commits",
                                         json_body={"commits": payloads}, epoch=epoch)
        except (VolumeNotFound, VolumeRejected) as exc:
            if isinstance(exc, VolumeRejected) and exc.status != 405:
                raise
            # A volume that predates batches (mid-upgrade): one request per commit.
            return await asyncio.gather(*(self._commit_one(volume_id, p, epoch)
                                          for p in payloads), return_exceptions=True)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(payloads):
            raise VolumeUnavailable(volume_id, "answer is not a result per commit")
        shared = {"clock": answer.get("clock"), "rebuilding": answer.get("rebuilding")}
        found: list[dict | BaseException] = []
        for result in results:
            if isinstance(result, dict) and result.get("committed") is True:
                found.append(result | shared)
            elif isinstance(result, dict) and isinstance(result.get("status"), int):
                found.append(self._failure(volume_id, result["status"],
                                           jsonio.dumps({"error": result.get("error")})))
            else:
                found.append(VolumeUnavailable(volume_id, "a commit's result is unreadable"))
        return found

    async def _commit_one(self, volume_id: str, payload: dict, epoch: int) -> dict:
        return await self._request(volume_id, "POST", "/objects/commit", json_body=payload,
                                   epoch=epoch)

    async def commit_part(self, volume_id: str, payload: dict) -> dict:
        return await self._request(volume_id, "POST", "/parts/commit", json_body=payload)

    async def latest(self, volume_id: str, incarnation: str, key: str,
                     with_inline: bool = False) -> list[dict]:
        """The key's rows from the newest down to the newest durable one, newest first;
        `with_inline`: the newest row's inline fragments held there, as `"inline"`:
        {archive id: bytes}. Asked in a batch with the other keys queued meanwhile for
        the same volume (volume_batches.py)."""
        return await self._latest_batches.send(volume_id, (incarnation, key, with_inline))

    async def _latest_many(self, volume_id: str, keys: list[tuple[str, str, bool]]
                           ) -> list[list[dict] | BaseException]:
        """`latest` of each (incarnation, key, with_inline), in one request."""
        if len(keys) == 1:
            return [await self._latest_one(volume_id, *keys[0])]
        try:
            answer = await self._request(volume_id, "POST", "/objects/latest",
                                         json_body={"keys": [list(k) for k in keys]},
                                         reads_only=True)
        except VolumeRejected as exc:
            if exc.status != 405:
                raise
            # A volume that predates batches (mid-upgrade): one request per key.
            return await asyncio.gather(*(self._latest_one(volume_id, *k) for k in keys),
                                        return_exceptions=True)
        answers = answer.get("answers") if isinstance(answer, dict) else None
        if not isinstance(answers, list) or len(answers) != len(keys):
            raise VolumeUnavailable(volume_id, "answer is not the rows of each key")
        found: list[list[dict] | BaseException] = []
        for rows in answers:
            try:
                found.append(self._rows(volume_id, answer | {"versions": rows}))
            except VolumeUnavailable as exc:
                found.append(exc)
        return found

    async def _latest_one(self, volume_id: str, incarnation: str, key: str,
                          with_inline: bool) -> list[dict]:
        params = {"incarnation": incarnation, "key": key}
        if with_inline:
            params["inline"] = "1"
        return await self._evidence(volume_id, "/objects/latest", params)

    async def latest_and_read(self, volume_id: str, incarnation: str, key: str,
                              version_id: str, archive_id: str, start: int, end: int,
                              with_inline: bool = False, slices: SliceSpec | None = None
                              ) -> tuple[list[dict], ArchiveStream | None]:
        """`latest`, and an open read of archive bytes [start, end] (inclusive), or of
        their `slices`, when the volume's newest row is `version_id` (else None): one
        round trip where a ranged GET that expects that version would take two. The
        caller closes the stream."""
        params = {"incarnation": incarnation, "key": key, "version": version_id,
                  "archive": archive_id, "first": str(start), "last": str(end)}
        if slices is not None:
            params["slices"] = slices.encode()
        if with_inline:
            params["inline"] = "1"
        resp = await self._open(volume_id, "/objects/latest", params, {})
        try:
            try:
                async with asyncio.timeout(self._metadata_timeout.total):  # the rows' bytes
                    if resp.status >= 400:
                        raise self._failure(volume_id, resp.status, await resp.read())
                    if "x-rows-length" not in resp.headers:  # a volume that reads nothing along
                        following, prefix = 0, await resp.read()
                    else:
                        following = int(resp.headers.get("x-archive-bytes", "0"))
                        prefix = await resp.content.readexactly(
                            int(resp.headers["x-rows-length"]))
            except ValueError as exc:
                raise VolumeUnavailable(volume_id, "latest: bad rows length") from exc
            except (TimeoutError, aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
                raise VolumeUnavailable(volume_id, f"latest: {exc!r}") from exc
            rows = self._rows(volume_id, decoded(prefix))
        except BaseException:
            resp.release()
            resp.close()
            raise
        if following != (end - start + 1 if slices is None else slices.sent) or (
                slices is not None and following and "x-slices" not in resp.headers):
            resp.release()
            if following:  # not what was asked (cannot be used): drop the connection
                resp.close()
            return rows, None
        return rows, ArchiveStream(volume_id, resp)

    async def _evidence(self, volume_id: str, path: str, params: dict[str, str]
                        ) -> list[dict]:
        """Rows the read rule weighs; a rebuilding volume's answer does not count."""
        return self._rows(volume_id, await self._request(volume_id, "GET", path,
                                                         params=params))

    @staticmethod
    def _rows(volume_id: str, answer: Any) -> list[dict]:
        if not isinstance(answer, dict) or not isinstance(answer.get("versions"), list):
            raise VolumeUnavailable(volume_id, "answer is not the rows")
        if answer.get("rebuilding"):
            raise VolumeRebuilding(volume_id, "rebuilding: its answers do not count yet")
        try:
            for row in answer["versions"]:
                if "inline" in row:
                    row["inline"] = {archive: base64.b64decode(data)
                                     for archive, data in row["inline"].items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise VolumeUnavailable(volume_id, f"unreadable rows: {exc!r}") from exc
        return answer["versions"]

    async def scan(self, volume_id: str, after: int, limit: int) -> dict:
        return await self._request(volume_id, "GET", "/objects/scan",
                                   params={"after": str(after), "limit": str(limit)})

    async def tombstones(self, volume_id: str, after: list[str] | None, limit: int) -> dict:
        """A page of the volume's durable version tombstones after `after` (a triple)."""
        names = ("after_incarnation", "after_key", "after_version")
        params = {"limit": str(limit), **dict(zip(names, after or ("", "", ""), strict=True))}
        return await self._request(volume_id, "GET", "/objects/tombstones", params=params)

    async def newest_durable(self, volume_id: str, keys: list[tuple[str, str]]) -> list[str]:
        answer = await self._request(volume_id, "POST", "/objects/digests",
                                     json_body={"keys": [list(k) for k in keys]})
        return answer["versions"]

    async def set_rebuilding(self, volume_id: str, rebuilding: bool) -> None:
        await self._request(volume_id, "POST", "/state", json_body={"rebuilding": rebuilding})

    async def get_peers(self, volume_id: str) -> dict[str, str]:
        return (await self._request(volume_id, "GET", "/peers"))["peers"]

    async def put_peers(self, volume_id: str, peers: dict[str, str]) -> None:
        await self._request(volume_id, "PUT", "/peers", json_body={"peers": peers})

    async def version(self, volume_id: str, incarnation: str, key: str,
                      version_id: str) -> dict | None:
        return await self._request(volume_id, "GET", "/objects/version",
                                   params={"incarnation": incarnation, "key": key,
                                           "version_id": version_id}, allow_404=True)

    async def version_rows(self, volume_id: str, incarnation: str, key: str,
                           version_id: str) -> list[dict]:
        """[the version's row] or [] (a tombstoned one answers as forgotten)."""
        return await self._evidence(volume_id, "/objects/version", {
            "incarnation": incarnation, "key": key, "version_id": version_id,
            "as_list": "1"})

    async def nulls(self, volume_id: str, incarnation: str, key: str) -> list[dict]:
        """The key's null rows down to the newest durable one, and its tombstones."""
        return await self._evidence(volume_id, "/objects/nulls",
                                    {"incarnation": incarnation, "key": key})

    async def claim_key(self, volume_id: str, payload: dict) -> bool:
        """A conditional write's claim on a key; whether this volume granted it."""
        answer = await self._request(volume_id, "POST", "/objects/claim", json_body=payload)
        return bool(answer.get("granted"))

    async def release_key(self, volume_id: str, payload: dict) -> None:
        await self._request(volume_id, "POST", "/objects/release", json_body=payload)

    async def forget(self, volume_id: str, payload: dict) -> bool:
        """A version tombstone, pending or durable; whether the volume held the version."""
        answer = await self._request(volume_id, "POST", "/objects/forget", json_body=payload)
        return bool(answer.get("found"))

    async def list_versions(self, volume_id: str, incarnation: str, prefix: str,
                            key_marker: str, version_marker: str, delimiter: str,
                            limit: int) -> dict:
        answer = await self._request(volume_id, "GET", "/objects/versions", params={
            "incarnation": incarnation, "prefix": prefix, "key_marker": key_marker,
            "version_marker": version_marker, "delimiter": delimiter, "limit": str(limit)})
        if answer.get("rebuilding"):
            raise VolumeRebuilding(volume_id, "rebuilding: its answers do not count yet")
        return answer

    async def set_attribute(self, volume_id: str, payload: dict) -> bool:
        """An in-place attribute change; False if the volume lacks the version."""
        answer = await self._request(volume_id, "POST", "/objects/attribute",
                                     json_body=payload)
        return bool(answer.get("found"))

    async def mark_durable(self, volume_id: str, notices: list[dict]) -> list[bool]:
        """Durable notices, in one request; for each, False if the volume lacks the
        version (missed its commit)."""
        answer = await self._request(volume_id, "POST", "/objects/durable",
                                     json_body={"notices": notices})
        found = answer.get("found")
        if not isinstance(found, list) or len(found) != len(notices):
            raise VolumeUnavailable(volume_id, f"durable notices answered {answer!r}"[:200])
        return [bool(f) for f in found]

    async def heal_entries(self, volume_id: str, limit: int) -> dict:
        return await self._request(volume_id, "GET", "/heal", params={"limit": str(limit)})

    async def repair_object(self, volume_id: str, payload: dict) -> dict:
        return await self._request(volume_id, "POST", "/objects/repair", json_body=payload)

    async def hand_off(self, volume_id: str, incarnation: str, key: str,
                       version_id: str) -> None:
        """Drop a moved version's row here, its archives retired for the grace period."""
        await self._request(volume_id, "POST", "/objects/handoff",
                            json_body={"incarnation": incarnation, "key": key,
                                       "version_id": version_id})

    async def roll_back(self, volume_id: str, incarnation: str, key: str,
                        version_id: str) -> None:
        await self._request(volume_id, "POST", "/objects/rollback", json_body={
            "incarnation": incarnation, "key": key, "version_id": version_id})

    async def queue_heal(self, volume_id: str, entries: list[dict]) -> None:
        await self._request(volume_id, "POST", "/heal", json_body={"entries": entries})

    async def heal_done(self, volume_id: str, incarnation: str, key: str, version_id: str,
                        up_to: int) -> None:
        await self._request(volume_id, "POST", "/heal/done", json_body={
            "incarnation": incarnation, "key": key, "version_id": version_id,
            "up_to": up_to})

    async def heal_leases(self, volume_id: str, holder: str, seconds: float,
                          refs: list[tuple[str, str, str]]) -> list[bool]:
        """Take, renew or (seconds 0) release heal leases on `refs`; one answer each."""
        answer = await self._request(volume_id, "POST", "/heal/leases", json_body={
            "holder": holder, "seconds": seconds, "refs": [list(r) for r in refs]})
        return [bool(g) for g in answer["granted"]]

    async def open_archive(self, volume_id: str, archive_id: str, start: int,
                           end: int, slices: SliceSpec | None = None) -> ArchiveStream:
        """Open a ranged read of [start, end] (inclusive) of one archive, or of the
        `slices` of the fragments there (erasure/slices.py)."""
        params = None if slices is None else {"slices": slices.encode()}
        resp = await self._open(volume_id, f"/archives/{archive_id}", params,
                                {"Range": f"bytes={start}-{end}"})
        if resp.status not in (200, 206):
            resp.release()
            raise VolumeUnavailable(volume_id, f"archive {archive_id}: HTTP {resp.status}")
        if slices is not None and (resp.content_length != slices.sent
                                   or "x-slices" not in resp.headers):
            resp.release()
            resp.close()  # a volume that sends whole fragments: not what was asked
            raise VolumeRejected(volume_id, 501, "no sliced reads")
        return ArchiveStream(volume_id, resp)

    async def delete_archive(self, volume_id: str, archive_id: str) -> None:
        await self._request(volume_id, "DELETE", f"/archives/{archive_id}", allow_404=True)

    async def list_objects(self, volume_id: str, incarnation: str, prefix: str,
                           start_after: str, delimiter: str, limit: int) -> dict:
        params = {"incarnation": incarnation, "prefix": prefix, "start_after": start_after,
                  "delimiter": delimiter, "limit": str(limit)}
        page = await self._request(volume_id, "GET", "/objects/list", params=params)
        if page.get("rebuilding"):
            raise VolumeRebuilding(volume_id, "rebuilding: its listing does not count yet")
        return page

    # -- buckets -------------------------------------------------------------------------

    async def put_bucket(self, volume_id: str, record: dict) -> dict:
        return await self._request(volume_id, "PUT", f"/buckets/{quote(record['name'], safe='')}",
                                   json_body=record)

    async def get_bucket(self, volume_id: str, name: str) -> dict | None:
        return await self._request(volume_id, "GET", f"/buckets/{quote(name, safe='')}",
                                   allow_404=True)

    async def put_bucket_setting(self, volume_id: str, name: str, setting: str,
                                 payload: dict) -> dict:
        return await self._request(
            volume_id, "PUT", f"/buckets/{quote(name, safe='')}/settings/{setting}",
            json_body=payload)

    async def list_buckets(self, volume_id: str) -> list[dict]:
        return (await self._request(volume_id, "GET", "/buckets"))["buckets"]

    # -- multipart uploads ---------------------------------------------------------------

    async def put_upload(self, volume_id: str, record: dict) -> dict:
        return await self._request(volume_id, "PUT", f"/uploads/{record['upload_id']}",
                                   json_body=record)

    async def get_upload(self, volume_id: str, upload_id: str) -> dict | None:
        return await self._request(volume_id, "GET", f"/uploads/{upload_id}", allow_404=True)

    async def list_parts(self, volume_id: str, upload_id: str) -> list[dict]:
        return (await self._request(volume_id, "GET", f"/uploads/{upload_id}/parts"))["parts"]

    async def claim_upload(self, volume_id: str, upload_id: str, token: str,
                           op: str) -> None:
        """Hold the upload for `token` (op "complete", "abort" or "move"); 409 if another
        holds it."""
        await self._request(volume_id, "POST", f"/uploads/{upload_id}/claim",
                            json_body={"token": token, "op": op})

    async def release_claim(self, volume_id: str, upload_id: str, token: str) -> None:
        await self._request(volume_id, "DELETE", f"/uploads/{upload_id}/claim",
                            params={"token": token})

    async def complete_upload(self, volume_id: str, upload_id: str, payload: dict) -> dict:
        """The compare-and-set commit of a claimed upload: `/objects/commit` body + token."""
        return await self._request(volume_id, "POST", f"/uploads/{upload_id}/complete",
                                   json_body=payload)

    async def abort_upload(self, volume_id: str, upload_id: str,
                           token: str | None = None) -> None:
        """Delete an upload (claimed by `token`, or not claimed) and free its archives;
        VolumeNotFound if it is gone."""
        await self._request(volume_id, "DELETE", f"/uploads/{upload_id}",
                            params={"token": token} if token else None)

    async def list_uploads(self, volume_id: str, incarnation: str, prefix: str) -> list[dict]:
        return (await self._request(volume_id, "GET", "/uploads",
                                    params={"incarnation": incarnation, "prefix": prefix}))[
            "uploads"]

    async def status(self, volume_id: str) -> dict:
        """Row counts, disk and heal backlog (what `shardgate admin status` shows)."""
        return await self._request(volume_id, "GET", "/status")

    async def health(self, volume_id: str) -> dict:
        return await self._request(volume_id, "GET", "/health")
