"""The request path's shortcuts give the same answers as the long way round: routers gated by
their path prefixes, verified tokens cached, and hot reads run on the driver (PostgreSQL)."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from rapport.contacts.repository import ContactRepository
from rapport.core.db import JSON_CODEC, UnitOfWork
from rapport.core.dberrors import driver_error, is_unavailable
from rapport.core.routing import static_prefixes
from rapport.core.security import KeyRing, TokenError
from rapport.notifications.repository import NotificationRepository
from tests.factories import register
from tests.query_plans import captured


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
        bare = database.read_sessions()  # no unit of work: SQLAlchemy's own execution
        try:
            lean = await ContactRepository(read.session, workspace_id).get(contact_id)
            plain = await ContactRepository(bare, workspace_id).get(contact_id)
        finally:
            await read.close()
            await bare.close()
        assert lean == plain
        assert lean is not None and lean["tags"] == ["vip"]
        assert lean["created_at"].tzinfo is not None

    async def test_listing_rows_are_equal_whichever_way_they_run(self, client, database):
        """Statements built per request (IN lists, inline values, JSON, counts) give the same
        rows on the driver as through SQLAlchemy, for every value of one shape."""
        from sqlalchemy import func, literal, select

        from rapport.contacts.models import Contact
        from rapport.core.sql import rows

        admin, contact = await self._contact(client)
        workspace_id = uuid.UUID(admin.workspace_id)
        t = Contact.__table__
        for name in ("Bo", "Cy"):
            await client.post("/api/v1/contacts", json={"first_name": name}, headers=admin.headers)

        def statements(names: list[str]) -> list:
            scoped = t.c.workspace_id == workspace_id
            return [
                select(t).where(scoped, t.c.first_name.in_(names)).order_by(t.c.first_name),
                select(t.c.id, t.c.tags).where(
                    scoped, t.c.first_name.like(literal(f"{names[0]}%", literal_execute=True))
                ),
                select(func.count().label("total")).where(scoped, t.c.first_name.in_(names)),
            ]

        read = UnitOfWork(database, write=False)
        bare = database.read_sessions()
        try:
            for names in (["Ada", "Bo"], ["Cy"], ["Ada", "Bo", "Cy", "Nobody"]):
                for stmt in statements(names):
                    assert await rows(read.session, stmt) == await rows(bare, stmt)
            assert [r["first_name"] for r in await rows(read.session, statements(["Bo"])[0])] == [
                "Bo"
            ]
            assert (await rows(read.session, statements(["Ada", "Cy"])[2]))[0]["total"] == 2
        finally:
            await read.close()
            await bare.close()

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
        await _kill_connections(database)
        try:
            statuses = [
                (await client.get(path, headers=admin.headers)).status_code for _ in range(30)
            ]
        finally:
            await database.engine.dispose()  # no dead connection left for the next tests
        assert set(statuses) <= {200, 503}
        assert 503 in statuses  # the dead connection was used once, and discarded
        assert statuses[-1] == 200


async def _kill_connections(database) -> None:  # noqa: ANN001
    import asyncpg

    killer = await asyncpg.connect(database.url.replace("postgresql+asyncpg", "postgresql"))
    try:  # every pooled connection's server process goes away
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()


class TestLeanWrites:
    """A write's prebuilt statements run inside the request's transaction, whichever way they
    run (on PostgreSQL, on the driver connection the session holds)."""

    async def _repo(self, client, database):  # noqa: ANN001
        admin = await register(client)
        uow = UnitOfWork(database, write=True)
        return uow, ContactRepository(uow.session, uuid.UUID(admin.workspace_id))

    async def _exists(self, database, workspace_id, contact_id) -> bool:  # noqa: ANN001
        reader = UnitOfWork(database, write=False)
        try:
            found = await ContactRepository(reader.session, workspace_id).get(contact_id)
        finally:
            await reader.close()
        return found is not None

    async def test_a_rolled_back_write_leaves_nothing(self, client, database):
        uow, repo = await self._repo(client, database)
        try:
            row = await repo.insert({"first_name": "Gone", "status": "new"})
            assert row["first_name"] == "Gone" and row["version"] == 1
            assert row["tags"] == [] and row["custom_fields"] == {}  # Python-side defaults
            # Read back inside the same transaction: visible there only.
            assert await repo.get(row["id"]) is not None
            assert not await self._exists(database, repo.workspace_id, row["id"])
        finally:
            await uow.rollback()
            await uow.close()
        assert not await self._exists(database, repo.workspace_id, row["id"])

    async def test_lean_and_session_statements_share_one_transaction(
        self, client, database, backend
    ):
        uow, repo = await self._repo(client, database)
        try:
            row = await repo.insert({"first_name": "Kept", "status": "new"})
            if backend == "postgres":
                from sqlalchemy import text

                # The session's own statement sees the uncommitted row: same transaction.
                seen = await uow.session.execute(
                    text("SELECT count(*) FROM contact WHERE id = :id"), {"id": row["id"]}
                )
                assert seen.scalar_one() == 1
            updated = await repo.update(row["id"], {"job_title": "CTO"}, expected_version=1)
            assert updated is not None and updated["version"] == 2
            assert await repo.update(row["id"], {"job_title": "x"}, expected_version=1) is None
            await uow.commit()
        finally:
            await uow.close()
        assert await self._exists(database, repo.workspace_id, row["id"])

    async def test_a_commit_mid_request_starts_a_new_transaction(self, client, database):
        uow, repo = await self._repo(client, database)
        try:
            first = await repo.insert({"first_name": "One", "status": "new"})
            await uow.session.commit()  # as a service may (a revocation that must stick)
            second = await repo.insert({"first_name": "Two", "status": "new"})
            await uow.rollback()
        finally:
            await uow.close()
        assert await self._exists(database, repo.workspace_id, first["id"])
        assert not await self._exists(database, repo.workspace_id, second["id"])

    async def test_many_new_rows_read_as_they_were_stored(self, client, database, backend):
        """A bulk insert is copied in on PostgreSQL and not read back: the rows it returns must
        be what a read of them gives, defaults and NULLs included."""
        uow, repo = await self._repo(client, database)
        try:
            with captured(database, "COPY contact ") as copies:
                rows = await repo.insert_returning(
                    [
                        {"first_name": "Ada", "status": "new", "email": "ada@example.com"},
                        {"first_name": "Bob", "status": "lead", "email": None},
                    ]
                )
            await uow.commit()
        finally:
            await uow.close()
        assert bool(copies) == (backend == "postgres")
        reader = UnitOfWork(database, write=False)
        try:
            reread = ContactRepository(reader.session, repo.workspace_id)
            for row in rows:
                stored = await reread.get(row["id"])
                assert stored is not None
                assert {k: str(v) for k, v in row.items()} == {
                    k: str(v) for k, v in dict(stored).items()
                }
        finally:
            await reader.close()
        assert rows[1]["tags"] == [] and rows[1]["deleted_at"] is None and rows[1]["version"] == 1

    async def test_a_copy_refused_in_a_savepoint_leaves_the_transaction_usable(
        self, client, database
    ):
        """The batch is copied inside a savepoint; a duplicate fails the whole COPY, and rolling
        back to the savepoint must leave the rest of the write intact."""
        uow, repo = await self._repo(client, database)
        try:
            kept = await repo.insert({"first_name": "Kept", "email": "taken@example.com"})
            with pytest.raises(IntegrityError):
                async with uow.session.begin_nested():
                    await repo.insert_returning(
                        [{"first_name": "A", "email": "free@example.com"},
                         {"first_name": "B", "email": "taken@example.com"}]
                    )  # fmt: skip
            after = await repo.insert({"first_name": "After", "email": "after@example.com"})
            await uow.commit()
        finally:
            await uow.close()
        assert await self._exists(database, repo.workspace_id, kept["id"])
        assert await self._exists(database, repo.workspace_id, after["id"])

    async def test_a_constraint_on_the_lean_path_is_a_409(self, client):
        admin = await register(client)
        body = {"first_name": "A", "email": "twice@example.com"}
        assert (await client.post("/api/v1/contacts", json=body, headers=admin.headers)).is_success
        again = await client.post("/api/v1/contacts", json=body, headers=admin.headers)
        assert again.status_code == 409
        assert again.json()["error"]["details"][0]["existing_id"]

    async def test_a_create_lets_the_unique_index_find_the_emails_holder(self, client, database):
        """No look-up before the INSERT: it skips a row whose email a live contact holds, and only
        then is the holder looked up, to name it in the 409. Nothing else is written."""
        admin = await register(client)
        first = await client.post(
            "/api/v1/contacts", json={"first_name": "A", "email": "Held@Example.com"},
            headers=admin.headers,
        )  # fmt: skip
        with captured(database, "SELECT contact.id FROM contact") as lookups:
            fresh = await client.post(
                "/api/v1/contacts", json={"first_name": "B", "email": "free@example.com"},
                headers=admin.headers,
            )  # fmt: skip
        with captured(database, "INSERT INTO") as inserts:
            again = await client.post(
                "/api/v1/contacts", json={"first_name": "C", "email": "held@example.COM"},
                headers=admin.headers,
            )  # fmt: skip
        assert fresh.status_code == 201 and not lookups
        assert again.status_code == 409, again.text
        assert again.json()["error"]["details"][0]["existing_id"] == first.json()["data"]["id"]
        assert [i.sql.split()[2] for i in inserts] == ["contact"]  # no event, no document
        listed = await client.get("/api/v1/contacts?search=held", headers=admin.headers)
        assert [c["id"] for c in listed.json()["data"]] == [first.json()["data"]["id"]]

    async def test_a_patch_names_the_unchanged_company_from_its_read(self, client, database):
        """A PATCH reads the contact (its company's name with it), then writes it: the name is
        not looked up again unless the company changes."""
        admin = await register(client)
        companies = [
            (
                await client.post("/api/v1/companies", json={"name": n}, headers=admin.headers)
            ).json()["data"]["id"]
            for n in ("Acme", "Globex")
        ]
        contact = await client.post(
            "/api/v1/contacts", json={"first_name": "A", "primary_company_id": companies[0]},
            headers=admin.headers,
        )  # fmt: skip
        url = f"/api/v1/contacts/{contact.json()['data']['id']}"
        with captured(database, "SELECT company.name FROM company") as lookups:
            same = await client.patch(url, json={"job_title": "CTO"}, headers=admin.headers)
        moved = await client.patch(
            url, json={"primary_company_id": companies[1]}, headers=admin.headers
        )
        assert same.json()["data"]["company_name"] == "Acme" and not lookups
        assert moved.json()["data"]["company_name"] == "Globex"
        got = await client.get(url, headers=admin.headers)
        assert got.json()["data"]["company_name"] == "Globex"

    async def test_a_failed_statement_undoes_the_whole_write(self, client, database):
        uow, repo = await self._repo(client, database)
        try:
            first = await repo.insert({"first_name": "A", "email": "same@example.com"})
            with pytest.raises(IntegrityError):  # the unique email index, as SQLAlchemy raises it
                await repo.insert({"first_name": "B", "email": "same@example.com"})
            await uow.rollback()
        finally:
            await uow.close()
        assert not await self._exists(database, repo.workspace_id, first["id"])

    async def test_a_write_on_a_lost_connection_answers_503_then_recovers(
        self, client, database, backend
    ):
        if backend != "postgres":
            pytest.skip("the driver path runs on PostgreSQL only")
        admin = await register(client)
        body = {"first_name": "After", "last_name": "Outage"}
        assert (await client.post("/api/v1/contacts", json=body, headers=admin.headers)).is_success
        await _kill_connections(database)
        try:
            statuses = [
                (
                    await client.post("/api/v1/contacts", json=body, headers=admin.headers)
                ).status_code
                for _ in range(30)
            ]
        finally:
            await database.engine.dispose()
        assert set(statuses) <= {201, 503}
        assert statuses[-1] == 201


class TestEventPayloads:
    def test_the_orjson_round_trip_gives_what_the_walk_gives(self):
        """Payloads are made by orjson; they must read exactly as the API's values."""
        import datetime as dt
        from decimal import Decimal

        from rapport.core.events import _walk, jsonable

        plus_two = dt.timezone(dt.timedelta(hours=2))
        value = {
            "id": uuid.uuid4(),
            "utc": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
            "whole_second": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "naive": dt.datetime(2026, 1, 2, 3, 4, 5),
            "offset": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_two),
            "day": dt.date(2026, 1, 2),
            "nested": ({"tags": ["a", "b"], "n": 1, "f": 1.5, "none": None, "yes": True},),
            "text": 'é \u2028 "quoted"',
        }
        assert jsonable(value) == _walk(value)
        assert jsonable(value)["utc"] == "2026-01-02T03:04:05.678901Z"
        # A value orjson does not encode is walked instead and kept as it is.
        assert jsonable({"amount": Decimal("1.50")}) == {"amount": Decimal("1.50")}

    def test_rows_read_on_the_driver_are_encoded_without_the_walk(self, monkeypatch):
        """Rows from asyncpg carry its own UUID subclass, which orjson alone refuses: a bulk
        write's thousand payloads must not fall back to walking each one."""
        from asyncpg.pgproto.pgproto import UUID as DriverUUID

        from rapport.core import events

        def no_walk(value):
            raise AssertionError("walked")

        monkeypatch.setattr(events, "_walk", no_walk)
        raw = "0190a4c8-0000-7000-8000-000000000001"
        assert events.jsonable({"id": DriverUUID(raw), "ids": [DriverUUID(raw)]}) == {
            "id": raw,
            "ids": [raw],
        }

    def test_json_text_is_the_payload_jsonable_gives(self):
        """Bulk events are copied as the JSON text of their payload, never decoded: it must
        decode to exactly what `jsonable` stores for one event."""
        import datetime as dt

        from rapport.core.events import json_text, jsonable

        value = {
            "id": uuid.uuid4(),
            "at": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
            "day": dt.date(2026, 1, 2),
            "nested": {"tags": ["a", None], "n": 1, "f": 1.5, "yes": True, 2: "non-str key"},
            "text": 'é \u2028 "quoted"',
        }
        assert orjson.loads(json_text(value)) == jsonable(value)

    async def test_a_batch_of_events_stores_what_one_event_stores(self, client, database):
        import datetime as dt

        from rapport.core import events

        admin = await register(client)
        workspace_id = uuid.UUID(admin.workspace_id)
        payload = {
            "id": uuid.uuid4(),
            "at": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
            "nested": {"a": [1, None], "b": {}},
            "text": 'é "quoted"',
        }
        uow = UnitOfWork(database, write=True)
        try:
            one = await events.record(
                uow.session, workspace_id=workspace_id, type="test.one", data=payload
            )
            many = await events.record_many(
                uow.session,
                workspace_id=workspace_id,
                type="test.many",
                items=[(payload["id"], payload), (None, {**payload, "text": "second"})],
            )
            await uow.commit()
        finally:
            await uow.close()
        async with database.read_sessions() as session:
            stored = {
                row.id: row
                for row in await session.execute(
                    select(events.TABLE).where(events.TABLE.c.id.in_([one, *many]))
                )
            }
        expected = events.jsonable(payload)
        assert stored[one].data == stored[many[0]].data == expected
        assert stored[many[1]].data == {**expected, "text": "second"}
        assert stored[many[0]].resource_id == payload["id"] and stored[many[1]].resource_id is None
        assert many[0] < many[1]  # in the order given


class TestCopyPlans:
    def test_a_row_copied_directly_is_the_stored_row_copied(self):
        from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

        from rapport.contacts.models import Contact
        from rapport.core.sql import CopyPlan

        row = {
            "workspace_id": uuid.uuid4(),
            "id": uuid.uuid4(),
            "first_name": "Ada",
            "tags": ["x"],
            "custom_fields": {"k": 1},
        }
        plan = CopyPlan.of(
            Contact.__table__,
            tuple(row),
            asyncpg_dialect(json_serializer=JSON_CODEC["json_serializer"]),
        )
        stored = plan.full_row(row)
        direct = plan.direct(row)
        made = {n for n, _ in plan.generated}  # ids, times: made anew for each row
        for index, name in enumerate(plan.columns):
            if name not in made:
                assert direct[index] == plan.record(stored)[index], name
        assert direct[plan.columns.index("tags")] == '["x"]'  # encoded as SQLAlchemy would
        text_plan = CopyPlan.of(
            Contact.__table__,
            tuple(row),
            asyncpg_dialect(json_serializer=JSON_CODEC["json_serializer"]),
            serialized=("custom_fields",),
        )
        given = {**row, "custom_fields": '{"k":1}'}
        assert text_plan.direct(given)[text_plan.columns.index("custom_fields")] == '{"k":1}'

    async def test_json_text_is_refused_where_an_insert_would_encode_it(self, database, backend):
        from rapport.contacts.models import Contact
        from rapport.core.sql import insert_new

        if backend != "sqlite":
            pytest.skip("PostgreSQL copies the text as it is")
        uow = UnitOfWork(database, write=True)
        try:
            with pytest.raises(ValueError, match="only on PostgreSQL"):
                await insert_new(
                    uow.session,
                    Contact.__table__,
                    [{"first_name": "A", "tags": "[]"}],
                    serialized=("tags",),
                )
        finally:
            await uow.close()
