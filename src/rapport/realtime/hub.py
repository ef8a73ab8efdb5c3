"""The hub: this process's WebSocket connections, and the fan-out that feeds them.

The outbox relay hands every committed batch of events to `Hub.publish` (a live listener: after
the commit, best-effort). The hub prepares each event once (`Outgoing`) and passes the batch to its
channel: in-process by default, or Redis pub/sub so that every API process, whichever relayed the
event, delivers it to its own sockets (`channels.py`).

Delivery never waits on a socket: each connection has a bounded queue drained by its own sender
task (`stream.py`). A connection whose queue is full is a slow consumer: it is closed (1013, "try
again later") and its queue freed, instead of letting memory grow with a client that cannot keep up.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter, Gauge

from rapport.core.auth import Principal
from rapport.core.observability import REGISTRY, log
from rapport.core.outbox import DomainEvent, SubscriberRegistry
from rapport.realtime.audience import Outgoing, Subscription, may_see

CONNECTIONS = Gauge(
    "rapport_realtime_connections",
    "Open WebSocket connections of the realtime stream in this process.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
DROPPED = Counter(
    "rapport_realtime_slow_consumers_total",
    "Realtime connections closed because their send queue was full.",
    registry=REGISTRY,
)

# WebSocket close codes this stream uses (4xxx: ours, mirroring the HTTP statuses).
GOING_AWAY = 1001  # the server is shutting down: reconnect elsewhere
INTERNAL = 1011
TRY_AGAIN_LATER = 1013  # too slow, or a dependency (Redis) is down: reconnect shortly
UNAUTHORIZED = 4401  # no, bad, expired, revoked or spent credential
RATE_LIMITED = 4429


class Connection:
    """One WebSocket: who it is, what it wants, and what waits to be sent to it."""

    def __init__(self, principal: Principal, max_queue: int) -> None:
        self.principal = principal
        self.workspace_id = str(principal.workspace_id)
        self.subscription = Subscription()
        self.max_queue = max_queue
        self.queue: deque[str] = deque()
        self.ready = asyncio.Event()  # something to send, or to close
        self.closing: tuple[int, str] | None = None
        self.done = asyncio.Event()  # the connection's handler has finished

    def wants(self, item: Outgoing) -> bool:
        return may_see(self.principal, item) and self.subscription.wants(item.type)

    def offer(self, text: str) -> None:
        self.offer_many([text])

    def offer_many(self, texts: list[str]) -> None:
        """Queue messages; a full queue closes the connection (it cannot keep up)."""
        if self.closing is not None or not texts:
            return
        if len(self.queue) + len(texts) > self.max_queue:
            DROPPED.inc()
            self.queue.clear()
            self.close(TRY_AGAIN_LATER, "Too slow: messages were dropped. Reconnect.")
            return
        self.queue.extend(texts)
        self.ready.set()

    def close(self, code: int, reason: str) -> None:
        """Ask the sender to close the socket (it owns all writes to it)."""
        if self.closing is None:
            self.closing = (code, reason)
        self.ready.set()


class Channel(Protocol):
    """Carries prepared events to every process's hub (possibly only this one)."""

    async def publish(self, items: list[Outgoing]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalChannel:
    """One process: what this process relays is delivered to this process's sockets."""

    def __init__(self, hub: Hub) -> None:
        self._hub = weakref.ref(hub)

    async def publish(self, items: list[Outgoing]) -> None:
        hub = self._hub()
        if hub is not None:
            hub.deliver(items)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class Hub:
    def __init__(self) -> None:
        self.channel: Channel = LocalChannel(self)
        self._by_workspace: dict[str, set[Connection]] = {}
        self._count = 0

    # -- connections ---------------------------------------------------------------------------
    def add(self, connection: Connection) -> None:
        self._by_workspace.setdefault(connection.workspace_id, set()).add(connection)
        self._count += 1
        CONNECTIONS.inc()

    def remove(self, connection: Connection) -> None:
        group = self._by_workspace.get(connection.workspace_id)
        if group is None or connection not in group:
            return
        group.discard(connection)
        if not group:
            del self._by_workspace[connection.workspace_id]
        self._count -= 1
        CONNECTIONS.dec()

    def __len__(self) -> int:
        return self._count

    def connections(self) -> list[Connection]:
        return [c for group in self._by_workspace.values() for c in group]

    # -- fan-out -------------------------------------------------------------------------------
    async def publish(self, events: list[DomainEvent]) -> None:
        """The outbox listener: prepare the batch once and hand it to the channel."""
        if isinstance(self.channel, LocalChannel):
            # Nobody else hears this process: skip the events no local socket can receive.
            events = [e for e in events if str(e.workspace_id) in self._by_workspace]
        if events:
            await self.channel.publish([Outgoing.from_event(e) for e in events])

    def deliver(self, items: Iterable[Outgoing]) -> int:
        """Queue each item, in order, for the local connections that may see it and want it
        (never waits on a socket)."""
        by_workspace: dict[str, list[Outgoing]] = {}
        for item in items:
            if item.workspace_id in self._by_workspace:
                by_workspace.setdefault(item.workspace_id, []).append(item)
        queued = 0
        for workspace_id, mine in by_workspace.items():
            # Whether a connection wants an item depends only on its routing facts, and a batch
            # has few distinct ones (a bulk import: one): decide once per kind, not per item.
            kinds = [item.kind for item in mine]
            samples = {kind: item for kind, item in zip(kinds, mine, strict=True)}
            texts = [item.text for item in mine]
            for connection in tuple(self._by_workspace.get(workspace_id, ())):
                wanted_kinds = {k for k, sample in samples.items() if connection.wants(sample)}
                if len(wanted_kinds) == len(samples):
                    wanted = texts
                else:
                    wanted = [t for t, k in zip(texts, kinds, strict=True) if k in wanted_kinds]
                connection.offer_many(wanted)
                queued += len(wanted)
        return queued

    # -- lifecycle -----------------------------------------------------------------------------
    def listen(self, registry: SubscriberRegistry) -> None:
        """Become a live listener of the outbox relay. The registry holds only a weak reference,
        so an app that is discarded (tests build many) stops receiving instead of leaking."""
        registry.listeners.append(_Listener(self, registry))

    async def start(self) -> None:
        await self.channel.start()

    async def stop(self, grace: float = 2.0) -> None:
        """Close every socket (going away) and stop the channel."""
        connections = self.connections()
        for connection in connections:
            connection.close(GOING_AWAY, "The server is shutting down. Reconnect.")
        if connections:
            waits = [asyncio.ensure_future(c.done.wait()) for c in connections]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for task in pending:
                task.cancel()
        await self.channel.stop()


class _Listener:
    def __init__(self, hub: Hub, registry: SubscriberRegistry) -> None:
        self._hub = weakref.ref(hub)
        self._registry = registry

    async def __call__(self, events: list[DomainEvent]) -> None:
        hub = self._hub()
        if hub is None:
            if self in self._registry.listeners:
                self._registry.listeners.remove(self)
            return
        try:
            await hub.publish(events)
        except Exception as exc:  # noqa: BLE001 - best-effort: never fail the relay
            log.warning("realtime_publish_failed", error=repr(exc)[:500])
