"""The realtime stream: committed domain events pushed to WebSocket clients (`GET /api/v1/ws`).

    outbox relay ──(live listener, after commit)──▶ Hub.publish ──▶ channel
        in-process: this process's sockets │ Redis pub/sub: every API process's sockets
    ──▶ per-connection bounded queue ──▶ send loop ──▶ socket

`install(app)` builds this app's hub, ticket book and stream, registers the relay listener, and
exposes them (`app.state.realtime`, `app.state.hub`, `background.services["hub"]`); the app's
lifespan calls `start()` (the Redis subscription) and `stop()` (closes sockets, unsubscribes).
A process that relays without serving (`rapport worker`) publishes through the same listener.

Without Redis, sockets receive what their own process relays: one API process (the embedded
default) sees everything; several processes need `RAPPORT_REDIS_URL`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rapport.core import outbox
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.observability import log
from rapport.realtime.channels import RedisChannel, make_redis
from rapport.realtime.hub import Hub
from rapport.realtime.stream import Stream
from rapport.realtime.tickets import TicketBook


class Realtime:
    def __init__(self, settings: Settings, hub: Hub, tickets: TicketBook, stream: Stream) -> None:
        self.settings = settings
        self.hub = hub
        self.tickets = tickets
        self.stream = stream

    def set_clock(self, now: Callable[[], datetime]) -> None:
        """Tests expire tickets with a controllable clock."""
        self.tickets.now = now

    async def start(self) -> None:
        if self.settings.workers > 1 and not self.settings.redis_url:
            log.warning(
                "realtime_without_redis",
                detail="each worker process streams only the events it relays itself; "
                "set RAPPORT_REDIS_URL to fan out across processes",
            )
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()


def install(app: Any) -> Realtime:
    """Wire the stream into an app built by `create_app` (after its state is set)."""
    state = app.state
    settings: Settings = state.settings
    security = state.security
    redis = make_redis(settings) if settings.redis_url else None
    hub = Hub()
    if redis is not None:
        hub.channel = RedisChannel(redis, f"{settings.redis_key_prefix}realtime", hub.deliver)
    secrets = [*settings.previous_secret_keys, settings.resolved_secret_key()]
    tickets = TicketBook(settings, secrets, redis, now=utcnow)
    stream = Stream(
        settings=settings,
        db=state.db,
        hub=hub,
        tickets=tickets,
        authenticator=state.authenticator,
        limiter=state.limiter,
        keyring=security.keyring,
    )
    realtime = Realtime(settings, hub, tickets, stream)
    hub.listen(outbox.subscribers)
    state.realtime = realtime
    state.hub = hub
    state.background.services["hub"] = hub
    return realtime
