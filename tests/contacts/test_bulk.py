"""Bulk contact writes: atomic by default, per-item outcomes, upsert by email."""

from __future__ import annotations

from tests.contacts.factories import CONTACTS, count_contacts, make_contact
from tests.factories import register


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client, database):
        admin = await register(client)
        items = [{"first_name": f"C{i}", "email": f"c{i}@example.com"} for i in range(1000)]
        items[637] = {"first_name": "Bad", "email": "not an email"}
        response = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "bulk_failed"
        assert {d["index"] for d in error["details"]} == {637}
        assert await count_contacts(database, admin.workspace_id) == 0

    async def test_a_conflict_in_the_batch_writes_nothing(self, client, database):
        admin = await register(client)
        items = [{"first_name": f"C{i}", "email": f"c{i}@example.com"} for i in range(10)]
        items[7]["email"] = "c2@EXAMPLE.com"
        response = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422
        details = response.json()["error"]["details"]
        assert [d["index"] for d in details] == [7] and "contact_email_taken" in details[0][
            "reason"
        ]
        assert await count_contacts(database, admin.workspace_id) == 0

    async def test_non_atomic_writes_the_other_999(self, client, database):
        admin = await register(client)
        items = [{"first_name": f"C{i}"} for i in range(1000)]
        items[500] = {"first_name": "Bad", "status": "vip"}
        response = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200
        body = response.json()["data"]
        assert body["succeeded"] == 999 and body["failed"] == 1
        assert [r["index"] for r in body["items"] if not r["success"]] == [500]
        assert {r["data"]["outcome"] for r in body["items"] if r["success"]} == {"created"}
        assert await count_contacts(database, admin.workspace_id) == 999

    async def test_upsert_by_email_updates_the_live_contact(self, client, database):
        admin = await register(client)
        existing = await make_contact(
            client, admin, email="ada@example.com", job_title="Analyst", tags=["old"]
        )
        deleted = await make_contact(client, admin, first_name="Gone", email="gone@example.com")
        await client.delete(f"{CONTACTS}/{deleted['id']}", headers=admin.headers)
        items = [
            {"email": "ADA@example.com", "status": "customer", "tags": ["new"]},
            {"first_name": "Brand", "email": "brand@example.com"},
            {"first_name": "Gone again", "email": "gone@example.com"},
            {"first_name": "Brand twin", "email": "brand@example.com", "job_title": "CTO"},
            {"first_name": "No email"},
        ]
        response = await client.post(
            f"{CONTACTS}/bulk?upsert=email", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        results = response.json()["data"]["items"]
        assert [r["data"]["outcome"] for r in results] == [
            "updated",
            "created",
            "created",
            "updated",
            "created",
        ]
        updated = results[0]["data"]
        assert updated["id"] == existing["id"] and updated["version"] == 2
        assert updated["status"] == "customer" and updated["tags"] == ["new"]
        assert updated["job_title"] == "Analyst" and updated["first_name"] == "Ada"
        assert results[3]["data"]["id"] == results[1]["data"]["id"]
        assert results[3]["data"]["first_name"] == "Brand twin"
        assert results[3]["data"]["job_title"] == "CTO"
        assert results[2]["data"]["id"] != deleted["id"]
        # Without upsert, the same email is a conflict for that item.
        plain = await client.post(
            f"{CONTACTS}/bulk?atomic=false",
            json={"items": [{"email": "ada@example.com"}]},
            headers=admin.headers,
        )
        assert plain.json()["data"]["items"][0]["error"]["code"] == "contact_email_taken"
        assert await count_contacts(database, admin.workspace_id) == 5
        bad = await client.post(
            f"{CONTACTS}/bulk?upsert=phone", json={"items": items}, headers=admin.headers
        )
        assert bad.status_code == 422

    async def test_bulk_update_and_empty_list(self, client):
        admin = await register(client)
        a = await make_contact(client, admin, first_name="A")
        b = await make_contact(client, admin, first_name="B")
        response = await client.patch(
            f"{CONTACTS}/bulk",
            json={
                "items": [
                    {"id": a["id"], "status": "qualified"},
                    {"id": b["id"], "status": "customer"},
                ]
            },
            headers=admin.headers,
        )
        assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
        statuses = [r["data"]["status"] for r in response.json()["data"]["items"]]
        assert statuses == ["qualified", "customer"]
        missing = await client.patch(
            f"{CONTACTS}/bulk",
            json={"items": [{"id": a["id"], "status": "new"}, {"id": b["id"][:-4] + "0000"}]},
            headers=admin.headers,
        )
        assert missing.status_code == 422
        assert missing.json()["error"]["details"][0]["index"] == 1
        still = await client.get(f"{CONTACTS}/{a['id']}", headers=admin.headers)
        assert still.json()["data"]["status"] == "qualified"
        empty = await client.post(f"{CONTACTS}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400
