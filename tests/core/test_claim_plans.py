"""The relay's and the scheduler's claims read only pending work, through partial indexes in the
order they claim it: their cost does not grow with the dispatched events and finished jobs that
accumulate (on PostgreSQL a full index on `dispatched_at` let the planner scan the event table on
every poll)."""

from __future__ import annotations

from typing import Any

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
