"""`Idempotency-Key` on POST: the first response is kept for 24 h per workspace and key and replayed
to retries with the same request; the same key with another request is a 409.

The claim row is inserted before the request runs (so concurrent retries wait for the first one
instead of running again) and completed in the same transaction as the request's own writes (so a
stored response exists if and only if the change committed). Failed requests release the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import ForeignKey, LargeBinary, String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.core.envelope import EnvelopeResponse, error_response
from rapport.core.errors import AppError
from rapport.core.http import header
from rapport.core.models import Base, JSONType
from rapport.core.routing import authenticate

PROCESSING = "processing"
COMPLETED = "completed"
LOCK_SECONDS = 60
REPLAYED_HEADERS = frozenset({b"content-type", b"etag", b"location"})


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    locked_until: Mapped[datetime]
    response_status: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


TABLE = IdempotencyRecord.__table__


@dataclass
class Claim:
    workspace_id: uuid.UUID
    key: str

    async def complete(
        self, session: AsyncSession, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        kept = {k.decode(): v.decode("latin-1") for k, v in headers if k in REPLAYED_HEADERS}
        await session.execute(
            update(TABLE)
            .where(TABLE.c.workspace_id == self.workspace_id, TABLE.c.key == self.key)
            .values(
                state=COMPLETED, response_status=status, response_headers=kept, response_body=body
            )
        )


class IdempotencyStore:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.ttl = timedelta(hours=settings.idempotency_hours)
        self.wait_seconds = settings.idempotency_wait_seconds

    async def _try_insert(self, workspace_id: uuid.UUID, key: str, fingerprint: str) -> bool:
        now = utcnow()
        try:
            async with self.db.write_sessions() as session, session.begin():
                await session.execute(
                    insert(TABLE).values(
                        workspace_id=workspace_id,
                        key=key,
                        fingerprint=fingerprint,
                        state=PROCESSING,
                        locked_until=now + timedelta(seconds=LOCK_SECONDS),
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
            return True
        except IntegrityError:
            return False

    async def _current(self, workspace_id: uuid.UUID, key: str) -> Any:
        async with self.db.read_sessions() as session:
            stmt = select(TABLE).where(TABLE.c.workspace_id == workspace_id, TABLE.c.key == key)
            return (await session.execute(stmt)).mappings().first()

    async def _take_over(self, workspace_id: uuid.UUID, key: str, expired: bool) -> bool:
        """Reclaim a key whose holder died (lock passed) or whose record expired."""
        now = utcnow()
        async with self.db.write_sessions() as session, session.begin():
            where = [TABLE.c.workspace_id == workspace_id, TABLE.c.key == key]
            if expired:
                await session.execute(delete(TABLE).where(*where, TABLE.c.expires_at < now))
                return False
            result = await session.execute(
                update(TABLE)
                .where(*where, TABLE.c.state == PROCESSING, TABLE.c.locked_until < now)
                .values(locked_until=now + timedelta(seconds=LOCK_SECONDS))
            )
            return result.rowcount == 1

    async def begin(self, workspace_id: uuid.UUID, key: str, fingerprint: str) -> Any:
        """Returns "proceed", "mismatch", "busy", or the stored row to replay."""
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        delay = 0.02
        while True:
            if await self._try_insert(workspace_id, key, fingerprint):
                return "proceed"
            row = await self._current(workspace_id, key)
            if row is None:
                continue  # released between our insert and read: try again
            now = utcnow()
            if row["expires_at"] < now:
                await self._take_over(workspace_id, key, expired=True)
                continue
            if row["fingerprint"] != fingerprint:
                return "mismatch"
            if row["state"] == COMPLETED:
                return row
            if row["locked_until"] < now and await self._take_over(workspace_id, key, False):
                return "proceed"
            if asyncio.get_running_loop().time() >= deadline:
                return "busy"
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    async def release(self, workspace_id: uuid.UUID, key: str) -> None:
        async with self.db.write_sessions() as session, session.begin():
            await session.execute(
                delete(TABLE).where(
                    TABLE.c.workspace_id == workspace_id,
                    TABLE.c.key == key,
                    TABLE.c.state == PROCESSING,
                )
            )


def fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())
    digest.update(b" ")
    digest.update(scope["path"].encode())
    digest.update(b"?")
    digest.update(scope.get("query_string", b""))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await error_response(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 printable characters.",
            )(scope, receive, send)
            return
        try:
            principal = await authenticate(Request(scope, receive))
        except AppError:
            # No credentials: the route answers (401, or a public route that ignores the key).
            await self.app(scope, receive, send)
            return
        body: bytes = scope.get("state", {}).get("body", b"")
        outcome = await self.store.begin(principal.workspace_id, key, fingerprint(scope, body))
        if outcome == "mismatch":
            await error_response(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            )(scope, receive, send)
            return
        if outcome == "busy":
            await error_response(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry later.",
            )(scope, receive, send)
            return
        if outcome != "proceed":
            headers = {**(outcome["response_headers"] or {}), "Idempotent-Replayed": "true"}
            response = EnvelopeResponse(
                outcome["response_body"], status_code=outcome["response_status"], headers=headers
            )
            await response(scope, receive, send)
            return

        claim = Claim(principal.workspace_id, key)
        scope["state"]["idempotency"] = claim
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            uow = scope["state"].get("uow")
            if not (200 <= status < 300 and uow is not None and uow.committed):
                await self.store.release(principal.workspace_id, key)
