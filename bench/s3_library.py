"""Which S3 library the ``storage.s3`` driver uses, by measurement (not part of ``make test``).

Runs obstore, aiobotocore and boto3 (called from threads, as an async driver would) against one
SeaweedFS started on loopback, each library in its own child process (so memory is its own), in
interleaved rounds: a 512 MiB multipart put (10 MiB parts, distribution's default chunk size,
sent one after another as the driver's writer sends them) and get, then 4 KiB put/get/head
latencies. Reports medians over rounds, the child's resident memory after importing the library
and making a client and its peak, and the installed size of the library with the dependencies
dockyard does not already have. Results: docs/s3-library.md.

    .venv/bin/python -m bench.s3_library [--rounds 3] [--small 200] [--mib 512]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("obstore", "aiobotocore", "boto3")
PART = 10 << 20
# What each library brings that dockyard does not already depend on.
CLOSURE = {
    "obstore": ["obstore"],
    "aiobotocore": [
        "aiobotocore", "botocore", "aiohttp", "multidict", "yarl", "frozenlist", "aiosignal",
        "propcache", "aiohappyeyeballs", "wrapt", "jmespath", "python-dateutil", "six", "urllib3",
    ],
    "boto3": ["boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"],
}  # fmt: skip


def installed_size(dists: list[str]) -> int:
    total = 0
    for name in dists:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            path = Path(str(f.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    """The operations measured, one subclass per library."""

    async def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> int:
        raise NotImplementedError

    async def head(self, key: str) -> int:
        raise NotImplementedError

    async def multipart_put(self, key: str, parts: int, part: bytes) -> None:
        raise NotImplementedError

    async def stream_get(self, key: str) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Obstore(Client):
    def __init__(self, url: str, key: str, secret: str, bucket: str) -> None:
        import obstore
        from obstore.store import S3Store

        self.ob = obstore
        self.store = S3Store(
            bucket,
            endpoint=url,
            access_key_id=key,
            secret_access_key=secret,
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

    async def put(self, key: str, data: bytes) -> None:
        await self.ob.put_async(self.store, key, data)

    async def get(self, key: str) -> int:
        result = await self.ob.get_async(self.store, key)
        return len(await result.bytes_async())

    async def head(self, key: str) -> int:
        return int((await self.ob.head_async(self.store, key))["size"])

    async def multipart_put(self, key: str, parts: int, part: bytes) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(parts):
                yield part

        # obstore has no part-level calls; its streaming put uploads parts of chunk_size.
        await self.ob.put_async(self.store, key, chunks(), chunk_size=PART, max_concurrency=1)

    async def stream_get(self, key: str) -> int:
        result = await self.ob.get_async(self.store, key)
        n = 0
        async for chunk in result.stream(min_chunk_size=1 << 20):
            n += len(chunk)
        return n


def _botocore_config() -> Any:
    from botocore.config import Config

    return Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=32,
    )


class AioBotocore(Client):
    def __init__(self, url: str, key: str, secret: str, bucket: str) -> None:
        self.args = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
        }
        self.bucket = bucket
        self.client: Any = None

    async def open(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,
        )
        self.cm = get_session().create_client("s3", config=config, **self.args)
        self.client = await self.cm.__aenter__()

    async def close(self) -> None:
        await self.cm.__aexit__(None, None, None)

    async def put(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> int:
        r = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with r["Body"] as body:
            return len(await body.read())

    async def head(self, key: str) -> int:
        return int((await self.client.head_object(Bucket=self.bucket, Key=key))["ContentLength"])

    async def multipart_put(self, key: str, parts: int, part: bytes) -> None:
        c, b = self.client, self.bucket
        upload = (await c.create_multipart_upload(Bucket=b, Key=key))["UploadId"]
        done = []
        for n in range(1, parts + 1):
            r = await c.upload_part(Bucket=b, Key=key, UploadId=upload, PartNumber=n, Body=part)
            done.append({"PartNumber": n, "ETag": r["ETag"]})
        await c.complete_multipart_upload(Bucket=b, Key=key, UploadId=upload, MultipartUpload={"Parts": done})

    async def stream_get(self, key: str) -> int:
        r = await self.client.get_object(Bucket=self.bucket, Key=key)
        n = 0
        async with r["Body"] as body:
            async for chunk in body.iter_chunks(1 << 20):
                n += len(chunk)
        return n


class Boto3Threads(Client):
    def __init__(self, url: str, key: str, secret: str, bucket: str) -> None:
        import boto3

        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=_botocore_config(),
        )
        self.bucket = bucket

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> int:
        def get() -> int:
            return len(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

        return await asyncio.to_thread(get)

    async def head(self, key: str) -> int:
        r = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        return int(r["ContentLength"])

    async def multipart_put(self, key: str, parts: int, part: bytes) -> None:
        c, b = self.client, self.bucket
        upload = (await asyncio.to_thread(c.create_multipart_upload, Bucket=b, Key=key))["UploadId"]
        done = []
        for n in range(1, parts + 1):
            r = await asyncio.to_thread(
                c.upload_part, Bucket=b, Key=key, UploadId=upload, PartNumber=n, Body=part
            )
            done.append({"PartNumber": n, "ETag": r["ETag"]})
        await asyncio.to_thread(
            c.complete_multipart_upload, Bucket=b, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )

    async def stream_get(self, key: str) -> int:
        body = (await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key))["Body"]
        n = 0
        while chunk := await asyncio.to_thread(body.read, 1 << 20):
            n += len(chunk)
        return n


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t = time.perf_counter()
    await fn()
    return time.perf_counter() - t


async def child(
    lib: str, url: str, key: str, secret: str, bucket: str, small: int, mib: int
) -> dict[str, Any]:
    """One library's round, in this (child) process."""
    rss_start = rss_kib()
    cls = {"obstore": Obstore, "aiobotocore": AioBotocore, "boto3": Boto3Threads}[lib]
    client = cls(url, key, secret, bucket)
    if isinstance(client, AioBotocore):
        await client.open()
    rss_ready = rss_kib()
    part = os.urandom(PART)
    big = f"{lib}/big-{os.getpid()}"
    parts = mib * (1 << 20) // PART
    put_s = await _timed(lambda: client.multipart_put(big, parts, part))
    get_s = await _timed(lambda: client.stream_get(big))
    data = os.urandom(4096)
    lat: dict[str, list[float]] = {"put": [], "get": [], "head": []}
    for i in range(small):
        k = f"{lib}/small-{os.getpid()}-{i}"
        lat["put"].append(await _timed(lambda k=k: client.put(k, data)))  # type: ignore[misc]
        lat["get"].append(await _timed(lambda k=k: client.get(k)))  # type: ignore[misc]
        lat["head"].append(await _timed(lambda k=k: client.head(k)))  # type: ignore[misc]
    await client.close()
    size = parts * PART / (1 << 20)

    def ms(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"p50": statistics.median(xs) * 1e3, "p99": xs[int(len(xs) * 0.99) - 1] * 1e3}

    return {
        "put_mib_s": size / put_s,
        "get_mib_s": size / get_s,
        **{op: ms(v) for op, v in lat.items()},
        "rss_import_mib": (rss_ready - rss_start) / 1024,
        "rss_ready_mib": rss_ready / 1024,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--child", nargs=5, metavar=("LIB", "URL", "KEY", "SECRET", "BUCKET"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child, args.small, args.mib))))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.servers.s3 import SeaweedFS

    server = SeaweedFS(Path(tempfile.mkdtemp(prefix="dockyard-s3bench-")))
    engine = server.start()
    results: dict[str, list[dict[str, Any]]] = {lib: [] for lib in LIBRARIES}
    try:
        print(f"SeaweedFS 4.48 ready in {engine.started_in:.1f} s at {engine.url}", file=sys.stderr)
        for r in range(args.rounds):
            for lib in LIBRARIES:
                bucket = engine.bucket(lib)
                out = subprocess.run(
                    [sys.executable, "-m", "bench.s3_library", "--small", str(args.small), "--mib",
                     str(args.mib), "--child", lib, engine.url, engine.access_key, engine.secret_key, bucket],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if out.returncode != 0:
                    print(f"round {r + 1} {lib} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                    continue
                results[lib].append(json.loads(out.stdout))
                print(f"round {r + 1} {lib}: {out.stdout.strip()}", file=sys.stderr)
    finally:
        server.stop()
    print(
        "| library | put 512 MiB MiB/s | get 512 MiB MiB/s | put 4 KiB p50/p99 ms | get 4 KiB p50/p99 ms"
        " | head p50/p99 ms | RSS after import+client MiB | peak RSS MiB | installed MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for lib, runs in results.items():

        def med(path: str, runs: list[dict[str, Any]] = runs) -> float:
            keys = path.split(".")
            values = []
            for run in runs:
                v: Any = run
                for k in keys:
                    v = v[k]
                values.append(float(v))
            return statistics.median(values)

        size = installed_size(CLOSURE[lib]) / (1 << 20)
        print(
            f"| {lib} | {med('put_mib_s'):.0f} | {med('get_mib_s'):.0f} "
            f"| {med('put.p50'):.2f} / {med('put.p99'):.2f} | {med('get.p50'):.2f} / {med('get.p99'):.2f} "
            f"| {med('head.p50'):.2f} / {med('head.p99'):.2f} | {med('rss_ready_mib'):.0f} "
            f"| {med('rss_peak_mib'):.0f} | {size:.1f} |"
        )


if __name__ == "__main__":
    main()
