"""Test harness: every database test runs on SQLite and, when RAPPORT_TEST_POSTGRES_URL is set, on
PostgreSQL too. Each run creates its own PostgreSQL database (dropped at the end) and Redis key
prefix, because the CI services persist between runs. A configured service that cannot be reached
fails the run: nothing is skipped silently.

Tests isolate themselves by working in fresh workspaces (every record is workspace-scoped), which
also lets concurrency tests use real, separate connections.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.main import create_app
from rapport.migrations.runner import upgrade
from tests.clock import FakeClock

POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL", "")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
RUN_ID = uuid.uuid4().hex[:10]
SECRET = "test-secret-" + "x" * 40


def base_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "secret_key": SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "rate_limit_default": "100000/minute",
        "rate_limit_auth": "100000/minute",
        "rate_limit_login_account": "100000/minute",
        "log_level": "WARNING",
        "access_log": False,
        "db_pool_size": 10,
        "auto_migrate": False,
        "idempotency_wait_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _create_pg_database(admin_url: str, name: str) -> str:
    import asyncpg

    url = make_url(admin_url)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database,
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(admin_url: str, name: str) -> None:
    import asyncpg

    url = make_url(admin_url)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rapport")


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[str]:
    """A migrated database for this run: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'rapport.db'}"
        await upgrade(url)
        yield url
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    name = f"rapport_test_{RUN_ID}_{worker}"
    url = await _create_pg_database(POSTGRES_URL, name)
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_pg_database(POSTGRES_URL, name)


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(base_settings(), url=database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_root: Path) -> Settings:
    return base_settings(database_url=database_url, data_dir=tmp_root)


@pytest.fixture(scope="session")
def app(settings: Settings, database: Database):  # noqa: ANN201
    return create_app(settings, db=database)


def client_for(app, **kwargs: object) -> httpx.AsyncClient:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://rapport.test", **kwargs)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with client_for(app) as c:
        yield c


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL when the run was told to use one (keys under this run's own prefix)."""
    if not REDIS_URL:
        yield ""
        return
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    conn.ping()  # configured but unreachable: fail, never skip
    yield REDIS_URL
    for key in conn.scan_iter(match=f"rapport_test_{RUN_ID}*"):
        conn.delete(key)
    conn.close()


def redis_prefix() -> str:
    return f"rapport_test_{RUN_ID}:"


@pytest.fixture
def clock(app) -> Iterator[FakeClock]:  # noqa: ANN001
    """The app's background work (relay, jobs) on a clock the test moves; reset afterwards."""
    fake = FakeClock()
    background = app.state.background
    background.set_clock(fake)
    yield fake
    background.set_clock(utcnow)
