"""The relay's and the scheduler's claims read only pending work, through partial indexes in the
order they claim it: their cost does not grow with the dispatched events and finished jobs that
accumulate (on PostgreSQL a full index on `dispatched_at` let the planner scan the event table on
every poll)."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.core import outbox
from rapport.core.db import Database
from rapport.core.jobs import JobRunner
from rapport.core.outbox import Relay, SubscriberRegistry
from tests.core.test_outbox import create_contacts
from tests.factories import register
from tests.query_plans import captured, plan_of


async def test_the_relay_claims_through_the_pending_index(database: Database) -> None:
    with captured(database, "FROM event", "dispatched_at IS NULL", "ORDER BY") as statements:
        await Relay(database, registry=SubscriberRegistry()).run_once()
    assert len(statements) == 1
    plan = await plan_of(database, statements[0])
    assert "ix_event_pending" in plan.indexes(), f"{statements[0].sql}\n{plan}"
    assert not plan.sorts(), f"{statements[0].sql}\n{plan}"


async def test_the_scheduler_claims_through_the_due_index(database: Database) -> None:
    with captured(database, "FROM job", "ORDER BY") as statements:
        await JobRunner(database).claim()
    assert len(statements) == 1
    plan = await plan_of(database, statements[0])
    assert "ix_job_due" in plan.indexes(), f"{statements[0].sql}\n{plan}"
    assert not plan.sorts(), f"{statements[0].sql}\n{plan}"


async def test_the_relay_marks_its_batch_through_the_pending_index(
    client: Any, database: Database
) -> None:
    """The batch is marked dispatched by one statement whose generic plan reads the pending index
    (an IN list of a workspace's ids read all that workspace's events through the primary key)."""
    await Relay(database, registry=SubscriberRegistry()).run_all()
    account = await register(client)
    await create_contacts(client, account, 3)
    with captured(database, "UPDATE event") as statements:
        assert await Relay(database, registry=SubscriberRegistry()).run_once() >= 3
    assert len(statements) == 1
    plan = await plan_of(database, statements[0])
    assert "ix_event_pending" in plan.indexes(), f"{statements[0].sql}\n{plan}"


async def test_the_audit_reads_the_pending_events_through_their_index(
    client: Any, database: Database, backend: str
) -> None:
    """A batch of updates waits for relays holding earlier events of its records: it finds
    them among the pending events, read in id order through ix_event_pending (filtered by
    record instead, a planner without statistics read the whole event table for each batch)."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer: a relay never waits for another")
    await Relay(database, registry=SubscriberRegistry()).run_all()
    account = await register(client)
    [contact] = await create_contacts(client, account, 1)
    r = await client.patch(
        f"/api/v1/contacts/{contact}", json={"job_title": "CTO"}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    registry = SubscriberRegistry()
    registry.durable["audit"] = outbox.subscribers.durable["audit"]
    with captured(database, "FROM event", "dispatched_at IS NULL", "LIMIT") as statements:
        assert await Relay(database, registry=registry).run_all() >= 2
    waits = [s for s in statements if "resource_id" in s.sql and "SKIP LOCKED" not in s.sql]
    assert waits, [s.sql for s in statements]
    for statement in waits:
        plan = await plan_of(database, statement)
        assert "ix_event_pending" in plan.indexes(), f"{statement.sql}\n{plan}"
        assert not plan.sorts(), f"{statement.sql}\n{plan}"
