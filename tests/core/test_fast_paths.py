"""The request path's shortcuts give the same answers as the long way round: routers gated by
their path prefixes, verified tokens cached, and hot reads run on the driver (PostgreSQL)."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from rapport.contacts.repository import ContactRepository
from rapport.core.db import UnitOfWork
from rapport.core.dberrors import driver_error, is_unavailable
from rapport.core.routing import static_prefixes
from rapport.core.security import KeyRing, TokenError
from rapport.notifications.repository import NotificationRepository
from tests.factories import register


class TestRouterGates:
    def test_prefixes_stop_before_the_first_parameter(self):
        assert static_prefixes(["/a/b", "/a/b/{id}", "/a/b/{id}/c"]) == ("/a/b",)
        assert static_prefixes(["/x/{r}/h", "/y"]) == ("/x/", "/y")
        assert static_prefixes(["/{anything}"]) == ("/",)

    async def test_every_route_kind_still_answers(self, client):
        admin = await register(client)
        made = await client.post(
            "/api/v1/contacts", json={"first_name": "Gate"}, headers=admin.headers
        )
        contact_id = made.json()["data"]["id"]
        # A route of a router whose paths start with a parameter (history, timelines).
        history = await client.get(f"/api/v1/contacts/{contact_id}/history", headers=admin.headers)
        assert history.status_code == 200
        timeline = await client.get(
            f"/api/v1/contacts/{contact_id}/activities", headers=admin.headers
        )
        assert timeline.status_code == 200
        # Unknown paths are 404, a known path with another method 405, both in the envelope.
        missing = await client.get("/api/v1/nothing-here", headers=admin.headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong = await client.put(f"/api/v1/contacts/{contact_id}", headers=admin.headers)
        assert wrong.status_code == 405
        assert (await client.get("/health")).status_code == 200


class TestTokenCache:
    def test_a_cached_token_still_expires(self, monkeypatch):
        ring = KeyRing("k" * 40, [], access_minutes=1)
        ids = dict(user_id=uuid.uuid4(), workspace_id=uuid.uuid4(), session_id=uuid.uuid4())
        token = ring.issue_access(role="admin", **ids)
        first = ring.decode_access(token)
        assert ring.decode_access(token) is first  # served from the cache
        later = time.time() + 120
        monkeypatch.setattr("rapport.core.security.time.time", lambda: later)
        with pytest.raises(TokenError):
            ring.decode_access(token)

    def test_a_forged_token_is_never_cached(self):
        ring = KeyRing("k" * 40, [], access_minutes=5)
        other = KeyRing("o" * 40, [], access_minutes=5)
        ids = dict(user_id=uuid.uuid4(), workspace_id=uuid.uuid4(), session_id=uuid.uuid4())
        forged = other.issue_access(role="admin", **ids)
        for _ in range(2):
            with pytest.raises(TokenError):
                ring.decode_access(forged)


class TestHotReads:
    async def _contact(self, client):  # noqa: ANN001
        admin = await register(client)
        made = await client.post(
            "/api/v1/contacts",
            json={"first_name": "Ada", "tags": ["vip"], "custom_fields": {}},
            headers=admin.headers,
        )
        return admin, made.json()["data"]

    async def test_lean_and_session_rows_are_equal(self, client, database):
        admin, contact = await self._contact(client)
        workspace_id = uuid.UUID(admin.workspace_id)
        contact_id = uuid.UUID(contact["id"])
        read = UnitOfWork(database, write=False)
        write = UnitOfWork(database, write=True)
        try:
            lean = await ContactRepository(read.session, workspace_id).get(contact_id)
            plain = await ContactRepository(write.session, workspace_id).get(contact_id)
        finally:
            await read.close()
            await write.close()
        assert lean == plain
        assert lean is not None and lean["tags"] == ["vip"]
        assert lean["created_at"].tzinfo is not None

    async def test_reads_hold_one_connection_at_a_time(self, client, database):
        admin, contact = await self._contact(client)
        checked_out: list[int] = []
        pool = database.engine.sync_engine.pool

        def seen(*_args):  # noqa: ANN002
            checked_out.append(pool.checkedout())

        event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
        try:
            # A timeline: an existence check (a hot read) then the listing (the session).
            r = await client.get(
                f"/api/v1/contacts/{contact['id']}/activities", headers=admin.headers
            )
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
        assert r.status_code == 200
        assert checked_out and max(checked_out) <= 1

    async def test_scope_columns_bind_every_scope(self, client, database):
        """A user's notifications are scoped by user as well as workspace, on the hot path."""
        admin = await register(client)
        workspace_id = uuid.UUID(admin.workspace_id)
        uow = UnitOfWork(database, write=False)
        try:
            repo = NotificationRepository(uow.session, workspace_id, uuid.uuid4())
            assert await repo.get(uuid.uuid4()) is None
            query = repo._by_id("get", False)
            assert {"scope_workspace_id", "scope_user_id", "id"} <= {
                b.key for b in query.stmt._get_embedded_bindparams()
            }
        finally:
            await uow.close()


class TestDatabaseErrors:
    def test_unavailable_means_the_database_not_the_request(self):
        class Driver(Exception):
            def __init__(self, sqlstate: str) -> None:
                super().__init__(sqlstate)
                self.sqlstate = sqlstate

        for sqlstate in ("57P01", "57P03", "08006", "53300"):  # shutdown, starting, lost, full
            assert is_unavailable(DBAPIError("SELECT 1", (), Driver(sqlstate)))
            assert isinstance(driver_error("SELECT 1", (), Driver(sqlstate)), OperationalError)
        assert not is_unavailable(DBAPIError("SELECT 1", (), Driver("22003")))
        assert isinstance(driver_error("SELECT 1", (), Driver("23505")), IntegrityError)
        assert is_unavailable(OperationalError("SELECT 1", (), ConnectionResetError()))

    async def test_a_lost_connection_answers_503_then_recovers(self, client, database, backend):
        """A hot read on a pooled connection whose server process died: 503 (not 500), the
        connection is discarded, and the next reads get fresh ones."""
        if backend != "postgres":
            pytest.skip("the hot-read path runs on PostgreSQL only")
        admin, contact = await TestHotReads()._contact(client)
        path = f"/api/v1/contacts/{contact['id']}"
        assert (await client.get(path, headers=admin.headers)).status_code == 200
        import asyncpg

        killer = await asyncpg.connect(database.url.replace("postgresql+asyncpg", "postgresql"))
        try:  # every pooled connection's server process goes away
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        try:
            statuses = [
                (await client.get(path, headers=admin.headers)).status_code for _ in range(30)
            ]
        finally:
            await database.engine.dispose()  # no dead connection left for the next tests
        assert set(statuses) <= {200, 503}
        assert 503 in statuses  # the dead connection was used once, and discarded
        assert statuses[-1] == 200
