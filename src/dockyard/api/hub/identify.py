"""Who is asking, for the Hub routes.

The rules are the registry API's: a caller may see a repository iff it may pull it. Without an
``Authorization`` header a caller is anonymous and sees what the anonymous rules allow (everything
with auth off); a listing never demands credentials, it shows less. In token mode the Hub routes
also take HTTP Basic credentials (checked like the token server checks them), so
``curl -u user:password`` works as it does against Docker Hub with a bearer token.
"""

from __future__ import annotations

from starlette.requests import Request

from dockyard.auth.access import ANONYMOUS, Access, AccessController, Identity
from dockyard.auth.visibility import client_address
from dockyard.errors import ErrorCode, RegistryError


async def identify(access: AccessController, request: Request, needed: list[Access]) -> Identity:
    header = request.headers.get("authorization")
    if header is None:
        if all(access.may(ANONYMOUS, a) for a in needed):
            return ANONYMOUS
        return await access.authorize(request, needed)  # the usual 401 challenge
    if access.mode != "token":  # Basic mode takes Basic credentials on every route already
        return await access.authorize(request, needed)
    from dockyard.auth.credentials import parse_basic  # loaded already: auth is on

    credentials = parse_basic(header)
    if credentials is None:
        return await access.authorize(request, needed)
    found = await access.authenticate(*credentials, client_address(request))
    if found is None:
        return await access.authorize(request, needed)  # bad credentials: the bearer challenge
    identity = Identity(found.subject)
    missing = [a for a in needed if not access.may(identity, a)]
    if missing:
        raise RegistryError(ErrorCode.DENIED, None, [str(a) for a in missing])
    return identity
