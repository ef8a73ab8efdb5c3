"""From committed events to signed POSTs, with retries, a log, and the disable rule.

- `fan_out` (the relay's durable subscriber): for a batch of events, one query finds the enabled
  endpoints of the batch's workspaces; each matching (event, endpoint) gets a delivery row and a
  `webhooks.deliver` job, written in the relay's transaction (so exactly once per event).
- `run_delivery` (the job): one attempt, outside any transaction (no lock is held across the
  HTTP call), then one short transaction logs it. A failure is retried on `RETRY_SCHEDULE`
  (about a day in all); after the last attempt the delivery is `failed`.
- Disable rule: an endpoint is disabled when a delivery fails for good and no attempt to the
  endpoint has succeeded since before that delivery's first attempt, i.e. the endpoint failed
  without a break for the whole retry window (`FAILURE_WINDOW`, ~27.6 h). An endpoint that
  answers some deliveries keeps running; one that is down for a day stops being retried, and
  `webhook_endpoint.disabled` is recorded (the notifications module tells the admins).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events as domain_events
from rapport.core import jobs
from rapport.core.db import Database
from rapport.core.ids import new_id
from rapport.core.outbox import DomainEvent, RelayContext, matches
from rapport.webhooks.models import FAILED, PENDING, SCHEDULED, SUCCEEDED
from rapport.webhooks.repository import (
    DeliveryRepository,
    deliveries,
    enabled_endpoints,
    endpoints,
    load_target,
)
from rapport.webhooks.schemas import endpoint_read
from rapport.webhooks.sender import AttemptResult, clean_text, sender

DELIVER = "webhooks.deliver"
TEST_EVENT = "webhook.test"
DISABLED_EVENT = "webhook_endpoint.disabled"
# Waits before attempts 2..8 (Svix's schedule): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
FAILURE_WINDOW = sum(RETRY_SCHEDULE, timedelta())
ENDPOINT_DISABLED_ERROR = "endpoint_disabled: the endpoint was disabled before this attempt"

Clock = Callable[[], datetime]


def encode_event(event: DomainEvent) -> str:
    """The delivery body: the event envelope as compact JSON (what every attempt sends)."""
    return orjson.dumps(event.envelope()).decode()


def signing_secrets(endpoint: RowMapping, now: datetime) -> list[str]:
    """The current secret, plus the previous one while a rotation's overlap lasts."""
    found = [endpoint["secret"]]
    expires = endpoint["previous_secret_expires_at"]
    if endpoint["previous_secret"] and expires is not None and expires > now:
        found.append(endpoint["previous_secret"])
    return found


def _insert(session: AsyncSession) -> Any:
    assert session.bind is not None
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def fan_out(ctx: RelayContext, batch: list[DomainEvent]) -> None:
    """Deliveries and jobs for a batch of events: one query for the endpoints, one batched
    INSERT for the deliveries (a delivery already made for an event is skipped, so a retried
    subscriber never doubles one), one for the jobs."""
    wanted = [e for e in batch if e.type != TEST_EVENT]
    if not wanted:
        return
    targets: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    for row in await enabled_endpoints(ctx.session, [e.workspace_id for e in wanted]):
        targets[row["workspace_id"]].append(row)
    if not targets:
        return
    now = ctx.now()
    rows: list[dict[str, Any]] = []
    for event in wanted:
        matching = [
            t for t in targets.get(event.workspace_id, ()) if matches(t["events"], event.type)
        ]
        if not matching:
            continue
        body = encode_event(event)
        for target in matching:
            rows.append(
                {
                    "workspace_id": event.workspace_id,
                    "id": new_id(),
                    "endpoint_id": target["id"],
                    "event_id": event.id,
                    "event_type": event.type,
                    "payload": body,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not rows:
        return
    stmt = (
        _insert(ctx.session)(deliveries)
        .on_conflict_do_nothing()
        .returning(deliveries.c.workspace_id, deliveries.c.id)
    )
    made = (await ctx.session.execute(stmt, rows)).all()
    await jobs.enqueue_many(
        ctx.session,
        DELIVER,
        [(workspace_id, {"delivery_id": str(delivery_id)}) for workspace_id, delivery_id in made],
        now=now,
    )


@dataclass
class Logged:
    """An attempt as written: the delivery after it, the attempt row, and whether it disabled
    the endpoint."""

    delivery: RowMapping
    attempt: RowMapping
    disabled: bool


async def log_attempt(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    delivery_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    result: AttemptResult,
    *,
    now: datetime,
    trigger: str,
    retry_in: timedelta | None = None,
) -> Logged | None:
    """Write one attempt and what follows from it. A scheduled attempt moves the delivery's
    status (succeeded; pending with the next attempt's time; failed after the last one); a
    redeliver or test attempt can only make it succeed. None when the delivery is gone."""
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "last_status_code": result.response_status,
        "last_error": result.error,
    }
    if result.ok:
        values.update(status=SUCCEEDED, next_attempt_at=None)
    elif trigger == SCHEDULED:
        if retry_in is not None:
            values.update(status=PENDING, next_attempt_at=now + retry_in)
        else:
            values.update(status=FAILED, next_attempt_at=None)
    repo = DeliveryRepository(session, workspace_id)
    delivery = await repo.count_attempt(delivery_id, values, now)
    if delivery is None:
        return None
    attempt = await repo.add_attempt(
        {
            "delivery_id": delivery_id,
            "attempt": delivery["attempts"],
            "trigger": trigger,
            "url": result.url,
            "request_headers": result.request_headers,
            "response_status": result.response_status,
            "response_body": result.response_body,
            "latency_ms": result.latency_ms,
            "error": result.error,
            "created_at": now,
        }
    )
    final_failure = trigger == SCHEDULED and not result.ok and retry_in is None
    disabled = await _note_health(
        session, workspace_id, endpoint_id, result, now=now, final_failure=final_failure
    )
    return Logged(delivery, attempt, disabled)


async def _note_health(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    result: AttemptResult,
    *,
    now: datetime,
    final_failure: bool,
) -> bool:
    """Keep `failing_since` (start of the current run of failures) and apply the disable rule."""
    scope = (endpoints.c.workspace_id == workspace_id, endpoints.c.id == endpoint_id)
    if result.ok:
        await session.execute(
            update(endpoints)
            .where(*scope, endpoints.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return False
    await session.execute(
        update(endpoints)
        .where(*scope, endpoints.c.failing_since.is_(None))
        .values(failing_since=now)
    )
    if not final_failure:
        return False
    hours = FAILURE_WINDOW.total_seconds() / 3600
    reason = clean_text(
        f"Every delivery attempt failed for {hours:.0f} hours; last error: {result.error}", 500
    )
    disabled = (
        (
            await session.execute(
                update(endpoints)
                .where(
                    *scope,
                    endpoints.c.enabled.is_(True),
                    endpoints.c.failing_since <= now - FAILURE_WINDOW,
                )
                .values(
                    enabled=False,
                    disabled_reason=reason,
                    disabled_at=now,
                    version=endpoints.c.version + 1,
                    updated_at=now,
                )
                .returning(endpoints)
            )
        )
        .mappings()
        .first()
    )
    if disabled is None:
        return False
    await domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DISABLED_EVENT,
        data={
            **endpoint_read(disabled),
            "endpoint_id": disabled["id"],
            "reason": reason,
        },
        resource_id=endpoint_id,
    )
    return True


class DeliveryFailed(Exception):
    """A delivery attempt failed and will be retried (the job runner's backoff applies)."""


async def run_delivery(
    db: Database,
    services: dict[str, Any],
    workspace_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    now: Clock,
    retry_in: timedelta | None,
) -> Logged | None:
    """One scheduled attempt of a pending delivery. Raises DeliveryFailed when it failed and a
    retry follows; returns what was logged otherwise (None: nothing to do)."""
    async with db.read_sessions() as session:
        target = await load_target(session, workspace_id, delivery_id)
    if target is None:
        return None  # the endpoint was deleted, and its deliveries with it
    delivery, endpoint = target
    if delivery["status"] != PENDING:
        return None  # a redeliver already got it through, or a duplicate wake-up
    if not endpoint["enabled"]:
        async with db.write_sessions() as session, session.begin():
            await DeliveryRepository(session, workspace_id).set_status(
                delivery_id,
                {"status": FAILED, "next_attempt_at": None, "last_error": ENDPOINT_DISABLED_ERROR},
                now(),
            )
        return None
    result = await sender(services).send(
        endpoint["url"],
        str(delivery["event_id"]),
        delivery["payload"],
        signing_secrets(endpoint, now()),
    )
    async with db.write_sessions() as session, session.begin():
        logged = await log_attempt(
            session,
            workspace_id,
            delivery_id,
            endpoint["id"],
            result,
            now=now(),
            trigger=SCHEDULED,
            retry_in=retry_in,
        )
    if logged is not None and logged.disabled:
        db.events_committed()  # wake the relay: webhook_endpoint.disabled is waiting
    if not result.ok and retry_in is not None:
        raise DeliveryFailed(result.error)
    return logged


async def give_up(
    db: Database, workspace_id: uuid.UUID, delivery_id: uuid.UUID, error: str, now: datetime
) -> None:
    """The job died without logging its last attempt (e.g. the database was away): the
    delivery must not stay pending for ever."""
    async with db.write_sessions() as session, session.begin():
        await session.execute(
            update(deliveries)
            .where(
                deliveries.c.workspace_id == workspace_id,
                deliveries.c.id == delivery_id,
                deliveries.c.status == PENDING,
            )
            .values(
                status=FAILED,
                next_attempt_at=None,
                last_error=clean_text(error, 1000),
                updated_at=now,
            )
        )
