"""Domain events, recorded in the same transaction as the change they describe (an outbox).

`record()` is the one function every service calls: an event exists if and only if its change
committed. Dispatch to subscribers (webhooks, realtime, workflows, notifications) reads this table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Index, String, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core import envelope
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.db import EVENTS_RECORDED, JSON_CODEC
from rapport.core.ids import new_id
from rapport.core.models import Base, JSONText, TenantMixin
from rapport.core.sql import Query, bound, copies, insert_new, values_of


class Event(TenantMixin, Base):
    __tablename__ = "event"
    # Only undispatched events, in id order: the relay's claim reads a handful of entries however
    # many events have been dispatched (a full index on dispatched_at let the planner scan them).
    __table_args__ = (
        Index(
            "ix_event_pending",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None]
    credential_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONText)  # written once, read whole
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]


TABLE = Event.__table__
_COLUMNS = (
    "workspace_id",
    "id",
    "type",
    "resource_id",
    "actor_type",
    "actor_id",
    "credential_id",
    "data",
    "occurred_at",
)
_INSERT = Query(insert(TABLE).values(bound(TABLE, _COLUMNS)))  # one event (see `core.sql`)


def jsonable(value: Any) -> Any:
    """Event payloads hold what the API returns: ids and times as strings. Done by a round trip
    through the API's own encoder (a bulk write's thousand payloads cost a tenth of the walk
    below; the driver's UUIDs included); a value it does not know is walked instead and kept as
    it is."""
    try:
        return orjson.loads(envelope.dumps(value))
    except TypeError:
        return _walk(value)


def json_text(value: Any) -> str:
    """`jsonable(value)` as the JSON text it is stored as: one encoding, no round trip."""
    try:
        return envelope.dumps(value).decode()
    except TypeError:
        return JSON_CODEC["json_serializer"](_walk(value))


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(
    workspace_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    principal: Principal | None,
    resource_id: uuid.UUID | None,
) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "id": new_id(),
        "type": type,
        "resource_id": resource_id,
        "actor_type": principal.credential if principal else None,
        "actor_id": principal.user_id if principal else None,
        "credential_id": principal.credential_id if principal else None,
        "data": jsonable(data),
        "occurred_at": utcnow(),
    }


async def record(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    principal: Principal | None = None,
    resource_id: uuid.UUID | None = None,
) -> uuid.UUID:
    row = _row(workspace_id, type, data, principal, resource_id)
    await _INSERT.run(session, **values_of(row))
    session.info[EVENTS_RECORDED] = True
    return row["id"]


async def record_many(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    type: str,
    items: Sequence[tuple[uuid.UUID | None, dict[str, Any]]],
    principal: Principal | None = None,
) -> list[uuid.UUID]:
    """One event per `(resource_id, data)` item, written in one batched statement (bulk writes);
    ids are UUIDv7 made in order, so the relay sees them in the order given. On PostgreSQL the
    payloads are copied as the JSON text they encode to, never decoded here."""
    if not items:
        return []
    if len(items) == 1:  # a single write's event: one execute, cheaper than a batch of one
        rows = [_row(workspace_id, type, items[0][1], principal, items[0][0])]
        await _INSERT.run(session, **values_of(rows[0]))
    else:
        copy = copies(session)
        encode = json_text if copy else jsonable
        occurred_at = utcnow()  # one write, one time (ids keep the order)
        actor_type = principal.credential if principal else None
        actor_id = principal.user_id if principal else None
        credential_id = principal.credential_id if principal else None
        rows = [
            {
                "workspace_id": workspace_id,
                "id": new_id(),
                "type": type,
                "resource_id": resource_id,
                "actor_type": actor_type,
                "actor_id": actor_id,
                "credential_id": credential_id,
                "data": encode(data),
                "occurred_at": occurred_at,
            }
            for resource_id, data in items
        ]
        await insert_new(
            session, TABLE, rows, returning=False, serialized=("data",) if copy else ()
        )
    session.info[EVENTS_RECORDED] = True
    return [r["id"] for r in rows]
