"""Bulk company writes, batched: constant statements, domains unique across the batch, renames
carried into the search documents of the companies' contacts."""

from __future__ import annotations

import uuid

import pytest

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

COMPANIES = "/api/v1/companies"
CONTACTS = "/api/v1/contacts"


def companies(count: int, tag: str = "c") -> list[dict]:
    return [{"name": f"{tag} Company {i}", "domain": f"{tag}{i}.example.com"} for i in range(count)]


class TestBulkCreate:
    async def test_1000_companies_in_constant_statements(
        self,
        client,
        database,
        statements,  # noqa: F811
        backend,
    ):
        admin = await register(client)
        await client.get(COMPANIES, headers=admin.headers)
        small, few = await counted(
            client, statements, admin, "POST", f"{COMPANIES}/bulk", companies(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{COMPANIES}/bulk", companies(200, "m")
        )
        full, most = await counted(
            client, statements, admin, "POST", f"{COMPANIES}/bulk", companies(1000, "f")
        )
        assert small.status_code == large.status_code == full.status_code == 200
        assert many <= few + SLACK and per_chunk(few, most, 1000, backend), (few, many, most)
        ids = [r["id"] for r in written(full)]
        assert await total(client, admin, COMPANIES) == 1210
        assert await event_count(database, admin.workspace_id, "company.created", ids) == 1000
        assert set(ids) <= set(await documents(database, admin.workspace_id, "company"))
        assert await search_ids(client, admin, "f777.example.com") == [ids[777]]

    # A few items, and a batch whose items are checked a chunk at a time (PostgreSQL).
    @pytest.mark.parametrize(("count", "taken", "stored"), [(6, 2, 4), (1000, 520, 940)])
    async def test_domains_taken_in_the_batch_or_before(self, client, count, taken, stored):
        admin = await register(client)
        await client.post(
            COMPANIES, json={"name": "Old", "domain": "old.example.com"}, headers=admin.headers
        )
        items = companies(count)
        items[taken]["domain"] = "C0.example.com"  # item 0's (domains are stored lower-case)
        items[stored]["domain"] = "old.example.com"
        atomic = await client.post(
            f"{COMPANIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert atomic.status_code == 422
        assert [d["index"] for d in atomic.json()["error"]["details"]] == [taken, stored]
        assert await total(client, admin, COMPANIES) == 1
        partial = await client.post(
            f"{COMPANIES}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(partial)
        assert sorted(errors) == [taken, stored]
        assert {e["code"] for e in errors.values()} == {"company_domain_taken"}
        assert await total(client, admin, COMPANIES) == count - 1

    async def test_a_bad_owner_among_1000_writes_nothing(self, client):
        admin = await register(client)
        items = companies(1000)
        items[999]["owner_id"] = str(uuid.UUID(int=5))
        response = await client.post(
            f"{COMPANIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"index": 999, "reason": "invalid_reference: No such user in this workspace."}
        ]
        assert await total(client, admin, COMPANIES) == 0
        partial = await client.post(
            f"{COMPANIES}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert sorted(failed(partial)) == [999]
        assert await total(client, admin, COMPANIES) == 999


class TestBulkUpdate:
    async def test_renames_reach_the_contacts_search_documents(self, client, database):
        admin = await register(client)
        rows = written(
            await client.post(
                f"{COMPANIES}/bulk", json={"items": companies(3)}, headers=admin.headers
            )
        )
        contact = await client.post(
            CONTACTS,
            json={"first_name": "Ada", "primary_company_id": rows[1]["id"]},
            headers=admin.headers,
        )
        contact_id = contact.json()["data"]["id"]
        response = await client.patch(
            f"{COMPANIES}/bulk",
            json={
                "items": [
                    {"id": rows[0]["id"], "domain": "free.example.com"},
                    {"id": rows[1]["id"], "name": "Zanzibar Trading"},
                    {"id": rows[2]["id"], "domain": "c0.example.com"},  # freed by item 0
                ]
            },
            headers=admin.headers,
        )
        assert [r["version"] for r in written(response)] == [2, 2, 2]
        assert set(await search_ids(client, admin, "zanzibar")) == {rows[1]["id"], contact_id}
        assert await event_count(database, admin.workspace_id, "company.updated") == 3
