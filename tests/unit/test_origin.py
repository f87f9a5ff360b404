"""``request_origin``: the one reading of forwarded headers behind ``Location`` URLs, the token
realm and the UI's pull lines."""

from __future__ import annotations

from dockyard.origin import Origin, request_origin

TWO_PROXIES = {"x-forwarded-proto": "https, http", "x-forwarded-host": "a.example, b.internal", "host": "c"}


def test_the_first_hop_of_each_forwarded_header_is_the_origin() -> None:
    assert request_origin(TWO_PROXIES, "http") == Origin("https", "a.example")
    assert str(request_origin(TWO_PROXIES, "http")) == "https://a.example"


def test_without_forwarded_headers_the_host_header_and_connection_scheme() -> None:
    assert request_origin({"host": "reg:5000"}, "http") == Origin("http", "reg:5000")
    assert request_origin({"host": "reg", "x-forwarded-host": " , "}, "https") == Origin("https", "reg")
    assert request_origin({}, "http") == Origin("http", "")


def test_a_configured_http_host_wins() -> None:
    assert request_origin(TWO_PROXIES, "http", "https://r.example:8443") == Origin("https", "r.example:8443")
