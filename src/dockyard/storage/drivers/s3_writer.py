"""The S3 driver's writer: an append-only file made of a multipart upload and a small tail object.

A chunked upload arrives as many requests, each on any replica, each opening the path, writing
and closing. Each byte should travel to the store once (plus the one final copy to its content
address), so the multipart upload stays open from one writer to the next and its state lives in
the store, where any replica finds it:

- the parts of one multipart upload on the path's key hold the first bytes, every part at
  least 5 MiB (S3's smallest but the last);
- the object at the path holds the bytes after them (under 5 MiB: the *tail*), and its user
  metadata ``dockyard-multipart`` names the upload, the bytes its parts hold and the numbers of
  its valid parts (:class:`Pending`). Writing that object is the moment a close is durable, so
  a replica killed after acknowledging a PATCH loses nothing acknowledged.

So what a writer has written is always one of two things in the store: a plain object at the
path (small uploads, and after ``flush``), or a pending upload as above. ``stat`` gives a pending
upload's whole size; its bytes become readable only when ``flush`` or ``commit`` completes it
(an object store cannot read an unfinished multipart upload), and a read before that fails
instead of returning the tail alone.

- Writes are buffered up to ``chunksize`` and sent as parts; memory per writer stays below two
  parts, whatever the size of the blob. A reopened writer reads the tail (< 5 MiB) back into its
  buffer at its first write: the bytes re-sent per request are bounded by the part minimum, not
  by the size of the upload.
- Part numbers are never reused: SeaweedFS lists a part uploaded twice twice, and a part sent by
  a writer that died before writing the tail object is not one of the valid parts. A reopened
  writer asks ``ListParts`` for numbers past the valid ones before its first part.
- A plain stored object of at least 5 MiB (written by another tool, or flushed) becomes the
  first parts of a new upload by ``UploadPartCopy``, once; a smaller one is read into the buffer.
- ``commit`` writes straight to ``dst`` when everything fits one PUT, and otherwise completes the
  upload at the path and copies it to ``dst`` (distribution's ``Move``): a multipart upload's key
  is fixed when it starts, before ``dst`` is known. Parts are completed in ascending order after
  checking that the valid parts hold exactly the recorded bytes, and the ETag of the completion
  is not used (Ceph RGW 16 returns an empty one).

A writer killed before writing the tail object leaves parts no tail names; ``cleanup`` aborts
their upload once it is older than its cutoff, and deleting the path aborts its upload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.oci.digest import Hasher
from dockyard.storage.drivers.s3_client import MIN_PART, error_code

if TYPE_CHECKING:
    from dockyard.storage.drivers.s3 import S3Driver

META = "dockyard-multipart"  # the tail object's user metadata key (x-amz-meta-dockyard-multipart)


class UploadStateError(OSError):
    """A pending upload's parts do not hold what its tail object says: refuse to complete it
    rather than publish other bytes than those written."""


@dataclass(frozen=True, slots=True)
class Pending:
    """What the tail object of a pending upload records: the upload, how many bytes its valid
    parts hold, and which part numbers are valid (ascending, inclusive ranges)."""

    upload: str
    offset: int
    ranges: tuple[tuple[int, int], ...]

    def encode(self) -> str:
        spans = ",".join(f"{lo}-{hi}" for lo, hi in self.ranges)
        return f"{self.upload} {self.offset} {spans}"

    @classmethod
    def parse(cls, metadata: Mapping[str, str] | None) -> Pending | None:
        """The pending state in an object's metadata, or None (a plain object). A value that
        does not parse is an error, not a plain object: its parts would be lost silently."""
        value = (metadata or {}).get(META)
        if value is None:
            return None
        try:
            upload, offset, spans = value.rsplit(" ", 2)
            ranges = tuple(
                (int(lo), int(hi)) for lo, hi in (span.split("-") for span in spans.split(",") if span)
            )
            return cls(upload, int(offset), ranges)
        except ValueError:
            raise UploadStateError(f"unreadable {META} metadata: {value!r}") from None

    @property
    def last(self) -> int:
        return self.ranges[-1][1] if self.ranges else 0

    def valid(self, number: int) -> bool:
        return any(lo <= number <= hi for lo, hi in self.ranges)


def _with(ranges: list[tuple[int, int]], number: int) -> None:
    """Add part ``number`` (above every range) to ``ranges``, merging with the last one."""
    if ranges and ranges[-1][1] == number - 1:
        ranges[-1] = (ranges[-1][0], number)
    else:
        ranges.append((number, number))


class S3Writer:
    def __init__(self, driver: S3Driver, path: str, stored: int | None, pending: Pending | None) -> None:
        self._driver = driver
        self._path = path
        self._key = driver.settings.key(path)
        self._stored = stored  # size of the object at the path when opened (None: no object)
        self._pending = pending  # the upload that object's metadata names, if any
        self._offset = pending.offset if pending else 0  # bytes in the upload's valid parts
        self._size = self._offset + (stored or 0)
        self._buffer = bytearray()
        # A small stored object (a tail, or a small plain object) is read in at the first write.
        self._base_in_buffer = not stored
        self._upload: str | None = pending.upload if pending else None
        self._ranges: list[tuple[int, int]] = list(pending.ranges) if pending else []
        self._next: int | None = None if pending else 1  # next part number (None: ask ListParts)
        self._parts: list[dict[str, Any]] = []  # the parts this writer sent
        self._dirty = False  # written to since opened
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        self._check_open()
        if not data:
            return
        await self._read_base()
        self._buffer += data
        if hasher is not None:
            hasher.update(data)
        self._size += len(data)
        self._dirty = True
        chunk = self._driver.settings.chunk_size
        while len(self._buffer) >= chunk:
            await self._send_part(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"the writer of {self._path} is closed")

    async def _read_base(self) -> None:
        """Read a tail, or a plain stored object under the part minimum, into the buffer."""
        if self._base_in_buffer or self._stored is None:
            return
        if self._pending is None and self._stored >= MIN_PART:
            return  # copied on the server as the first parts when the upload starts
        self._buffer[:0] = await self._driver.get_content(self._path)
        self._base_in_buffer = True

    async def _start_upload(self) -> str:
        """Create the multipart upload, its first parts a server-side copy of a stored object."""
        driver = self._driver
        answer = await driver.call("create_multipart_upload", Key=self._key, **driver.create_args)
        upload: str = answer["UploadId"]
        self._upload, self._next = upload, 1
        if self._stored and not self._base_in_buffer:
            self._parts = await driver.copy_parts(self._key, self._key, upload, self._stored, first=1)
            self._next = len(self._parts) + 1
            for part in self._parts:
                _with(self._ranges, int(part["PartNumber"]))
            self._offset += self._stored
            self._base_in_buffer = True  # the stored bytes are in the upload now
        return upload

    async def _next_number(self, upload: str) -> int:
        """The next unused part number: past the valid ones and any a dead writer sent after them."""
        if self._next is None:
            last = self._ranges[-1][1] if self._ranges else 0
            used = [int(p["PartNumber"]) for p in await self._list_parts(upload, after=last)]
            self._next = max([last, *used]) + 1
        return self._next

    async def _send_part(self, body: bytes) -> None:
        upload = self._upload or await self._start_upload()
        number = await self._next_number(upload)
        answer = await self._driver.call(
            "upload_part", Key=self._key, UploadId=upload, PartNumber=number, Body=body
        )
        self._driver.traffic.sent += len(body)
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._next = number + 1
        self._offset += len(body)
        _with(self._ranges, number)

    async def _list_parts(self, upload: str, after: int = 0) -> list[dict[str, Any]]:
        """The upload's parts numbered above ``after`` (ListParts, 1,000 a page), one per number."""
        found: dict[int, dict[str, Any]] = {}
        marker = after
        while True:
            after_marker = {"PartNumberMarker": marker} if marker else {}
            answer = await self._driver.call("list_parts", Key=self._key, UploadId=upload, **after_marker)
            for part in answer.get("Parts", ()):
                found[int(part["PartNumber"])] = part
            if not answer.get("IsTruncated"):
                return [found[n] for n in sorted(found)]
            marker = int(answer["NextPartNumberMarker"])

    async def _parts_to_complete(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The valid parts (ascending): those the tail object recorded, checked against ListParts
        (numbers and bytes), then those this writer sent; and every part the upload holds, when
        a writer that died sent parts no tail records (else [])."""
        assert self._upload is not None
        if self._pending is None or not self._pending.ranges:
            return sorted(self._parts, key=lambda p: int(p["PartNumber"])), []
        listed = await self._list_parts(self._upload)
        recorded = [p for p in listed if self._pending.valid(int(p["PartNumber"]))]
        expected = sum(hi - lo + 1 for lo, hi in self._pending.ranges)
        held = sum(int(p["Size"]) for p in recorded)
        if len(recorded) != expected or held != self._pending.offset:
            raise UploadStateError(
                f"the multipart upload of {self._path} holds {len(recorded)} of its {expected} "
                f"parts, {held} of its {self._pending.offset} bytes"
            )
        parts = [{"PartNumber": int(p["PartNumber"]), "ETag": p["ETag"]} for p in recorded]
        valid = sorted([*parts, *self._parts], key=lambda p: int(p["PartNumber"]))
        numbers = {int(p["PartNumber"]) for p in valid}
        stale = any(int(p["PartNumber"]) not in numbers for p in listed)
        return valid, listed if stale else []

    async def _complete_without_stale(
        self, valid: list[dict[str, Any]], listed: list[dict[str, Any]]
    ) -> None:
        """Complete an upload that holds parts of a writer that died, without their bytes. Ceph
        RGW 16 refuses a completion that leaves out a part it holds (``InvalidPart``), so
        complete with every part, then copy the valid parts' ranges over it on the server: one
        copy of the upload, only after such a death."""
        driver, upload = self._driver, self._upload
        assert upload is not None
        numbers = {int(p["PartNumber"]) for p in valid}
        ranges: list[tuple[int, int]] = []
        start = 0
        for part in listed:
            size = int(part["Size"])
            if int(part["PartNumber"]) in numbers:
                ranges.append((start, start + size))
            start += size
        every = [{"PartNumber": int(p["PartNumber"]), "ETag": p["ETag"]} for p in listed]
        await driver.call(
            "complete_multipart_upload", Key=self._key, UploadId=upload, MultipartUpload={"Parts": every}
        )
        answer = await driver.call("create_multipart_upload", Key=self._key, **driver.create_args)
        again: str = answer["UploadId"]
        source = {"Bucket": driver.settings.bucket, "Key": self._key}
        copied = []
        for number, (lo, hi) in enumerate(ranges, start=1):
            done = await driver.call(
                "upload_part_copy",
                Key=self._key,
                UploadId=again,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={lo}-{hi - 1}",
            )
            driver.traffic.copied += hi - lo
            copied.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
        await driver.call(
            "complete_multipart_upload", Key=self._key, UploadId=again, MultipartUpload={"Parts": copied}
        )

    async def _complete(self) -> None:
        """Send the buffer as the last part and complete the upload at the path."""
        assert self._upload is not None
        await self._read_base()
        if self._buffer:
            await self._send_part(bytes(self._buffer))
            self._buffer.clear()
        valid, listed = await self._parts_to_complete()  # listed after the last part went
        if listed:
            await self._complete_without_stale(valid, listed)
        else:
            await self._driver.call(
                "complete_multipart_upload",
                Key=self._key,
                UploadId=self._upload,
                MultipartUpload={"Parts": valid},
            )
        self._upload, self._pending, self._parts, self._ranges = None, None, [], []
        self._stored, self._offset, self._next = self._size, 0, 1
        self._base_in_buffer = False

    async def _abort_upload(self) -> None:
        if self._upload is None:
            return
        upload, self._upload = self._upload, None
        try:
            await self._driver.call("abort_multipart_upload", Key=self._key, UploadId=upload)
        except Exception as exc:
            if error_code(exc) not in ("NoSuchUpload", "404"):
                raise

    async def _keep(self) -> None:
        """Make what was written durable for the next writer, without completing an upload:
        a plain object if it is all in the buffer, else parts plus a tail object naming them."""
        if not self._dirty:
            return  # nothing written since the stored state, which is the content already
        if self._upload is None and self._base_in_buffer:
            await self._driver.put_object(self._key, bytes(self._buffer))
            return
        upload = self._upload or await self._start_upload()  # a large plain object, and more
        if len(self._buffer) >= MIN_PART:
            await self._send_part(bytes(self._buffer))
            self._buffer.clear()
        pending = Pending(upload, self._offset, tuple(self._ranges))
        await self._driver.put_object(self._key, bytes(self._buffer), metadata={META: pending.encode()})

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            await self._keep()
        finally:
            self._buffer = bytearray()

    async def flush(self) -> None:
        """Make everything written so far readable as the object at the path (completing a
        pending upload); the writer stays open."""
        self._check_open()
        if self._upload is None and self._dirty and not self._base_in_buffer:
            await self._start_upload()  # a large plain object with bytes after it
        if self._upload is not None:
            await self._complete()
        elif self._dirty:
            await self._keep()
            self._stored, self._base_in_buffer = self._size, False
            self._buffer.clear()
        self._dirty = False

    async def abort(self) -> None:
        self._done = True
        self._buffer = bytearray()
        await self._abort_upload()
        await self._driver.delete_many([self._path])

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        """The ordered steps of ``FileWriter.commit``: content to ``dst`` (or ``dst`` touched),
        then the files, then the removals; the writer is released whatever happens."""
        driver = self._driver
        try:
            await self.write(data)
            self._done = True
            if await driver._touch(dst):
                await self._abort_upload()
                published = False
            elif self._upload is None and (self._base_in_buffer or not self._stored):
                await driver.put_object(driver.settings.key(dst), bytes(self._buffer))
                published = True
            else:
                if self._upload is None and self._dirty:
                    await self._start_upload()  # a large plain object with bytes after it
                if self._upload is not None:
                    await self._complete()
                await driver.copy(self._path, dst)
                published = True
            if files:
                await asyncio.gather(*(driver.put_content(path, body) for path, body in files))
            # The source goes with the removals (usually its own session directory): until then
            # a crash leaves a session beside a stored blob, which a retry or a purge finishes.
            # Its upload was completed or aborted above: no uploads to look for below.
            await driver.delete_keys([self._path, *remove])
        finally:
            self._done = True
            self._buffer = bytearray()
        return published
