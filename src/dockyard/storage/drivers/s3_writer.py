"""The S3 driver's writer: an append-only file made of a stored object and a multipart upload.

What a writer has written is always one of two things in the store, never a third: the object
at its path (after ``close``), or, while the writer is open, that object plus the parts of one
multipart upload on the same key that begins with the object's bytes. So another process or
replica that opens the path later needs nothing but the store to continue (the upload session's
coordinator lock makes it the only writer), and ``close`` is the moment the bytes become
readable at the path (on an object store bytes in an unfinished multipart upload are not).

- Writes are buffered up to ``chunksize`` and sent as parts; memory per writer stays below two
  parts, whatever the size of the blob.
- The first part flush starts the multipart upload. An existing object of at least 5 MiB (S3's
  smallest part but the last) becomes its first parts by ``UploadPartCopy``, on the server; a
  smaller one is read into the buffer at the first write.
- ``close`` with no upload started writes the buffer as a single PUT; otherwise it sends the
  buffer as the last part and completes the upload. Parts are completed in ascending order, and
  the ETag of the completion is not used (Ceph RGW 16 returns an empty one).
- ``commit`` writes straight to ``dst`` when everything fits one PUT, and otherwise completes the
  upload at the path and copies it (distribution's ``Move``): a multipart upload's key is fixed
  when it starts, before ``dst`` is known.

A writer killed before ``close`` leaves its multipart upload behind; ``cleanup`` aborts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dockyard.oci.digest import Hasher
from dockyard.storage.drivers.s3_client import MIN_PART, error_code

if TYPE_CHECKING:
    from dockyard.storage.drivers.s3 import S3Driver


class S3Writer:
    def __init__(self, driver: S3Driver, path: str, stored: int | None) -> None:
        self._driver = driver
        self._path = path
        self._key = driver.settings.key(path)
        self._stored = stored  # size of the object at the path when opened (None: no object)
        self._size = stored or 0
        self._buffer = bytearray()
        self._base_in_buffer = not stored  # a small stored object is read in at the first write
        self._upload: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        self._check_open()
        if not data:
            return
        if not self._base_in_buffer and self._stored is not None and self._stored < MIN_PART:
            self._buffer += await self._driver.get_content(self._path)
            self._base_in_buffer = True
        self._buffer += data
        if hasher is not None:
            hasher.update(data)
        self._size += len(data)
        chunk = self._driver.settings.chunk_size
        while len(self._buffer) >= chunk:
            await self._send_part(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"the writer of {self._path} is closed")

    async def _start_upload(self) -> str:
        """Create the multipart upload, its first parts a server-side copy of a stored object."""
        driver = self._driver
        upload: str = (await driver.call("create_multipart_upload", Key=self._key, **driver.create_args))[
            "UploadId"
        ]
        self._upload = upload
        if self._stored and not self._base_in_buffer:
            self._parts = await driver.copy_parts(self._key, self._key, upload, self._stored, first=1)
        return upload

    async def _send_part(self, body: bytes) -> None:
        upload = self._upload or await self._start_upload()
        number = len(self._parts) + 1
        answer = await self._driver.call(
            "upload_part", Key=self._key, UploadId=upload, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def _complete(self) -> None:
        """Send the buffer as the last part and complete the upload at the path."""
        assert self._upload is not None
        if self._buffer:
            await self._send_part(bytes(self._buffer))
            self._buffer.clear()
        parts = sorted(self._parts, key=lambda p: int(p["PartNumber"]))
        await self._driver.call(
            "complete_multipart_upload",
            Key=self._key,
            UploadId=self._upload,
            MultipartUpload={"Parts": parts},
        )
        self._upload = None
        self._parts = []

    async def _abort_upload(self) -> None:
        if self._upload is None:
            return
        upload, self._upload = self._upload, None
        try:
            await self._driver.call("abort_multipart_upload", Key=self._key, UploadId=upload)
        except Exception as exc:
            if error_code(exc) not in ("NoSuchUpload", "404"):
                raise

    async def _persist(self) -> None:
        """Make everything written so far the object at the path."""
        if self._upload is None and not self._base_in_buffer and self._buffer:
            await self._start_upload()  # a stored object too large to read in, and more bytes
        if self._upload is not None:
            await self._complete()
        elif self._base_in_buffer and (self._buffer or self._stored is None):
            await self._driver.put_object(self._key, bytes(self._buffer))
        # else: nothing written since the stored object, which is the content already

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            await self._persist()
        finally:
            self._buffer = bytearray()

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
            elif self._upload is None and self._base_in_buffer:
                await driver.put_object(driver.settings.key(dst), bytes(self._buffer))
                published = True
            else:
                await self._persist()
                await driver.copy(self._path, dst)
                published = True
            if files:
                await asyncio.gather(*(driver.put_content(path, body) for path, body in files))
            # The source goes with the removals (usually its own session directory): until then
            # a crash leaves a session beside a stored blob, which a retry or a purge finishes.
            await driver.delete_many([self._path, *remove])
        finally:
            self._done = True
            self._buffer = bytearray()
        return published
