"""Who is asking, for the Hub routes, and what they may do (the web UI asks the same questions).

The rules are the registry API's: a caller may see a repository iff it may pull it. Without an
``Authorization`` header a caller is anonymous and sees what the anonymous rules allow (everything
with auth off); a listing never demands credentials, it shows less. In token mode the Hub routes
also take HTTP Basic credentials (checked like the token server checks them), so
``curl -u user:password`` works as it does against Docker Hub with a bearer token.
"""

from __future__ import annotations

from starlette.requests import Request

from dockyard.auth.access import ANONYMOUS, Access, AccessController, AllowAll, Identity
from dockyard.auth.visibility import PolicyVisibility, client_address
from dockyard.errors import ErrorCode, RegistryError


def may(access: AccessController, identity: Identity, wanted: Access) -> bool:
    """Whether ``identity`` may have ``wanted`` (a repository action or registry:admin:*)."""
    if isinstance(access, AllowAll):
        return True
    if isinstance(access, PolicyVisibility):
        if (wanted.type, wanted.name, wanted.action) in identity.granted:
            return True
        return access.allowed(access.principal(identity.subject), wanted)
    return False


async def identify(access: AccessController, request: Request, needed: list[Access]) -> Identity:
    header = request.headers.get("authorization")
    if header is None:
        if all(may(access, ANONYMOUS, a) for a in needed):
            return ANONYMOUS
        return await access.authorize(request, needed)  # the usual 401 challenge
    if isinstance(access, AllowAll):
        return await access.authorize(request, needed)
    from dockyard.auth.controllers import BasicController  # loaded already: auth is on
    from dockyard.auth.credentials import parse_basic

    credentials = parse_basic(header)
    if credentials is None or isinstance(access, BasicController) or not isinstance(access, PolicyVisibility):
        return await access.authorize(request, needed)
    found = await access.authenticator.login(*credentials, client_address(request))
    if found is None:
        return await access.authorize(request, needed)  # bad credentials: the bearer challenge
    identity = Identity(found.subject)
    missing = [a for a in needed if not may(access, identity, a)]
    if missing:
        raise RegistryError(ErrorCode.DENIED, None, [str(a) for a in missing])
    return identity
