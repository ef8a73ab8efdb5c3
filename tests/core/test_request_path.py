"""The kernel's request path: a read costs one database statement (no BEGIN/ROLLBACK, the
credential served from the principal cache), and writes commit before the response leaves."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.factories import create_tag, register


@pytest.fixture
def statements(database):
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(statement.strip().split()[0].upper())

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(database.engine.sync_engine, "before_cursor_execute", record)


class TestRoundTrips:
    async def test_get_by_id_is_one_statement(self, client, statements):
        admin = await register(client)
        tag = await create_tag(client, admin)
        await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)  # warms the cache
        statements.clear()
        response = await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
        assert response.status_code == 200
        assert statements == ["SELECT"]

    async def test_list_is_one_statement(self, client, statements):
        admin = await register(client)
        await create_tag(client, admin)
        await client.get("/api/v1/tags", headers=admin.headers)
        statements.clear()
        response = await client.get("/api/v1/tags?limit=10&sort_by=name", headers=admin.headers)
        assert response.status_code == 200
        assert statements == ["SELECT"]


class TestCommitBeforeResponse:
    async def test_a_failed_write_leaves_nothing_behind(self, client):
        admin = await register(client)
        await create_tag(client, admin, name="taken")
        failed = await client.post("/api/v1/tags", json={"name": "TAKEN"}, headers=admin.headers)
        assert failed.status_code == 409
        listed = await client.get("/api/v1/tags?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 1


def test_log_lines_carry_the_id_of_the_request_being_served() -> None:
    from rapport.core.envelope import request_id_var
    from rapport.core.observability import add_request_id

    assert add_request_id(None, "info", {"event": "x"}) == {"event": "x"}
    token = request_id_var.set("req-7")
    try:
        assert add_request_id(None, "info", {"event": "x"})["request_id"] == "req-7"
        assert add_request_id(None, "info", {"request_id": "own"})["request_id"] == "own"
    finally:
        request_id_var.reset(token)
