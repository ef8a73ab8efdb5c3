"""Identity rules: sign-up, login, token rotation, members, invitations and API keys."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal, PrincipalCache, Role, weaker_role
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.errors import BadRequest, PreconditionFailed, RateLimited, Unauthorized
from rapport.core.listing import ListParams, Page
from rapport.core.ratelimit import RateLimiter
from rapport.core.security import API_KEY_PREFIX, KeyRing, PasswordHasher, new_secret, sha256_hex
from rapport.identity import errors
from rapport.identity.repository import (
    API_KEY_LISTING,
    INVITATION_LISTING,
    AccountRepository,
    ApiKeyRepository,
    InvitationRepository,
    WorkspaceIdentityRepository,
)
from rapport.identity.schemas import (
    ApiKeyCreate,
    InvitationCreate,
    LoginRequest,
    RegisterRequest,
    UserUpdate,
)

REFRESH_PREFIX = "rrt_"
INVITATION_PREFIX = "rin_"


@dataclass
class Security:
    """The identity machinery one app instance shares (held on app.state)."""

    settings: Settings
    keyring: KeyRing
    hasher: PasswordHasher
    cache: PrincipalCache
    limiter: RateLimiter
    # Bumped by every forget_principals(): a lookup that began before a bump does not cache its
    # result, which may predate the change (see IdentityAuthenticator).
    generation: int = 0

    def forget_principals(self) -> None:
        self.generation += 1
        self.cache.invalidate()

    def forget_principals_on_commit(self, session: AsyncSession) -> None:
        """Drop the cached principals now and again once this request's transaction commits.

        Dropping them only before the commit leaves a window in which a concurrent request reads
        the old, still committed state and caches it for `auth_cache_seconds`: a deactivated
        user, an ended session or a revoked key would keep working that long.
        """
        self.forget_principals()
        event.listen(
            session.sync_session, "after_commit", lambda _: self.forget_principals(), once=True
        )


def member_read(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "username": row["username"],
        "full_name": row["full_name"],
        "role": row["role"],
        "is_active": row["is_active"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
        "last_login_at": row["last_login_at"],
    }


def api_key_read(row: RowMapping) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "name",
            "prefix",
            "role",
            "created_by",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "created_at",
            "updated_at",
            "version",
        )
    }


def invitation_read(row: RowMapping) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "email",
            "role",
            "invited_by",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "created_at",
            "updated_at",
            "version",
        )
    }


class AuthService:
    def __init__(self, session: AsyncSession, security: Security) -> None:
        self.session = session
        self.security = security
        self.accounts = AccountRepository(session)

    async def _issue(self, user: RowMapping, workspace: RowMapping, role: str) -> dict[str, Any]:
        repo = WorkspaceIdentityRepository(self.session, workspace["id"])
        session_id = await repo.create_session(user["id"])
        refresh = await self._new_refresh(repo, session_id)
        member = await repo.member(user["id"])
        assert member is not None
        return {
            "access_token": self.security.keyring.issue_access(
                user_id=user["id"], workspace_id=workspace["id"], role=role, session_id=session_id
            ),
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(self.security.keyring.access_ttl.total_seconds()),
            "user": member_read(member),
            "workspace": {"id": workspace["id"], "name": workspace["name"]},
        }

    async def _new_refresh(self, repo: WorkspaceIdentityRepository, session_id: uuid.UUID) -> str:
        token = REFRESH_PREFIX + new_secret()
        expires = utcnow() + timedelta(days=self.security.settings.refresh_token_days)
        await repo.add_refresh_token(session_id, sha256_hex(token), expires)
        return token

    async def register(self, body: RegisterRequest) -> dict[str, Any]:
        invitation = None
        if body.invitation_token:
            invitation = await self.accounts.find_invitation(sha256_hex(body.invitation_token))
            if (
                invitation is None
                or invitation["accepted_at"] is not None
                or invitation["revoked_at"] is not None
                or invitation["expires_at"] < utcnow()
            ):
                raise errors.InvitationInvalid()
            if invitation["email"] != body.email:
                raise errors.InvitationEmailMismatch()
        elif not self.security.settings.allow_signup:
            raise errors.SignupDisabled()
        email_taken, username_taken = await self.accounts.email_or_username_taken(
            body.email, body.username
        )
        if email_taken:
            raise errors.EmailTaken()
        if username_taken:
            raise errors.UsernameTaken()
        password_hash = await asyncio.to_thread(self.security.hasher.hash, body.password)
        user = await self.accounts.create_user(
            {
                "email": body.email,
                "username": body.username,
                "full_name": body.full_name,
                "password_hash": password_hash,
            }
        )
        if invitation is not None:
            workspace = await self.accounts.get_workspace(invitation["workspace_id"])
            assert workspace is not None
            role = Role(invitation["role"])
            await InvitationRepository(self.session, workspace["id"]).update(
                invitation["id"], {"accepted_at": utcnow()}
            )
        else:
            workspace = await self.accounts.create_workspace(
                body.workspace_name or f"{body.full_name}'s workspace"
            )
            role = Role.admin
        members = WorkspaceIdentityRepository(self.session, workspace["id"])
        await members.add_member(user["id"], role)
        await events.record(
            self.session,
            workspace_id=workspace["id"],
            type="user.joined",
            data={"id": user["id"], "email": user["email"], "role": role.value},
            resource_id=user["id"],
        )
        return await self._issue(user, workspace, role.value)

    async def login(self, body: LoginRequest) -> dict[str, Any]:
        user = await self.accounts.find_user(body.username_or_email)
        # Count attempts per account, not per spelling: the email and the username of one user
        # share a budget. Unknown identifiers are counted by themselves.
        account = str(user["id"]) if user else body.username_or_email.strip().lower()
        limiter = self.security.limiter
        decision = await limiter.hit(limiter.login_account, "login:" + account)
        if decision is not None and not decision.allowed:
            raise RateLimited(
                "Too many login attempts for this account; try again later.",
                headers={"Retry-After": str(decision.retry_after)},
            )
        ok = await asyncio.to_thread(
            self.security.hasher.verify, body.password, user["password_hash"] if user else None
        )
        if user is None or not ok:
            raise errors.InvalidCredentials()
        memberships = await self.accounts.memberships_of(user["id"])
        if body.workspace_id is not None:
            memberships = [m for m in memberships if m["workspace_id"] == body.workspace_id]
        if not memberships:
            raise errors.InvalidCredentials("This account has no active workspace membership.")
        chosen = memberships[0]
        await self.accounts.touch_login(user["id"])
        workspace = {"id": chosen["workspace_id"], "name": chosen["name"]}
        return await self._issue(user, workspace, chosen["role"])  # type: ignore[arg-type]

    async def refresh(self, token: str) -> dict[str, Any]:
        row = await self.accounts.find_refresh_token(sha256_hex(token))
        if row is None or row["session_revoked_at"] is not None or row["expires_at"] < utcnow():
            raise errors.InvalidRefreshToken()
        repo = WorkspaceIdentityRepository(self.session, row["workspace_id"])
        if row["used_at"] is not None or not await repo.spend_refresh_token(row["id"]):
            # A spent token came back: someone holds a copy. End the whole family.
            await repo.revoke_session(row["session_id"], "refresh_token_reused")
            await self.session.commit()  # the revocation must stick although the request fails
            self.security.forget_principals()
            raise errors.RefreshTokenReused()
        member = await repo.member(row["user_id"])
        if member is None or not member["is_active"]:
            raise errors.InvalidRefreshToken()
        workspace = await self.accounts.get_workspace(row["workspace_id"])
        assert workspace is not None
        refresh = await self._new_refresh(repo, row["session_id"])
        return {
            "access_token": self.security.keyring.issue_access(
                user_id=row["user_id"],
                workspace_id=row["workspace_id"],
                role=member["role"],
                session_id=row["session_id"],
            ),
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(self.security.keyring.access_ttl.total_seconds()),
            "user": member_read(member),
            "workspace": {"id": workspace["id"], "name": workspace["name"]},
        }

    async def logout(self, principal: Principal) -> None:
        if principal.credential != "user":
            raise BadRequest(
                "API keys have no session; revoke the key instead.", code="not_a_session"
            )
        repo = WorkspaceIdentityRepository(self.session, principal.workspace_id)
        await repo.revoke_session(principal.credential_id, "logout")
        self.security.forget_principals_on_commit(self.session)

    async def me(self, principal: Principal) -> dict[str, Any]:
        repo = WorkspaceIdentityRepository(self.session, principal.workspace_id)
        member = await repo.member(principal.user_id)
        workspace = await self.accounts.get_workspace(principal.workspace_id)
        if member is None or workspace is None:
            raise Unauthorized()
        user = member_read(member)
        user["role"] = principal.role.value  # an API key acts with its own (possibly lower) role
        return {
            "user": user,
            "workspace": {"id": workspace["id"], "name": workspace["name"]},
            "credential": principal.credential,
        }


class MemberService:
    def __init__(self, session: AsyncSession, security: Security, principal: Principal) -> None:
        self.session = session
        self.security = security
        self.principal = principal
        self.repo = WorkspaceIdentityRepository(session, principal.workspace_id)

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list_members(params)

    async def get(self, user_id: uuid.UUID) -> RowMapping:
        member = await self.repo.member(user_id)
        if member is None:
            raise errors.UserNotFound()
        return member

    async def update(
        self, user_id: uuid.UUID, body: UserUpdate, expected: int | None
    ) -> RowMapping:
        member = await self.get(user_id)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "role" in changes:
            changes["role"] = Role(changes["role"]).value
        if not changes:
            return member
        loses_admin = (
            member["role"] == Role.admin.value
            and member["is_active"]
            and (
                changes.get("role", Role.admin.value) != Role.admin.value
                or changes.get("is_active", True) is False
            )
        )
        if loses_admin and not set(await self.repo.lock_active_admins()) - {user_id}:
            raise errors.LastAdmin()
        if not await self.repo.update_member(user_id, changes, expected):
            raise PreconditionFailed()
        self.security.forget_principals_on_commit(self.session)
        updated = await self.get(user_id)
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="user.updated",
            data={"id": user_id, "changes": changes},
            principal=self.principal,
            resource_id=user_id,
        )
        return updated

    # invitations -----------------------------------------------------------------------------
    async def invite(self, body: InvitationCreate) -> dict[str, Any]:
        token = INVITATION_PREFIX + new_secret()
        repo = InvitationRepository(self.session, self.principal.workspace_id)
        row = await repo.insert(
            {
                "email": body.email,
                "role": body.role.value,
                "token_hash": sha256_hex(token),
                "invited_by": self.principal.user_id,
                "expires_at": utcnow() + timedelta(days=self.security.settings.invitation_days),
            }
        )
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="invitation.created",
            data=invitation_read(row),
            principal=self.principal,
            resource_id=row["id"],
        )
        return {**invitation_read(row), "token": token}

    async def invitations(self, params: ListParams) -> Page:
        repo = InvitationRepository(self.session, self.principal.workspace_id)
        return await repo.list(INVITATION_LISTING, params)

    async def revoke_invitation(self, invitation_id: uuid.UUID) -> None:
        repo = InvitationRepository(self.session, self.principal.workspace_id)
        row = await repo.get(invitation_id)
        if row is None:
            raise errors.InvitationInvalid()
        await repo.update(invitation_id, {"revoked_at": utcnow()})


class ApiKeyService:
    def __init__(self, session: AsyncSession, security: Security, principal: Principal) -> None:
        self.session = session
        self.security = security
        self.principal = principal
        self.repo = ApiKeyRepository(session, principal.workspace_id)

    async def create(self, body: ApiKeyCreate) -> dict[str, Any]:
        if weaker_role(body.role, self.principal.role) is not body.role:
            raise errors.RoleTooHigh()
        secret = new_secret()
        key = f"{API_KEY_PREFIX}{secret}"
        row = await self.repo.insert(
            {
                "name": body.name,
                "prefix": key[:12],
                "key_hash": sha256_hex(key),
                "role": body.role.value,
                "created_by": self.principal.user_id,
                "expires_at": body.expires_at,
            }
        )
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="api_key.created",
            data=api_key_read(row),
            principal=self.principal,
            resource_id=row["id"],
        )
        return {**api_key_read(row), "key": key}

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list(API_KEY_LISTING, params)

    async def revoke(self, key_id: uuid.UUID) -> None:
        row = await self.repo.get(key_id)
        if row is None or row["revoked_at"] is not None:
            raise errors.ApiKeyNotFound()
        await self.repo.update(key_id, {"revoked_at": utcnow()})
        self.security.forget_principals_on_commit(self.session)
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="api_key.revoked",
            data={"id": key_id},
            principal=self.principal,
            resource_id=key_id,
        )
