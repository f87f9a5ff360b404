"""Hypothesis strategies for hostile input: JSON documents shaped like manifests, indexes and
image configs but deep, with huge numbers, wrong types, duplicate keys or bytes that are not
UTF-8; and hostile path segments and query values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.api.helpers import OCI_INDEX, OCI_MANIFEST

# Any JSON value, small.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    """Arrays or objects nested from a bit past the limit to far past it."""
    depth = draw(st.integers(min_value=60, max_value=20_000))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """``doc`` with the value at ``path`` replaced (or added)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _mutate(doc.get(head), rest, value)}
    if isinstance(doc, list) and isinstance(head, int) and doc:
        out = list(doc)
        out[head % len(out)] = _mutate(out[head % len(out)], rest, value)
        return out
    return {head: _mutate(None, rest, value)} if isinstance(head, str) else [_mutate(None, rest, value)]


def _paths(doc: Any, prefix: list[Any]) -> list[list[Any]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, [*prefix, key])
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, [*prefix, i])
    return out


@st.composite
def hostile_bytes(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    """``template`` made hostile: wrong types at any field, then maybe a duplicate key, a huge
    number, a byte that is not UTF-8 or deep nesting spliced in, or replaced by something deep."""
    if draw(st.integers(0, 9)) == 0:
        return draw(deep())
    doc: Any = template
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc, [])))
        doc = _mutate(doc, path, draw(JSON))
    body = json.dumps(doc).encode()
    if not body.startswith(b"{") or len(body) < 2:
        return body
    key = json.dumps(draw(st.sampled_from([*(doc if isinstance(doc, dict) else {}), "x"]))).encode()
    splice = draw(
        st.sampled_from(["none", "duplicate", "huge-int", "not-utf8", "deep", "utf16", "nan", "bom"])
    )
    if splice == "duplicate":
        body = body[:-1] + b", " + key + b": " + json.dumps(draw(JSON)).encode() + b"}"
    elif splice == "huge-int":
        body = body[:-1] + b', "n": ' + b"7" * draw(st.integers(20, 6000)) + b"}"
    elif splice == "not-utf8":
        body = (
            body[:-1]
            + b', "s": "'
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]))
            + b'"}'
        )
    elif splice == "deep":
        depth = draw(st.integers(60, 5000))
        body = body[:-1] + b', "d": ' + b"[" * depth + b"]" * depth + b"}"
    elif splice == "utf16":
        body = body.decode().encode("utf-16")
    elif splice == "nan":
        body = body[:-1] + b', "f": NaN}'
    elif splice == "bom":
        body = b"\xef\xbb\xbf" + body
    return body


def manifest_template(config: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
        "annotations": {"a": "b"},
    }


CONFIG_TEMPLATE: dict[str, Any] = {
    "os": "linux",
    "architecture": "amd64",
    "variant": "v8",
    "os.version": "1",
    "os.features": ["f"],
    "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["A=1"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"], "Labels": {"k": "v"}},
    "history": [{"created_by": "RUN x", "empty_layer": True, "comment": "c", "created": "2024"}],
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
}


def index_template(child: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child], "annotations": {"a": "b"}}


# -- hostile URL parts ------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "a/b", "library/a", "p/img", "x/y/z", "a" * 255, "a" * 256])
HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(list("\x00\r\n\t %/\\.:\"'<>?#")),
    max_size=40,
) | st.sampled_from(
    ["..", ".", "../../etc", "%2e%2e", "a%00b", "sha256:zzz", "md5:abc", "-1", "9" * 400, "a" * 5000, ""]
)
SEGMENT = NAMES | HOSTILE_TEXT
QUERY_KEYS = [
    "n",
    "last",
    "page",
    "page_size",
    "ordering",
    "name",
    "digest",
    "mount",
    "from",
    "force",
    "q",
    "sort",
    "size",
    "ref",
    "next",
    "deleted",
    "artifactType",
    "service",
    "scope",
    "account",
    "since",
    "limit",
    "repository",
    "actor",
    "action",
    "x",
]
QUERY = st.dictionaries(
    st.sampled_from(QUERY_KEYS), HOSTILE_TEXT | st.integers(-(10**30), 10**30).map(str), max_size=4
)
