"""The pages: repositories, one repository's tags, one image, storage usage.

Every list is paged and searched on the server, so a registry with 10,000 repositories or a
repository with 10,000 tags renders as fast as a small one (see browse.browser).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from dockyard.errors import ErrorCode, RegistryError
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import TagError, is_valid_name, parse_reference
from dockyard.web.context import Page, not_found
from dockyard.web.vulns import image_view, tag_severities

log = logging.getLogger("dockyard.web")
PAGE_SIZES = (25, 50, 100)
REPO_SORTS = {
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "-last_updated": "Recently pushed",
    "last_updated": "Least recently pushed",
}
TAG_SORTS = {
    "-last_updated": "Recently pushed",
    "last_updated": "Oldest first",
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
}


def _int(raw: str | None, default: int, lowest: int = 1) -> int:
    try:
        return max(lowest, int(raw or default))
    except ValueError:
        return default


def paging(page: Page, count: int) -> dict[str, Any]:
    query = page.request.query_params
    size = _int(query.get("size"), PAGE_SIZES[0])
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    pages = max(1, -(-count // size))
    number = min(_int(query.get("page"), 1), pages)
    start = (number - 1) * size
    return {
        "number": number,
        "pages": pages,
        "size": size,
        "start": start,
        "end": min(start + size, count),
        "count": count,
    }


def _sort(raw: str | None, choices: dict[str, str], default: str) -> str:
    return raw if raw in choices else default


async def repositories(page: Page) -> Response:
    query = page.request.query_params
    q = (query.get("q") or "").strip()
    sort = _sort(query.get("sort"), REPO_SORTS, "name")
    browser = page.services.browser
    names = await browser.repo_names(
        await page.services.registry.listing.repositories(), q, sort, page.perms.visible
    )
    pager = paging(page, len(names))
    rows = await browser.repo_rows(names[pager["start"] : pager["end"]])
    tag_counts = {r.name: await _tag_count(page, r.name) for r in rows}
    return page.render(
        "repositories.html",
        rows=rows,
        tag_counts=tag_counts,
        mirrors={r.name: _mirror_of(page, r.name) for r in rows},
        q=q,
        sort=sort,
        sorts=REPO_SORTS,
        pager=pager,
        sizes=PAGE_SIZES,
    )


async def _tag_count(page: Page, name: str) -> int | None:
    """A row's tag count; an unexpected error marks the row (None) instead of failing the page."""
    try:
        return len(await page.services.registry.listing.tags(name))
    except Exception:
        log.exception("cannot count the tags of a repository", extra={"repository": name})
        return None


def _mirror_of(page: Page, name: str) -> str | None:
    """The upstream a cached repository mirrors (None: hosted)."""
    proxy = page.services.proxy
    return proxy.upstream_of(name) if proxy is not None else None


def _name(page: Page) -> str | None:
    name = page.request.query_params.get("name") or ""
    return name if is_valid_name(name) else None


async def repository(page: Page) -> Response:
    name = _name(page)
    if name is None or not page.perms.can_pull(name):
        return not_found(page, "There is no repository by that name, or you may not see it.")
    query = page.request.query_params
    q = (query.get("q") or "").strip()
    sort = _sort(query.get("sort"), TAG_SORTS, "-last_updated")
    browser = page.services.browser
    tags = await browser.tag_names(name, q, sort)
    pager = paging(page, len(tags))
    rows = await browser.tag_rows(name, tags[pager["start"] : pager["end"]])
    return page.render(
        "repository.html",
        name=name,
        severities=await tag_severities(page, name, [row.digest for row in rows]),
        mirror_of=_mirror_of(page, name),
        rows=rows,
        q=q,
        sort=sort,
        sorts=TAG_SORTS,
        pager=pager,
        sizes=PAGE_SIZES,
        can_delete=page.perms.can_delete(name) and page.services.config.storage.delete.enabled,
        deleted=query.get("deleted"),
    )


async def image(page: Page) -> Response:
    name = _name(page)
    if name is None or not page.perms.can_pull(name):
        return not_found(page, "There is no repository by that name, or you may not see it.")
    raw = page.request.query_params.get("ref") or "latest"
    try:
        reference = parse_reference(raw)
    except DigestError as exc:  # sha256:zzz, md5:…: 400, as the registry API answers
        raise RegistryError(ErrorCode.DIGEST_INVALID, str(exc)) from None
    except TagError:  # a malformed tag names nothing
        return not_found(page, "There is no tag or image by that reference.")
    services = page.services
    info = await services.inventory.inspect(name, reference)
    await services.pulls.refresh()
    digest = info["digest"]
    return page.render(
        "image.html",
        name=name,
        ref=raw,
        info=info,
        is_tag=not isinstance(reference, Digest),
        pulled=services.pulls.of_digest(name, digest),
        vulns=await image_view(page, name, info),
        can_delete=page.perms.can_delete(name) and page.services.config.storage.delete.enabled,
    )


async def mirrors(page: Page) -> Response:
    """The pull-through cache, for administrators: each upstream (its pull limit), the ``sync``
    rules with the run in progress and the last result, and the cached images by last use."""
    proxy = page.services.proxy
    if proxy is None or not page.perms.is_admin():
        return not_found(page, "This registry mirrors no other registry, or you may not see its cache.")
    pager_all = await proxy.cache.listing()
    images = pager_all["images"]
    pager = paging(page, len(images))
    syncer = proxy.syncer
    return page.render(
        "mirrors.html",
        upstreams=await proxy.status(),
        rules=await syncer.status() if syncer is not None else [],
        images=images[pager["start"] : pager["end"]],
        cache_bytes=pager_all["cacheBytes"],
        max_bytes=pager_all["maxBytes"],
        pager=pager,
        sizes=PAGE_SIZES,
    )


async def usage(page: Page) -> Response:
    report = await page.ui.usage_report()
    repos = [r for r in report.repositories if page.perms.can_pull(r.repository)]
    repos.sort(key=lambda r: (-r.total, r.repository))
    pager = paging(page, len(repos))
    top = repos[:12]
    biggest = max((r.total for r in top), default=0) or 1
    return page.render(
        "usage.html",
        repos=repos[pager["start"] : pager["end"]],
        top=top,
        biggest=biggest,
        total=sum(r.total for r in repos),
        stored=report.stored if page.perms.is_admin() else None,
        blobs=report.blobs,
        pager=pager,
        sizes=PAGE_SIZES,
    )
