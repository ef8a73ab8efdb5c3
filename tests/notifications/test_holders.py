"""Two relays saving the holder of the same record at once: the second waits for the first and
then takes its place, instead of failing its batch on the primary key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from rapport.core.db import Database
from rapport.notifications import repository
from rapport.notifications.repository import holders
from tests.factories import add_member, register


async def test_concurrent_saves_of_one_holder_both_succeed(
    client,  # noqa: ANN001
    database: Database,
    backend: str,
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has one writer: two relays never write at once")
    account = await register(client)
    workspace = uuid.UUID(account.workspace_id)
    record = uuid.uuid4()
    member = await add_member(client, account)
    first, second = uuid.UUID(account.user["id"]), uuid.UUID(member.user["id"])
    key = (workspace, record)
    async with database.write_sessions() as one, database.write_sessions() as two:
        await one.begin()
        await repository.save_holders(one, {key: first})  # not committed yet
        await two.begin()
        blocked = asyncio.create_task(repository.save_holders(two, {key: second}))
        await asyncio.sleep(0.2)
        assert not blocked.done()  # waiting for the first relay's row
        await one.commit()
        await asyncio.wait_for(blocked, timeout=5)
        await two.commit()
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(holders.c.user_id).where(
                    holders.c.workspace_id == workspace, holders.c.resource_id == record
                )
            )
        ).all()
    assert [r.user_id for r in rows] == [second]
