"""Durable background jobs: the `job` table is the record of what must happen; taskiq only wakes
the workers that do it.

A domain registers a handler for a kind (`@handler("webhooks.deliver", schedule=[...])`) and
enqueues work with `enqueue(session, kind, payload)` in the transaction of the change that asks for
it, so a job exists if and only if that change committed. Delayed jobs (`run_at`) and retries are
rows too, so they survive restarts.

Execution: `JobRunner.claim()` marks due jobs `running` under a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite serialises writers), then each is executed by `JobRunner.execute()`: the handler
runs outside any transaction of the runner's (it opens its own with `ctx.transaction()`, so no
database lock is held across an HTTP call), then the outcome is written: `done`, rescheduled with
the kind's backoff, or `dead` after the last attempt. A process that dies mid-job leaves a lease
that expires; the job is claimed again (at-least-once: handlers must be idempotent).
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    String,
    Text,
    and_,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.clock import utcnow
from rapport.core.db import JOBS_QUEUED, Database
from rapport.core.ids import new_id
from rapport.core.models import Base, JSONType, UTCDateTime
from rapport.core.observability import log

PENDING, RUNNING, DONE, DEAD = "pending", "running", "done", "dead"


class Job(Base):
    """Not a tenant table: some jobs belong to no workspace (maintenance); those that do carry it
    for scoping and for the operator's eyes."""

    __tablename__ = "job"
    __table_args__ = (
        # Only jobs that may still run, in due order: the scheduler's claim does not read the
        # finished ones, which accumulate.
        Index(
            "ix_job_due",
            "run_at",
            "id",
            postgresql_where=text("status IN ('pending', 'running')"),
            sqlite_where=text("status IN ('pending', 'running')"),
        ),
        Index("ix_job_dedupe", "kind", "dedupe_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    workspace_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


TABLE = Job.__table__

Clock = Callable[[], datetime]
DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)


class Retry(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a handler to run again at a given time without counting a failure's backoff."""

    def __init__(self, at: datetime, reason: str = "") -> None:
        super().__init__(reason)
        self.at = at


@dataclass
class JobContext:
    """What a handler gets: its job, the clock, the database and the process's shared services."""

    job_id: uuid.UUID
    kind: str
    workspace_id: uuid.UUID | None
    payload: dict[str, Any]
    attempt: int  # 1 for the first run
    final: bool  # no retry after this one if it fails
    now: Clock
    db: Database
    services: dict[str, Any]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction that commits when the block ends without an exception; the
        events it recorded and the jobs it queued then wake their loops, as a request's do."""
        async with self.db.write_sessions() as session:
            async with session.begin():
                yield session
            self.db.committed(session)


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    name: str
    run: Handler
    schedule: tuple[timedelta, ...]  # waits before attempts 2, 3, ...; its length + 1 = attempts
    lease: timedelta
    on_dead: Callable[[JobContext, str], Awaitable[None]] | None = None


@dataclass
class Registry:
    kinds: dict[str, Kind] = field(default_factory=dict)

    def handler(
        self,
        name: str,
        *,
        schedule: Sequence[timedelta] = DEFAULT_SCHEDULE,
        lease: timedelta = timedelta(minutes=5),
        on_dead: Callable[[JobContext, str], Awaitable[None]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.kinds[name] = Kind(name, fn, tuple(schedule), lease, on_dead)
            return fn

        return register


registry = Registry()
handler = registry.handler


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    workspace_id: uuid.UUID | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> uuid.UUID:
    """Add a job in the caller's transaction. With `dedupe_key`, a second job of the same kind and
    key is refused by the unique index (the caller decides whether that is an error)."""
    stamp = now or utcnow()
    job_id = new_id()
    await session.execute(
        insert(TABLE).values(
            id=job_id,
            kind=kind,
            workspace_id=workspace_id,
            payload=payload,
            status=PENDING,
            run_at=run_at or stamp,
            attempts=0,
            dedupe_key=dedupe_key,
            created_at=stamp,
            updated_at=stamp,
        )
    )
    session.info[JOBS_QUEUED] = True
    return job_id


async def enqueue_many(
    session: AsyncSession,
    kind: str,
    items: Sequence[tuple[uuid.UUID | None, dict[str, Any]]],
    *,
    now: datetime | None = None,
) -> None:
    """One job per `(workspace_id, payload)`, in one batched statement."""
    stamp = now or utcnow()
    rows = [
        {
            "id": new_id(),
            "kind": kind,
            "workspace_id": workspace_id,
            "payload": payload,
            "status": PENDING,
            "run_at": stamp,
            "attempts": 0,
            "dedupe_key": None,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for workspace_id, payload in items
    ]
    if rows:
        await session.execute(insert(TABLE), rows)
        session.info[JOBS_QUEUED] = True


class JobRunner:
    """Claims due jobs and executes them; the same code serves the API process (in-process broker),
    `rapport worker` (taskiq-redis) and tests (which call `run_due()` with a controllable clock)."""

    def __init__(
        self,
        db: Database,
        *,
        now: Clock = utcnow,
        services: dict[str, Any] | None = None,
        registry_: Registry | None = None,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.now = now
        self.services = services if services is not None else {}
        self.registry = registry_ or registry
        self.batch = batch

    async def claim(self, limit: int | None = None) -> list[uuid.UUID]:
        """Mark up to `limit` due jobs running under their lease; returns their ids in due order.
        Jobs whose lease ran out (their worker died) are due again."""
        now = self.now()
        # The statuses are inline literals: only then can the planner match the partial index
        # of jobs that may still run (ix_job_due) to a prepared statement.
        pending, running = (literal(s, literal_execute=True) for s in (PENDING, RUNNING))
        due = and_(
            TABLE.c.status.in_((pending, running)),  # the index's own predicate (SQLite)
            or_(
                and_(TABLE.c.status == pending, TABLE.c.run_at <= now),
                and_(TABLE.c.status == running, TABLE.c.locked_until < now),
            ),
        )
        pick = (
            select(TABLE.c.id, TABLE.c.kind)
            .where(due)
            .order_by(TABLE.c.run_at, TABLE.c.id)
            .limit(limit or self.batch)
        )
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.write_sessions() as session, session.begin():
            rows = (await session.execute(pick)).all()
            if not rows:
                return []
            by_lease: dict[timedelta, list[uuid.UUID]] = {}
            for job_id, kind in rows:
                spec = self.registry.kinds.get(kind)
                lease = spec.lease if spec else timedelta(minutes=5)
                by_lease.setdefault(lease, []).append(job_id)
            for lease, ids in by_lease.items():
                await session.execute(
                    update(TABLE)
                    .where(TABLE.c.id.in_(ids))
                    .values(
                        status=RUNNING,
                        locked_until=now + lease,
                        attempts=TABLE.c.attempts + 1,
                        updated_at=now,
                    )
                )
        return [row[0] for row in rows]

    async def execute(self, job_id: uuid.UUID) -> str | None:
        """Run one claimed job and record its outcome; returns the new status (None if the job is
        not running any more, e.g. a duplicate wake-up)."""
        async with self.db.read_sessions() as session:
            row = (
                (await session.execute(select(TABLE).where(TABLE.c.id == job_id)))
                .mappings()
                .first()
            )
        if row is None or row["status"] != RUNNING:
            return None
        spec = self.registry.kinds.get(row["kind"])
        attempt = row["attempts"]
        schedule = spec.schedule if spec else ()
        ctx = JobContext(
            job_id=job_id,
            kind=row["kind"],
            workspace_id=row["workspace_id"],
            payload=row["payload"],
            attempt=attempt,
            final=attempt > len(schedule),
            now=self.now,
            db=self.db,
            services=self.services,
        )
        values: dict[str, Any]
        try:
            if spec is None:
                raise LookupError(f"no handler for job kind {row['kind']!r}")
            await spec.run(ctx)
            values = {"status": DONE, "locked_until": None, "last_error": None}
        except Retry as again:
            values = {
                "status": PENDING,
                "run_at": again.at,
                "locked_until": None,
                "attempts": TABLE.c.attempts - 1,  # a deliberate wait is not a failed attempt
                "last_error": str(again) or None,
            }
        except Exception as exc:  # noqa: BLE001 - any failure is the job's, recorded on its row
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
            log.warning("job_failed", kind=row["kind"], job_id=str(job_id), error=error)
            if attempt <= len(schedule):
                values = {
                    "status": PENDING,
                    "run_at": self.now() + schedule[attempt - 1],
                    "locked_until": None,
                    "last_error": error,
                }
            else:
                values = {"status": DEAD, "locked_until": None, "last_error": error}
                if spec is not None and spec.on_dead is not None:
                    try:
                        await spec.on_dead(ctx, error)
                    except Exception as dead_exc:  # noqa: BLE001
                        log.error("job_on_dead_failed", kind=row["kind"], error=repr(dead_exc))
        async with self.db.write_sessions() as session, session.begin():
            await session.execute(
                update(TABLE)
                .where(TABLE.c.id == job_id, TABLE.c.status == RUNNING)
                .values(updated_at=self.now(), **values)
            )
        return values["status"]

    async def run_due(self, limit: int = 1000) -> int:
        """Claim and execute due jobs one batch at a time until none is due (tests, `drain`)."""
        done = 0
        while done < limit:
            ids = await self.claim()
            if not ids:
                break
            for job_id in ids:
                await self.execute(job_id)
                done += 1
        return done

    async def next_due(self) -> datetime | None:
        async with self.db.read_sessions() as session:
            return (
                await session.execute(
                    select(TABLE.c.run_at)
                    .where(TABLE.c.status == PENDING)
                    .order_by(TABLE.c.run_at)
                    .limit(1)
                )
            ).scalar()
