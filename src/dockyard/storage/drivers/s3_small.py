"""The S3 calls of every request (HEAD, GET and PUT of one small object, a page of a listing, a
batch delete), without botocore's request machinery.

botocore spends ~1.1 ms of CPU on every call here (measured on SeaweedFS, one thread: head 1.05,
put 1.17, list 1.46 ms): the operation model serialises the parameters, a dozen hooks run, the
endpoint ruleset is evaluated, the response is parsed through the model. A small image's push is
about 60 such calls and a manifest GET two, so on two cores botocore was the limit of both figures
(``bench.s3_registries``: 106-126 ms of dockyard CPU per small image, 61-75 of it SeaweedFS's).

These three calls are simple enough to make directly, with botocore's own parts: its SigV4 signer
for S3 (:class:`botocore.auth.S3SigV4Auth`, which signs the payload's SHA-256 on plain HTTP and
whenever no checksum header is sent), the client's credentials (refreshed as the client's are), and
the client's HTTP session (its connection pool, TLS verification, CA bundle, proxies and
timeouts). The same calls then cost 0.43-0.52 ms. Everything else (copies, the multipart API,
streamed reads, presigning) stays on the client.

Answers keep botocore's shapes: a ``head`` returns the keys the driver reads from
``head_object`` (``ContentLength``, ``ETag``, ``LastModified``, ``Metadata``), and an error answer
raises botocore's ``ClientError`` with the S3 error code (the status for a HEAD, which has no
body), so ``error_code``, ``is_missing`` and ``is_unavailable`` read both paths alike. Connection
failures are botocore's own exceptions, raised by its HTTP session. Retries follow botocore's
"standard" mode: three attempts, on connection errors, 500/502/503/504 and throttling codes,
after ``random() * 2 ** (attempt - 1)`` seconds.

The object's URL is the one botocore itself resolves for the bucket (path-style with
``regionendpoint``, virtual-hosted on AWS, accelerate, dual-stack), read once from a presigned URL.
An answer the client would have handled by itself (a redirect to the bucket's region, a region
mismatch) raises :class:`Fallback`; the driver then makes that call through the client and stops
using this path.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

ATTEMPTS = 3  # botocore's "standard" retry mode, as the client is configured (s3_client)
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_RETRY_CODES = frozenset(
    {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed"}
)
# Answers botocore's client handles itself (its S3 region redirector): not this path's to judge.
_FALLBACK_STATUS = frozenset({301, 302, 307})
_FALLBACK_CODES = frozenset({"AuthorizationHeaderMalformed", "PermanentRedirect", "TemporaryRedirect"})
# The Create arguments (storage.s3's encrypt, keyid, storageclass, objectacl) as PUT headers.
_CREATE_HEADERS = {
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "StorageClass": "x-amz-storage-class",
    "ACL": "x-amz-acl",
}
_META = "x-amz-meta-"
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_PROBE = "dockyard-probe"
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


class Fallback(Exception):
    """An answer only botocore's client knows how to follow: make the call through it."""


def bucket_url(client: Any, bucket: str) -> str:
    """The URL prefix of the bucket's keys as the client resolves it (ends in "/")."""
    url = client.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": _PROBE}, ExpiresIn=60)
    parts = urlsplit(url)
    if not parts.path.endswith("/" + _PROBE):
        raise ValueError(f"unexpected presigned URL shape for bucket {bucket!r}: {parts.path}")
    return f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE)]}"


def _http_date(value: str | None) -> datetime:
    if not value:
        raise ValueError("the store's answer has no Last-Modified")
    return parsedate_to_datetime(value)


class SmallObjects:
    """Signed HEAD, GET and PUT of whole objects, listing pages and batch deletes through the
    client's HTTP session (blocking: the driver calls these in its worker threads, as it calls
    the client)."""

    def __init__(self, client: Any, bucket: str, create_args: dict[str, str]) -> None:
        self._base = bucket_url(client, bucket)
        self._http = client._endpoint.http_session  # botocore's URLLib3Session: pool, TLS, proxies
        self._signer = S3SigV4Auth(client._request_signer._credentials, "s3", client.meta.region_name)
        self._create = {_CREATE_HEADERS[k]: v for k, v in create_args.items() if k in _CREATE_HEADERS}
        self._agent = str(client.meta.config.user_agent or "dockyard")

    def _send(self, operation: str, method: str, target: str, body: bytes, headers: dict[str, str]) -> Any:
        """``target``: the key, quoted, or a query on the bucket ("?delete")."""
        url = self._base + target
        attempt = 1
        while True:
            request = AWSRequest(
                method=method, url=url, data=body, headers={"User-Agent": self._agent, **headers}
            )
            self._signer.add_auth(request)
            try:
                response = self._http.send(request.prepare())
            except (BotoConnectionError, HTTPClientError):
                if attempt >= ATTEMPTS:
                    raise
            else:
                status = response.status_code
                content = response.content  # read whole, so the connection goes back to the pool
                if status < 300:
                    return response
                found = _CODE.search(content)
                code = found.group(1).decode(errors="replace") if found else str(status)
                if status in _FALLBACK_STATUS or code in _FALLBACK_CODES:
                    raise Fallback(f"{operation}: {status} {code}")
                if attempt >= ATTEMPTS or not (status in _RETRY_STATUS or code in _RETRY_CODES):
                    said = _MESSAGE.search(content)
                    message = said.group(1).decode(errors="replace") if said else ""
                    error: Any = {"Error": {"Code": code, "Message": message}}
                    error["ResponseMetadata"] = {"HTTPStatusCode": status}
                    raise ClientError(error, operation)
            time.sleep(random.random() * 2 ** (attempt - 1))  # noqa: S311 - jitter
            attempt += 1

    def head(self, key: str) -> dict[str, Any]:
        """``head_object``'s answer, the keys the driver reads."""
        headers = self._send("HeadObject", "HEAD", _quoted(key), b"", {}).headers
        return {
            "ContentLength": int(headers.get("Content-Length", 0)),
            "ETag": headers.get("ETag"),
            "LastModified": _http_date(headers.get("Last-Modified")),
            "Metadata": {
                k[len(_META) :].lower(): v for k, v in headers.items() if k.lower().startswith(_META)
            },
        }

    def get(self, key: str) -> bytes:
        content: bytes = self._send("GetObject", "GET", _quoted(key), b"", {}).content
        return content

    def put(
        self, key: str, data: bytes, metadata: dict[str, str] | None = None, if_absent: bool = False
    ) -> None:
        headers = dict(self._create)
        for name, value in (metadata or {}).items():
            headers[_META + name] = value
        if if_absent:
            headers["If-None-Match"] = "*"
        self._send("PutObject", "PUT", _quoted(key), data, headers)

    def list(self, prefix: str, token: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """One page of ``list_objects_v2``: the keys the driver reads (``Contents`` with each
        ``Key``, ``IsTruncated``, ``NextContinuationToken``)."""
        query = {"list-type": "2", "prefix": prefix}
        if token is not None:
            query["continuation-token"] = token
        if limit is not None:
            query["max-keys"] = str(limit)
        target = "?" + "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        root = _children(self._send("ListObjectsV2", "GET", target, b"", {}).content)
        keys = [_children(item).get("Key", "") for item in root["Contents"]]
        answer: dict[str, Any] = {"Contents": [{"Key": key} for key in keys], "KeyCount": len(keys)}
        answer["IsTruncated"] = root.get("IsTruncated") == "true"
        if answer["IsTruncated"]:
            answer["NextContinuationToken"] = root["NextContinuationToken"]
        return answer

    def delete(self, keys: Sequence[str]) -> dict[str, Any]:
        """``delete_objects`` in quiet mode (at most 1,000 keys): its ``Errors``, if any."""
        objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
        body = f'<Delete xmlns="{_XMLNS}"><Quiet>true</Quiet>{objects}</Delete>'.encode()
        headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}  # noqa: S324 - S3 asks
        root = _children(self._send("DeleteObjects", "POST", "?delete", body, headers).content)
        errors = [_children(error) for error in root["Error"]]  # each with its Key and Code
        return {"Errors": errors} if errors else {}


def _quoted(key: str) -> str:
    return quote(key, safe="/~")


class _Children(dict[str, Any]):
    """An XML element's children by local name (with or without S3's namespace): the text of
    each leaf, and under the repeated names the elements themselves (see :func:`_children`)."""

    def __missing__(self, name: str) -> Any:
        return [] if name in _REPEATED else ""


_REPEATED = frozenset({"Contents", "Error"})


def _children(xml: bytes | ElementTree.Element) -> _Children:
    # The configured store's answer; expat refuses entity expansion attacks, and ElementTree
    # resolves no external entities.
    element = ElementTree.fromstring(xml) if isinstance(xml, bytes) else xml  # noqa: S314
    out = _Children()
    for child in element:
        name = child.tag.rpartition("}")[2]
        if name in _REPEATED:
            out.setdefault(name, []).append(child)
        else:
            out[name] = child.text or ""
    return out
