"""The realtime stream under a real server: uvicorn serving the app on 127.0.0.1 inside the test's
event loop (so it shares the test database's connections), and the `websockets` client library.

The app here is the suite's app with short realtime intervals (heartbeat, credential re-check) and a
small send queue, so those behaviours show within a fraction of a second. Its lifespan is not run:
tests relay events with `background.drain()`, like the rest of the suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rapport.core.clock import utcnow
from rapport.core.db import Database
from rapport.main import create_app
from tests.clock import FakeClock
from tests.conftest import base_settings, client_for

HEARTBEAT = 0.3
RECHECK = 0.3
QUEUE = 20
WAIT = 10.0  # upper bound for something that should arrive; never a sleep


def realtime_settings(database_url: str, tmp_root: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_root,
        "realtime_heartbeat_seconds": HEARTBEAT,
        "realtime_recheck_seconds": RECHECK,
        "realtime_send_queue_size": QUEUE,
        **overrides,
    }
    return base_settings(**values)


@pytest.fixture(scope="session")
def rt_app(database_url: str, tmp_root: Path, database: Database):  # noqa: ANN201
    return create_app(realtime_settings(database_url, tmp_root), db=database)


@pytest.fixture
async def rt_client(rt_app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with client_for(rt_app) as c:
        yield c


class LiveServer:
    """uvicorn on an ephemeral loopback port, in this event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started or self.task.done():
                break
            await asyncio.sleep(0.01)
        assert self.server.started, "uvicorn did not start"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"


@pytest.fixture(scope="session")
async def live(rt_app) -> AsyncIterator[LiveServer]:  # noqa: ANN001
    async with LiveServer(rt_app) as server:
        yield server


@pytest.fixture
def ticket_clock(rt_app) -> Iterator[FakeClock]:  # noqa: ANN001
    fake = FakeClock()
    rt_app.state.realtime.set_clock(fake)
    yield fake
    rt_app.state.realtime.set_clock(utcnow)


# -- client helpers -----------------------------------------------------------------------------
def open_ws(url: str, token: str | None = None, **kwargs: Any) -> Any:
    headers = dict(kwargs.pop("additional_headers", None) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return connect(url, additional_headers=headers, proxy=None, open_timeout=WAIT, **kwargs)


async def receive(ws: ClientConnection, *, heartbeats: bool = False) -> dict[str, Any]:
    """The next message (heartbeats skipped unless asked for), within WAIT seconds in all."""
    async with asyncio.timeout(WAIT):
        while True:
            body = orjson.loads(await ws.recv())
            if heartbeats or body["type"] != "heartbeat":
                return body


async def connected(ws: ClientConnection) -> dict[str, Any]:
    """The `connected` greeting: from then on the socket is registered and receives events."""
    first = await receive(ws)
    assert first["type"] == "connected", first
    return first


async def until(ws: ClientConnection, type_: str) -> list[dict[str, Any]]:
    """Every message up to and including the first of `type_` (events arrive in commit order, so
    what was not received before a later event was not delivered at all)."""
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(WAIT):
            while True:
                body = orjson.loads(await ws.recv())
                if body["type"] == "heartbeat":
                    continue
                seen.append(body)
                if body["type"] == type_:
                    return seen
    except TimeoutError:
        raise AssertionError(f"no {type_} within {WAIT} s; received {types(seen)}") from None


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; the close code and reason it sent."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    except ConnectionClosed:
        pass
    except TimeoutError:
        raise AssertionError(f"the server did not close the socket within {WAIT} s") from None
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def refused(url: str, **kwargs: Any) -> tuple[int, str]:
    async with open_ws(url, **kwargs) as ws:
        return await close_code(ws)


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]
