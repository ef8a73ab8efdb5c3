"""Notification queries. A user's inbox is scoped by workspace *and* user in every statement, so
nobody can read or mark another member's notifications; the subscriber's queries (holders,
memberships, delivery) work on whole batches."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import jobs
from rapport.core.db import JOBS_QUEUED, dialect_name
from rapport.core.ids import new_id
from rapport.core.listing import EQUALITY, RANGE, Filter, Listing, Sort
from rapport.core.repository import TenantRepository
from rapport.identity.models import Membership
from rapport.notifications.models import Notification, NotificationHolder

t = Notification.__table__
holders = NotificationHolder.__table__
memberships = Membership.__table__

TYPES = (
    "task.assigned",
    "contact.assigned",
    "lead.assigned",
    "deal.assigned",
    "lead.converted",
    "task.due",
    "webhook_endpoint.disabled",
)
STATUSES = ("unread", "read", "all")


def _status(_op: str, values: list[Any]) -> ColumnElement[bool]:
    """`status=unread` (read_at is null), `read`, `all`; comma-separated: any of them."""
    clauses: list[ColumnElement[bool]] = []
    for value in values:
        if value == "all":
            return true()
        clauses.append(t.c.read_at.is_(None) if value == "unread" else t.c.read_at.is_not(None))
    return or_(*clauses) if clauses else false()


NOTIFICATION_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "status": Filter(
            t.c.read_at,
            str,
            EQUALITY,
            choices=STATUSES,
            builder=_status,
            description="unread, read or all.",
        ),
        "type": Filter(t.c.type, str, EQUALITY, choices=TYPES, description="Notification type."),
        "resource_type": Filter(t.c.resource_type, description="What the notification is about."),
        "resource_id": Filter(t.c.resource_id, uuid.UUID),
        "created_at": Filter(t.c.created_at, datetime, ops=RANGE),
        "read_at": Filter(t.c.read_at, datetime, ops=RANGE - {"eq", "in"}),
    },
    sorts={"created_at": Sort(t.c.created_at, datetime)},
    default_sort="created_at",
    default_order="desc",
    search=(t.c.title, t.c.body),
    soft_delete=False,
)


class NotificationRepository(TenantRepository):
    """One user's notifications: every statement is scoped to the workspace and the user."""

    table = t
    soft_delete = False
    scope_columns = ("workspace_id", "user_id")

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__(session, workspace_id)
        self.user_id = user_id

    def delete_stmt(self) -> Delete:
        return delete(t).where(*self._scope())

    async def unread_count(self) -> int:
        stmt = self.select(func.count()).where(t.c.read_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one()

    async def mark_read(self, notification_id: uuid.UUID, at: datetime) -> RowMapping | None:
        """Set read_at if unread; an already read notification keeps its first read time."""
        stmt = (
            self.update_stmt()
            .where(t.c.id == notification_id, t.c.read_at.is_(None))
            .values(read_at=at)
            .returning(t)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def mark_all_read(self, at: datetime) -> int:
        stmt = self.update_stmt().where(t.c.read_at.is_(None)).values(read_at=at).returning(t.c.id)
        return len((await self.session.execute(stmt)).all())


# -- the subscriber's batch queries (any workspace: each clause names its workspace) -----------


def _grouped(keys: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, list[uuid.UUID]]:
    grouped: dict[uuid.UUID, set[uuid.UUID]] = {}
    for workspace_id, other in keys:
        grouped.setdefault(workspace_id, set()).add(other)
    return {w: sorted(ids, key=str) for w, ids in grouped.items()}


def _per_workspace(
    workspace_column: ColumnElement[Any],
    column: ColumnElement[Any],
    keys: Iterable[tuple[uuid.UUID, uuid.UUID]],
) -> ColumnElement[bool]:
    """(workspace_id = w AND column IN (...)) OR ...: every lookup leads with its workspace."""
    return or_(
        *(
            and_(workspace_column == w, column.in_(ids))
            for w, ids in sorted(_grouped(keys).items(), key=lambda kv: str(kv[0]))
        )
    )


async def load_holders(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID]:
    """(workspace_id, resource_id) → the holder last seen, for the records given."""
    if not keys:
        return {}
    stmt = select(holders.c.workspace_id, holders.c.resource_id, holders.c.user_id).where(
        _per_workspace(holders.c.workspace_id, holders.c.resource_id, keys)
    )
    return {
        (uuid.UUID(str(w)), uuid.UUID(str(r))): uuid.UUID(str(u))
        for w, r, u in (await session.execute(stmt)).all()
    }


async def save_holders(
    session: AsyncSession, state: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID | None]
) -> None:
    """Replace the holders of these records (None: the record has none, or is gone). Another
    relay may insert a holder of the same record between the delete and the insert (it saw the
    record's row missing too): the insert then updates that row, it does not fail the batch."""
    if not state:
        return
    await session.execute(
        delete(holders).where(_per_workspace(holders.c.workspace_id, holders.c.resource_id, state))
    )
    rows = [
        {"workspace_id": w, "resource_id": r, "user_id": u}
        for (w, r), u in state.items()
        if u is not None
    ]
    if rows:
        builder = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
        stmt = builder(holders)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[holders.c.workspace_id, holders.c.resource_id],
                set_={"user_id": stmt.excluded.user_id},
            ),
            rows,
        )


async def active_members(
    session: AsyncSession, keys: Iterable[tuple[uuid.UUID, uuid.UUID]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Which (workspace_id, user_id) pairs are active members: one query for a batch."""
    keys = set(keys)
    if not keys:
        return set()
    stmt = select(memberships.c.workspace_id, memberships.c.user_id).where(
        _per_workspace(memberships.c.workspace_id, memberships.c.user_id, keys),
        memberships.c.is_active.is_(True),
    )
    found = {(uuid.UUID(str(w)), uuid.UUID(str(u))) for w, u in (await session.execute(stmt))}
    return found & keys


async def active_admins(
    session: AsyncSession, workspace_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    wanted = sorted(set(workspace_ids), key=str)
    if not wanted:
        return {}
    stmt = (
        select(memberships.c.workspace_id, memberships.c.user_id)
        .where(
            memberships.c.workspace_id.in_(wanted),
            memberships.c.role == "admin",
            memberships.c.is_active.is_(True),
        )
        .order_by(memberships.c.workspace_id, memberships.c.user_id)
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for w, u in await session.execute(stmt):
        out.setdefault(uuid.UUID(str(w)), []).append(uuid.UUID(str(u)))
    return out


async def insert_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """A batch of notifications in one statement."""
    if rows:
        await session.execute(insert(t), list(rows))


async def erase_for_resources(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> None:
    """A record erased for good takes its notifications (they quote its name) with it."""
    if keys:
        await session.execute(
            delete(t).where(_per_workspace(t.c.workspace_id, t.c.resource_id, keys))
        )


async def existing_job_keys(session: AsyncSession, kind: str, keys: Sequence[str]) -> set[str]:
    """Which of these dedupe keys already have a job of this kind (any status)."""
    if not keys:
        return set()
    stmt = select(jobs.TABLE.c.dedupe_key).where(
        jobs.TABLE.c.kind == kind, jobs.TABLE.c.dedupe_key.in_(sorted(set(keys)))
    )
    return set((await session.execute(stmt)).scalars())


async def enqueue_jobs(
    session: AsyncSession,
    kind: str,
    items: Sequence[tuple[uuid.UUID, dict[str, Any], datetime, str]],
    now: datetime,
) -> None:
    """Delayed, deduplicated jobs `(workspace_id, payload, run_at, dedupe_key)` in one batched
    INSERT: the rows `jobs.enqueue` writes one statement at a time (a bulk write of 1000 dated
    tasks queues 1000 reminders; one statement each made the relay ~20x slower)."""
    rows = [
        {
            "id": new_id(),
            "kind": kind,
            "workspace_id": workspace_id,
            "payload": payload,
            "status": jobs.PENDING,
            "run_at": run_at,
            "attempts": 0,
            "dedupe_key": dedupe_key,
            "created_at": now,
            "updated_at": now,
        }
        for workspace_id, payload, run_at, dedupe_key in items
    ]
    if rows:
        await session.execute(insert(jobs.TABLE), rows)
        session.info[JOBS_QUEUED] = True  # as `jobs.enqueue` does: the scheduler wakes on commit


async def already_sent(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    type_: str,
    resource_id: uuid.UUID,
) -> list[dict[str, Any]]:
    """The `data` of the notifications of this type about this record (a job's replay guard)."""
    stmt = select(t.c.data).where(
        t.c.workspace_id == workspace_id, t.c.resource_id == resource_id, t.c.type == type_
    )
    return list((await session.execute(stmt)).scalars())
