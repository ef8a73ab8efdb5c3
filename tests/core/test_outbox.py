"""The outbox relay and durable jobs, on both backends: events reach subscribers in order, exactly
once, after a crash too; a failing subscriber is retried alone; jobs back off on a controllable
clock, die after their last attempt, and are taken again when their worker's lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from rapport.core import events, jobs
from rapport.core.background import Background
from rapport.core.db import Database, UnitOfWork
from rapport.core.events import TABLE as EVENTS
from rapport.core.outbox import (
    REDELIVER,
    DomainEvent,
    Relay,
    RelayContext,
    SubscriberRegistry,
    matches,
    redeliver,
)
from tests.clock import FakeClock
from tests.conftest import base_settings
from tests.factories import Account, register


async def create_contacts(client: Any, account: Account, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = await client.post(
            "/api/v1/contacts", json={"first_name": f"C{i}"}, headers=account.headers
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["id"])
    return ids


async def until(predicate: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polled: what it waits for sets no event
            await asyncio.sleep(0.01)


async def commit_to_relay(
    client: Any, account: Account, relayed_at: Callable[[], float | None]
) -> float:
    """Seconds from one contact's commit to `relayed_at()`: when a relay run took it."""
    committed = asyncio.get_running_loop().time()
    await create_contacts(client, account, 1)
    await until(lambda: relayed_at() is not None)
    at = relayed_at()
    assert at is not None
    return at - committed


@contextlib.asynccontextmanager
async def running(background: Background, db: Database) -> AsyncIterator[Background]:
    await background.start()
    try:
        yield background
    finally:
        await background.stop()
        background.detach()


def first_relayed(runs: list[tuple[float, int]]) -> Callable[[], float | None]:
    return lambda: next((started for started, n in runs if n), None)


def timed_background(
    relay_db: Database, database_url: str, linger: float, **overrides: Any
) -> tuple[Background, list[tuple[float, int]]]:
    """A background that polls rarely, and the (start, events) of each of its relay runs."""
    settings = base_settings(
        database_url=database_url,
        outbox_poll_seconds=30,
        jobs_poll_seconds=30,
        background_linger_seconds=linger,
        **overrides,
    )
    background = Background(settings, relay_db)
    runs: list[tuple[float, int]] = []
    run_once = background.relay.run_once
    clock = asyncio.get_running_loop().time

    async def timed() -> int:
        started = clock()
        n = await run_once()
        runs.append((started, n))
        return n

    background.relay.run_once = timed  # type: ignore[method-assign]
    return background, runs


def mine(events: list[DomainEvent], account: Account) -> list[DomainEvent]:
    return [e for e in events if str(e.workspace_id) == account.workspace_id]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.seen: list[DomainEvent] = []
        self.fail = fail  # how many calls fail before the subscriber recovers

    async def __call__(self, ctx: RelayContext, events: list[DomainEvent]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("receiver down")
        self.seen.extend(events)


@pytest.fixture
async def relay_db(database: Database) -> AsyncIterator[Database]:
    # Earlier tests left events pending: dispatch them so each test sees only its own.
    await Relay(database, registry=SubscriberRegistry()).run_all()
    yield database


def test_patterns() -> None:
    assert matches(["*"], "contact.created")
    assert matches(["contact.*"], "contact.updated")
    assert not matches(["contact.*"], "company.created")
    assert matches(["lead.converted"], "lead.converted")
    assert not matches(["lead.converted"], "lead.created")


async def test_events_reach_subscribers_in_order_once(client: Any, relay_db: Database) -> None:
    account = await register(client)
    ids = await create_contacts(client, account, 5)
    registry = SubscriberRegistry()
    contacts, everything = Recorder(), Recorder()
    registry.subscriber("contacts", "contact.*")(contacts)
    registry.subscriber("all")(everything)
    relay = Relay(relay_db, registry=registry)
    assert await relay.run_all() >= 5
    got = mine(contacts.seen, account)
    assert [str(e.resource_id) for e in got] == ids
    assert all(e.type == "contact.created" for e in got)
    assert [e.data["id"] for e in got] == ids  # the payload is the resource as the API returns it
    assert got[0].actor_type == "user" and str(got[0].actor_id) == account.user["id"]
    assert len({e.id for e in got}) == 5
    assert {e.id for e in mine(everything.seen, account)} >= {e.id for e in got}
    assert await relay.run_all() == 0  # nothing twice
    assert len(mine(contacts.seen, account)) == 5


async def test_a_crash_before_dispatch_loses_nothing(client: Any, relay_db: Database) -> None:
    account = await register(client)
    ids = await create_contacts(client, account, 3)

    async def crash(ctx: RelayContext, events: list[DomainEvent]) -> None:
        raise Crash  # the process dies mid-relay: not a failure the relay can isolate

    crashing = SubscriberRegistry()
    crashing.subscriber("crash")(crash)
    with pytest.raises(Crash):
        await Relay(relay_db, registry=crashing).run_once()

    after_restart = SubscriberRegistry()
    recorder = Recorder()
    after_restart.subscriber("rec", "contact.*")(recorder)
    await Relay(relay_db, registry=after_restart).run_all()
    assert [str(e.resource_id) for e in mine(recorder.seen, account)] == ids


async def test_a_failing_subscriber_does_not_hold_back_the_others(
    client: Any, relay_db: Database
) -> None:
    account = await register(client)
    ids = await create_contacts(client, account, 2)
    registry = SubscriberRegistry()
    healthy, flaky = Recorder(), Recorder(fail=2)
    registry.subscriber("healthy", "contact.*")(healthy)
    registry.subscriber("flaky", "contact.*")(flaky)
    clock = FakeClock()
    relay = Relay(relay_db, registry=registry, now=clock)
    await relay.run_all()
    assert [str(e.resource_id) for e in mine(healthy.seen, account)] == ids
    assert mine(flaky.seen, account) == []

    # The flaky subscriber is retried alone, one job per event, on the backoff schedule.
    test_jobs = jobs.Registry()
    schedule = jobs.registry.kinds[REDELIVER].schedule
    test_jobs.handler(REDELIVER, schedule=schedule)(_redeliver_with(registry))
    runner = jobs.JobRunner(relay_db, now=clock, registry_=test_jobs)
    await _only_mine(relay_db, account)
    assert await runner.run_due() == 2  # first retry: flaky fails once more (fail=1 left)
    assert len(mine(flaky.seen, account)) == 1  # the second event's call succeeded
    assert await runner.run_due() == 0  # the failed one waits for its backoff
    clock.advance(seconds=schedule[0].total_seconds())
    assert await runner.run_due() == 1
    assert sorted(str(e.resource_id) for e in mine(flaky.seen, account)) == sorted(ids)
    assert len(mine(healthy.seen, account)) == 2  # the healthy one never saw a repeat


async def test_a_deadlocked_subscriber_gives_the_whole_batch_back(
    client: Any, relay_db: Database
) -> None:
    """Two relays' audit waits can deadlock; the victim's batch is rolled back whole and relayed
    again, instead of one redelivery job per event of the batch."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    account = await register(client)
    ids = await create_contacts(client, account, 3)
    registry = SubscriberRegistry()
    healthy = Recorder()
    victim_calls = 0

    async def victim(ctx: RelayContext, events: list[DomainEvent]) -> None:
        nonlocal victim_calls
        victim_calls += 1
        if victim_calls == 1:
            raise DBAPIError("SELECT", None, asyncpg.exceptions.DeadlockDetectedError("deadlock"))

    registry.subscriber("healthy", "contact.*")(healthy)
    registry.subscriber("victim", "contact.*")(victim)
    relay = Relay(relay_db, registry=registry)
    assert await relay.run_once() == 0  # given back
    async with relay_db.write_sessions() as session:
        pending = await session.execute(
            select(EVENTS.c.id).where(
                EVENTS.c.dispatched_at.is_(None),
                EVENTS.c.resource_id.in_([uuid.UUID(i) for i in ids]),
            )
        )
        assert len(pending.all()) == 3
        queued = await session.execute(
            select(jobs.TABLE.c.id).where(
                jobs.TABLE.c.kind == REDELIVER,
                jobs.TABLE.c.workspace_id == uuid.UUID(account.workspace_id),
            )
        )
        assert not [r for r in queued.all()]
    assert await relay.run_all() >= 3
    assert victim_calls == 2
    # The healthy subscriber ran in the rolled-back transaction too (its writes went with it).
    assert [str(e.resource_id) for e in mine(healthy.seen, account)] == ids + ids


def _redeliver_with(registry: SubscriberRegistry) -> jobs.Handler:
    """The production redeliver handler, resolving subscribers from a test registry."""

    async def run(ctx: jobs.JobContext) -> None:
        from rapport.core import outbox

        saved = outbox.subscribers
        outbox.subscribers = registry
        try:
            await redeliver(ctx)
        finally:
            outbox.subscribers = saved

    return run


async def _only_mine(db: Database, account: Account) -> None:
    """Jobs of other workspaces (left by other tests) are set aside for this test's runner."""
    async with db.write_sessions() as session, session.begin():
        await session.execute(
            update(jobs.TABLE)
            .where(
                jobs.TABLE.c.status == jobs.PENDING,
                (jobs.TABLE.c.workspace_id != uuid.UUID(account.workspace_id))
                | jobs.TABLE.c.workspace_id.is_(None),
            )
            .values(status="parked")
        )


class TestJobs:
    async def _runner(self, db: Database, clock: FakeClock, registry: jobs.Registry) -> Any:
        async with db.write_sessions() as session, session.begin():
            await session.execute(
                update(jobs.TABLE)
                .where(jobs.TABLE.c.status == jobs.PENDING)
                .values(status="parked")
            )
        return jobs.JobRunner(db, now=clock, registry_=registry)

    async def _status(self, db: Database, job_id: uuid.UUID) -> dict[str, Any]:
        async with db.read_sessions() as session:
            row = (
                (await session.execute(select(jobs.TABLE).where(jobs.TABLE.c.id == job_id)))
                .mappings()
                .one()
            )
        return dict(row)

    async def _enqueue(self, db: Database, kind: str, **kw: Any) -> uuid.UUID:
        async with db.write_sessions() as session, session.begin():
            return await jobs.enqueue(session, kind, {"n": 1}, **kw)

    async def test_a_jobs_transaction_wakes_the_loops_after_its_commit(
        self, client: Any, database: Database
    ) -> None:
        """What a job's transaction records or queues wakes the relay and the scheduler when it
        commits, as a request's does (not at their next poll); a failed one wakes nothing."""
        clock = FakeClock()
        registry = jobs.Registry()
        woken: list[str] = []
        workspace_id = uuid.UUID((await register(client)).workspace_id)

        @registry.handler("t.writes")
        async def writes(ctx: jobs.JobContext) -> None:
            async with ctx.transaction() as session:
                assert woken == []  # not before the commit
                await jobs.enqueue(session, "t.parked", {}, run_at=clock() + timedelta(days=1))
                await events.record(session, workspace_id=workspace_id, type="t.written", data={})
            if ctx.payload.get("fail"):
                async with ctx.transaction() as session:
                    await events.record(session, workspace_id=workspace_id, type="t.x", data={})
                    raise RuntimeError("rolled back")

        runner = await self._runner(database, clock, registry)
        database.on_events_committed.append(lambda: woken.append("relay"))
        database.on_jobs_committed.append(lambda: woken.append("scheduler"))
        try:
            await self._enqueue(database, "t.writes", now=clock())
            assert await runner.run_due() == 1
            assert sorted(woken) == ["relay", "scheduler"]
            woken.clear()
            async with database.write_sessions() as session, session.begin():
                await jobs.enqueue(session, "t.writes", {"fail": True}, now=clock())
            assert await runner.run_due() == 1
            assert sorted(woken) == ["relay", "scheduler"]  # the first transaction's only
        finally:
            database.on_events_committed.pop()
            database.on_jobs_committed.pop()
            async with database.write_sessions() as session, session.begin():
                await session.execute(delete(jobs.TABLE).where(jobs.TABLE.c.kind == "t.parked"))

    async def test_backoff_then_success(self, database: Database) -> None:
        clock = FakeClock()
        registry = jobs.Registry()
        calls: list[tuple[int, bool]] = []

        @registry.handler("t.flaky", schedule=[timedelta(seconds=10), timedelta(minutes=1)])
        async def flaky(ctx: jobs.JobContext) -> None:
            calls.append((ctx.attempt, ctx.final))
            if ctx.attempt < 3:
                raise RuntimeError("not yet")

        runner = await self._runner(database, clock, registry)
        job_id = await self._enqueue(database, "t.flaky", now=clock())
        assert await runner.run_due() == 1
        row = await self._status(database, job_id)
        assert row["status"] == "pending" and "not yet" in row["last_error"]
        assert row["run_at"] == clock() + timedelta(seconds=10)
        clock.advance(seconds=9)
        assert await runner.run_due() == 0
        clock.advance(seconds=1)
        assert await runner.run_due() == 1
        clock.advance(seconds=59)
        assert await runner.run_due() == 0
        clock.advance(seconds=1)
        assert await runner.run_due() == 1
        assert calls == [(1, False), (2, False), (3, True)]
        row = await self._status(database, job_id)
        assert row["status"] == "done" and row["attempts"] == 3

    async def test_dead_after_the_last_attempt(self, database: Database) -> None:
        clock = FakeClock()
        registry = jobs.Registry()
        dead: list[str] = []

        async def on_dead(ctx: jobs.JobContext, error: str) -> None:
            dead.append(error)

        @registry.handler("t.broken", schedule=[timedelta(seconds=1)], on_dead=on_dead)
        async def broken(ctx: jobs.JobContext) -> None:
            raise ValueError("always")

        runner = await self._runner(database, clock, registry)
        job_id = await self._enqueue(database, "t.broken", now=clock())
        await runner.run_due()
        clock.advance(seconds=1)
        await runner.run_due()
        row = await self._status(database, job_id)
        assert row["status"] == "dead" and row["attempts"] == 2
        assert len(dead) == 1 and "always" in dead[0]
        clock.advance(days=1)
        assert await runner.run_due() == 0

    async def test_an_expired_lease_is_claimed_again(self, database: Database) -> None:
        clock = FakeClock()
        registry = jobs.Registry()
        runs: list[int] = []

        @registry.handler("t.lease", lease=timedelta(seconds=30))
        async def work(ctx: jobs.JobContext) -> None:
            runs.append(ctx.attempt)

        runner = await self._runner(database, clock, registry)
        job_id = await self._enqueue(database, "t.lease", now=clock())
        assert await runner.claim() == [job_id]  # a worker takes it, then dies
        assert await runner.claim() == []  # leased: nobody else takes it
        clock.advance(seconds=31)
        assert await runner.run_due() == 1
        assert runs == [2]
        assert (await self._status(database, job_id))["status"] == "done"

    async def test_concurrent_claims_never_share_a_job(self, database: Database) -> None:
        clock = FakeClock()
        registry = jobs.Registry()
        registry.handler("t.share")(_noop)
        runner = await self._runner(database, clock, registry)
        ids = {await self._enqueue(database, "t.share", now=clock()) for _ in range(30)}
        claims = await asyncio.gather(*(runner.claim(limit=4) for _ in range(12)))
        taken = [job_id for claim in claims for job_id in claim]
        assert len(taken) == len(set(taken)) == 30
        assert set(taken) == ids

    async def test_retry_waits_without_counting_an_attempt(self, database: Database) -> None:
        clock = FakeClock()
        registry = jobs.Registry()

        @registry.handler("t.wait", schedule=[])
        async def wait(ctx: jobs.JobContext) -> None:
            if ctx.payload.get("n") == 1 and clock() < start + timedelta(minutes=5):
                raise jobs.Retry(start + timedelta(minutes=5), "not before five minutes")

        start = clock()
        runner = await self._runner(database, clock, registry)
        job_id = await self._enqueue(database, "t.wait", now=clock())
        await runner.run_due()
        row = await self._status(database, job_id)
        assert row["status"] == "pending" and row["attempts"] == 0
        clock.advance(minutes=5)
        await runner.run_due()
        assert (await self._status(database, job_id))["status"] == "done"

    async def test_unknown_kind_fails_without_crashing(self, database: Database) -> None:
        clock = FakeClock()
        runner = await self._runner(database, clock, jobs.Registry())
        job_id = await self._enqueue(database, "t.nobody", now=clock())
        await runner.run_due()
        row = await self._status(database, job_id)
        assert row["status"] == "dead" and "no handler" in row["last_error"]


async def _noop(ctx: jobs.JobContext) -> None:
    return None


async def test_the_background_loops_relay_commits_at_once(
    client: Any, relay_db: Database, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the loops running (as in `make run`), a commit wakes the relay: no waiting for a poll,
    and the jobs a subscriber queues run through taskiq's in-process broker (which keeps no
    results, and does not log an error for each job trying to)."""
    caplog.set_level(logging.WARNING)
    settings = base_settings(
        database_url=database_url, outbox_poll_seconds=30, jobs_poll_seconds=30
    )
    background = Background(settings, relay_db)
    seen = asyncio.Event()
    ran = asyncio.Event()
    account = await register(client)
    from rapport.core import outbox

    async def subscriber(ctx: RelayContext, events: list[DomainEvent]) -> None:
        for event in events:
            if str(event.workspace_id) == account.workspace_id:
                await jobs.enqueue(
                    ctx.session, "t.background", {"id": str(event.id)}, now=ctx.now()
                )
                seen.set()

    @jobs.handler("t.background")
    async def job(ctx: jobs.JobContext) -> None:
        ran.set()

    outbox.subscribers.subscriber("t.background", "contact.*")(subscriber)
    await background.start()
    try:
        await create_contacts(client, account, 1)
        await asyncio.wait_for(seen.wait(), timeout=5)
        await asyncio.wait_for(ran.wait(), timeout=5)
        await asyncio.sleep(0.1)  # the broker's own bookkeeping after the job
        assert not [r.getMessage() for r in caplog.records if r.name.startswith("taskiq")]
    finally:
        outbox.subscribers.durable.pop("t.background", None)
        jobs.registry.kinds.pop("t.background", None)
        await background.stop()
        background.detach()


async def test_a_backlog_is_relayed_batch_after_batch_without_pauses(
    client: Any, relay_db: Database, database_url: str
) -> None:
    """A full batch means more is pending: the next runs at once, not a linger later."""
    linger = 0.5
    background, runs = timed_background(relay_db, database_url, linger, outbox_batch_size=5)
    account = await register(client)
    await create_contacts(client, account, 12)  # pending: no relay runs yet
    async with running(background, relay_db):
        await until(lambda: sum(n for _, n in runs) >= 12)
    full = [started for started, n in runs if n]
    assert len(full) >= 3, runs
    assert full[-1] - full[0] < linger, runs


async def test_a_busy_relay_takes_commits_in_batches(
    client: Any, relay_db: Database, database_url: str
) -> None:
    """Under a stream of commits the relay runs at most once per linger interval and takes what
    accumulated as one batch, instead of a transaction per commit; every event is still relayed,
    and the first commit after a quiet spell is relayed at once."""
    linger = 0.3
    background, runs = timed_background(relay_db, database_url, linger)
    account = await register(client)
    async with running(background, relay_db):
        await asyncio.sleep(linger)  # quiet: the next commit is relayed without waiting
        latency = await commit_to_relay(client, account, first_relayed(runs))
        assert latency < linger / 2, (latency, runs)
        await create_contacts(client, account, 12)
        for _ in range(100):
            if sum(n for _, n in runs) >= 13:
                break
            await asyncio.sleep(0.1)
    assert sum(n for _, n in runs) >= 13
    starts = [started for started, _ in runs]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= linger * 0.9, runs  # never more often than once per linger
    assert len([n for _, n in runs if n]) < 13, runs  # so commits shared batches
    async with relay_db.read_sessions() as session:
        pending = (
            await session.execute(
                select(EVENTS.c.id).where(
                    EVENTS.c.workspace_id == uuid.UUID(account.workspace_id),
                    EVENTS.c.dispatched_at.is_(None),
                )
            )
        ).all()
    assert pending == []


async def test_events_stay_pending_until_dispatched(client: Any, relay_db: Database) -> None:
    account = await register(client)
    await create_contacts(client, account, 1)
    async with relay_db.read_sessions() as session:
        rows = (
            await session.execute(
                select(EVENTS.c.dispatched_at).where(
                    EVENTS.c.workspace_id == uuid.UUID(account.workspace_id)
                )
            )
        ).all()
    assert rows and all(r[0] is None for r in rows)


async def test_in_process_jobs_never_take_more_than_half_the_pool(
    relay_db: Database, database_url: str
) -> None:
    """A burst of due jobs (a failed batch queues one redelivery per event) runs a few at a
    time: each in-process job holds a pooled connection, and requests need the rest."""
    settings = base_settings(
        database_url=database_url, db_pool_size=4, outbox_poll_seconds=30, jobs_poll_seconds=30
    )
    background = Background(settings, relay_db)
    assert background.capacity == 2
    running, most, done = 0, 0, asyncio.Event()
    finished: list[str] = []

    @jobs.handler("t.bounded")
    async def job(ctx: jobs.JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        finished.append(ctx.payload["n"])
        if len(finished) == 12:
            done.set()

    async with relay_db.write_sessions() as session, session.begin():
        await jobs.enqueue_many(session, "t.bounded", [(None, {"n": str(i)}) for i in range(12)])
    await background.start()
    try:
        background.wake()
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        jobs.registry.kinds.pop("t.bounded", None)
        await background.stop()
        background.detach()
    assert sorted(finished, key=int) == [str(i) for i in range(12)]
    assert most == 2


async def test_commits_wake_the_relay_and_the_scheduler_for_their_own_work(
    client: Any, relay_db: Database
) -> None:
    """A commit that recorded events wakes the relays, one that queued jobs the schedulers; a
    request's event sends no scheduler looking for jobs, and a relay batch wakes the scheduler
    only when its subscribers queued some."""
    woken = {"relay": 0, "scheduler": 0}

    def relay() -> None:
        woken["relay"] += 1

    def scheduler() -> None:
        woken["scheduler"] += 1

    relay_db.on_events_committed.append(relay)
    relay_db.on_jobs_committed.append(scheduler)
    registry = SubscriberRegistry()
    queue = {"jobs": False}

    @registry.subscriber("t.wake", "contact.*")
    async def maybe_queue(ctx: RelayContext, events: list[DomainEvent]) -> None:
        if queue["jobs"]:
            await jobs.enqueue(ctx.session, "t.wake", {}, now=ctx.now())

    try:
        account = await register(client)
        woken.update(relay=0, scheduler=0)
        await create_contacts(client, account, 1)
        assert woken == {"relay": 1, "scheduler": 0}
        assert await Relay(relay_db, registry=registry).run_all() >= 1
        assert woken == {"relay": 1, "scheduler": 0}  # a batch that queued nothing
        queue["jobs"] = True
        await create_contacts(client, account, 1)
        assert await Relay(relay_db, registry=registry).run_all() >= 1
        assert woken == {"relay": 2, "scheduler": 1}
        async with UnitOfWork.transaction(relay_db) as session:  # a job alone (an import's)
            await jobs.enqueue(session, "t.wake", {})
        assert woken == {"relay": 2, "scheduler": 2}
    finally:
        relay_db.on_events_committed.remove(relay)
        relay_db.on_jobs_committed.remove(scheduler)
        async with relay_db.write_sessions() as session, session.begin():
            await session.execute(delete(jobs.TABLE).where(jobs.TABLE.c.kind == "t.wake"))
