"""The background runtime of a process: the outbox relay, the job scheduler, and the taskiq broker
that carries claimed jobs to the code that runs them.

- Embedded default: taskiq's in-process broker. The API process relays events, claims due jobs and
  runs them in its own event loop; no service is needed.
- With Redis (`RAPPORT_REDIS_URL`, or `RAPPORT_JOBS_BROKER=redis`): claimed jobs go through
  taskiq-redis to `rapport worker` processes. API processes and workers all relay and claim; the
  database decides who gets what (`SKIP LOCKED`), so any number of them can run.

The queue is never the record: a message lost with a process leaves a job whose lease runs out and
is claimed again. Commits that recorded events wake the relay at once (`Database.events_committed`);
on PostgreSQL they wake the other processes' relays too (`core.peers`, LISTEN/NOTIFY), and polling
covers whatever a wake missed. Commits that queued jobs (a request's, or a relay batch whose
subscribers queued deliveries) wake this process's scheduler; the others' find them at their next
poll, and a scheduler that claimed a full batch looks again at once.

A process serving requests leaves a relay batch to an idle peer: woken while a request is in
flight (or one ended less than `RAPPORT_BACKGROUND_LINGER_SECONDS` ago), its relay waits until the
process is idle, at most `DEFER_SECONDS` (or the poll interval), and then takes whatever is pending
(usually nothing: the idle peer took it). A relay batch is CPU work in the event loop that runs it;
this way the requests of a busy process do not wait behind it, and the work goes to a core that
had none. Without peers (one process, SQLite, `RAPPORT_OUTBOX_LISTEN=false`) nothing waits, and
once a relay has waited it drains a backlog without waiting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taskiq import AsyncBroker, InMemoryBroker

from rapport.core.aio import cancel_all
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.core.jobs import JobRunner
from rapport.core.observability import log
from rapport.core.outbox import Relay
from rapport.core.peers import Peers

if TYPE_CHECKING:
    from rapport.core.http import Activity

RUN_JOB = "rapport.run_job"
# How long a busy process leaves a woken relay batch to an idle peer: long enough for one to
# claim it (an idle relay answers a NOTIFY within milliseconds, and its batch takes tens), short
# enough that, when every process is busy, batches stay small (a batch is a pause in the loop).
DEFER_SECONDS = 0.2


def make_broker(settings: Settings) -> AsyncBroker:
    if settings.uses_redis_jobs:
        from taskiq_redis import ListQueueBroker

        return ListQueueBroker(settings.redis_url, queue_name=f"{settings.redis_key_prefix}jobs")
    # Jobs report through the database, not taskiq results; taskiq keeps the last one (with 0
    # it tries to evict from an empty store and logs an error for every job).
    return InMemoryBroker(max_stored_results=1, propagate_exceptions=False)


class Background:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        broker: AsyncBroker | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.activity = activity  # this process's requests (None: it serves none)
        self.peers: Peers | None = None  # the other processes' relays, once started
        self.services: dict[str, Any] = {"settings": settings, "db": db}
        self.relay = Relay(db, now=now, services=self.services, batch=settings.outbox_batch_size)
        self.runner = JobRunner(db, now=now, services=self.services)
        self.broker = broker or make_broker(settings)
        runner = self.runner
        # In process, each kicked job is a task of its own holding a pooled connection: the
        # scheduler claims only as many as there are free slots, half the pool at most, so a
        # burst of due jobs (a failed batch's redeliveries, 500 at once) never starves requests
        # of connections. A worker process is bounded by its receiver (`worker_concurrency`).
        self._bounded = isinstance(self.broker, InMemoryBroker)
        self.capacity = max(1, min(settings.worker_concurrency, settings.db_pool_size // 2))
        self.running = 0

        async def run_job(job_id: str) -> None:
            try:
                await runner.execute(uuid.UUID(job_id))
            finally:
                if self._bounded:
                    self.running -= 1
                    self._jobs_wake.set()  # a slot is free

        self._kick = self.broker.task(task_name=RUN_JOB)(run_job)
        self._wake = asyncio.Event()  # the relay's: events were committed
        self._jobs_wake = asyncio.Event()  # the scheduler's: jobs may be due
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        db.on_events_committed.append(self.committed)
        db.on_jobs_committed.append(self.jobs_committed)

    def set_clock(self, now: Callable[[], datetime]) -> None:
        """Tests drive retries and schedules with a controllable clock."""
        self.relay.now = now
        self.runner.now = now

    def wake(self) -> None:
        self._wake.set()
        self._jobs_wake.set()

    def committed(self) -> None:
        """Events were committed here: wake this process's relay and the other processes'."""
        self._wake.set()
        if self.peers is not None:
            self.peers.notify()

    def jobs_committed(self) -> None:
        """Jobs were queued here: wake this process's scheduler."""
        self._jobs_wake.set()

    def detach(self) -> None:
        """Stop hearing of the database's commits (a background made for a while, in tests)."""
        for callbacks, callback in (
            (self.db.on_events_committed, self.committed),
            (self.db.on_jobs_committed, self.jobs_committed),
        ):
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, worker: bool = False) -> None:
        """Start the relay and scheduler loops (and, for `rapport worker`, the taskiq receiver)."""
        if worker:
            self.broker.is_worker_process = True
        await self.broker.startup()
        self._stopping = False
        if (
            self.db.dialect == "postgresql"
            and self.settings.outbox_listen
            and not self.settings.db_pgbouncer
        ):
            self.peers = Peers(
                self.db.url, self._wake.set, spacing=self.settings.background_linger_seconds
            )
            await self.peers.start()
        self._tasks = [
            asyncio.create_task(self._relay_loop(), name="rapport-relay"),
            asyncio.create_task(self._scheduler_loop(), name="rapport-scheduler"),
        ]
        if worker:
            from taskiq.api import run_receiver_task

            self._tasks.append(
                asyncio.create_task(
                    run_receiver_task(
                        self.broker, max_async_tasks=self.settings.worker_concurrency
                    ),
                    name="rapport-receiver",
                )
            )

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        await cancel_all(self._tasks)
        self._tasks = []
        if self.peers is not None:
            await self.peers.stop()
            self.peers = None
        if isinstance(self.broker, InMemoryBroker):
            await self.broker.wait_all()
        await self.broker.shutdown()

    async def drain(self, rounds: int = 20) -> None:
        """Relay every pending event and run every due job, inline, until nothing is left that is
        due now (tests; `rapport` commands that must finish their work before exiting)."""
        for _ in range(rounds):
            relayed = await self.relay.run_all()
            ran = await self.runner.run_due()
            if not relayed and not ran:
                return

    # -- loops -------------------------------------------------------------------------------
    async def _relay_loop(self) -> None:
        await self._loop(
            self.relay.run_once,
            self._wake,
            self.settings.outbox_poll_seconds,
            self.relay.batch,
            name="relay_error",
            defer=self._yield_to_requests,
        )

    async def _yield_to_requests(self) -> None:
        """While this process serves requests and another process's relay listens, leave the
        batch to that one: wait until this process is idle, `DEFER_SECONDS` at most."""
        peers, activity = self.peers, self.activity
        if peers is None or activity is None or peers.count <= 0:
            return
        linger = max(self.settings.background_linger_seconds, 0.005)
        clock = asyncio.get_running_loop().time
        deadline = clock() + min(self.settings.outbox_poll_seconds, DEFER_SECONDS)
        while activity.busy(linger) and clock() < deadline and peers.count > 0:  # noqa: ASYNC110 - polled: requests set no event
            await asyncio.sleep(linger)

    async def _scheduler_loop(self) -> None:
        async def claim_and_kick() -> int:
            limit = self.runner.batch
            if self._bounded:
                limit = min(limit, self.capacity - self.running)
                if limit <= 0:
                    return 0  # a finishing job wakes the loop
            ids = await self.runner.claim(limit)
            for job_id in ids:
                if self._bounded:
                    self.running += 1
                await self._kick.kiq(str(job_id))
            return len(ids) if len(ids) < limit else self.runner.batch  # full: look again

        await self._loop(
            claim_and_kick,
            self._jobs_wake,
            self.settings.jobs_poll_seconds,
            self.runner.batch,
            name="scheduler_error",
        )

    async def _loop(
        self,
        run_once: Callable[[], Awaitable[int]],
        wake: asyncio.Event,
        poll: float,
        batch: int,
        *,
        name: str,
        defer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run `run_once` when woken (or every `poll` seconds), at most once per `linger`
        seconds: an idle loop answers a commit at once, a busy one takes what accumulated in the
        meantime as one batch instead of one transaction per commit (a run that found nothing
        counts: with several processes, the one that lost the race to a batch would otherwise
        answer every commit alone, in batches of one). A full batch means more may
        be waiting: it runs again without waiting for a wake (nor for `defer`, which runs
        before each run that follows a wait)."""
        linger = self.settings.background_linger_seconds
        clock = asyncio.get_running_loop().time
        last = -linger
        backlog = False
        while not self._stopping:
            pause = linger - (clock() - last)
            if pause > 0 and not backlog:  # a full batch is no commit to wait for
                await asyncio.sleep(pause)
            if defer is not None and not backlog:
                await defer()
            wake.clear()  # before looking: a commit from now on wakes the wait below
            last = clock()
            try:
                n = await run_once()
            except Exception as exc:  # noqa: BLE001 - e.g. the database restarting: try again
                log.warning(name, error=repr(exc)[:500])
                n = 0
                await asyncio.sleep(poll)
            backlog = n >= batch
            if backlog:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll)
