"""The data layer: migrations, workspace-safe foreign keys, concurrency settings, UUIDv7 ids."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import UniqueConstraint, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.core.models import Base
from rapport.identity.models import ApiKey
from rapport.migrations.runner import current, upgrade
from rapport.tags.models import Tag
from tests.factories import create_tag, register


class TestMigrations:
    async def test_upgrade_is_at_head_and_idempotent(self, database_url):
        before = await current(database_url)
        await upgrade(database_url)
        assert await current(database_url) == before is not None

    async def test_search_content_keeps_fine_statistics(self, database, backend):
        """A search term's row estimate comes from these statistics: with the default sample a
        common term missing from it was estimated 250 times too rare, and the plan read every
        match (see migration 0012)."""
        if backend != "postgres":
            pytest.skip("SQLite's FTS5 search plans without column statistics")
        async with database.engine.connect() as conn:
            target = await conn.scalar(
                text(
                    "SELECT attstattarget FROM pg_attribute"
                    " WHERE attrelid = 'search_document'::regclass AND attname = 'content'"
                )
            )
        assert target == 1000


def _leading_column_sets(table) -> list[list[str]]:  # noqa: ANN001
    """For each index, primary key and unique constraint: its columns in order (names only)."""
    found = [[c.name for c in table.primary_key.columns]]
    for index in table.indexes:
        found.append([getattr(e, "name", None) or str(e) for e in index.expressions])
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            found.append([c.name for c in constraint.columns])
    return found


class TestForeignKeyIndexes:
    def test_every_foreign_key_has_an_index(self):
        """Deleting a referenced row checks each referencing table: without an index on the
        referencing columns that check reads the whole table (a contact erase read every lead)."""
        import rapport.main  # noqa: F401 - every model registered on the metadata

        missing = []
        for table in Base.metadata.sorted_tables:
            indexed = _leading_column_sets(table)
            for fk in table.foreign_key_constraints:
                columns = set(fk.column_keys)
                if not any(set(cols[: len(columns)]) == columns for cols in indexed):
                    missing.append(f"{table.name}({', '.join(fk.column_keys)})")
        assert missing == []

    @pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
    async def test_the_migrations_create_them(self, database):
        async with database.engine.connect() as conn:
            names = await conn.run_sync(
                lambda sync: {i["name"] for i in inspect(sync).get_indexes("lead")}
            )
        assert {"ix_lead_converted_contact", "ix_lead_converted_deal"} <= names


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
