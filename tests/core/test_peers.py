"""Processes on one PostgreSQL database wake each other's relays (LISTEN/NOTIFY), and a process
busy with requests leaves relay batches to an idle one, for one poll interval at most."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, text

from rapport.core import background as background_module
from rapport.core import peers as peers_module
from rapport.core.background import DEFER_SECONDS, Background
from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from rapport.core.http import Activity
from rapport.core.outbox import Relay, SubscriberRegistry
from rapport.core.peers import APPLICATION_NAME, Peers
from tests.conftest import base_settings
from tests.core.test_outbox import commit_to_relay, create_contacts, until
from tests.factories import Account, register


@pytest.fixture
async def pg(database: Database, backend: str) -> AsyncIterator[Database]:
    if backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one process")
    await Relay(database, registry=SubscriberRegistry()).run_all()
    yield database


class Busy(Activity):
    """A process whose requests never end."""

    def busy(self, within: float) -> bool:
        return True


def settings_for(url: str, **overrides: Any) -> Any:
    return base_settings(
        database_url=url, jobs_poll_seconds=30, background_linger_seconds=0.01, **overrides
    )


class Counted:
    """Wraps a background's relay: when and how many events each run dispatched."""

    def __init__(self, background: Background) -> None:
        self.runs: list[tuple[float, int]] = []
        run_once = background.relay.run_once
        clock = asyncio.get_running_loop().time

        async def counted() -> int:
            n = await run_once()
            self.runs.append((clock(), n))
            return n

        background.relay.run_once = counted  # type: ignore[method-assign]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.runs)

    def first(self) -> float:
        return next(at for at, n in self.runs if n)


async def registered(client: Any, db: Database) -> Account:
    """A new account, its own events already dispatched."""
    account = await register(client)
    await Relay(db, registry=SubscriberRegistry()).run_all()
    return account


async def pending(db: Database, account: Account) -> int:
    async with db.read_sessions() as session:
        rows = await session.execute(
            select(EVENTS.c.id).where(
                EVENTS.c.workspace_id == uuid.UUID(account.workspace_id),
                EVENTS.c.dispatched_at.is_(None),
            )
        )
        return len(rows.all())


@contextlib.asynccontextmanager
async def busy_and_idle(
    pg: Database, url: str, idle_poll: float
) -> AsyncIterator[tuple[Background, Background, Counted, Counted]]:
    """Two processes' backgrounds on one database: one whose requests never end (it commits
    here, through `pg`) and an idle one with its own engine, both listening."""
    other_db = Database(base_settings(), url=url)
    busy = Background(settings_for(url, outbox_poll_seconds=30), pg, activity=Busy())
    idle = Background(settings_for(url, outbox_poll_seconds=idle_poll), other_db)
    runs = Counted(busy), Counted(idle)  # before the loops take the relays' run_once
    await busy.start()
    await idle.start()
    try:
        assert busy.peers is not None and idle.peers is not None
        await until(lambda: busy.peers.listening and idle.peers.listening)
        yield busy, idle, *runs
    finally:
        await busy.stop()
        await idle.stop()
        busy.detach()
        await other_db.dispose()


async def test_a_busy_process_leaves_its_commits_to_an_idle_peer(
    client: Any, pg: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committing process is busy and polls rarely: only the NOTIFY can have woken the
    peer, and the busy one's relay waited instead of taking the batch (given time enough here
    that a slow test machine cannot make the peer miss it)."""
    monkeypatch.setattr(background_module, "DEFER_SECONDS", 5.0)
    account = await registered(client, pg)
    async with busy_and_idle(pg, database_url, idle_poll=30) as (busy, idle, busy_runs, idle_runs):
        assert await busy.peers.refresh() == 1  # type: ignore[union-attr]
        assert await idle.peers.refresh() == 1  # type: ignore[union-attr]
        await asyncio.sleep(0.1)  # the wakes of starting up are spent
        await create_contacts(client, account, 3)
        await until(lambda: idle_runs.total >= 3)
        assert await pending(pg, account) == 0
        assert busy_runs.total == 0  # it waited, and the peer took everything


async def test_without_peers_nothing_waits(client: Any, pg: Database, database_url: str) -> None:
    alone = Background(settings_for(database_url, outbox_poll_seconds=30), pg, activity=Busy())
    runs = Counted(alone)
    account = await registered(client, pg)
    await alone.start()
    try:
        assert alone.peers is not None
        await until(lambda: alone.peers.listening)
        assert await alone.peers.refresh() == 0
        latency = await commit_to_relay(
            client, account, lambda: runs.first() if runs.total else None
        )
        assert latency < 0.5
    finally:
        await alone.stop()
        alone.detach()


async def test_a_busy_process_waits_one_poll_at_most_then_drains_the_backlog(
    client: Any, pg: Database, database_url: str
) -> None:
    """A peer that listens but does not relay (stuck, say): a woken relay of the busy process
    waits `DEFER_SECONDS` (or one poll interval, if shorter) and no more, then takes the whole
    backlog without waiting again."""
    poll = 0.6
    limit = min(poll, DEFER_SECONDS)
    silent = Peers(database_url, lambda: None)
    busy = Background(
        settings_for(database_url, outbox_poll_seconds=poll, outbox_batch_size=2),
        pg,
        activity=Busy(),
    )
    runs = Counted(busy)
    account = await registered(client, pg)
    await silent.start()
    await busy.start()
    try:
        assert busy.peers is not None
        await until(lambda: silent.listening and busy.peers.listening)
        assert await busy.peers.refresh() == 1
        clock = asyncio.get_running_loop().time
        started = clock()
        await busy._yield_to_requests()
        assert limit * 0.9 <= clock() - started < limit * 2
        busy.activity = Activity()  # idle: nothing to yield to
        started = clock()
        await busy._yield_to_requests()
        assert clock() - started < limit / 4
        busy.activity = Busy()
        runs.runs.clear()
        committed = clock()
        await create_contacts(client, account, 5)
        await until(lambda: runs.total >= 5, seconds=10)
        working = [at for at, n in runs.runs if n]
        assert working[-1] - committed < 3 * poll, runs.runs
        assert len(working) >= 3  # batches of two
        assert working[-1] - working[-3] < poll / 2, runs.runs  # one after the other
        assert await pending(pg, account) == 0
    finally:
        await busy.stop()
        await silent.stop()
        busy.detach()


async def test_the_listener_comes_back_after_its_connection_is_killed(
    client: Any, pg: Database, database_url: str
) -> None:
    account = await registered(client, pg)
    async with busy_and_idle(pg, database_url, idle_poll=0.2) as (busy, idle, _, idle_runs):
        assert busy.peers is not None and idle.peers is not None
        async with pg.write_sessions() as session, session.begin():
            killed = (
                await session.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = :name"
                    ),
                    {"name": APPLICATION_NAME},
                )
            ).all()
        assert len(killed) == 2
        async with asyncio.timeout(5):  # both reconnect, each counting the other again
            while await busy.peers.refresh() != 1 or await idle.peers.refresh() != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        idle_runs.runs.clear()
        await create_contacts(client, account, 2)
        await until(lambda: idle_runs.total >= 2)
        assert await pending(pg, account) == 0


async def test_requests_mark_their_process_busy(app: Any, client: Any) -> None:
    activity: Activity = app.state.activity
    r = await client.get("/api/v1/contacts/not-an-id")
    assert r.status_code in (401, 404, 422)
    assert activity.in_flight == 0
    assert activity.busy(10)  # one just ended
    activity.last = time.monotonic() - 1
    assert not activity.busy(0.5)
    activity.in_flight = 1
    try:
        assert activity.busy(0.0)
    finally:
        activity.in_flight = 0


async def test_processes_count_each_other_as_they_start_and_stop(
    pg: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that starts listening, or stops, says so: the others count again at once
    instead of at their next presence interval (made an hour here)."""
    monkeypatch.setattr(peers_module, "PRESENCE_SECONDS", 3600.0)
    first = Peers(database_url, lambda: None)
    second = Peers(database_url, lambda: None)
    await first.start()
    try:
        await until(lambda: first.listening)
        assert await first.refresh() == 0
        await second.start()
        await until(lambda: second.listening and second.count == 1)
        await until(lambda: first.count == 1)  # told by the newcomer, not by a timer
        await second.stop()
        await until(lambda: first.count == 0)
    finally:
        await first.stop()
        await second.stop()


async def test_notifies_are_spaced_by_the_linger(pg: Database, database_url: str) -> None:
    """The first commit after a quiet spell wakes the peers at once; the commits of the next
    `spacing` seconds share one NOTIFY at its end (a relay runs once per linger at most, so
    more would wake nothing more)."""
    spacing = 0.4
    heard: list[float] = []
    clock = asyncio.get_running_loop().time
    sender = Peers(database_url, lambda: None, spacing=spacing)
    listener = Peers(database_url, lambda: heard.append(clock()))
    await sender.start()
    await listener.start()
    try:
        await until(lambda: sender.listening and listener.listening)
        assert await sender.refresh() == 1
        heard.clear()  # a peer wakes itself once as it starts listening
        started = clock()
        for _ in range(5):  # a burst of commits
            sender.notify()
            await asyncio.sleep(0.01)
        await until(lambda: len(heard) == 1)
        assert heard[0] - started < spacing / 2
        await until(lambda: len(heard) == 2)  # the burst's others, as one
        assert heard[1] - heard[0] >= spacing * 0.9
        await asyncio.sleep(spacing * 1.5)
        assert len(heard) == 2  # nothing more was asked for
        await asyncio.sleep(spacing)  # a quiet spell: the next commit is sent at once
        again = clock()
        sender.notify()
        await until(lambda: len(heard) == 3)
        assert heard[2] - again < spacing / 2
    finally:
        await sender.stop()
        await listener.stop()
