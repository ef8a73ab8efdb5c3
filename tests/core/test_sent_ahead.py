"""COPYs sent ahead (`core.sql.sent_ahead`): inside the block, `insert_new` returns once its rows
are sent, and whatever runs next on the connection waits for the server to finish them. The
rows are there for the next statement, a COPY's error still fails the block, and an error or a
cancellation while one is in flight leaves the connection clean.

To hold a COPY in flight for as long as a test needs, another transaction holds an uncommitted
contact with the same email: the COPY waits on the unique index until that one ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.contacts.models import Contact
from rapport.contacts.repository import ContactRepository
from rapport.core.db import Database, UnitOfWork
from rapport.core.sql import sent_ahead
from tests.contacts.factories import holding_email, waits_on_a_row_lock
from tests.factories import register


async def _writer(client, database: Database) -> tuple[UnitOfWork, ContactRepository]:  # noqa: ANN001
    admin = await register(client)
    uow = UnitOfWork(database, write=True)
    return uow, ContactRepository(uow.session, uuid.UUID(admin.workspace_id))


def _contact(email: str) -> dict:
    return {"first_name": "Sent", "last_name": "Ahead", "email": email, "status": "new"}


async def _count(uow: UnitOfWork, workspace_id: uuid.UUID) -> int:
    """Through SQLAlchemy's own execution, not the lent driver."""
    result = await uow.session.execute(
        select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id)
    )
    return result.scalar_one()


async def _stored(database: Database, workspace_id: uuid.UUID) -> set[str]:
    reader = UnitOfWork(database, write=False)
    try:
        result = await reader.session.execute(
            select(Contact.email).where(Contact.workspace_id == workspace_id)
        )
        return {row[0] for row in result}
    finally:
        await reader.close()


async def _copy_held(repo: ContactRepository) -> None:
    """A batch whose COPY waits on the rival's uncommitted email."""
    await repo.insert_returning([_contact("a@example.com"), _contact("held@example.com")])


async def _clean_after(database: Database, uow: UnitOfWork, workspace_id: uuid.UUID) -> None:
    """After a failed write: `uow` writes and commits again, and only the rival's contact and
    that write are stored."""
    try:
        await ContactRepository(uow.session, workspace_id).insert(_contact("after@example.com"))
        await uow.commit()
    finally:
        await uow.close()
    assert await _stored(database, workspace_id) == {"held@example.com", "after@example.com"}


@asynccontextmanager
async def _while_held(
    database: Database, repo: ContactRepository, write: Callable[[], Awaitable[None]]
) -> AsyncIterator[tuple[AsyncSession, asyncio.Task[None]]]:
    """`write()` running as a task until its COPY waits on a rival's uncommitted email; the
    caller ends the rival's transaction."""
    async with holding_email(database, repo.workspace_id, "held@example.com") as rival:
        task = asyncio.create_task(write())
        assert await waits_on_a_row_lock(database)
        yield rival, task


async def test_rows_sent_ahead_are_there_for_the_next_statement(client, database):
    uow, repo = await _writer(client, database)
    try:
        async with sent_ahead(uow.session):
            first = await repo.insert_returning(
                [_contact("a@example.com"), _contact("b@example.com")]
            )
            # Our own statement on the driver and SQLAlchemy's both see them.
            assert await repo.get(first[0]["id"]) is not None
            assert await _count(uow, repo.workspace_id) == 2
            await repo.insert_returning([_contact("c@example.com")])
        assert await _count(uow, repo.workspace_id) == 3  # the block waited for the last one
        await uow.commit()
    finally:
        await uow.close()
    assert await _stored(database, repo.workspace_id) == {
        "a@example.com",
        "b@example.com",
        "c@example.com",
    }


async def test_a_duplicate_sent_ahead_fails_its_savepoint_and_nothing_else(client, database):
    uow, repo = await _writer(client, database)
    try:
        await repo.insert(_contact("taken@example.com"))
        with pytest.raises(IntegrityError):
            async with uow.session.begin_nested(), sent_ahead(uow.session):
                await repo.insert_returning(
                    [_contact("free@example.com"), _contact("taken@example.com")]
                )
        with pytest.raises(IntegrityError):  # raised by the next COPY, inside the block
            async with uow.session.begin_nested(), sent_ahead(uow.session):
                await repo.insert_returning(
                    [_contact("x@example.com"), _contact("taken@example.com")]
                )
                await repo.insert_returning([_contact("y@example.com"), _contact("z@example.com")])
        await repo.insert(_contact("after@example.com"))  # the transaction is still usable
        await uow.commit()
    finally:
        await uow.close()
    assert await _stored(database, repo.workspace_id) == {"taken@example.com", "after@example.com"}


class TestInFlight:
    @pytest.fixture(autouse=True)
    def _postgres_only(self, backend):  # noqa: ANN001
        if backend != "postgres":
            pytest.skip("only PostgreSQL copies; SQLite's batched INSERT is done when it returns")

    @pytest.mark.parametrize("next_statement", ["ours", "sqlalchemy"])
    async def test_the_insert_returns_before_the_server_is_done_and_the_rest_waits(
        self, client, database, next_statement
    ):
        """The statement after the COPY waits for it, whichever way it runs: ours on the lent
        driver (through `settle`), SQLAlchemy's on its adapter's lock."""
        uow, repo = await _writer(client, database)
        try:
            async with (
                holding_email(database, repo.workspace_id, "held@example.com") as rival,
                sent_ahead(uow.session),
            ):
                rows = await repo.insert_returning(
                    [_contact("mine@example.com"), _contact("held@example.com")]
                )
                assert await waits_on_a_row_lock(
                    database
                )  # returned, while the COPY waits on the rival
                if next_statement == "ours":
                    after = asyncio.create_task(repo.get(rows[0]["id"]))
                else:
                    after = asyncio.create_task(_count(uow, repo.workspace_id))
                await asyncio.sleep(0.2)
                assert not after.done()
                await rival.rollback()  # the email is free: the COPY goes through
                seen = await after
                assert seen is not None if next_statement == "ours" else seen == 2
            await uow.commit()
        finally:
            await uow.close()
        assert await _stored(database, repo.workspace_id) == {
            "mine@example.com",
            "held@example.com",
        }

    async def test_an_error_in_the_block_waits_for_the_copy_and_is_the_one_raised(
        self, client, database
    ):
        uow, repo = await _writer(client, database)
        try:

            async def fail_while_in_flight() -> None:
                async with sent_ahead(uow.session):
                    await _copy_held(repo)
                    raise ValueError("a bug after the COPY was sent")

            async with _while_held(database, repo, fail_while_in_flight) as (rival, failing):
                await asyncio.sleep(0.1)
                assert not failing.done()  # it waits for the COPY before it raises
                await rival.commit()  # the COPY now fails on the duplicate
                with pytest.raises(ValueError, match="a bug"):
                    await failing
            await uow.rollback()
            await _clean_after(database, uow, repo.workspace_id)  # the same unit of work
        finally:
            await uow.close()  # closing twice is harmless

    async def test_a_cancelled_request_cancels_its_copy(self, client, database):
        uow, repo = await _writer(client, database)
        try:

            async def write() -> None:
                async with sent_ahead(uow.session):
                    await _copy_held(repo)
                    await repo.insert_returning(
                        [_contact("b@example.com"), _contact("c@example.com")]
                    )

            async with _while_held(database, repo, write) as (rival, request):
                request.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await request
                await uow.rollback()
                await rival.commit()  # had the COPY gone on, it would now fail or wait
        finally:
            await uow.close()
        # The connection it ran on was not handed back mid-COPY: the next write is clean.
        await _clean_after(database, UnitOfWork(database, write=True), repo.workspace_id)

    async def test_a_read_unit_of_work_copies_at_once(self, client, database):
        """A read lends no connection of its own to hold a COPY on: it runs where it is."""
        admin = await register(client)
        reader = UnitOfWork(database, write=False)
        repo = ContactRepository(reader.session, uuid.UUID(admin.workspace_id))
        try:
            async with sent_ahead(reader.session):
                await repo.insert_returning(
                    [_contact("r1@example.com"), _contact("r2@example.com")]
                )
                # Done (autocommit) before the block ends: another session sees the rows.
                assert await _stored(database, repo.workspace_id) == {
                    "r1@example.com",
                    "r2@example.com",
                }
        finally:
            await reader.close()
