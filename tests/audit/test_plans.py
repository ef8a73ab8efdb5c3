"""The audit log's reads use their indexes on both backends: a record's history and every filter of
/audit-log read the matching index in order (no sort of the workspace's log), first page and
cursor pages alike, and the subscriber's previous-state lookup reads the history index."""

from __future__ import annotations

import pytest

from tests.audit.factories import API, AUDIT_LOG, drain
from tests.contacts.factories import make_contact
from tests.factories import create_api_key, register
from tests.query_plans import captured, plan_of


async def _two_pages(client, account, url: str, **params) -> None:  # noqa: ANN001
    first = await client.get(url, params={**params, "limit": 1}, headers=account.headers)
    assert first.status_code == 200, first.text
    cursor = first.json()["meta"]["next_cursor"]
    assert cursor, first.text
    second = await client.get(
        url, params={**params, "limit": 1, "cursor": cursor}, headers=account.headers
    )
    assert second.status_code == 200, second.text


@pytest.fixture
async def audited(app, client):  # noqa: ANN001, ANN201
    admin = await register(client)
    key = await create_api_key(client, admin)
    contact = await make_contact(client, admin)
    for title in ("A", "B"):
        await client.patch(
            f"{API}/contacts/{contact['id']}",
            json={"job_title": title},
            headers={"Authorization": f"Bearer {key['key']}"},
        )
    await drain(app)
    return admin, key, contact


class TestReadPlans:
    async def test_history_walks_the_record_index(self, client, database, audited):
        admin, _key, contact = audited
        with captured(database, "FROM audit_entry", "ORDER BY") as statements:
            await _two_pages(client, admin, f"{API}/contacts/{contact['id']}/history")
        assert len(statements) == 2
        for statement in statements:
            plan = await plan_of(database, statement)
            assert "ix_audit_entry_resource" in plan.indexes(), f"{statement.sql}\n{plan}"
            assert not plan.sorts(), f"{statement.sql}\n{plan}"

    @pytest.mark.parametrize(
        ("name", "index"),
        [
            (None, "ix_audit_entry_occurred"),
            ("occurred_at[gte]", "ix_audit_entry_occurred"),
            ("actor_id", "ix_audit_entry_actor"),
            ("credential_id", "ix_audit_entry_credential"),
            ("action", "ix_audit_entry_action"),
            # An event type filters its resource type and action too: either index, in order.
            ("event_type", ("ix_audit_entry_action", "ix_audit_entry_resource_type")),
            ("resource_type", "ix_audit_entry_resource_type"),
        ],
    )
    async def test_each_filter_walks_its_index(self, client, database, audited, name, index):
        admin, key, contact = audited
        values = {
            "occurred_at[gte]": "2000-01-01",
            "actor_id": admin.user["id"],
            "credential_id": key["id"],
            "action": "updated",
            "event_type": "contact.updated",
            "resource_type": "contact",
        }
        params = {name: values[name]} if name else {}
        with captured(database, "FROM audit_entry", "ORDER BY") as statements:
            await _two_pages(client, admin, AUDIT_LOG, **params)
        assert len(statements) == 2
        for statement in statements:
            plan = await plan_of(database, statement)
            wanted = {index} if isinstance(index, str) else set(index)
            assert wanted & plan.indexes(), f"{statement.sql}\n{plan}"
            assert not plan.sorts(), f"{statement.sql}\n{plan}"

    async def test_an_event_type_filter_finds_only_that_type(self, app, client, audited):
        admin, _key, contact = audited
        await client.post(
            f"{API}/companies", json={"name": "Acme"}, headers=admin.headers
        )  # a company.created: same action, another resource type
        await drain(app)
        for params, types in (
            ({"event_type": "contact.updated"}, {"contact.updated"}),
            ({"event_type": "company.created"}, {"company.created"}),
            (
                {"event_type": "contact.created,company.created"},
                {"contact.created", "company.created"},
            ),
            ({"event_type": "contact.merged"}, set()),
        ):
            r = await client.get(AUDIT_LOG, params=params, headers=admin.headers)
            assert r.status_code == 200, r.text
            assert {e["event_type"] for e in r.json()["data"]} == types, params

    @pytest.mark.parametrize("with_type", [False, True])
    async def test_a_resource_id_filter_reads_the_record_index(
        self, client, database, audited, with_type
    ):
        admin, _key, contact = audited
        params = {
            "resource_id": contact["id"],
            **({"resource_type": "contact"} if with_type else {}),
        }
        with captured(database, "FROM audit_entry", "ORDER BY") as statements:
            await _two_pages(client, admin, AUDIT_LOG, **params)
        assert len(statements) == 2
        for statement in statements:
            plan = await plan_of(database, statement)
            # With a type too, the type is kept off its index: the record's entries, in order.
            assert plan.indexes() == {"ix_audit_entry_resource"}, f"{statement.sql}\n{plan}"
            assert not plan.sorts(), f"{statement.sql}\n{plan}"
        if with_type:  # and the type still filters: another type finds nothing
            r = await client.get(
                AUDIT_LOG,
                params={"resource_id": contact["id"], "resource_type": "company"},
                headers=admin.headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["data"] == []


class TestWriterPlan:
    async def test_the_previous_state_lookup_reads_the_record_index(self, app, client, database):
        admin = await register(client)
        contact = await make_contact(client, admin)
        # The record's previous entry sits behind a workspace's worth of newer ones, as it does in
        # a live log: walking the log by time would read them all, the record index reads one.
        others = [{"first_name": "Other", "email": f"other{n}@example.com"} for n in range(300)]
        created = await client.post(
            f"{API}/contacts/bulk", json={"items": others}, headers=admin.headers
        )
        assert created.status_code in (200, 201, 207), created.text
        await drain(app)
        await client.patch(
            f"{API}/contacts/{contact['id']}", json={"job_title": "X"}, headers=admin.headers
        )
        # PostgreSQL: one LATERAL step per record; elsewhere a window over the records' entries.
        shape = "LATERAL" if database.dialect == "postgresql" else "row_number()"
        with captured(database, "FROM audit_entry", shape) as statements:
            await drain(app)
        assert statements
        for analysed in (False, True) if database.dialect == "postgresql" else (False,):
            if analysed:  # whatever the statistics say (none yet, or autovacuum's)
                async with database.engine.begin() as conn:
                    await conn.exec_driver_sql("ANALYZE audit_entry")
            for statement in statements:
                plan = await plan_of(database, statement)
                assert "ix_audit_entry_resource" in plan.indexes(), f"{statement.sql}\n{plan}"
                assert not plan.sorts(), f"{statement.sql}\n{plan}"
