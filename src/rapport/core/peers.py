"""The relays of other processes on the same PostgreSQL database, and how they wake each other.

Every process (API or `rapport worker`) runs an outbox relay. A commit that recorded events wakes
its own process's relay at once; on PostgreSQL it also sends `NOTIFY rapport_outbox` from a
connection each process keeps listening on, so the relays of the other processes wake at once too
instead of at their next poll (`RAPPORT_OUTBOX_POLL_SECONDS`).

That lets a process busy with requests leave a batch to an idle one (`Background`): a relay batch
is CPU work in the event loop of whoever runs it (the audit diff of 500 events takes tens of
milliseconds), which the requests of that process would otherwise wait behind.

- Presence: the listening connections are named `rapport-relay`, so a process counts the others
  in `pg_stat_activity` (every `PRESENCE_SECONDS`); with none, nothing is sent and nothing waits.
  A process that starts listening says so on the channel (`HELLO`) and the others count again
  at once, so a new process is not left out of the work for a presence interval (a server's
  workers start together, each seeing none of the others yet); one that stops says `BYE`, and
  the others count one fewer.
- A NOTIFY is sent after the commit, outside the request's transaction (no round trip is added to
  a write), and coalesced: the first commit after a quiet spell is sent at once; the commits of
  the next `spacing` seconds (the relays' linger, `RAPPORT_BACKGROUND_LINGER_SECONDS`) share one
  NOTIFY at its end. A relay runs at most once per linger, so more would wake nothing more: under
  load, one per commit cost each process a statement per write (2.8% of a worker's samples in a
  PATCH run), and each peer a wake-up.
- The connection is remade after PostgreSQL restarts; meanwhile there are no peers, and each relay
  simply does its own work, as without this.
- Not through PgBouncer's transaction pooling (LISTEN needs a session): with
  `RAPPORT_DB_PGBOUNCER` set, or `RAPPORT_OUTBOX_LISTEN=false`, processes rely on polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from rapport.core.aio import cancel_all
from rapport.core.observability import log

CHANNEL = "rapport_outbox"
APPLICATION_NAME = "rapport-relay"
PRESENCE_SECONDS = 5.0
HELLO, BYE = "hello", "bye"  # payloads: a process started or stopped listening (count again)
RETRY_SECONDS = 1.0  # between attempts to listen again (PostgreSQL restarting)
_COUNT = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()"
)


class Peers:
    def __init__(self, url: str, on_wake: Callable[[], None], *, spacing: float = 0.0) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.on_wake = on_wake
        self.spacing = spacing  # seconds between two NOTIFYs at least
        self.count = 0  # other processes' relays listening on this database
        self._conn: Any = None
        self._pid: int | None = None
        self._lock = asyncio.Lock()  # one operation at a time on the connection
        self._notify_wanted = False
        self._sending: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._refreshed = asyncio.Event()
        self._look = asyncio.Event()  # count again now (or the connection closed)

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rapport-peers")

    async def stop(self) -> None:
        await cancel_all((self._task, self._sending))
        self._task = self._sending = None
        if self.listening:
            with contextlib.suppress(Exception):  # the others find out at their next count
                await asyncio.wait_for(self._conn.execute(f"NOTIFY {CHANNEL}, '{BYE}'"), 2)
        await self._close()

    async def refresh(self) -> int:
        """Count the peers now (tests; a process that just started)."""
        self._refreshed.clear()
        self._look.set()
        await self._refreshed.wait()
        return self.count

    def notify(self) -> None:
        """Wake the other processes' relays: events were committed here."""
        if self.count <= 0 or not self.listening:
            return
        self._notify_wanted = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="rapport-peers-notify")

    async def _send(self) -> None:
        while self._notify_wanted and self.listening:
            self._notify_wanted = False  # a commit from now on asks for another
            try:
                async with self._lock:
                    await self._conn.execute(f"NOTIFY {CHANNEL}")
            except Exception as exc:  # noqa: BLE001 - the peers poll anyway
                log.info("peers_notify_failed", error=repr(exc)[:200])
                return
            if self.spacing > 0:  # the commits meanwhile ask for the next one
                await asyncio.sleep(self.spacing)

    def _heard(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        if pid == self._pid:  # our own NOTIFY comes back to us too
            return
        if payload == HELLO:  # sent from its listening connection: counted from now on
            self._look.set()
        elif payload == BYE:  # its connection closes just after: counting now could see it
            self.count = max(0, self.count - 1)
        else:
            self.on_wake()

    async def _run(self) -> None:
        import asyncpg

        while True:
            try:
                self._conn = await asyncpg.connect(
                    self.dsn, server_settings={"application_name": APPLICATION_NAME}
                )
                self._pid = self._conn.get_server_pid()
                self._conn.add_termination_listener(lambda _conn: self._look.set())
                await self._conn.add_listener(CHANNEL, self._heard)
                await self._conn.execute(f"NOTIFY {CHANNEL}, '{HELLO}'")
                self.on_wake()  # what was committed while no one listened here
                while not self._conn.is_closed():
                    self._look.clear()
                    async with self._lock:
                        self.count = await self._conn.fetchval(_COUNT, APPLICATION_NAME)
                    self._refreshed.set()
                    with contextlib.suppress(TimeoutError):  # closed, asked, or time to look
                        await asyncio.wait_for(self._look.wait(), PRESENCE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database restarting: try again
                log.info("peers_unavailable", error=repr(exc)[:200])
            self.count = 0
            self._refreshed.set()
            await self._close()
            await asyncio.sleep(RETRY_SECONDS)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
