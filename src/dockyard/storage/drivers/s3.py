"""S3 driver (``storage.s3``), byte-compatible with distribution's S3 driver.

A driver path ``/docker/registry/v2/...`` is the object key ``<rootdirectory>/docker/registry/v2/...``
(distribution's ``s3Path``), so distribution 2.8.2 configured with ``storage.s3`` on the same
bucket and root serves what dockyard wrote, and the other way round. Each primitive is one or a
few S3 calls: get/put (``If-None-Match: *`` for a create-only put), ranged GET, HEAD,
ListObjectsV2, DeleteObjects, CopyObject (``UploadPartCopy`` above the copy threshold), a
multipart writer (``s3_writer``), presigned GET URLs, ListMultipartUploads + Abort for cleanup.
Nothing is held in memory but a writer's current part and a reader's next chunk.

S3 has no directories: a "directory" is a key prefix with at least one object below it, so an
empty directory does not exist, and a recursive delete lists the prefix and deletes in batches
of 1,000 (a reader may see a half-deleted tree meanwhile). A commit onto a stored blob
refreshes it with a CopyObject of the object onto itself, which gives it a new ``Last-Modified``
from the store's clock.

It survives Ceph RGW 16's deviations from AWS by not depending on them: the ETag of
CompleteMultipartUpload (empty there) is never used, nor ``If-Match`` (refused there when
quoted), and parts are always completed in ascending order.

botocore is synchronous; every call runs in the driver's worker threads (``offload.Offload``),
so the event loop never waits on the network. The calls every request makes (HEAD, a whole GET
and PUT of one object, a listing page, a batch delete) skip the client's request machinery
(``s3_small``): a small image's push and a manifest GET are made of them, and they cost under
half the CPU that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from dockyard.errors import PathNotFound, StorageUnavailable
from dockyard.storage.driver import FileInfo
from dockyard.storage.drivers.offload import Offload
from dockyard.storage.drivers.s3_client import (
    MAX_COPY,
    MIN_PART,
    S3Settings,
    error_code,
    is_missing,
    is_unavailable,
    make_client,
    settings_from_params,
)
from dockyard.storage.drivers.s3_small import Fallback, SmallObjects
from dockyard.storage.drivers.s3_writer import Pending, S3Writer, UploadStateError

T = TypeVar("T")
X = TypeVar("X")
_READ_CHUNK = 1 << 20
_DELETE_BATCH = 1000  # DeleteObjects' limit
_FANOUT = 32  # concurrent calls of one batch (stat_many, a tree walk, ...)
log = logging.getLogger(__name__)


def _inside(path: str, paths: set[str]) -> bool:
    """Whether a directory above ``path`` is one of ``paths`` (a look per level, not per path)."""
    at = path.rfind("/")
    while at > 0:
        if path[:at] in paths:
            return True
        at = path.rfind("/", 0, at)
    return False


@dataclass
class Traffic:
    """Bytes this driver made the store take in: sent in request bodies (PUTs and parts), and
    copied on the server (CopyObject, UploadPartCopy). What a test counts to show that a chunked
    upload's bytes go to the store once, plus the one copy to their content address."""

    sent: int = 0
    copied: int = 0


class S3Driver:
    name = "s3"

    def __init__(self, settings: S3Settings, client: Any, *, threads: int = 64, small: bool = True) -> None:
        """``small``: single small objects through ``s3_small`` (False: every call through the
        client, as on a store without credentials)."""
        self.settings = settings
        self.client = client
        self.create_args = settings.create_args
        self._offload = Offload(threads, "dockyard-s3")
        self._fanout = asyncio.Semaphore(_FANOUT)
        self.traffic = Traffic()
        self._small: SmallObjects | None = None
        if small and client._request_signer._credentials is not None:
            self._small = SmallObjects(client, settings.bucket, settings.create_args)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> S3Driver:
        """From the ``storage.s3`` section, distribution's keys (see ``s3_client``)."""
        threads = 64
        return cls(settings_from_params(params), make_client(params, threads), threads=threads)

    # -- plumbing ------------------------------------------------------------------------------

    async def call(self, operation: str, **kwargs: Any) -> Any:
        """One S3 operation on the bucket, in a worker thread."""
        method = getattr(self.client, operation)
        return await self._run(lambda: method(Bucket=self.settings.bucket, **kwargs))

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await self._offload.run(fn)
        except Exception as exc:
            if is_unavailable(exc):
                raise StorageUnavailable(f"{self.describe()} did not answer: {exc}") from exc
            raise

    async def _quick(self, fn: Callable[[SmallObjects], T], operation: str, **kwargs: Any) -> T | Any:
        """``fn`` on the small-object path, or the client's ``operation`` where that path is off
        or was answered with something only the client follows (then it stays off)."""
        small = self._small
        if small is not None:
            try:
                return await self._run(lambda: fn(small))
            except Fallback as exc:
                self._small = None
                log.warning("S3 calls of small objects go through botocore's client from now on: %s", exc)
        return await self.call(operation, **kwargs)

    def describe(self) -> str:
        """The store, as an error message names it (endpoint and bucket; no credentials)."""
        endpoint = self.client.meta.endpoint_url
        return f"the object store (S3 bucket {self.settings.bucket!r} at {endpoint})"

    async def _each(self, fn: Callable[[X], Awaitable[T]], items: Sequence[X]) -> list[T]:
        """``fn`` of every item, concurrently but at most ``_FANOUT`` calls at a time."""

        async def one(item: X) -> T:
            async with self._fanout:
                return await fn(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def put_object(
        self, key: str, data: bytes, *, metadata: dict[str, str] | None = None, if_absent: bool = False
    ) -> None:
        extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
        if if_absent:
            extra["IfNoneMatch"] = "*"
        await self._quick(
            lambda small: small.put(key, data, metadata, if_absent),
            "put_object",
            Key=key,
            Body=data,
            **self.create_args,
            **extra,
        )
        self.traffic.sent += len(data)

    def local_path(self, path: str) -> str | None:
        return None

    async def redirect_url(self, path: str, expires: float) -> str | None:
        params = {"Bucket": self.settings.bucket, "Key": self.settings.key(path)}
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=max(1, int(expires))
        )
        return url

    # -- small files ---------------------------------------------------------------------------

    async def get_content(self, path: str) -> bytes:
        key = self.settings.key(path)
        try:
            answer = await self._quick(lambda small: small.get(key), "get_object", Key=key)
        except Exception as exc:
            if is_missing(exc):
                raise PathNotFound(path) from None
            raise
        if isinstance(answer, bytes):
            return answer
        body = answer["Body"]
        try:
            data: bytes = await self._offload.run(body.read)
        finally:
            body.close()
        return data

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]:
        async def one(path: str) -> bytes | None:
            try:
                return await self.get_content(path)
            except PathNotFound:
                return None

        return await self._each(one, paths)

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        if not if_absent:
            await self.put_object(self.settings.key(path), data)
            return True
        try:
            await self.put_object(self.settings.key(path), data, if_absent=True)
        except Exception as exc:
            # 412: it exists; 409: another create-only write of it is in flight (AWS).
            if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise
        return True

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self._each(lambda item: self.put_content(*item), items)

    # -- streams -------------------------------------------------------------------------------

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        key = self.settings.key(path)
        if length == 0:
            await self.stat(path)  # only whether it exists
            return
        extra: dict[str, str] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        try:
            answer = await self.call("get_object", Key=key, **extra)
        except Exception as exc:
            if is_missing(exc):
                raise PathNotFound(path) from None
            if error_code(exc) == "InvalidRange":  # at or past the end of an existing object
                return
            raise
        body = answer["Body"]
        if Pending.parse(answer.get("Metadata")) is not None:
            body.close()
            raise UploadStateError(f"{path} is an unfinished multipart upload: flush its writer to read it")
        ahead: asyncio.Future[bytes] | None = self._offload.run(body.read, _READ_CHUNK)
        try:
            # Read ahead: the next chunk comes off the network while this one is being sent.
            while ahead is not None:
                chunk = await ahead
                if not chunk:
                    ahead = None
                    break
                ahead = self._offload.run(body.read, _READ_CHUNK)
                yield chunk
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await ahead
            body.close()

    async def writer(self, path: str, *, create: bool = True) -> S3Writer:
        try:
            answer = await self._head_object(path)
        except PathNotFound:
            if not create:
                raise
            return S3Writer(self, path, None, None)
        return S3Writer(self, path, int(answer["ContentLength"]), Pending.parse(answer.get("Metadata")))

    # -- metadata ------------------------------------------------------------------------------

    async def _head_object(self, path: str) -> dict[str, Any]:
        key = self.settings.key(path)
        try:
            answer: dict[str, Any] = await self._quick(lambda small: small.head(key), "head_object", Key=key)
        except Exception as exc:
            if is_missing(exc):
                raise PathNotFound(path) from None
            raise
        return answer

    async def _head(self, path: str) -> FileInfo:
        """The file at ``path``; a pending upload's size counts its parts and its tail."""
        answer = await self._head_object(path)
        etag = answer.get("ETag") or None
        mtime = answer["LastModified"].timestamp()
        size = int(answer["ContentLength"])
        pending = Pending.parse(answer.get("Metadata"))
        if pending is not None:
            size += pending.offset
        return FileInfo(path, size, mtime, False, (etag, size, mtime) if etag else None)

    async def _has_below(self, path: str) -> bool:
        prefix = self.settings.prefix(path)
        answer = await self._quick(
            lambda small: small.list(prefix, limit=1), "list_objects_v2", Prefix=prefix, MaxKeys=1
        )
        return bool(answer.get("KeyCount") or answer.get("Contents"))

    async def stat(self, path: str) -> FileInfo:
        try:
            return await self._head(path)
        except PathNotFound:
            if await self._has_below(path):
                return FileInfo(path, 0, 0.0, True)
            raise

    async def stat_many(self, paths: Sequence[str], *, files: bool = False) -> list[FileInfo | None]:
        look = self._head if files else self.stat  # files: no LIST for a directory at a missing key

        async def one(path: str) -> FileInfo | None:
            try:
                return await look(path)
            except PathNotFound:
                return None

        return await self._each(one, paths)

    async def _keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key below ``prefix`` (ListObjectsV2, 1,000 a page)."""
        token: str | None = None
        while True:
            more = {"ContinuationToken": token} if token else {}
            page = partial(SmallObjects.list, prefix=prefix, token=token)
            answer = await self._quick(page, "list_objects_v2", Prefix=prefix, **more)
            for item in answer.get("Contents", ()):
                yield item["Key"]
            if not answer.get("IsTruncated"):
                return
            token = answer["NextContinuationToken"]

    async def list_tree(
        self, path: str, *, skip_prefix: str = "_", depth: int | None = None
    ) -> dict[str, list[str]]:
        """One paginated flat listing of every key below ``path``, pruned here. A delimited
        listing could skip subtrees on the server, but SeaweedFS reports a "directory" whose
        objects are all deleted as a common prefix for a long while (measured: over 20 s), and
        only the keys themselves say what exists. So the cost is a request per 1,000 keys below
        ``path``: listings of large trees (the catalog, every tag) belong in an index."""
        base = self.settings.prefix(path)
        out: dict[str, set[str]] = {}
        async for key in self._keys(base):
            parts = key[len(base) :].split("/")
            if not all(parts):
                continue  # a "directory marker" some tools write ("a/"): not a file
            levels = len(parts) if depth is None else min(depth, len(parts))
            for level in range(levels):
                if level and skip_prefix and parts[level - 1].startswith(skip_prefix):
                    break
                out.setdefault("/".join(parts[:level]), set()).add(parts[level])
        return {d: sorted(names) for d, names in out.items()}

    # -- changes -------------------------------------------------------------------------------

    async def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            objects = {"Objects": [{"Key": k} for k in batch], "Quiet": True}
            delete = partial(SmallObjects.delete, keys=batch)
            answer = await self._quick(delete, "delete_objects", Delete=objects)
            if errors := answer.get("Errors"):
                first = errors[0]
                raise OSError(
                    f"S3 DeleteObjects failed for {len(errors)} keys, {first['Key']}: {first['Code']}"
                )

    async def delete_keys(self, paths: Sequence[str]) -> list[bool]:
        """Delete each path, a file or a whole prefix, leaving multipart uploads alone (for a
        writer that completed or aborted its own)."""

        async def found(path: str) -> list[str]:
            keys = [key async for key in self._keys(self.settings.prefix(path))]
            with contextlib.suppress(PathNotFound):
                await self._head_object(path)
                keys.append(self.settings.key(path))
            return keys

        # A path below another one in the list is found by that one's LIST (a session's data
        # file and its directory, removed together by every commit): no calls of its own.
        given = set(paths)
        outer = [p for p in dict.fromkeys(paths) if not _inside(p, given)]
        listed = dict(zip(outer, await self._each(found, outer), strict=True))
        every = sorted({k for keys in listed.values() for k in keys})
        await self._delete_keys(every)

        def was_there(path: str) -> bool:
            if path in listed:
                return bool(listed[path])
            key, prefix = self.settings.key(path), self.settings.prefix(path)
            return any(k == key or k.startswith(prefix) for k in every)

        return [was_there(path) for path in paths]

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        """Delete each path with the multipart uploads on it or below it (a pending upload's
        parts belong to its path): the objects first, so a crash in between leaves only an
        upload no tail names, which ``cleanup`` aborts."""
        deleted = await self.delete_keys(paths)
        if paths:
            await self._abort_uploads_below([self.settings.key(path) for path in paths])
        return deleted

    async def _uploads(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        """Every multipart upload on a key starting with ``prefix`` (ListMultipartUploads)."""
        markers: dict[str, str] = {}
        while True:
            answer = await self.call("list_multipart_uploads", Prefix=prefix, **markers)
            for upload in answer.get("Uploads", ()):
                yield upload
            if not answer.get("IsTruncated"):
                return
            markers = {"KeyMarker": answer["NextKeyMarker"], "UploadIdMarker": answer["NextUploadIdMarker"]}

    async def _abort(self, key: str, upload: str) -> bool:
        try:
            await self.call("abort_multipart_upload", Key=key, UploadId=upload)
        except Exception as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return False
            raise
        return True

    async def _abort_uploads_below(self, keys: Sequence[str]) -> None:
        """Abort the uploads on each key or below it: one listing of their common prefix."""
        first, last = min(keys), max(keys)  # a listing prefix: characters, not path components
        differ = (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b)
        common = first[: next(differ, len(first))]
        doomed = [
            (upload["Key"], upload["UploadId"])
            async for upload in self._uploads(common)
            if any(upload["Key"] == key or upload["Key"].startswith(key + "/") for key in keys)
        ]
        await self._each(lambda item: self._abort(*item), doomed)

    async def copy_parts(
        self, src_key: str, dst_key: str, upload: str, size: int, *, first: int
    ) -> list[dict[str, Any]]:
        """``UploadPartCopy`` of all of ``src_key`` into ``upload`` as parts ``first``, ``first+1``...
        of ``multipartcopychunksize``; a short remainder joins the part before it, so no part but
        the last is under S3's 5 MiB minimum."""
        chunk = self.settings.copy_chunk_size
        ranges: list[tuple[int, int]] = []
        start = 0
        while start < size:
            end = min(size, start + chunk)
            if size - end < MIN_PART and end - start + (size - end) <= MAX_COPY:
                end = size
            ranges.append((start, end))
            start = end
        source = {"Bucket": self.settings.bucket, "Key": src_key}
        limit = asyncio.Semaphore(self.settings.copy_concurrency)

        async def part(number: int, lo: int, hi: int) -> dict[str, Any]:
            async with limit:
                answer = await self.call(
                    "upload_part_copy",
                    Key=dst_key,
                    UploadId=upload,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={lo}-{hi - 1}",
                )
            self.traffic.copied += hi - lo
            return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

        return list(await asyncio.gather(*(part(first + i, lo, hi) for i, (lo, hi) in enumerate(ranges))))

    async def _copy_key(self, src_key: str, dst_key: str, size: int, *, refresh: bool = False) -> None:
        """Copy one object; in place with ``refresh`` (new metadata, hence a new Last-Modified)."""
        source = {"Bucket": self.settings.bucket, "Key": src_key}
        if size <= max(self.settings.copy_threshold, 0) or (refresh and size <= MAX_COPY):
            extra = {"MetadataDirective": "REPLACE"} if refresh else {}
            await self.call("copy_object", Key=dst_key, CopySource=source, **self.create_args, **extra)
            self.traffic.copied += size
            return
        answer = await self.call("create_multipart_upload", Key=dst_key, **self.create_args)
        upload = answer["UploadId"]
        try:
            parts = await self.copy_parts(src_key, dst_key, upload, size, first=1)
            await self.call(
                "complete_multipart_upload", Key=dst_key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self.call("abort_multipart_upload", Key=dst_key, UploadId=upload)
            raise

    async def copy(self, src: str, dst: str) -> None:
        answer = await self._head_object(src)
        if Pending.parse(answer.get("Metadata")) is not None:
            raise UploadStateError(f"{src} is an unfinished multipart upload: flush its writer to copy it")
        await self._copy_key(self.settings.key(src), self.settings.key(dst), int(answer["ContentLength"]))

    async def _touch(self, path: str) -> bool:
        """The writer's commit onto stored content: refresh its Last-Modified; False if absent."""
        try:
            info = await self._head(path)
        except PathNotFound:
            return False
        key = self.settings.key(path)
        try:
            await self._copy_key(key, key, info.size, refresh=True)
        except Exception as exc:
            if is_missing(exc):  # deleted in between
                return False
            raise
        return True

    async def cleanup(self, older_than: float) -> int:
        """Abort the multipart uploads below the root that writers left behind: started before
        ``older_than``, not named by the tail object at their key (a pending upload lives as
        long as its path: deleting the path aborts it), and with no part sent since
        ``older_than`` (a writer still sending the first parts of a long request)."""
        stale = [
            (upload["Key"], upload["UploadId"])
            async for upload in self._uploads(self.settings.prefix("/"))
            if upload["Initiated"].timestamp() < older_than
        ]

        async def abandoned(key: str, upload: str) -> bool:
            try:
                answer = await self.call("head_object", Key=key)
            except Exception as exc:
                if not is_missing(exc):
                    raise
            else:
                pending = Pending.parse(answer.get("Metadata"))
                if pending is not None and pending.upload == upload:
                    return False
            marker: dict[str, int] = {}
            while True:
                try:
                    parts = await self.call("list_parts", Key=key, UploadId=upload, **marker)
                except Exception as exc:
                    if error_code(exc) in ("NoSuchUpload", "404"):
                        return False
                    raise
                if any(p["LastModified"].timestamp() >= older_than for p in parts.get("Parts", ())):
                    return False
                if not parts.get("IsTruncated"):
                    return await self._abort(key, upload)
                marker = {"PartNumberMarker": int(parts["NextPartNumberMarker"])}

        return sum(await self._each(lambda item: abandoned(*item), stale))
