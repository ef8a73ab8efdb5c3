"""Two real API processes (uvicorn subprocesses) on the same database and the same Redis, as a
deployment with replicas runs them: an event produced through process A reaches a WebSocket
connected to process B; a ticket issued by A works once, on B, and never again on A; and rate
limits are counted once across both.

Needs Redis (`RAPPORT_TEST_REDIS_URL`); skipped, alone, when the run has none.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET, redis_prefix
from tests.factories import register
from tests.realtime.conftest import WAIT, close_code, connected, open_ws, until

LIMIT = 8  # per minute and caller, across both processes
STARTUP = 240.0  # seconds a cold process may take to import and start on a loaded CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    """`python -m uvicorn rapport.main:create_app --factory` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.address = f"127.0.0.1:{free_port()}"
        self.returncode: int | None = None

    @contextmanager
    def running(self) -> Iterator[ApiProcess]:
        host, port = self.address.split(":")
        with self.log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, "-m", "uvicorn", "rapport.main:create_app", "--factory"]
                + ["--host", host, "--port", port, "--log-level", "warning"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                yield self
            finally:
                proc.terminate()  # SIGTERM: uvicorn's graceful shutdown runs the lifespan's end
                try:
                    self.returncode = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def wait_ready(client: httpx.AsyncClient, address: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"http://{address}/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{address} did not start:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def test_two_api_processes_share_events_tickets_and_limits(database_url, redis_url, tmp_path):
    if not redis_url:
        pytest.skip("RAPPORT_TEST_REDIS_URL not set (CI sets it)")
    env = {
        **os.environ,
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_DATA_DIR": str(tmp_path),
        "RAPPORT_AUTO_MIGRATE": "false",
        "RAPPORT_SECRET_KEY": SECRET,
        "RAPPORT_REDIS_URL": redis_url,
        "RAPPORT_REDIS_KEY_PREFIX": f"{redis_prefix()}two-processes:",
        "RAPPORT_BACKGROUND": "true",
        "RAPPORT_JOBS_BROKER": "memory",
        "RAPPORT_RATE_LIMIT_DEFAULT": f"{LIMIT}/minute",
        "RAPPORT_RATE_LIMIT_AUTH": "1000/minute",
        "RAPPORT_RATE_LIMIT_LOGIN_ACCOUNT": "1000/minute",
        "RAPPORT_ARGON2_TIME_COST": "1",
        "RAPPORT_ARGON2_MEMORY_COST_KIB": "1024",
        "RAPPORT_DB_POOL_SIZE": "5",
        "RAPPORT_LOG_LEVEL": "WARNING",
        "RAPPORT_ACCESS_LOG": "false",
        "RAPPORT_METRICS_ENABLED": "false",
    }
    processes = [ApiProcess(env, tmp_path / "a.log"), ApiProcess(env, tmp_path / "b.log")]
    with ExitStack() as stack:
        for process in processes:
            stack.enter_context(process.running())
        a, b = (p.address for p in processes)
        async with httpx.AsyncClient(timeout=WAIT) as http:
            await asyncio.gather(*(wait_ready(http, p.address, p.log) for p in processes))
            api_a = httpx.AsyncClient(base_url=f"http://{a}", timeout=WAIT)
            api_b = httpx.AsyncClient(base_url=f"http://{b}", timeout=WAIT)
            async with api_a, api_b:
                admin = await register(api_a)
                r = await api_a.post("/api/v1/realtime/tickets", headers=admin.headers)
                assert r.status_code == 201, r.text
                ticket = r.json()["data"]["ticket"]

                # Through B, by the ticket A issued.
                async with open_ws(f"ws://{b}/api/v1/ws?ticket={ticket}") as on_b:
                    assert (await connected(on_b))["data"]["user_id"] == admin.user["id"]
                    # Spent on B, so refused on A.
                    async with open_ws(f"ws://{a}/api/v1/ws?ticket={ticket}") as again:
                        code, reason = await close_code(again)
                    assert code == 4401 and "already used" in reason

                    r = await api_a.post(
                        "/api/v1/contacts", json={"first_name": "Across"}, headers=admin.headers
                    )
                    assert r.status_code == 201, r.text
                    contact_id = r.json()["data"]["id"]
                    # A commits, A's relay publishes to Redis, B delivers: no drain, no sleep.
                    event = (await until(on_b, "contact.created"))[-1]
                    assert event["data"]["id"] == contact_id
                    assert event["actor"]["id"] == admin.user["id"]

                # The admin has made 2 metered requests, both on A (ticket handshakes count
                # against the IP, like other unauthenticated requests). Alternating from here,
                # each process alone stays under LIMIT: only a shared count reaches it.
                statuses = []
                for i in range(LIMIT - 2 + 2):
                    api = api_b if i % 2 == 0 else api_a
                    statuses.append(
                        (await api.get("/api/v1/tags", headers=admin.headers)).status_code
                    )
                assert statuses == [200] * (LIMIT - 2) + [429, 429], statuses
    # Both stopped cleanly: the lifespan's end (sockets closed, Redis unsubscribed) raised nothing.
    for process in processes:
        # uvicorn re-raises the SIGTERM it handled gracefully; a failed shutdown exits with 3.
        assert process.returncode in (0, -signal.SIGTERM), (process.returncode, tail(process.log))
        assert "Traceback" not in tail(process.log), tail(process.log)
