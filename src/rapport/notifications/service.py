"""Notifications: the inbox routes (each user sees and marks only their own) and `deliver`, the
one way notifications are written, which also records `notification.created` for each so the
realtime stream can push it to its user.

Every `notification.*` event carries `user_id`: the realtime stream delivers these events only to
that user, never to the rest of the workspace.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.core.listing import ListParams, Page
from rapport.notifications import repository
from rapport.notifications.errors import NotificationNotFound
from rapport.notifications.repository import NOTIFICATION_LISTING, NotificationRepository

FIELDS = (
    "id",
    "user_id",
    "type",
    "title",
    "body",
    "resource_type",
    "resource_id",
    "data",
    "read_at",
    "created_at",
)
TITLE_MAX, BODY_MAX = 500, 2000


def notification_read(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    out = {f: row[f] for f in FIELDS}
    out["status"] = "unread" if row["read_at"] is None else "read"
    return out


@dataclass
class Draft:
    """A notification to send, before the membership check and the insert."""

    workspace_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    title: str
    body: str | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def deliver(session: AsyncSession, drafts: Sequence[Draft], now: datetime) -> list[dict]:
    """Write the drafts whose recipient is an active member of the draft's workspace (anyone else
    is dropped: a notification never reaches a non-member nor crosses workspaces), in one insert,
    and record one `notification.created` event each. Returns the notifications as the API reads
    them."""
    if not drafts:
        return []
    members = await repository.active_members(
        session, {(d.workspace_id, d.user_id) for d in drafts}
    )
    rows = [
        {
            "workspace_id": d.workspace_id,
            "id": new_id(),
            "user_id": d.user_id,
            "type": d.type,
            "title": _clip(d.title, TITLE_MAX),
            "body": _clip(d.body, BODY_MAX),
            "resource_type": d.resource_type,
            "resource_id": d.resource_id,
            "data": events.jsonable(d.data),
            "read_at": None,
            "created_at": now,
        }
        for d in drafts
        if (d.workspace_id, d.user_id) in members
    ]
    await repository.insert_notifications(session, rows)
    by_workspace: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        by_workspace.setdefault(row["workspace_id"], []).append(row)
    for workspace_id, mine in by_workspace.items():
        await events.record_many(
            session,
            workspace_id=workspace_id,
            type="notification.created",
            items=[(row["id"], notification_read(row)) for row in mine],
        )
    return [notification_read(row) for row in rows]


class NotificationService:
    """The caller's own inbox: the repository is scoped to their workspace and user id, so another
    member's notification id answers 404 exactly like one that does not exist."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.repo = NotificationRepository(session, principal.workspace_id, principal.user_id)

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list(NOTIFICATION_LISTING, params)

    async def get(self, notification_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(notification_id)
        if row is None:
            raise NotificationNotFound()
        return row

    async def unread_count(self) -> int:
        return await self.repo.unread_count()

    async def mark_read(self, notification_id: uuid.UUID) -> RowMapping:
        row = await self.repo.mark_read(notification_id, utcnow())
        if row is None:  # already read (kept as it was) or not the caller's
            return await self.get(notification_id)
        await self._record("notification.read", notification_read(row), row["id"])
        return row

    async def mark_all_read(self) -> dict[str, Any]:
        at = utcnow()
        count = await self.repo.mark_all_read(at)
        result = {"marked_read": count, "read_at": at}
        if count:
            await self._record(
                "notification.read_all", {"user_id": self.principal.user_id, **result}, None
            )
        return result

    async def delete(self, notification_id: uuid.UUID) -> None:
        if not await self.repo.erase(notification_id):
            raise NotificationNotFound()
        await self._record(
            "notification.deleted",
            {"id": notification_id, "user_id": self.principal.user_id},
            notification_id,
        )

    async def _record(
        self, type_: str, data: dict[str, Any], resource_id: uuid.UUID | None
    ) -> None:
        """Reads and deletes are events too, so the user's other devices update their badge."""
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type=type_,
            data=data,
            principal=self.principal,
            resource_id=resource_id,
        )
