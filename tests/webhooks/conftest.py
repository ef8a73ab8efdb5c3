"""Webhook test harness: a real HTTP receiver on 127.0.0.1, and an app whose operator allows
private targets (the receiver is on loopback) on a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from standardwebhooks import Webhook

from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.main import create_app
from rapport.webhooks.models import WebhookEndpoint
from tests.clock import FakeClock
from tests.conftest import base_settings, client_for

ENDPOINTS = WebhookEndpoint.__table__


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def verify(self, secret: str) -> Any:
        """The payload, if the Standard Webhooks signature checks out with this secret."""
        return Webhook(secret).verify(self.body, self.headers)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: records every request and answers the planned statuses in
    order (then `default`), with an optional body."""

    plan: list[int] = field(default_factory=list)
    default: int = 200
    answer_body: bytes = b'{"ok": true}'
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rapport"

    def events(self, prefix: str = "") -> list[Received]:
        """Requests whose event type starts with `prefix` (webhook_endpoint.* events are
        delivered too: tests usually look at their own kind)."""
        import json

        return [r for r in self.received if json.loads(r.body)["type"].startswith(prefix)]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body))
            status = self.plan.pop(0) if self.plan else self.default
            payload = self.answer_body
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture(autouse=True)
async def remove_endpoints(database: Database) -> AsyncIterator[None]:
    """Endpoints made by a test are deleted after it (their deliveries and attempts with them),
    so no later test's background work sends anything to a receiver that is gone."""
    started = utcnow()
    yield
    async with database.write_sessions() as session, session.begin():
        await session.execute(delete(ENDPOINTS).where(ENDPOINTS.c.created_at >= started))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture(scope="session")
def hooks_settings(settings: Settings) -> Settings:
    return base_settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        webhooks_allow_private=True,
        webhooks_timeout_seconds=5.0,
    )


@pytest.fixture(scope="session")
def hooks_app(hooks_settings: Settings, database: Database):  # noqa: ANN201
    """An app whose operator allows private targets: the receiver lives on 127.0.0.1."""
    return create_app(hooks_settings, db=database)


@pytest.fixture
async def hooks(hooks_app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with client_for(hooks_app) as c:
        yield c


@pytest.fixture
def hooks_clock(hooks_app) -> Iterator[FakeClock]:  # noqa: ANN001
    fake = FakeClock()
    background = hooks_app.state.background
    background.set_clock(fake)
    yield fake
    background.set_clock(utcnow)
