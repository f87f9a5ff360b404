"""Query parameters of the Hub listings: ``page``, ``page_size``, ``name``, ``ordering``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import QueryParams

from dockyard.api.hub.errors import HubError

PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100  # Hub caps larger values at 100 instead of refusing them
TAG_ORDERINGS = ("last_updated", "-last_updated", "name", "-name")
REPO_ORDERINGS = (*TAG_ORDERINGS, "pull_count", "-pull_count")


@dataclass(frozen=True, slots=True)
class Listing:
    page: int
    page_size: int
    name: str  # substring filter, "" for none
    ordering: str

    @property
    def start(self) -> int:
        return (self.page - 1) * self.page_size


def _positive(query: QueryParams, key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubError.bad_field(key, "A valid integer is required.", f"Invalid {key} value") from None
    if value < 1:
        raise HubError.bad_field(
            key, "Ensure this value is greater than or equal to 1.", f"Invalid {key} value"
        )
    return value


def parse_listing(query: QueryParams, orderings: tuple[str, ...], default_ordering: str) -> Listing:
    page = _positive(query, "page", 1)
    page_size = min(_positive(query, "page_size", PAGE_SIZE_DEFAULT), PAGE_SIZE_MAX)
    ordering = query.get("ordering") or default_ordering
    if ordering not in orderings:
        raise HubError.bad_field(
            "ordering",
            f"Select a valid choice. {ordering[:100]} is not one of the available choices: "
            + ", ".join(orderings),
            "Invalid ordering value",
        )
    return Listing(page, page_size, query.get("name") or "", ordering)


def page_bounds(listing: Listing, count: int) -> tuple[int, int]:
    """(start, end) of the requested page; 404 for a page past the end (an empty list has page 1)."""
    start = listing.start
    if start >= count and listing.page > 1:
        pages = max(1, -(-count // listing.page_size))
        raise HubError.not_found(
            "Page not found", f"page {listing.page} is past the end: {count} results make {pages} page(s)"
        )
    return start, min(start + listing.page_size, count)
