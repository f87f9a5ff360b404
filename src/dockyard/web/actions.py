"""Forms: log in, log out, delete a tag or an image (with confirmation and CSRF protection)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

from starlette.responses import Response

from dockyard.auth.visibility import client_address
from dockyard.errors import ErrorCode, ManifestUnknown, RegistryError, Throttled
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import is_valid_name, is_valid_tag
from dockyard.web.context import Page, not_found
from dockyard.web.identity import auth_enabled
from dockyard.web.sessions import SESSION_COOKIE, Session, csrf_ok, sign

# A path on this site: "/" then printable ASCII without spaces (browsers drop tabs and newlines,
# so "/<TAB>/evil.example" would become "//evil.example"), never "//" (another host) or "\\"
# (read as "/" by browsers). Anything else, CR and LF included, never reaches a header.
_SAME_ORIGIN_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a same-origin path, else None."""
    if target and len(target) <= 2048 and _SAME_ORIGIN_PATH.fullmatch(target):
        return target
    return None


def _safe_next(target: str | None, page: Page) -> str:
    return safe_next(target) or page.url("/")


MAX_FORM = 64 * 1024


async def _form(page: Page) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind these forms send)."""
    body = bytearray()
    async for chunk in page.request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[0] for k, v in fields.items()}


def forbidden(page: Page) -> Response:
    return page.render(
        "error.html",
        403,
        heading="Request refused",
        message="The form expired. Reload the page and try again.",
    )


def _same_origin(page: Page) -> bool:
    origin = page.request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == page.request.headers.get("host")


async def form_checked(page: Page) -> dict[str, str] | None:
    """A form posted from one of this site's pages (its CSRF token, its origin), or None."""
    form = await _form(page)
    if not csrf_ok(page.request.cookies.get("dockyard_csrf"), form.get("csrf")) or not _same_origin(page):
        return None
    return form


async def login_form(page: Page) -> Response:
    return page.render(
        "login.html", next=safe_next(page.request.query_params.get("next")) or "", error=None, username=""
    )


async def login(page: Page) -> Response:
    form = await _form(page)
    if not csrf_ok(page.request.cookies.get("dockyard_csrf"), form.get("csrf")) or not _same_origin(page):
        return forbidden(page)
    access = page.services.access
    target = _safe_next(form.get("next"), page)
    if not auth_enabled(access):
        return Response(status_code=303, headers={"Location": target})
    username = form.get("username", "")[:256]
    try:
        found = await access.authenticate(username, form.get("password", ""), client_address(page.request))
        error = None if found else "Wrong username, password or token."
    except Throttled as exc:
        found, error = None, str(exc)
    if found is None:
        return page.render(
            "login.html", 401, next=safe_next(form.get("next")) or "", error=error, username=username
        )
    lifetime = page.services.config.ui.sessionlifetime
    cookie = sign(await page.ui.key(), Session(found.subject, found.fingerprint, time.time() + lifetime))
    page.cookies.append((SESSION_COOKIE, cookie, int(lifetime)))
    return Response(status_code=303, headers={"Location": target})


async def logout(page: Page) -> Response:
    form = await _form(page)
    if not csrf_ok(page.request.cookies.get("dockyard_csrf"), form.get("csrf")):
        return forbidden(page)
    page.cookies.append((SESSION_COOKIE, "", 0))
    return page.redirect("/")


async def delete(page: Page) -> Response:
    """Untag (``tag``) or delete a manifest (``digest``); asks first unless ``confirm=yes``."""
    form = await _form(page)
    if not csrf_ok(page.request.cookies.get("dockyard_csrf"), form.get("csrf")) or not _same_origin(page):
        return forbidden(page)
    name, tag, raw_digest = form.get("name", ""), form.get("tag", ""), form.get("digest", "")
    if not is_valid_name(name) or not page.perms.can_pull(name):
        return not_found(page, "There is no repository by that name, or you may not see it.")
    if not page.perms.can_delete(name):
        return page.render(
            "error.html", 403, heading="Not allowed", message="You may not delete in " + name + "."
        )
    config = page.services.config.storage
    if not config.delete.enabled or config.maintenance.readonly.enabled:
        return page.render(
            "error.html", 405, heading="Deletes are off", message="This registry does not delete."
        )
    if tag and not is_valid_tag(tag):
        raise RegistryError(ErrorCode.TAG_INVALID)
    digest = None
    if not tag:
        try:
            digest = Digest.parse(raw_digest)
        except DigestError:
            raise RegistryError(ErrorCode.DIGEST_INVALID) from None
    if form.get("confirm") != "yes":
        return page.render("confirm.html", name=name, tag=tag, digest=str(digest) if digest else "")
    model = page.services.model  # the registry model: its subscribers hear of the delete
    if tag:
        try:
            await model.delete_manifest(name, tag)
        except ManifestUnknown:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, f"tag {tag} is not in {name}") from None
        return page.redirect("/ui/repository", name=name, deleted=f"tag {tag}")
    assert digest is not None
    await model.delete_manifest(name, digest)
    return page.redirect("/ui/repository", name=name, deleted=f"image {digest}")
