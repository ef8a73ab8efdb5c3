"""Who is calling: the principal, roles, and the dependencies routes declare.

Authentication itself runs in `core.routing` before any parameter is parsed, through the
`Authenticator` the app is built with (the identity domain provides it): core imports no domain.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from rapport.core.errors import Forbidden, Unauthorized


class Role(StrEnum):
    admin = "admin"
    member = "member"
    viewer = "viewer"
    technician = "technician"


# Ordered for capping: an API key never has more power than the user who owns it.
ROLE_RANK = {Role.technician: 0, Role.viewer: 1, Role.member: 2, Role.admin: 3}


def weaker_role(a: Role, b: Role) -> Role:
    return a if ROLE_RANK[a] <= ROLE_RANK[b] else b


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Role
    credential: str  # "user" or "api_key"
    credential_id: uuid.UUID  # session family id or API key id

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


class Authenticator(Protocol):
    async def authenticate(self, request: Request, token: str) -> Principal:
        """Return the principal for a bearer credential or raise Unauthorized."""
        ...


class PrincipalCache:
    """Resolved principals for a few seconds, so a read costs only its own query.

    Any security change (deactivation, role change, key revocation, logout) calls `invalidate()`,
    which drops everything this process remembers at once. Replicas each hold their own cache:
    there a change takes effect within `ttl` seconds.
    """

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        hit = self._entries.get(key)
        if hit is None:
            return None
        expires, principal = hit
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, principal)

    def invalidate(self) -> None:
        self._entries.clear()


# The bearer scheme OpenAPI documents (Swagger's Authorize uses the password form at /auth/token).
# Routes do not depend on it: `core.routing` authenticates every private route before parameters
# are parsed, and `document_security` marks those operations in the schema.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _principal(request: Request) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal is None:
        raise Unauthorized()
    return principal


async def current_principal(request: Request) -> Principal:
    return _principal(request)


def require_roles(*roles: Role):  # noqa: ANN201 - a dependency factory
    allowed = frozenset(roles)
    message = f"This needs one of the roles: {', '.join(sorted(allowed))}."

    async def dependency(request: Request) -> Principal:
        principal = _principal(request)
        if principal.role not in allowed:
            raise Forbidden(message)
        return principal

    return dependency


PrincipalDep = Annotated[Principal, Depends(current_principal)]
ReaderDep = Annotated[Principal, Depends(require_roles(Role.admin, Role.member, Role.viewer))]
MemberDep = Annotated[Principal, Depends(require_roles(Role.admin, Role.member))]
AdminDep = Annotated[Principal, Depends(require_roles(Role.admin))]
