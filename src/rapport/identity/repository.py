"""Identity queries. Users are global; memberships, sessions, keys and invitations are read and
written only through a workspace scope."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.auth import Role
from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.core.listing import Filter, Listing, ListParams, Page, Sort
from rapport.core.repository import TenantRepository
from rapport.identity.models import (
    ApiKey,
    AuthSession,
    Invitation,
    Membership,
    RefreshToken,
    User,
    Workspace,
)

users = User.__table__
workspaces = Workspace.__table__
memberships = Membership.__table__
sessions_t = AuthSession.__table__
refresh_tokens = RefreshToken.__table__
api_keys = ApiKey.__table__
invitations = Invitation.__table__

ROLES = tuple(r.value for r in Role)

MEMBER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.username,
    users.c.full_name,
    users.c.last_login_at,
    memberships.c.role,
    memberships.c.is_active,
    memberships.c.created_at,
    memberships.c.updated_at,
    memberships.c.version,
)

MEMBER_LISTING = Listing(
    id_column=users.c.id,
    filters={
        "role": Filter(memberships.c.role, choices=ROLES),
        "is_active": Filter(memberships.c.is_active, bool),
        "created_at": Filter(
            memberships.c.created_at, datetime, ops=frozenset({"gt", "gte", "lt", "lte"})
        ),
    },
    sorts={"created_at": Sort(memberships.c.created_at, datetime), "email": Sort(users.c.email)},
    default_sort="created_at",
    default_order="asc",
    search=(users.c.email, users.c.full_name, users.c.username),
    soft_delete=False,
)


class AccountRepository:
    """Global tables: workspaces and users (sign-up, login)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_workspace(self, name: str) -> RowMapping:
        now = utcnow()
        stmt = (
            insert(workspaces)
            .values(id=new_id(), name=name, settings={}, created_at=now, updated_at=now, version=1)
            .returning(workspaces)
        )
        return (await self.session.execute(stmt)).mappings().one()

    async def get_workspace(self, workspace_id: uuid.UUID) -> RowMapping | None:
        stmt = select(workspaces).where(workspaces.c.id == workspace_id)
        return (await self.session.execute(stmt)).mappings().first()

    async def create_user(self, values: dict[str, Any]) -> RowMapping:
        now = utcnow()
        stmt = (
            insert(users)
            .values(id=new_id(), created_at=now, updated_at=now, version=1, **values)
            .returning(users)
        )
        return (await self.session.execute(stmt)).mappings().one()

    async def find_user(self, identifier: str) -> RowMapping | None:
        ident = identifier.strip().lower()
        stmt = select(users).where(or_(users.c.email == ident, users.c.username == ident))
        return (await self.session.execute(stmt)).mappings().first()

    async def email_or_username_taken(self, email: str, username: str | None) -> tuple[bool, bool]:
        conds = [users.c.email == email]
        if username:
            conds.append(users.c.username == username)
        rows = (
            await self.session.execute(select(users.c.email, users.c.username).where(or_(*conds)))
        ).all()
        return any(r.email == email for r in rows), bool(username) and any(
            r.username == username for r in rows
        )

    async def touch_login(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            update(users).where(users.c.id == user_id).values(last_login_at=utcnow())
        )

    async def memberships_of(self, user_id: uuid.UUID) -> list[RowMapping]:
        stmt = (
            select(
                memberships.c.workspace_id,
                memberships.c.role,
                memberships.c.created_at,
                workspaces.c.name,
            )
            .join(workspaces, workspaces.c.id == memberships.c.workspace_id)
            .where(memberships.c.user_id == user_id, memberships.c.is_active.is_(True))
            .order_by(memberships.c.created_at.desc())
        )
        return list((await self.session.execute(stmt)).mappings().all())

    async def find_invitation(self, token_hash: str) -> RowMapping | None:
        stmt = select(invitations).where(invitations.c.token_hash == token_hash)
        return (await self.session.execute(stmt)).mappings().first()

    async def find_refresh_token(self, token_hash: str) -> RowMapping | None:
        stmt = (
            select(
                refresh_tokens,
                sessions_t.c.user_id,
                sessions_t.c.revoked_at.label("session_revoked_at"),
            )
            .join(
                sessions_t,
                and_(
                    sessions_t.c.workspace_id == refresh_tokens.c.workspace_id,
                    sessions_t.c.id == refresh_tokens.c.session_id,
                ),
            )
            .where(refresh_tokens.c.token_hash == token_hash)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def find_api_key(self, key_hash: str) -> RowMapping | None:
        stmt = (
            select(
                api_keys.c.id,
                api_keys.c.workspace_id,
                api_keys.c.role,
                api_keys.c.created_by,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
                api_keys.c.last_used_at,
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
            .where(api_keys.c.key_hash == key_hash)
        )
        return (await self.session.execute(stmt)).mappings().first()


class WorkspaceIdentityRepository:
    """Everything identity-related inside one workspace."""

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # memberships -------------------------------------------------------------------------------
    async def add_member(self, user_id: uuid.UUID, role: Role) -> None:
        now = utcnow()
        await self.session.execute(
            insert(memberships).values(
                workspace_id=self.workspace_id,
                user_id=user_id,
                role=role.value,
                is_active=True,
                created_at=now,
                updated_at=now,
                version=1,
            )
        )

    def _members(self) -> Any:
        return (
            select(*MEMBER_COLUMNS)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.workspace_id == self.workspace_id)
        )

    async def member(self, user_id: uuid.UUID) -> RowMapping | None:
        stmt = self._members().where(memberships.c.user_id == user_id)
        return (await self.session.execute(stmt)).mappings().first()

    async def list_members(self, params: ListParams) -> Page:
        where = MEMBER_LISTING.where(params)
        stmt = MEMBER_LISTING.apply_page(self._members().where(*where), params)
        page = MEMBER_LISTING.page((await self.session.execute(stmt)).mappings().all(), params)
        if params.include_total:
            count = select(func.count()).select_from(
                memberships.join(users, users.c.id == memberships.c.user_id)
            )
            count = count.where(memberships.c.workspace_id == self.workspace_id, *where)
            page.total = (await self.session.execute(count)).scalar_one()
        return page

    async def update_member(
        self, user_id: uuid.UUID, values: dict[str, Any], expected_version: int | None
    ) -> bool:
        stmt = update(memberships).where(
            memberships.c.workspace_id == self.workspace_id, memberships.c.user_id == user_id
        )
        if expected_version is not None:
            stmt = stmt.where(memberships.c.version == expected_version)
        stmt = stmt.values(**values, version=memberships.c.version + 1, updated_at=utcnow())
        return (await self.session.execute(stmt)).rowcount == 1

    async def lock_active_admins(self) -> list[uuid.UUID]:
        """The ids of the workspace's active admins, locked until the transaction ends.

        FOR UPDATE (in id order, so two callers never deadlock) makes a concurrent demotion wait
        and then see the committed state: two admins demoting each other cannot both succeed.
        SQLite ignores the clause; its write transactions (BEGIN IMMEDIATE) are serial anyway.
        """
        stmt = (
            select(memberships.c.user_id)
            .where(
                memberships.c.workspace_id == self.workspace_id,
                memberships.c.role == Role.admin.value,
                memberships.c.is_active.is_(True),
            )
            .order_by(memberships.c.user_id)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def principal_row(self, user_id: uuid.UUID, session_id: uuid.UUID) -> RowMapping | None:
        """Membership role and activity plus the session's state, in one query."""
        stmt = (
            select(memberships.c.role, memberships.c.is_active, sessions_t.c.revoked_at)
            .join(
                sessions_t,
                and_(
                    sessions_t.c.workspace_id == memberships.c.workspace_id,
                    sessions_t.c.user_id == memberships.c.user_id,
                ),
            )
            .where(
                memberships.c.workspace_id == self.workspace_id,
                memberships.c.user_id == user_id,
                sessions_t.c.id == session_id,
            )
        )
        return (await self.session.execute(stmt)).mappings().first()

    # sessions and refresh tokens -------------------------------------------------------------
    async def create_session(self, user_id: uuid.UUID) -> uuid.UUID:
        session_id = new_id()
        await self.session.execute(
            insert(sessions_t).values(
                workspace_id=self.workspace_id, id=session_id, user_id=user_id, created_at=utcnow()
            )
        )
        return session_id

    async def add_refresh_token(
        self, session_id: uuid.UUID, token_hash: str, expires_at: datetime
    ) -> None:
        await self.session.execute(
            insert(refresh_tokens).values(
                workspace_id=self.workspace_id,
                id=new_id(),
                session_id=session_id,
                token_hash=token_hash,
                created_at=utcnow(),
                expires_at=expires_at,
            )
        )

    async def spend_refresh_token(self, token_id: uuid.UUID) -> bool:
        """Mark a refresh token used; False when it already was (a reuse)."""
        stmt = (
            update(refresh_tokens)
            .where(
                refresh_tokens.c.workspace_id == self.workspace_id,
                refresh_tokens.c.id == token_id,
                refresh_tokens.c.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        return (await self.session.execute(stmt)).rowcount == 1

    async def revoke_session(self, session_id: uuid.UUID, reason: str) -> None:
        await self.session.execute(
            update(sessions_t)
            .where(
                sessions_t.c.workspace_id == self.workspace_id,
                sessions_t.c.id == session_id,
                sessions_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )


class InvitationRepository(TenantRepository):
    table = Invitation.__table__
    soft_delete = False


class ApiKeyRepository(TenantRepository):
    table = ApiKey.__table__
    soft_delete = False

    async def touch(self, key_id: uuid.UUID) -> None:
        await self.session.execute(
            update(self.table)
            .where(self.table.c.workspace_id == self.workspace_id, self.table.c.id == key_id)
            .values(last_used_at=utcnow())
        )


INVITATION_LISTING = Listing(
    id_column=invitations.c.id,
    filters={
        "role": Filter(invitations.c.role, choices=ROLES),
        "email": Filter(invitations.c.email),
    },
    sorts={"created_at": Sort(invitations.c.created_at, datetime)},
    default_sort="created_at",
    search=(invitations.c.email,),
    soft_delete=False,
)

API_KEY_LISTING = Listing(
    id_column=api_keys.c.id,
    filters={
        "role": Filter(api_keys.c.role, choices=ROLES),
        "created_by": Filter(api_keys.c.created_by, uuid.UUID),
    },
    sorts={"created_at": Sort(api_keys.c.created_at, datetime), "name": Sort(api_keys.c.name)},
    default_sort="created_at",
    search=(api_keys.c.name,),
    soft_delete=False,
)
