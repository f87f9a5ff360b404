"""The scope grammar: examples from the spec, traversal, and properties (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.auth.scope import ResourceScope, ScopeError, format_scopes, parse_resource_scope, parse_scopes

COMPONENT = st.from_regex(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) < 30)
NAMES = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
ACTIONS = st.lists(st.sampled_from(["pull", "push", "delete", "*"]), min_size=1, max_size=3, unique=True)


def test_spec_examples() -> None:
    assert parse_resource_scope("repository:samalba/my-app:pull,push") == ResourceScope(
        "repository", "samalba/my-app", ("pull", "push")
    )
    assert parse_resource_scope("registry:catalog:*") == ResourceScope("registry", "catalog", ("*",))
    assert parse_resource_scope("repository(plugin):a/b:pull") == ResourceScope(
        "repository", "a/b", ("pull",)
    )
    # several items in one value, and the same resource twice, merge
    assert parse_scopes(["repository:a:pull repository:b:push", "repository:a:push"]) == [
        ResourceScope("repository", "a", ("pull", "push")),
        ResourceScope("repository", "b", ("push",)),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "repository:../etc:pull",
        "repository:a/../b:pull",
        "repository:/abs:pull",
        "repository:a//b:pull",
        "repository:UPPER:pull",
        "repository::pull",
        "repository:a",
        "Repository:a:pull",
        "repository:a:pu$ll",
        "registry:secrets:*",
        "repository:a%2f..%2fb:pull",
    ],
)
def test_rejected(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_resource_scope(bad)


@given(NAMES, ACTIONS)
def test_round_trip(name: str, actions: list[str]) -> None:
    scope = ResourceScope("repository", name, tuple(actions))
    assert parse_resource_scope(str(scope)) == scope
    assert parse_scopes([format_scopes([scope])]) == [scope]


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_scope_error(text: str) -> None:
    try:
        scopes = parse_scopes([text])
    except ScopeError:
        return
    for scope in scopes:
        assert ".." not in scope.name.split("/")
        assert all(a in ("pull", "push", "delete", "*") or a.isalpha() for a in scope.actions)
