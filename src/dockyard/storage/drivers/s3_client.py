"""The ``storage.s3`` section read into settings and a botocore client (the S3 driver's library).

The library is botocore's synchronous client called from the driver's own worker threads
(``offload.Offload``): among the libraries that expose the whole multipart API (Create,
UploadPart, ListParts, Complete, Abort, ListMultipartUploads, UploadPartCopy) plus conditional
PUT and presigning, it was measured fastest and smallest (docs/s3-library.md). Keys are
distribution's, with its defaults: a part is ``chunksize`` bytes (10 MiB, at least 5 MiB, the
S3 minimum for every part but the last), copies above ``multipartcopythresholdsize`` go as
parts of ``multipartcopychunksize``, ``multipartcopymaxconcurrency`` at a time.

Credentials come from ``accesskey``/``secretkey`` when given, else from the standard AWS chain
(``AWS_ACCESS_KEY_ID``..., ``~/.aws/credentials``, instance roles), as the AWS SDK finds them
for distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.session  # at import: a missing ``dockyard[s3]`` fails where the install hint is
from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

MIN_PART = 5 << 20  # S3's smallest part but the last
MAX_COPY = 5 << 30  # S3's largest single CopyObject / UploadPartCopy range
DEFAULT_CHUNK = 10 << 20


class S3ConfigError(ValueError):
    """A ``storage.s3`` setting that cannot work; the message names the key."""


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    root: str  # rootdirectory without its trailing "/" ("" for the bucket's top)
    chunk_size: int = DEFAULT_CHUNK
    copy_chunk_size: int = 32 << 20
    copy_concurrency: int = 100
    copy_threshold: int = 32 << 20
    # Extra arguments of every call that creates an object (encryption, storage class, ACL).
    create_args: dict[str, str] = field(default_factory=dict)

    def key(self, path: str) -> str:
        """The object key of a driver path: distribution's ``s3Path``."""
        return (self.root + path).lstrip("/")

    def prefix(self, path: str) -> str:
        """The key prefix of everything below ``path`` ("" for the root of an unrooted bucket)."""
        key = self.key(path).rstrip("/")
        return f"{key}/" if key else ""


def _int(params: dict[str, Any], name: str, default: int, minimum: int = 1) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise S3ConfigError(f"storage.s3.{name}: {value!r} is not a number of bytes") from None
    if number < minimum:
        raise S3ConfigError(f"storage.s3.{name}: {number} is below the minimum {minimum}")
    return number


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def settings_from_params(params: dict[str, Any]) -> S3Settings:
    bucket = params.get("bucket")
    if not bucket:
        raise S3ConfigError("storage.s3.bucket is required")
    create: dict[str, str] = {}
    if _bool(params, "encrypt", False):
        if params.get("keyid"):
            create.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=str(params["keyid"]))
        else:
            create["ServerSideEncryption"] = "AES256"
    storage_class = params.get("storageclass")
    if storage_class and str(storage_class).upper() not in ("NONE", "STANDARD"):
        create["StorageClass"] = str(storage_class)
    if params.get("objectacl") and params["objectacl"] != "private":
        create["ACL"] = str(params["objectacl"])
    copy_chunk = _int(params, "multipartcopychunksize", 32 << 20, MIN_PART)
    if copy_chunk > MAX_COPY:
        raise S3ConfigError(f"storage.s3.multipartcopychunksize: at most {MAX_COPY} (5 GiB)")
    return S3Settings(
        bucket=str(bucket),
        root=str(params.get("rootdirectory") or "").rstrip("/"),
        chunk_size=_int(params, "chunksize", DEFAULT_CHUNK, MIN_PART),
        copy_chunk_size=copy_chunk,
        copy_concurrency=_int(params, "multipartcopymaxconcurrency", 100),
        copy_threshold=min(_int(params, "multipartcopythresholdsize", 32 << 20, 0), MAX_COPY),
        create_args=create,
    )


def endpoint_url(params: dict[str, Any]) -> str | None:
    endpoint = params.get("regionendpoint")
    if not endpoint:
        return None
    endpoint = str(endpoint).rstrip("/")
    if "://" not in endpoint:
        endpoint = ("https://" if _bool(params, "secure", True) else "http://") + endpoint
    return endpoint


def make_client(params: dict[str, Any], max_connections: int) -> Any:
    """A botocore S3 client for the section ``params`` (thread-safe; one per driver)."""
    if not _bool(params, "v4auth", True):
        raise S3ConfigError("storage.s3.v4auth: dockyard signs requests with AWS Signature V4 only")
    endpoint = endpoint_url(params)
    path_style = _bool(params, "forcepathstyle", endpoint is not None)  # 2.8.2: path style with an endpoint
    s3: dict[str, Any] = {"addressing_style": "path" if path_style else "auto"}
    if _bool(params, "accelerate", False):
        s3["use_accelerate_endpoint"] = True
    if _bool(params, "usedualstack", False):
        s3["use_dualstack_endpoint"] = True
    config = Config(
        s3=s3,
        signature_version="s3v4",
        # Checksums only where S3 requires them: S3-compatible stores (Ceph RGW 16) predate the
        # CRC32 headers botocore adds by default, and every part would pay for a CRC in Python.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=max_connections,
        retries={"max_attempts": 3, "mode": "standard"},
        user_agent_extra=str(params.get("useragent") or "") or None,
        tcp_keepalive=True,
    )
    session = botocore.session.get_session()
    credentials: dict[str, str] = {}
    if params.get("accesskey") and params.get("secretkey"):
        credentials = {
            "aws_access_key_id": str(params["accesskey"]),
            "aws_secret_access_key": str(params["secretkey"]),
        }
        if params.get("sessiontoken"):
            credentials["aws_session_token"] = str(params["sessiontoken"])
    secure = _bool(params, "secure", True)
    return session.create_client(
        "s3",
        region_name=str(params.get("region") or "us-east-1"),
        endpoint_url=endpoint,
        use_ssl=secure,
        verify=False if _bool(params, "skipverify", False) else None,
        config=config,
        **credentials,
    )


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status or "")


# What an S3 store answers when it is overloaded or broken, not when the request is wrong.
_UNAVAILABLE_CODES = frozenset(
    {"ServiceUnavailable", "SlowDown", "InternalError", "500", "502", "503", "504"}
)


def is_unavailable(exc: BaseException) -> bool:
    """The store did not answer (refused, reset, timed out) or said it cannot now: a 503 for the
    client, not the registry's own failure. (botocore's standard retries have run already.)"""
    return isinstance(exc, BotoConnectionError | HTTPClientError) or error_code(exc) in _UNAVAILABLE_CODES


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in ("NoSuchKey", "404", "NotFound")
