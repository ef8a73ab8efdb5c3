"""Does a connection's credential still stand, and with which role? (Read-only, identity's tables.)

Asked when a ticket is redeemed (it carries ids, not the credential) and every
`realtime_recheck_seconds` for each open connection, so a logout, a revoked or expired API key, a
deactivation or a role change reaches sockets that were opened before it. The rules are the
authenticator's (`identity/authenticator.py`): the role comes from the membership, and an API key
never has more power than the user who made it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.auth import Role, weaker_role
from rapport.core.clock import utcnow
from rapport.identity.repository import WorkspaceIdentityRepository, api_keys, memberships


class CredentialRepository:
    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def current_role(
        self, user_id: uuid.UUID, credential: str, credential_id: uuid.UUID
    ) -> Role | None:
        """The credential's role now, or None when it no longer authenticates."""
        if credential == "user":
            identity = WorkspaceIdentityRepository(self.session, self.workspace_id)
            row = await identity.principal_row(user_id, credential_id)
            if row is None or not row["is_active"] or row["revoked_at"] is not None:
                return None
            return Role(row["role"])
        if credential != "api_key":
            return None
        stmt = (
            select(
                api_keys.c.role,
                api_keys.c.revoked_at,
                api_keys.c.expires_at,
                memberships.c.role.label("owner_role"),
                memberships.c.is_active.label("owner_active"),
            )
            .join(
                memberships,
                and_(
                    memberships.c.workspace_id == api_keys.c.workspace_id,
                    memberships.c.user_id == api_keys.c.created_by,
                ),
            )
            .where(
                api_keys.c.workspace_id == self.workspace_id,
                api_keys.c.id == credential_id,
                api_keys.c.created_by == user_id,
            )
        )
        key = (await self.session.execute(stmt)).mappings().first()
        if (
            key is None
            or key["revoked_at"] is not None
            or not key["owner_active"]
            or (key["expires_at"] is not None and key["expires_at"] < utcnow())
        ):
            return None
        return weaker_role(Role(key["role"]), Role(key["owner_role"]))
