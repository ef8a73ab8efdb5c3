"""Bulk lead writes, batched: constant statements, duplicates found as one lead at a time would
find them (the oldest lead with the email or phone, stored or earlier in the batch), status moves
with their notes, counts and events."""

from __future__ import annotations

from tests.bulk_checks import (
    SLACK,
    counted,
    documents,
    event_count,
    events_of,
    failed,
    per_chunk,
    search_ids,
    statements,  # noqa: F401 - fixture
    total,
    written,
)
from tests.factories import register
from tests.leads.factories import LEADS, lead_notes, make_lead


def leads(count: int, tag: str = "l", area: int = 415) -> list[dict]:
    return [
        {
            "first_name": f"{tag}{i}",
            "email": f"{tag}{i}@example.com",
            "phone": f"+1{area}555{i:04d}",
        }
        for i in range(count)
    ]


class TestBulkCreate:
    async def test_1000_leads_in_constant_statements(self, client, database, statements, backend):  # noqa: F811
        admin = await register(client)
        await client.get(LEADS, headers=admin.headers)
        small, few = await counted(
            client, statements, admin, "POST", f"{LEADS}/bulk", leads(10, "s", 212)
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{LEADS}/bulk", leads(200, "m", 312)
        )
        full, most = await counted(
            client, statements, admin, "POST", f"{LEADS}/bulk", leads(1000, "f", 646)
        )
        assert small.status_code == large.status_code == full.status_code == 200
        assert many <= few + SLACK and per_chunk(few, most, 1000, backend), (few, many, most)
        rows = written(full)
        assert {r["activity_count"] for r in rows} == {0} and {r["status"] for r in rows} == {"new"}
        ids = [r["id"] for r in rows]
        assert await event_count(database, admin.workspace_id, "lead.created", ids) == 1000
        assert set(ids) <= set(await documents(database, admin.workspace_id, "lead"))
        assert await search_ids(client, admin, "f321@example.com") == [ids[321]]

    async def test_duplicates_stored_and_within_the_batch(self, client):
        admin = await register(client)
        old = await make_lead(client, admin, email="old@example.com", phone="+14155550100")
        items = [
            {"first_name": "A", "email": "a@example.com"},
            {"first_name": "B", "phone": "(415) 555-0100"},  # old's phone
            {"first_name": "C", "email": "new@example.com", "phone": "+14155550100"},
            {"first_name": "D", "email": "a@example.com", "phone": "+14155550199"},  # A's email
            {"first_name": "E", "phone": "+14155550199"},  # D failed: its phone is free
            {"first_name": "F", "email": "e2@example.com", "phone": "+14155550199"},  # E's
            {"first_name": "G", "email": "old@example.com", "phone": "+14155550199"},
        ]
        atomic = await client.post(f"{LEADS}/bulk", json={"items": items}, headers=admin.headers)
        assert atomic.status_code == 422
        assert [d["index"] for d in atomic.json()["error"]["details"]] == [1, 2, 3, 5, 6]
        partial = await client.post(
            f"{LEADS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(partial)
        results = partial.json()["data"]["items"]
        a_id, e_id = results[0]["data"]["id"], results[4]["data"]["id"]
        expected = {
            1: (old["id"], "phone"),
            2: (old["id"], "phone"),
            3: (a_id, "email"),
            5: (e_id, "phone"),
            6: (old["id"], "email"),  # the oldest of the two it matches
        }
        assert sorted(errors) == sorted(expected)
        for index, (holder, field) in expected.items():
            assert errors[index]["code"] == "lead_duplicate"
            assert errors[index]["details"] == [
                {
                    "field": f"body.{field}",
                    "reason": f"lead {holder} has the same {field}",
                    "existing_id": holder,
                }
            ]
        allowed = await client.post(
            f"{LEADS}/bulk?allow_duplicate=true", json={"items": items}, headers=admin.headers
        )
        assert allowed.json()["data"]["succeeded"] == 7
        assert await total(client, admin, LEADS) == 1 + 2 + 7


class TestBulkUpdate:
    async def test_status_moves_write_notes_counts_and_events(self, client, database):
        admin = await register(client)
        rows = written(
            await client.post(f"{LEADS}/bulk", json={"items": leads(3)}, headers=admin.headers)
        )
        a, b, c = (r["id"] for r in rows)
        response = await client.patch(
            f"{LEADS}/bulk",
            json={
                "items": [
                    {"id": a, "status": "contacted"},
                    {"id": b, "notes": "call back"},
                    {"id": a, "status": "qualified"},  # from where the item before left it
                    {"id": c, "status": "new"},  # no move: already new
                ]
            },
            headers=admin.headers,
        )
        data = written(response)
        assert [(d["status"], d["activity_count"], d["version"]) for d in data] == [
            ("contacted", 1, 2),
            ("new", 0, 2),
            ("qualified", 2, 3),
            ("new", 0, 1),
        ]
        notes = await lead_notes(database, a)
        assert [n["subject"] for n in notes] == [
            "Status changed from new to contacted",
            "Status changed from contacted to qualified",
        ]
        assert await lead_notes(database, c) == []
        moved = [d for t, d in await events_of(database, a) if t == "lead.status_changed"]
        assert [(d["from_status"], d["to_status"]) for d in moved] == [
            ("new", "contacted"),
            ("contacted", "qualified"),
        ]
        assert [d["activity_id"] for d in moved] == [str(n["id"]) for n in notes]
        activity_docs = await documents(database, admin.workspace_id, "activity")
        assert {str(n["id"]) for n in notes} <= set(activity_docs)
        refused = await client.patch(
            f"{LEADS}/bulk?atomic=false",
            json={"items": [{"id": b, "status": "converted"}, {"id": c, "status": "lost"}]},
            headers=admin.headers,
        )
        assert sorted(failed(refused)) == [0]
        assert failed(refused)[0]["code"] == "invalid_status_transition"
