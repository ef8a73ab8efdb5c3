"""The outbox relay: hands committed domain events to the subscribers that domains register.

Events are rows of `event` written by `events.record()` in the transaction of their change. The
relay claims the oldest undispatched events (in id order: UUIDv7, so in the order they were
recorded; `FOR UPDATE SKIP LOCKED` on PostgreSQL so several relays never take the same event) and
in the same transaction:

- calls every durable subscriber whose patterns match, with the matching events as one batch, each
  in its own savepoint. A subscriber's writes (webhook deliveries, notifications, audit entries)
  commit together with the event's `dispatched_at`, so each happens exactly once; a crash before
  that commit leaves the events pending and the relay does them again.
- when a subscriber fails, its savepoint is rolled back and one retry job per event is queued for
  that subscriber alone (kind `outbox.redeliver`, retried with backoff): one failing subscriber
  never holds back the others or the events behind it.

After the commit, live listeners (the realtime stream) get the batch: they are best-effort by
nature (a socket that is not connected cannot be delivered to later).
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import jobs
from rapport.core.clock import utcnow
from rapport.core.db import Database, UnitOfWork, dialect_name
from rapport.core.dberrors import is_deadlock
from rapport.core.events import TABLE as EVENTS
from rapport.core.observability import log
from rapport.core.sql import Query


@dataclass(frozen=True)
class DomainEvent:
    """A committed event as subscribers see it."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    type: str
    resource_id: uuid.UUID | None
    actor_type: str | None
    actor_id: uuid.UUID | None
    credential_id: uuid.UUID | None
    data: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> DomainEvent:
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            type=row["type"],
            resource_id=row["resource_id"],
            actor_type=row["actor_type"],
            actor_id=row["actor_id"],
            credential_id=row["credential_id"],
            data=row["data"],
            occurred_at=row["occurred_at"],
        )

    @property
    def timestamp(self) -> str:
        return self.occurred_at.isoformat().replace("+00:00", "Z")

    def envelope(self) -> dict[str, Any]:
        """The event as webhooks and the realtime stream carry it."""
        return {
            "id": str(self.id),
            "type": self.type,
            "timestamp": self.timestamp,
            "workspace_id": str(self.workspace_id),
            "actor": {
                "type": self.actor_type,
                "id": str(self.actor_id) if self.actor_id else None,
                "credential_id": str(self.credential_id) if self.credential_id else None,
            },
            "data": self.data,
        }


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """`*` matches everything, `contact.*` a resource's events, else the exact type."""
    return any(p == "*" or p == event_type or fnmatch.fnmatchcase(event_type, p) for p in patterns)


@dataclass
class RelayContext:
    """What a durable subscriber gets besides its events: the relay's transaction and clock."""

    session: AsyncSession
    now: Callable[[], datetime]
    services: dict[str, Any]
    # The relay's own batch: its events are pending, so nothing a subscriber writes for them
    # exists yet (a redelivery, after a subscriber failed, may find its earlier writes).
    fresh: bool = False


SubscriberFn = Callable[[RelayContext, list[DomainEvent]], Awaitable[None]]
ListenerFn = Callable[[list[DomainEvent]], Awaitable[None]]


@dataclass(frozen=True)
class Subscriber:
    name: str
    patterns: tuple[str, ...]
    handle: SubscriberFn


@dataclass
class SubscriberRegistry:
    durable: dict[str, Subscriber] = field(default_factory=dict)
    listeners: list[ListenerFn] = field(default_factory=list)

    def subscriber(self, name: str, *patterns: str) -> Callable[[SubscriberFn], SubscriberFn]:
        def register(fn: SubscriberFn) -> SubscriberFn:
            self.durable[name] = Subscriber(name, patterns or ("*",), fn)
            return fn

        return register


subscribers = SubscriberRegistry()
subscriber = subscribers.subscriber


class Relay:
    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        services: dict[str, Any] | None = None,
        registry: SubscriberRegistry | None = None,
        batch: int = 500,
    ) -> None:
        self.db = db
        self.now = now
        self.services = services if services is not None else {}
        self.registry = registry or subscribers
        self.batch = batch

    async def run_once(self) -> int:
        """Dispatch one batch of pending events; returns how many were dispatched.

        A subscriber that PostgreSQL picks as a deadlock's victim (two relays' audit waits can
        each hold what the other waits for) fails nothing: the whole batch is rolled back and
        stays pending for the next run, while the other relay goes on. Only other failures are
        the subscriber's own, redelivered event by event."""
        try:
            return await self._run_batch()
        except _Deadlock:
            log.info("relay_deadlock_retry")
            return 0

    async def _run_batch(self) -> int:
        pick = _PICK[self.db.dialect]
        # A unit of work's session: subscribers' bulk writes may run on its driver (COPY).
        async with UnitOfWork.transaction(self.db) as session:
            batch = await self._dispatch(session, pick)
        if not batch:
            return 0
        for listener in self.registry.listeners:
            try:
                await listener(batch)
            except Exception as exc:  # noqa: BLE001 - live listeners are best-effort
                log.warning("listener_failed", error=repr(exc)[:500])
        return len(batch)

    async def _dispatch(self, session: AsyncSession, pick: Query) -> list[DomainEvent]:
        """Claim a batch and hand it to every durable subscriber, in the caller's transaction."""
        rows = await pick.all(session, batch=self.batch)
        if not rows:
            return []
        batch = [DomainEvent.from_row(r) for r in rows]
        ctx = RelayContext(session=session, now=self.now, services=self.services, fresh=True)
        types = {e.type for e in batch}  # a batch holds few types: each matched once
        for sub in self.registry.durable.values():
            matched = {t for t in types if matches(sub.patterns, t)}
            wanted = [e for e in batch if e.type in matched]
            if not wanted:
                continue
            try:
                async with session.begin_nested():
                    await sub.handle(ctx, wanted)
            except Exception as exc:  # noqa: BLE001 - isolated: retried alone, below
                if is_deadlock(exc):
                    raise _Deadlock() from exc
                log.warning("subscriber_failed", subscriber=sub.name, error=repr(exc)[:500])
                await jobs.enqueue_many(
                    session,
                    REDELIVER,
                    [
                        (e.workspace_id, {"subscriber": sub.name, "event_id": str(e.id)})
                        for e in wanted
                    ],
                    now=self.now(),
                )
        await _mark_dispatched(session, [e.id for e in batch], self.now())
        return batch

    async def run_all(self, limit: int = 100_000) -> int:
        total = 0
        while total < limit:
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total


# The oldest pending events, built once (on PostgreSQL it runs on the lent driver, see
# `core.sql`); locked there, so two relays never claim the same event.
_OLDEST = (
    select(EVENTS)
    .where(EVENTS.c.dispatched_at.is_(None))
    .order_by(EVENTS.c.id)
    .limit(bindparam("batch"))
)
_PICK = {
    "postgresql": Query(_OLDEST.with_for_update(skip_locked=True)),
    "sqlite": Query(_OLDEST),
}


class _Deadlock(Exception):
    """A subscriber lost a deadlock: the relay's whole batch is given back."""


# The batch's events, found through ix_event_pending (they are pending until this statement):
# one statement of one shape for any batch. On PostgreSQL the ids are one array parameter; as
# an IN list of a workspace's ids, the prepared statement's generic plan read the whole
# workspace's events through the primary key and filtered them (100 ms for 500 of 41,000).
_MARK = {
    "postgresql": Query(
        update(EVENTS)
        .where(
            EVENTS.c.id == any_(bindparam("ids", type_=ARRAY(Uuid))),
            EVENTS.c.dispatched_at.is_(None),
        )
        .values(dispatched_at=bindparam("stamp"))
    ),
}


async def _mark_dispatched(
    session: AsyncSession, ids: Sequence[uuid.UUID], stamp: datetime
) -> None:
    mark = _MARK.get(dialect_name(session))
    if mark is not None:
        await mark.run(session, ids=list(ids), stamp=stamp)
        return
    await session.execute(
        update(EVENTS)
        .where(EVENTS.c.id.in_(ids), EVENTS.c.dispatched_at.is_(None))
        .values(dispatched_at=stamp)
    )


REDELIVER = "outbox.redeliver"


@jobs.handler(
    REDELIVER,
    schedule=(
        timedelta(seconds=5),
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(hours=12),
    ),
)
async def redeliver(ctx: jobs.JobContext) -> None:
    """One event, one subscriber, again: after that subscriber failed in the relay."""
    sub = subscribers.durable.get(ctx.payload["subscriber"])
    if sub is None:
        return  # the subscriber no longer exists: nothing to do
    event_id = uuid.UUID(ctx.payload["event_id"])
    async with ctx.transaction() as session:
        row = (
            (
                await session.execute(
                    select(EVENTS).where(
                        EVENTS.c.workspace_id == ctx.workspace_id, EVENTS.c.id == event_id
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return
        relay_ctx = RelayContext(session=session, now=ctx.now, services=ctx.services)
        await sub.handle(relay_ctx, [DomainEvent.from_row(row)])
