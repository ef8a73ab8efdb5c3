"""How events become audit entries: the diff and redaction rules on their own, then the subscriber
on both backends: secrets never stored, replays write nothing twice, payload extras kept apart
from the record's state, events without a record still logged."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from rapport.audit import service
from rapport.audit.service import REDACTED, build_entries, diff, redact, split_type
from rapport.core import events, outbox
from rapport.core.events import TABLE as EVENTS
from rapport.core.ids import new_id
from rapport.core.jobs import TABLE as JOBS
from rapport.core.outbox import DomainEvent, Relay, RelayContext, SubscriberRegistry
from tests.audit.factories import API, audit_log, drain, history, stored_entries
from tests.contacts.factories import make_contact
from tests.factories import register
from tests.leads.factories import make_lead


def event(type_: str, data: dict, resource_id: uuid.UUID | None, **kw) -> DomainEvent:  # noqa: ANN003
    return DomainEvent(
        id=new_id(),
        workspace_id=kw.get("workspace_id", uuid.UUID(int=1)),
        type=type_,
        resource_id=resource_id,
        actor_type="user",
        actor_id=uuid.UUID(int=2),
        credential_id=uuid.UUID(int=3),
        data=data,
        occurred_at=kw.get("at", datetime(2026, 1, 1, tzinfo=UTC)),
    )


class TestDiff:
    def test_only_changed_fields_with_from_and_to(self):
        before = {"id": "x", "a": 1, "b": "same", "version": 1, "updated_at": "t1"}
        after = {"id": "x", "a": 2, "b": "same", "version": 2, "updated_at": "t2"}
        assert diff(before, after) == {"a": {"from": 1, "to": 2}}

    def test_creation_lists_the_values_set(self):
        after = {"id": "x", "name": "Ada", "phone": None, "tags": [], "created_at": "t"}
        assert diff(None, after) == {
            "name": {"from": None, "to": "Ada"},
            "tags": {"from": None, "to": []},
        }

    def test_a_creation_diffs_as_against_an_empty_record(self):
        payloads = [
            {"id": "x", "name": "Ada", "phone": None, "tags": [], "version": 1},
            {"address": {"city": "Paris", "zip": None, "geo": {"lat": 1}}, "cf": {}, "n": 0},
            {"flag": False, "count": 0, "empty": "", "nested": {"a": None}},
            {"activity_count": 3, "last_activity_at": "t", "created_at": "t"},
        ]
        for payload in payloads:
            assert diff(None, payload) == diff({}, payload)

    def test_driver_ids_are_the_same_record_keys_as_python_ids(self):
        from asyncpg.pgproto.pgproto import UUID as DriverUUID

        from rapport.audit.repository import RecordKey

        plain = new_id()
        driver = DriverUUID(plain.bytes)
        assert service._uuid(driver) == plain
        assert RecordKey(plain, "contact", plain) == RecordKey(driver, "contact", driver)
        assert hash(RecordKey(plain, "contact", plain)) == hash(
            RecordKey(driver, "contact", driver)
        )
        assert service._uuid(str(plain)) == plain
        assert service._uuid("not-an-id") is None

    def test_objects_by_dotted_path_including_removed_keys(self):
        before = {"custom_fields": {"tier": "gold", "seats": 3}, "address": {"city": "Paris"}}
        after = {"custom_fields": {"tier": "platinum"}, "address": None}
        assert diff(before, after) == {
            "custom_fields.tier": {"from": "gold", "to": "platinum"},
            "custom_fields.seats": {"from": 3, "to": None},
            "address.city": {"from": "Paris", "to": None},
        }

    def test_a_type_change_is_a_change(self):
        assert diff({"cf": 1}, {"cf": True}) == {"cf": {"from": 1, "to": True}}
        assert diff({"cf": 1}, {"cf": 1.5}) == {"cf": {"from": 1, "to": 1.5}}

    def test_fields_missing_from_the_new_payload_are_not_changes(self):
        assert diff({"a": 1, "from_status": "new"}, {"a": 1}) == {}


class TestRedaction:
    def test_secret_names_at_any_depth(self):
        value = {
            "name": "hook",
            "secret": "whsec_1",
            "config": {"access_token": "t", "refresh_token": "r", "url": "https://x"},
            "items": [{"password_hash": "h"}, {"key": "rpk_1", "prefix": "rpk_1234"}],
            "key_hash": "abc",
            "api_key": "k",
            "client_credentials": {"id": 1},
        }
        assert redact(value) == {
            "name": "hook",
            "secret": REDACTED,
            "config": {"access_token": REDACTED, "refresh_token": REDACTED, "url": "https://x"},
            "items": [{"password_hash": REDACTED}, {"key": REDACTED, "prefix": "rpk_1234"}],
            "key_hash": REDACTED,
            "api_key": REDACTED,
            "client_credentials": REDACTED,
        }

    def test_what_holds_no_secret_is_not_copied_and_the_input_is_never_changed(self):
        plain = {"name": "Ada", "address": {"city": "Paris"}, "tags": ["a", {"b": 1}]}
        assert redact(plain) is plain
        mixed = {"name": "Ada", "auth": {"token": "t", "url": "u"}, "list": [{"key": "k"}, 1]}
        out = redact(mixed)
        assert out == {
            "name": "Ada",
            "auth": {"token": REDACTED, "url": "u"},
            "list": [{"key": REDACTED}, 1],
        }
        assert mixed == {
            "name": "Ada",
            "auth": {"token": "t", "url": "u"},
            "list": [{"key": "k"}, 1],
        }

    def test_event_types_split_into_resource_and_action(self):
        assert split_type("contact.merged") == ("contact", "merged")
        assert split_type("lead_statuses.updated") == ("lead_statuses", "updated")
        assert split_type("ping") == ("ping", "ping")


class TestBuildEntries:
    def test_a_batch_chains_each_record_and_keeps_records_apart(self):
        a, b = new_id(), new_id()
        batch = [
            event("contact.created", {"id": str(a), "version": 1, "n": "A1"}, a),
            event("contact.created", {"id": str(b), "version": 1, "n": "B1"}, b),
            event("contact.updated", {"id": str(a), "version": 2, "n": "A2"}, a),
            event("contact.linked", {"contact_id": str(a), "company_id": "c"}, a),
            event("contact.updated", {"id": str(a), "version": 3, "n": "A3"}, a),
            event("contact.erased", {"id": str(b)}, b),
        ]
        rows = build_entries(batch, {})
        # A creation's changes are not stored: they are made from its snapshot when read.
        assert [r["changes"] for r in rows][:2] == [{}, {}]
        assert [service.changes_of(r) for r in rows] == [
            {"n": {"from": None, "to": "A1"}},
            {"n": {"from": None, "to": "B1"}},
            {"n": {"from": "A1", "to": "A2"}},
            {},
            {"n": {"from": "A2", "to": "A3"}},
            {},
        ]
        assert rows[3]["details"] == {"contact_id": str(a), "company_id": "c"}
        # A link leaves the record's state as it was: the snapshot is carried forward.
        assert rows[3]["snapshot"] == rows[2]["snapshot"] == {"id": str(a), "version": 2, "n": "A2"}
        assert rows[5]["snapshot"] is None
        assert rows[5]["details"] is None and rows[5]["action"] == "erased"

    def test_a_creation_reads_as_every_value_its_snapshot_sets(self):
        """What a creation's entry stored before its changes were made on read (stored in full)
        reads the same as one stored without them."""
        a = new_id()
        data = {"id": str(a), "version": 1, "n": "A", "none": None, "address": {"city": "Oslo"}}
        (row,) = build_entries([event("contact.created", data, a)], {})
        assert row["changes"] == {} and row["snapshot"] == data
        made = service.changes_of(row)
        assert made == {
            "n": {"from": None, "to": "A"},
            "address.city": {"from": None, "to": "Oslo"},
        }
        assert service.changes_of({**row, "changes": diff(None, data)}) == made
        # Other actions, and a creation with nothing set, read as stored.
        assert service.changes_of({**row, "action": "updated"}) == {}
        assert service.changes_of({**row, "snapshot": None}) == {}

    def test_a_stored_base_is_the_first_diffs_from(self):
        a = new_id()
        key = service.RecordKey(uuid.UUID(int=1), "deal", a)
        rows = build_entries(
            [event("deal.updated", {"id": str(a), "version": 5, "amount": 20}, a)],
            {key: {"id": str(a), "version": 4, "amount": 10}},
        )
        assert rows[0]["changes"] == {"amount": {"from": 10, "to": 20}}

    def test_records_the_batch_creates_need_no_stored_base(self):
        """A created record has nothing before it: no lookup of earlier entries and no wait
        for earlier events (a bulk create's batch needs neither); any other record does."""
        a, b, c = new_id(), new_id(), new_id()
        batch = [
            event("contact.created", {"id": str(a), "version": 1}, a),
            event("contact.updated", {"id": str(a), "version": 2}, a),
            event("contact.updated", {"id": str(b), "version": 7}, b),
            event("contact.merged", {"id": str(c), "loser_ids": [str(a)]}, c),
        ]
        workspace = uuid.UUID(int=1)
        assert service.bases_needed(batch) == [
            service.RecordKey(workspace, "contact", b),
            service.RecordKey(workspace, "contact", c),
        ]
        assert service.bases_needed(batch[:2]) == []


class TestSubscriber:
    async def test_secrets_in_any_event_are_never_stored(self, app, client, database):
        admin = await register(client)
        workspace_id = uuid.UUID(admin.workspace_id)
        hook = new_id()
        payloads = [
            ("webhook.created", {"secret": "whsec_first", "url": "https://a.example"}),
            ("webhook.updated", {"secret": "whsec_second", "url": "https://b.example"}),
        ]
        async with database.write_sessions() as session, session.begin():
            for version, (type_, fields) in enumerate(payloads, start=1):
                await events.record(
                    session,
                    workspace_id=workspace_id,
                    type=type_,
                    data={
                        "id": hook,
                        "version": version,
                        **fields,
                        "auth": {"token": "tok_zzz", "password": "hunter2"},
                    },
                    resource_id=hook,
                )
        await drain(app)
        stored = [e for e in await stored_entries(database, admin.workspace_id) if e["resource_id"]]
        hook_rows = [e for e in stored if str(e["resource_id"]) == str(hook)]
        assert [e["event_type"] for e in hook_rows] == ["webhook.created", "webhook.updated"]
        text = json.dumps(hook_rows, default=str)
        for secret in ("whsec_first", "whsec_second", "tok_zzz", "hunter2"):
            assert secret not in text
        assert hook_rows[0]["snapshot"]["secret"] == REDACTED
        assert service.changes_of(hook_rows[0])["auth.token"] == {"from": None, "to": REDACTED}
        assert hook_rows[1]["changes"] == {
            "url": {"from": "https://a.example", "to": "https://b.example"}
        }

    async def test_a_replayed_batch_writes_nothing_twice(self, app, client, database):
        admin = await register(client)
        contact = await make_contact(client, admin)
        await client.patch(
            f"{API}/contacts/{contact['id']}", json={"job_title": "CEO"}, headers=admin.headers
        )
        await drain(app)
        before = await stored_entries(database, admin.workspace_id)
        # As after a crash between the subscriber's writes and the relay's commit, or a
        # redelivery: the same events handed to the subscriber again.
        async with database.write_sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(EVENTS)
                    .where(EVENTS.c.workspace_id == uuid.UUID(admin.workspace_id))
                    .order_by(EVENTS.c.id)
                )
            ).mappings()
            replay = [DomainEvent.from_row(r) for r in rows]
            assert await service.record(session, replay) == len(replay)
            assert await service.record(session, replay[-1:]) == 1
        after = await stored_entries(database, admin.workspace_id)
        assert [e["id"] for e in after] == [e["id"] for e in before]

    async def test_the_relays_own_batch_is_copied_in_on_postgresql(
        self, app, client, database, backend
    ):
        admin = await register(client)
        await make_contact(client, admin)
        seen: list[str] = []

        def hook(_c, _cur, statement, *_a):  # noqa: ANN001, ANN002, ANN202
            seen.append(statement)

        from sqlalchemy import event as sa_event

        sa_event.listen(database.engine.sync_engine, "before_cursor_execute", hook)
        try:
            await drain(app)
        finally:
            sa_event.remove(database.engine.sync_engine, "before_cursor_execute", hook)
        audit_writes = [
            s for s in seen if "audit_entry" in s and not s.lstrip().startswith("SELECT")
        ]
        expected = "COPY audit_entry" if backend == "postgres" else "INSERT INTO audit_entry"
        assert audit_writes and all(s.startswith(expected) for s in audit_writes), audit_writes
        assert [e["action"] for e in await audit_log(client, admin)].count("created") >= 1

    async def test_an_entry_that_exists_fails_the_copy_and_is_redelivered_once(
        self, app, client, database, backend
    ):
        """Should a pending event's entry exist already, the fresh batch's COPY fails: the
        subscriber's savepoint is rolled back and the event is redelivered alone, which leaves
        the entry as it is; every event still has exactly one entry."""
        admin = await register(client)
        contact = await make_contact(client, admin)
        async with database.write_sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(EVENTS).where(EVENTS.c.workspace_id == uuid.UUID(admin.workspace_id))
                )
            ).mappings()
            await service.record(session, [DomainEvent.from_row(r) for r in rows])
        before = await stored_entries(database, admin.workspace_id)
        await make_contact(client, admin, email="second@example.com")
        await drain(app)
        after = await stored_entries(database, admin.workspace_id)
        assert [e["id"] for e in after][: len(before)] == [e["id"] for e in before]
        by_event = [(e["event_id"], e["position"]) for e in after]
        assert len(by_event) == len(set(by_event)) == len(before) + 1
        assert contact["id"] in {str(e["resource_id"]) for e in after}
        async with database.read_sessions() as session:
            redeliveries = (
                await session.execute(
                    select(JOBS.c.status, JOBS.c.attempts).where(
                        JOBS.c.kind == outbox.REDELIVER,
                        JOBS.c.workspace_id == uuid.UUID(admin.workspace_id),  # this test's
                    )
                )
            ).all()
        # On PostgreSQL the batch's COPY failed and each of its events was redelivered once,
        # successfully; SQLite's INSERT skipped the existing entry and needed no redelivery.
        assert all(status == "done" and attempts == 1 for status, attempts in redeliveries), (
            redeliveries
        )
        if backend == "postgres":
            assert redeliveries

    async def test_an_event_audited_alone_diffs_against_the_stored_state(
        self, app, client, database
    ):
        """A redelivered event (its subscriber failed in the relay) is audited by itself: its
        base is the last state stored before it."""
        admin = await register(client)
        contact = await make_contact(client, admin, job_title="CFO")
        await drain(app)
        r = await client.patch(
            f"{API}/contacts/{contact['id']}", json={"job_title": "CEO"}, headers=admin.headers
        )
        assert r.status_code == 200
        async with database.write_sessions() as session, session.begin():
            row = (
                (
                    await session.execute(
                        select(EVENTS).where(
                            EVENTS.c.workspace_id == uuid.UUID(admin.workspace_id),
                            EVENTS.c.type == "contact.updated",
                        )
                    )
                )
                .mappings()
                .one()
            )
            await service.record(session, [DomainEvent.from_row(row)])
        await drain(app)  # the relay then sees it again: nothing new
        entries = await history(client, admin, "contacts", contact["id"])
        assert [e["changes"] for e in entries][:1] == [{"job_title": {"from": "CFO", "to": "CEO"}}]
        assert len(entries) == 2

    async def test_extras_go_to_details_not_into_the_record_state(self, app, client, database):
        admin = await register(client)
        lead = await make_lead(client, admin, company_name="Initech", status="new")
        await drain(app)
        r = await client.post(f"{API}/leads/{lead['id']}/convert", json={}, headers=admin.headers)
        assert r.status_code == 200, r.text
        result = r.json()["data"]
        await drain(app)
        entries = await history(client, admin, "leads", lead["id"])
        by_type = {e["event_type"]: e for e in entries}
        converted = by_type["lead.converted"]
        assert converted["details"]["contact_id"] == result["contact_id"]
        assert converted["details"]["deal_id"] == result["deal_id"]
        assert "contact_id" not in converted["changes"]
        status = by_type["lead.status_changed"]
        assert status["changes"]["status"] == {"from": "new", "to": "converted"}
        assert status["changes"]["converted_contact_id"]["to"] == result["contact_id"]
        assert status["details"]["from_status"] == "new"
        stored = await stored_entries(database, admin.workspace_id)
        for row in stored:
            if row["snapshot"] is not None and row["resource_type"] == "lead":
                assert not {"from_status", "to_status", "contact_created"} & set(row["snapshot"])

    async def test_events_that_are_not_a_record_state_are_logged_with_their_payload(
        self, app, client
    ):
        admin = await register(client)
        r = await client.patch(
            f"{API}/leads/statuses",
            json={"statuses": ["new", "qualified", "converted"]},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)
        log = await audit_log(client, admin)
        joined = [e for e in log if e["event_type"] == "user.joined"]
        assert len(joined) == 1 and joined[0]["resource_id"] == admin.user["id"]
        assert joined[0]["resource_type"] == "user" and joined[0]["action"] == "joined"
        assert joined[0]["details"]["email"] == admin.email
        assert joined[0]["changes"] == {}
        settings = [e for e in log if e["event_type"] == "lead_statuses.updated"]
        assert len(settings) == 1
        assert settings[0]["details"]["statuses"] == ["new", "qualified", "converted"]
        assert settings[0]["actor_id"] == admin.user["id"]


class TestConcurrentRelays:
    async def test_a_newer_event_waits_for_the_relay_holding_an_older_one(
        self, app, client, database, backend
    ):
        """Two relays take consecutive batches at once (PostgreSQL, SKIP LOCKED): the one with the
        newer change of a record waits for the one with the older change to commit its entry, so
        each diff holds its own change only."""
        if backend == "sqlite":
            pytest.skip("SQLite has one writer: two relays never hold batches at once")
        admin = await register(client)
        contact = await make_contact(client, admin, job_title="CFO")
        await drain(app)  # nothing older is pending: the relays below take exactly v2 and v3
        for title in ("CEO", "CTO"):
            r = await client.patch(
                f"{API}/contacts/{contact['id']}", json={"job_title": title}, headers=admin.headers
            )
            assert r.status_code == 200, r.text

        release, holding = asyncio.Event(), asyncio.Event()

        async def slow(ctx: RelayContext, events: list[DomainEvent]) -> None:
            holding.set()
            await release.wait()  # another subscriber of the older batch takes its time

        first = SubscriberRegistry()
        first.subscriber("slow")(slow)
        first.durable["audit"] = outbox.subscribers.durable["audit"]
        second = SubscriberRegistry()
        second.durable["audit"] = outbox.subscribers.durable["audit"]

        older = asyncio.create_task(Relay(database, registry=first, batch=1).run_once())
        await asyncio.wait_for(holding.wait(), 5)
        newer = asyncio.create_task(Relay(database, registry=second, batch=1).run_once())
        await asyncio.sleep(0.5)  # without the wait, the newer batch is audited and done by now
        assert not newer.done()
        release.set()
        assert await older == 1 and await newer == 1
        entries = await history(client, admin, "contacts", contact["id"])
        assert [e["changes"] for e in entries] == [
            {"job_title": {"from": "CEO", "to": "CTO"}},
            {"job_title": {"from": "CFO", "to": "CEO"}},
            entries[-1]["changes"],
        ]
