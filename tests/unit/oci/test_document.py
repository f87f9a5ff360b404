"""The tolerant reader and the strict loader of JSON documents (dockyard.oci.document)."""

from __future__ import annotations

import json

import pytest

from dockyard.oci.digest import Digest
from dockyard.oci.document import (
    MAX_DEPTH,
    UNKNOWN,
    DocumentError,
    load,
    load_strict,
    nesting_depth,
    read_config,
    read_manifest,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"1", 0),
        (b"{}", 1),
        (b"[[[]]]", 3),
        (b'{"a": "[[[[{{{{", "b": [{}]}', 3),  # brackets inside strings do not count
        (b'{"a": "\\"[[[", "b": []}', 2),  # nor after an escaped quote
        (b"[" * 10_000, 10_000),
        (b"[1]]]]]]" + b"[" * 5, 1),  # json stops at the first extra "]": the rest is never parsed
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(body: bytes, depth: int) -> None:
    assert nesting_depth(body) == depth


def test_nesting_depth_stops_early_past_the_limit() -> None:
    assert MAX_DEPTH < nesting_depth(b"[" * 4_000_000, MAX_DEPTH) < 4_000_000


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 300 + b"1" + b"}" * 300,
        b"\xff\xfe{",
        b"[1, 2]",
        b"",
        b"not json",
    ],
)
def test_load_returns_none_for_what_is_no_readable_object(body: bytes) -> None:
    assert load(body) is None


def test_load_reads_huge_integers_as_unknown() -> None:
    assert load(b'{"size": ' + b"9" * 5000 + b', "n": -12}') == {"size": UNKNOWN, "n": -12}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "more than 64 levels deep"),
        (b'{"a": ' + b"1" * 5000 + b"}", "more than 64 digits"),
        (b'{"layers": [], "layers": [1]}', "the key 'layers' appears twice"),
        (b'{"a": {"b": 1, "b": 2}}', "the key 'b' appears twice"),
        (b'{"a": "\xff"}', "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": Infinity}', "Infinity is not a JSON number"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_load_strict_refuses_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        load_strict(body)


def test_load_strict_keeps_valid_content() -> None:
    doc = {"schemaVersion": 2, "a": [{"b": "c"}], "n": 10**30, "f": 1.5, "u": "é"}
    assert load_strict(json.dumps(doc).encode()) == doc
    assert load_strict(b'{"x":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH) is not None


def test_read_manifest_types_every_field() -> None:
    body = json.dumps(
        {
            "mediaType": 5,
            "artifactType": ["x"],
            "config": "str",
            "layers": [
                {"digest": DIGEST, "size": 3, "mediaType": "t"},
                {"digest": "md5:zz", "size": "3"},
                7,
            ],
            "manifests": {"not": "a list"},
            "subject": {"digest": DIGEST},
            "annotations": {"a": "b", "c": {"d": 1}},
        }
    ).encode()
    doc = read_manifest(body)
    assert doc.readable
    assert doc.media_type == UNKNOWN
    assert doc.artifact_type is None
    assert doc.config is None
    assert [(r.digest, r.size, r.media_type) for r in doc.layers] == [
        (Digest.parse(DIGEST), 3, "t"),
        (None, None, ""),
    ]
    assert doc.manifests == ()
    assert doc.subject is not None and doc.subject.digest == Digest.parse(DIGEST)
    assert doc.annotations == {"a": "b", "c": '{"d": 1}'}


def test_read_manifest_salvages_digests_from_unreadable_content() -> None:
    body = b'{"layers": [{"digest": "' + DIGEST.encode() + b'"}' + b"[" * 1000
    doc = read_manifest(body)
    assert not doc.readable
    assert doc.salvaged == (Digest.parse(DIGEST),)


def test_read_config_shows_odd_values_as_unknown_or_text() -> None:
    body = json.dumps(
        {
            "os": {"x": 1},
            "architecture": 5,
            "variant": 7,
            "config": {"Labels": ["a"], "Env": "A=1", "Entrypoint": {"a": 1}, "Cmd": ["sh", 1]},
            "history": [{"created_by": 5, "empty_layer": "yes"}, "x"],
        }
    ).encode()
    config = read_config(body)
    assert config.found
    assert str(config.platform) == "unknown/unknown/unknown"
    assert config.labels == {}
    assert config.env == ("A=1",)
    assert config.entrypoint == ('{"a": 1}',)
    assert config.cmd == ("sh", "1")
    assert [h.to_json() for h in config.history] == [{"created_by": "5", "empty_layer": False}]


def test_read_config_of_a_valid_config() -> None:
    body = json.dumps(
        {
            "os": "linux",
            "architecture": "arm64",
            "variant": "v8",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["A=1"], "Entrypoint": ["/bin/sh"], "Labels": {"k": "v"}},
            "history": [{"created_by": "RUN x", "empty_layer": True, "comment": "c"}],
        }
    ).encode()
    config = read_config(body)
    assert str(config.platform) == "linux/arm64/v8"
    assert (config.env, config.entrypoint, config.cmd, config.labels) == (
        ("A=1",),
        ("/bin/sh",),
        None,
        {"k": "v"},
    )
    assert config.history[0].to_json() == {"created_by": "RUN x", "empty_layer": True, "comment": "c"}
    assert not read_config(b"{}").found
    assert not read_config(b"[" * 5000).found


@pytest.mark.parametrize(
    "unit", [b'"\\', b'"\\\\', b'\\"', b'["'], ids=["quote-escape", "double-escape", "escape-quote", "open"]
)
@pytest.mark.timeout(120)  # quadratic, a 4 MiB run takes hours; linear, about a second
def test_nesting_depth_is_linear_on_quote_and_escape_runs(unit: bytes) -> None:
    """A string pattern that needs its closing quote is retried from every later quote of such a
    run and goes quadratic (32 KB took 12 s); this one must finish a 4 MiB run like any other."""
    body = unit * (4 * 1024 * 1024 // len(unit))
    depth = nesting_depth(body, MAX_DEPTH)
    assert depth > MAX_DEPTH if unit == b'["' else depth == 0
