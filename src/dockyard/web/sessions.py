"""Signed session cookies and CSRF tokens for the web UI.

The session cookie holds ``base64(json{sub, fp, exp}).hmac`` (HttpOnly, SameSite=Strict, Secure
behind https). The signing key is ``ui.secret``, else ``http.secret``, else a random key kept in
the store (``_dockyard/ui-session-key``), or with ``database.dsn`` in the database
(``storage.secrets``), so that every worker, replica and restart agrees on it.
CSRF: a random token in its own SameSite=Strict cookie that every form must echo (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from dockyard.config import Config
from dockyard.storage.secrets import UI_SESSION_KEY, SharedSecrets

SESSION_COOKIE = "dockyard_session"
CSRF_COOKIE = "dockyard_csrf"


@dataclass(frozen=True, slots=True)
class Session:
    subject: str
    fingerprint: str
    expires: float


async def load_key(config: Config, shared: SharedSecrets) -> bytes:
    configured = config.ui.secret or config.http.secret
    if configured:
        return hashlib.sha256(b"dockyard-ui\0" + configured.encode()).digest()
    return await shared.get_or_create(UI_SESSION_KEY)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, session: Session) -> str:
    payload = _b64(
        json.dumps({"sub": session.subject, "fp": session.fingerprint, "exp": session.expires}).encode()
    )
    mac = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def verify(key: bytes, cookie: str | None, now: float | None = None) -> Session | None:
    if not cookie or "." not in cookie:
        return None
    payload, _, mac = cookie.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    # Bytes: compare_digest refuses str with non-ASCII characters, and a cookie may carry any.
    if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected.encode()):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["sub"]), str(data["fp"]), float(data["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires < (time.time() if now is None else now):
        return None
    return session


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(
        str(cookie).encode("utf-8", "surrogateescape"), str(submitted).encode("utf-8", "surrogateescape")
    )
