"""Turns a bearer credential into a principal: one query on a cache miss, none on a hit.

Role and activity always come from the membership (not from the token), so a role change or a
deactivation applies to tokens already issued.
"""

from __future__ import annotations

import time
import uuid

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.auth import Principal, Role, weaker_role
from rapport.core.clock import utcnow
from rapport.core.db import Database
from rapport.core.errors import Unauthorized
from rapport.core.security import API_KEY_PREFIX, AccessClaims, TokenError, sha256_hex
from rapport.identity.repository import (
    AccountRepository,
    ApiKeyRepository,
    WorkspaceIdentityRepository,
)
from rapport.identity.service import Security


class IdentityAuthenticator:
    def __init__(self, db: Database, security: Security) -> None:
        self.db = db
        self.security = security
        self._touched: dict[uuid.UUID, float] = {}

    async def authenticate(self, request: Request, token: str) -> Principal:
        if token.startswith(API_KEY_PREFIX):
            # Never on the request's unit of work: recording the key's last use takes a write
            # transaction of its own, which on SQLite would wait forever (until busy_timeout) on
            # the request's write transaction (BEGIN IMMEDIATE) had the lookup opened it.
            return await self._api_key(token)
        uow = getattr(request.state, "uow", None)
        if uow is not None:
            return await self._resolve(uow.session, request, token)
        async with self.db.read_sessions() as session:
            return await self._resolve(session, request, token)

    async def _resolve(self, session: AsyncSession, request: Request, token: str) -> Principal:
        claims: AccessClaims | None = request.scope.get("state", {}).get("claims")
        if claims is None:
            try:
                claims = self.security.keyring.decode_access(token)
            except TokenError as exc:
                raise Unauthorized(
                    "The access token is invalid or expired.", code="invalid_token"
                ) from exc
        cache_key = f"s:{claims.session_id}:{claims.user_id}:{claims.workspace_id}"
        principal = self.security.cache.get(cache_key)
        if principal is not None:
            return principal
        generation = self.security.generation
        repo = WorkspaceIdentityRepository(session, claims.workspace_id)
        row = await repo.principal_row(claims.user_id, claims.session_id)
        if row is None or not row["is_active"] or row["revoked_at"] is not None:
            raise Unauthorized("This session has ended; log in again.", code="session_revoked")
        principal = Principal(
            user_id=claims.user_id,
            workspace_id=claims.workspace_id,
            role=Role(row["role"]),
            credential="user",
            credential_id=claims.session_id,
        )
        self._remember(cache_key, principal, generation)
        return principal

    async def _api_key(self, token: str) -> Principal:
        key_hash = sha256_hex(token)
        cache_key = f"k:{key_hash}"
        principal = self.security.cache.get(cache_key)
        if principal is None:
            generation = self.security.generation
            async with self.db.read_sessions() as session:
                row = await AccountRepository(session).find_api_key(key_hash)
            if (
                row is None
                or row["revoked_at"] is not None
                or not row["owner_active"]
                or (row["expires_at"] is not None and row["expires_at"] < utcnow())
            ):
                raise Unauthorized(
                    "The API key is invalid, revoked or expired.", code="invalid_api_key"
                )
            principal = Principal(
                user_id=row["created_by"],
                workspace_id=row["workspace_id"],
                role=weaker_role(Role(row["role"]), Role(row["owner_role"])),
                credential="api_key",
                credential_id=row["id"],
            )
            self._remember(cache_key, principal, generation)
        await self._touch(principal)
        return principal

    def _remember(self, cache_key: str, principal: Principal, generation: int) -> None:
        """Cache a principal unless a security change happened while it was being read: the row
        may predate that change, and caching it would let it outlive the change."""
        if self.security.generation == generation:
            self.security.cache.put(cache_key, principal)

    async def _touch(self, principal: Principal) -> None:
        """Record last use at most once per `api_key_touch_seconds` per key and process."""
        now = time.monotonic()
        last = self._touched.get(principal.credential_id)
        if last is not None and now - last < self.security.settings.api_key_touch_seconds:
            return
        self._touched[principal.credential_id] = now
        async with self.db.write_sessions() as session, session.begin():
            await ApiKeyRepository(session, principal.workspace_id).touch(principal.credential_id)
