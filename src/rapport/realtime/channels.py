"""Redis pub/sub between API processes: any process that relays an event publishes it once; every
process subscribes and delivers to its own sockets (its own events come back the same way, so each
socket gets each event once, whichever process relayed it).

Pub/sub keeps nothing: a process that is not subscribed at that moment misses the message, which
matches what the stream promises (live, best-effort; the durable record is the outbox, and
webhooks for what must arrive).

The relay never waits on Redis: its listener only queues the batch, and one publisher task per
process sends batches in order (started on first use, so `rapport worker` publishes too). A publish
that fails twice means Redis is unreachable: the process then delivers what it relays to its own
sockets, and does so without trying Redis for a few seconds. The queue is bounded: past it, batches
go to this process's sockets only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from rapport.core.aio import cancel_all
from rapport.core.config import Settings
from rapport.core.observability import log
from rapport.realtime.audience import Outgoing

CHUNK = 100  # events per Redis message: bounded payloads for Redis's pub/sub output buffers
ATTEMPTS = 2  # per chunk, before Redis counts as down
BREAK_SECONDS = 5.0  # then deliver locally this long before trying Redis again
MAX_PENDING = 100  # batches waiting for the publisher (each up to the relay's batch size)


def make_redis(settings: Settings) -> Redis:
    """Bounded timeouts and no hidden retry loop (the publisher retries once, by itself)."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )


class RedisChannel:
    def __init__(
        self, redis: Redis, name: str, deliver: Callable[[Iterable[Outgoing]], int]
    ) -> None:
        self.redis = redis
        self.name = name
        self.deliver = deliver
        self._broken_until = 0.0
        self._pending: deque[list[Outgoing]] = deque()
        self._has_pending = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- publishing (every process that relays; no start needed) -------------------------------
    async def publish(self, items: list[Outgoing]) -> None:
        """Queue a batch for the publisher task; never waits on Redis."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("realtime_redis_backlog", pending=len(self._pending))
            self.deliver(items)
            return
        self._pending.append(items)
        self._has_pending.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(
                self._publish_loop(), name="rapport-realtime-publisher"
            )

    async def _publish_loop(self) -> None:
        while True:
            while not self._pending:
                self._has_pending.clear()
                await self._has_pending.wait()
            await self._send(self._pending.popleft())

    async def _send(self, items: list[Outgoing]) -> None:
        if time.monotonic() < self._broken_until:
            self.deliver(items)
            return
        for start in range(0, len(items), CHUNK):
            payload = orjson.dumps([item.to_wire() for item in items[start : start + CHUNK]])
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await self.redis.publish(self.name, payload)
                    break
                except (RedisError, OSError) as exc:
                    if attempt < ATTEMPTS:
                        continue
                    log.warning("realtime_redis_publish_failed", error=repr(exc)[:300])
                    self._broken_until = time.monotonic() + BREAK_SECONDS
                    self.deliver(items[start:])  # at least this process's sockets get them
                    return

    async def flush(self, wait: float = 2.0) -> None:
        """Let the publisher send what is queued (shutdown), for at most `wait` seconds."""
        deadline = time.monotonic() + wait
        while self._pending and time.monotonic() < deadline:
            if self._publisher is None or self._publisher.done():
                break
            await asyncio.sleep(0.01)

    # -- subscribing (API processes, from the app's lifespan) ----------------------------------
    async def start(self, wait: float = 5.0) -> None:
        """Subscribe before the process serves, so a socket accepted from now on misses nothing
        published from now on. Redis down: keep trying in the background, serve meanwhile."""
        if self._task is not None:
            return
        self._subscribed.clear()
        self._task = asyncio.create_task(self._listen(), name="rapport-realtime-redis")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait)
        if not self._subscribed.is_set():
            log.warning("realtime_redis_unavailable", channel=self.name)

    async def stop(self) -> None:
        await self.flush()
        await cancel_all((self._task, self._publisher))
        self._task = self._publisher = None
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            pubsub: PubSub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.name)
                self._subscribed.set()
                backoff = 0.2
                while True:
                    # A bounded wait (not listen()): each call checks the connection's health.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis restarting, network: resubscribe
                log.warning("realtime_redis_subscription_lost", error=repr(exc)[:300])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _receive(self, payload: Any) -> None:
        try:
            items = [Outgoing.from_wire(raw) for raw in orjson.loads(payload)]
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            log.warning("realtime_redis_bad_message", error=repr(exc)[:300])
            return
        self.deliver(items)
