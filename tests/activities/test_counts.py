"""The lead's activity_count is exact (under concurrency too), and a contact's last_activity_at
follows its latest live activity."""

from __future__ import annotations

import asyncio
from datetime import datetime

from rapport.contacts.models import Contact
from tests.activities.factories import (
    ACTIVITIES,
    activity_count,
    make_activity,
    make_contact,
    make_lead,
    read_row,
)
from tests.factories import register


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def last_activity(database, contact_id: str) -> datetime | None:
    return (await read_row(database, Contact.__table__, contact_id))["last_activity_at"]


class TestActivityCount:
    async def test_twenty_concurrent_creations_count_twenty(self, client, database):
        admin = await register(client)
        lead = await make_lead(database, admin)

        async def log(i: int):
            return await client.post(
                ACTIVITIES,
                json={"kind": "call", "lead_id": lead, "subject": f"call {i}"},
                headers=admin.headers,
            )

        responses = await asyncio.gather(*(log(i) for i in range(20)))
        assert [r.status_code for r in responses] == [201] * 20
        assert await activity_count(database, lead) == 20
        listed = await client.get(
            f"/api/v1/leads/{lead}/activities",
            params={"include_total": "true"},
            headers=admin.headers,
        )
        assert listed.json()["meta"]["total"] == 20

    async def test_delete_restore_erase_and_move(self, client, database):
        admin = await register(client)
        lead = await make_lead(database, admin)
        other_lead = await make_lead(database, admin)
        contact = await make_contact(database, admin)
        a = await make_activity(client, admin, lead_id=lead)
        b = await make_activity(client, admin, lead_id=lead, contact_id=contact)
        c = await make_activity(client, admin, lead_id=lead)
        assert await activity_count(database, lead) == 3

        async def count_after(method: str, path: str, body=None, status=200) -> int:
            response = await client.request(method, path, json=body, headers=admin.headers)
            assert response.status_code == status, response.text
            return await activity_count(database, lead)

        assert await count_after("DELETE", f"{ACTIVITIES}/{a['id']}") == 2
        assert await count_after("DELETE", f"{ACTIVITIES}/{a['id']}", status=404) == 2
        assert await count_after("POST", f"{ACTIVITIES}/{a['id']}/restore") == 3
        assert await count_after("POST", f"{ACTIVITIES}/{a['id']}/restore") == 3
        # Erasing a live activity takes it off the count; erasing a deleted one changes nothing.
        assert await count_after("DELETE", f"{ACTIVITIES}/{a['id']}?erase=true") == 2
        await client.delete(f"{ACTIVITIES}/{c['id']}", headers=admin.headers)
        assert await count_after("DELETE", f"{ACTIVITIES}/{c['id']}?erase=true") == 1
        # Edits that keep the lead leave the count alone.
        assert await count_after("PATCH", f"{ACTIVITIES}/{b['id']}", {"subject": "x"}) == 1
        assert await count_after("PATCH", f"{ACTIVITIES}/{b['id']}", {"lead_id": lead}) == 1
        # Moving to another lead moves the count; unlinking the lead drops it.
        assert await count_after("PATCH", f"{ACTIVITIES}/{b['id']}", {"lead_id": other_lead}) == 0
        assert await activity_count(database, other_lead) == 1
        assert await count_after("PATCH", f"{ACTIVITIES}/{b['id']}", {"lead_id": None}) == 0
        assert await activity_count(database, other_lead) == 0
        assert await count_after("PATCH", f"{ACTIVITIES}/{b['id']}", {"lead_id": lead}) == 1
        # Deleting counts down on the lead it names now; a deleted activity cannot be moved.
        assert await count_after("DELETE", f"{ACTIVITIES}/{b['id']}") == 0
        path = f"{ACTIVITIES}/{b['id']}"
        assert await count_after("PATCH", path, {"lead_id": other_lead}, status=404) == 0
        assert await activity_count(database, other_lead) == 0
        assert await count_after("POST", f"{path}/restore") == 1

    async def test_bulk_counts_only_what_was_written(self, client, database):
        admin = await register(client)
        lead = await make_lead(database, admin)
        items = [{"kind": "note", "lead_id": lead} for _ in range(10)]
        written = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert written.status_code == 200
        assert await activity_count(database, lead) == 10
        items[4] = {"kind": "bogus", "lead_id": lead}
        refused = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert refused.status_code == 422
        assert await activity_count(database, lead) == 10
        partial = await client.post(
            f"{ACTIVITIES}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert partial.json()["data"]["succeeded"] == 9
        assert await activity_count(database, lead) == 19
        ids = [r["data"]["id"] for r in written.json()["data"]["items"]]
        other = await make_lead(database, admin)
        moved = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={"items": [{"id": i, "lead_id": other} for i in ids[:3]]},
            headers=admin.headers,
        )
        assert moved.status_code == 200
        assert await activity_count(database, lead) == 16
        assert await activity_count(database, other) == 3

    async def test_concurrent_deletes_restores_and_moves_stay_exact(self, client, database):
        admin = await register(client)
        lead = await make_lead(database, admin)
        other = await make_lead(database, admin)
        items = [{"kind": "note", "lead_id": lead} for _ in range(8)]
        created = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        ids = [r["data"]["id"] for r in created.json()["data"]["items"]]

        def call(method: str, path: str, body=None):
            return client.request(method, path, json=body, headers=admin.headers)

        # Every activity deleted three times at once: each counts down once.
        await asyncio.gather(*(call("DELETE", f"{ACTIVITIES}/{i}") for i in ids for _ in range(3)))
        assert await activity_count(database, lead) == 0
        await asyncio.gather(
            *(call("POST", f"{ACTIVITIES}/{i}/restore") for i in ids for _ in range(3))
        )
        assert await activity_count(database, lead) == 8
        # Moves racing each other and deletes.
        await asyncio.gather(
            *(call("PATCH", f"{ACTIVITIES}/{i}", {"lead_id": other}) for i in ids),
            *(call("PATCH", f"{ACTIVITIES}/{i}", {"lead_id": lead}) for i in ids),
            *(call("DELETE", f"{ACTIVITIES}/{i}") for i in ids[:4]),
            *(call("DELETE", f"{ACTIVITIES}/{i}?erase=true") for i in ids[4:6]),
        )
        live = await client.get(
            ACTIVITIES, params={"lead_id": lead, "limit": 200}, headers=admin.headers
        )
        live_other = await client.get(
            ACTIVITIES, params={"lead_id": other, "limit": 200}, headers=admin.headers
        )
        assert await activity_count(database, lead) == len(live.json()["data"])
        assert await activity_count(database, other) == len(live_other.json()["data"])
        assert len(live.json()["data"]) + len(live_other.json()["data"]) == 2


class TestLastActivityAt:
    async def test_follows_the_latest_live_activity(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        other = await make_contact(database, admin)
        assert await last_activity(database, contact) is None
        early = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-01-01T00:00:00Z"
        )
        late = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-03-01T00:00:00Z"
        )
        await make_activity(client, admin, contact_id=contact, occurred_at="2026-02-01T00:00:00Z")
        assert await last_activity(database, contact) == at(late["occurred_at"])
        await client.delete(f"{ACTIVITIES}/{late['id']}", headers=admin.headers)
        assert await last_activity(database, contact) == at("2026-02-01T00:00:00Z")
        await client.post(f"{ACTIVITIES}/{late['id']}/restore", headers=admin.headers)
        assert await last_activity(database, contact) == at(late["occurred_at"])
        moved = await client.patch(
            f"{ACTIVITIES}/{late['id']}", json={"contact_id": other}, headers=admin.headers
        )
        assert moved.status_code == 200
        assert await last_activity(database, contact) == at("2026-02-01T00:00:00Z")
        assert await last_activity(database, other) == at(late["occurred_at"])
        await client.patch(
            f"{ACTIVITIES}/{late['id']}",
            json={"occurred_at": "2025-01-01T00:00:00Z"},
            headers=admin.headers,
        )
        assert await last_activity(database, other) == at("2025-01-01T00:00:00Z")
        await client.delete(f"{ACTIVITIES}/{late['id']}?erase=true", headers=admin.headers)
        assert await last_activity(database, other) is None
        await client.patch(
            f"{ACTIVITIES}/{early['id']}",
            json={"occurred_at": "2026-06-01T00:00:00Z"},
            headers=admin.headers,
        )
        assert await last_activity(database, contact) == at("2026-06-01T00:00:00Z")
