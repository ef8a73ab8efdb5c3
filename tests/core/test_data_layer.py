"""The data layer: migrations, workspace-safe foreign keys, concurrency settings, UUIDv7 ids."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.identity.models import ApiKey
from rapport.migrations.runner import current, upgrade
from rapport.tags.models import Tag
from tests.factories import create_tag, register


class TestMigrations:
    async def test_upgrade_is_at_head_and_idempotent(self, database_url):
        before = await current(database_url)
        await upgrade(database_url)
        assert await current(database_url) == before is not None


class TestTenantKeys:
    async def test_database_refuses_a_reference_across_workspaces(self, client, database):
        a = await register(client)
        b = await register(client)
        with pytest.raises(IntegrityError):
            async with database.write_sessions() as session, session.begin():
                await session.execute(
                    insert(ApiKey.__table__).values(
                        workspace_id=uuid.UUID(a.workspace_id),
                        id=new_id(),
                        name="x",
                        prefix="rpk_x",
                        key_hash=uuid.uuid4().hex,
                        role="admin",
                        created_by=uuid.UUID(b.user["id"]),
                        created_at=utcnow(),
                        updated_at=utcnow(),
                        version=1,
                    )
                )

    async def test_ids_are_uuid7_and_time_ordered(self, client):
        admin = await register(client)
        first = await create_tag(client, admin)
        second = await create_tag(client, admin)
        assert uuid.UUID(first["id"]).version == 7
        assert first["id"] < second["id"]


class TestConcurrentWrites:
    async def test_read_modify_write_transactions_lose_nothing(self, client, database):
        """The SQLite default loses most of these; WAL + BEGIN IMMEDIATE must lose none."""
        admin = await register(client)
        tag = await create_tag(client, admin)
        t = Tag.__table__
        ws, tid = uuid.UUID(admin.workspace_id), uuid.UUID(tag["id"])

        async def bump() -> None:
            async with database.write_sessions() as session, session.begin():
                row = (
                    await session.execute(
                        select(t.c.version).where(t.c.workspace_id == ws, t.c.id == tid)
                    )
                ).one()
                await asyncio.sleep(0)
                await session.execute(
                    update(t)
                    .where(t.c.workspace_id == ws, t.c.id == tid)
                    .values(version=row.version + 1)
                ) if database.is_sqlite else await session.execute(
                    update(t)
                    .where(t.c.workspace_id == ws, t.c.id == tid)
                    .values(version=t.c.version + 1)
                )

        await asyncio.gather(*[bump() for _ in range(40)])
        async with database.read_sessions() as session:
            version = (await session.execute(select(t.c.version).where(t.c.id == tid))).scalar_one()
        assert version == 41

    async def test_connections_are_configured(self, database, settings):
        async with database.read_sessions() as session:
            if database.is_sqlite:
                assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
                assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            else:
                timeout = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
                assert timeout == f"{settings.db_statement_timeout_ms // 1000}s"
