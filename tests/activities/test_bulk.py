"""Bulk activity writes, batched: constant statements, and the bookkeeping on the records they name
exact — each lead's activity_count, each contact's last_activity_at — whatever the batch holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from rapport.contacts.models import Contact
from tests.activities.factories import (
    ACTIVITIES,
    activity_count,
    make_company,
    make_contact,
    make_lead,
    read_row,
)
from tests.bulk_checks import (
    SLACK,
    counted,
    documents,
    event_count,
    failed,
    per_chunk,
    search_ids,
    statements,  # noqa: F401 - fixture
    total,
    written,
)
from tests.factories import register

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def last_activity(database, contact_id: str) -> datetime | None:  # noqa: ANN001
    return (await read_row(database, Contact.__table__, contact_id))["last_activity_at"]


class TestBulkCreate:
    async def test_1000_activities_counted_exactly(self, client, database, statements, backend):  # noqa: F811
        admin = await register(client)
        leads = [await make_lead(database, admin) for _ in range(3)]
        contacts = [await make_contact(database, admin) for _ in range(2)]
        company = await make_company(client, admin)
        await client.get(ACTIVITIES, headers=admin.headers)

        def notes(count: int, tag: str) -> list[dict]:
            return [
                {
                    "kind": "note",
                    "subject": f"{tag} note {i}",
                    "lead_id": leads[i % 3],
                    "contact_id": contacts[i % 2],
                    "company_id": company,
                    "occurred_at": at(i),
                }
                for i in range(count)
            ]

        small, few = await counted(
            client, statements, admin, "POST", f"{ACTIVITIES}/bulk", notes(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{ACTIVITIES}/bulk", notes(200, "m")
        )
        full, most = await counted(
            client, statements, admin, "POST", f"{ACTIVITIES}/bulk", notes(1000, "f")
        )
        assert small.status_code == large.status_code == full.status_code == 200
        assert many <= few + SLACK and per_chunk(few, most, 1000, backend), (few, many, most)
        counts = [await activity_count(database, lead) for lead in leads]
        assert counts == [4 + 67 + 334, 3 + 67 + 333, 3 + 66 + 333]
        assert await last_activity(database, contacts[0]) == BASE + timedelta(minutes=998)
        assert await last_activity(database, contacts[1]) == BASE + timedelta(minutes=999)
        ids = [r["id"] for r in written(full)]
        assert {r["author_id"] for r in written(full)} == {admin.user["id"]}
        assert await event_count(database, admin.workspace_id, "activity.created", ids) == 1000
        assert set(ids) <= set(await documents(database, admin.workspace_id, "activity"))
        assert await search_ids(client, admin, "f note 777") == [ids[777]]

    async def test_failures_count_nothing(self, client, database):
        admin = await register(client)
        lead = await make_lead(database, admin)
        items = [{"kind": "call", "lead_id": lead} for _ in range(10)]
        items[3]["author_id"] = str(uuid.UUID(int=3))
        items[6]["deal_id"] = str(uuid.UUID(int=6))
        refused = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert refused.status_code == 422
        assert [d["index"] for d in refused.json()["error"]["details"]] == [3, 6]
        assert await activity_count(database, lead) == 0
        partial = await client.post(
            f"{ACTIVITIES}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(partial)
        assert {i: e["details"][0]["field"] for i, e in errors.items()} == {
            3: "body.author_id",
            6: "body.deal_id",
        }
        assert await activity_count(database, lead) == 8
        assert await total(client, admin, ACTIVITIES) == 8


class TestBulkUpdate:
    async def test_moves_between_leads_and_contacts_stay_exact(self, client, database):
        admin = await register(client)
        lead_a, lead_b = await make_lead(database, admin), await make_lead(database, admin)
        ada, bob = await make_contact(database, admin), await make_contact(database, admin)
        created = written(
            await client.post(
                f"{ACTIVITIES}/bulk",
                json={
                    "items": [
                        {"kind": "call", "lead_id": lead_a, "contact_id": ada, "occurred_at": at(m)}
                        for m in (10, 20, 30)
                    ]
                },
                headers=admin.headers,
            )
        )
        one, two, three = (r["id"] for r in created)
        assert await last_activity(database, ada) == BASE + timedelta(minutes=30)
        response = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={
                "items": [
                    {"id": three, "contact_id": bob},  # ada's latest leaves her
                    {"id": one, "lead_id": lead_b},
                    {"id": one, "lead_id": lead_a},  # and back, within the same batch
                    {"id": two, "lead_id": lead_b, "occurred_at": at(5)},
                    {"id": three, "contact_id": ada, "occurred_at": at(1)},  # back, but earlier
                ]
            },
            headers=admin.headers,
        )
        assert [r["version"] for r in written(response)] == [2, 2, 3, 2, 3]
        assert await activity_count(database, lead_a) == 2
        assert await activity_count(database, lead_b) == 1
        # Ada's latest is now one (10), bob has none left.
        assert await last_activity(database, ada) == BASE + timedelta(minutes=10)
        assert await last_activity(database, bob) is None
        assert await event_count(database, admin.workspace_id, "activity.updated") == 5
        refused = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={
                "items": [
                    {"id": one, "lead_id": None},
                    {"id": two, "lead_id": None, "contact_id": None},
                ]
            },
            headers=admin.headers,
        )
        assert refused.status_code == 422
        assert [d["index"] for d in refused.json()["error"]["details"]] == [1]
        assert await activity_count(database, lead_a) == 2
