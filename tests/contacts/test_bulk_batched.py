"""Bulk contact writes are batched: a constant number of statements whatever the item count, with
the per-item rules (and their errors, by index) of the single-item path, events and search
documents for every record, and a per-item fallback when the database refuses the batch."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from rapport.core.ids import new_id
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
from tests.contacts.factories import (
    CONTACTS,
    holding_email,
    link,
    link_rows,
    make_company,
    make_contact,
    waits_on_a_row_lock,
)
from tests.factories import register

NOBODY = str(uuid.UUID(int=1))


def people(count: int, tag: str = "p") -> list[dict]:
    return [
        {"first_name": f"First{i}", "last_name": tag, "email": f"{tag}{i}@example.com"}
        for i in range(count)
    ]


class TestCreate:
    async def test_1000_contacts_with_events_and_search_documents(self, client, database):
        admin = await register(client)
        items = people(1000)
        items[123]["last_name"] = "Quasimodo"
        response = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        rows = written(response)
        assert len(rows) == 1000 and {r["outcome"] for r in rows} == {"created"}
        assert [r["email"] for r in rows] == [i["email"] for i in items]
        assert await total(client, admin, CONTACTS) == 1000
        ids = [r["id"] for r in rows]
        assert await event_count(database, admin.workspace_id, "contact.created") == 1000
        assert await event_count(database, admin.workspace_id, "contact.created", ids) == 1000
        assert set(await documents(database, admin.workspace_id, "contact")) == set(ids)
        assert await search_ids(client, admin, "quasimodo") == [rows[123]["id"]]
        found = await client.get(CONTACTS, params={"search": "p999@example"}, headers=admin.headers)
        assert [c["id"] for c in found.json()["data"]] == [rows[999]["id"]]

    async def test_statements_do_not_grow_with_the_items(self, client, statements, backend):  # noqa: F811
        admin = await register(client)
        company = await make_company(client, admin, name="Acme")
        await client.get(CONTACTS, headers=admin.headers)  # warms the principal cache

        def batch(count: int, tag: str) -> list[dict]:
            items = people(count, tag)
            for item in items:
                item.update(owner_id=admin.user["id"], primary_company_id=company["id"])
            return items

        small, few = await counted(
            client, statements, admin, "POST", f"{CONTACTS}/bulk", batch(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{CONTACTS}/bulk", batch(200, "l")
        )
        assert small.status_code == large.status_code == 200
        assert many <= few + SLACK, (few, many)
        full, most = await counted(
            client, statements, admin, "POST", f"{CONTACTS}/bulk", batch(1000, "f")
        )
        assert full.status_code == 200 and per_chunk(few, most, 1000, backend), (few, most)
        assert {r["data"]["company_name"] for r in full.json()["data"]["items"]} == {"Acme"}

    async def test_lookups_are_planned_with_their_values(self, client, database, backend):
        """A batch's email lookup (`email = ANY($1)` on PostgreSQL, `email IN (...)` on SQLite)
        is the same prepared statement batch after batch; on PostgreSQL it must not settle on a
        generic plan (it would filter the whole workspace)."""
        from sqlalchemy import event

        admin = await register(client)
        seen: list[str] = []

        def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
            seen.append(statement)

        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        try:
            response = await client.post(
                f"{CONTACTS}/bulk", json={"items": people(5, "plan")}, headers=admin.headers
            )
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        assert response.status_code == 200
        custom = [i for i, sql in enumerate(seen) if "force_custom_plan" in sql]
        shape = "contact.email = ANY" if backend == "postgres" else "contact.email IN"
        lookup = [i for i, sql in enumerate(seen) if shape in sql]
        assert lookup, seen
        if backend == "postgres":
            assert custom and custom[0] < lookup[0], seen
        else:
            assert not custom

    async def test_one_bad_reference_among_1000_writes_nothing(self, client, database):
        admin = await register(client)
        items = people(1000)
        items[412]["owner_id"] = NOBODY
        response = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "bulk_failed"
        assert error["message"] == "1 of 1000 items failed; nothing was written."
        assert error["details"] == [
            {"index": 412, "reason": "invalid_reference: No such user in this workspace."}
        ]
        assert await total(client, admin, CONTACTS) == 0
        assert await event_count(database, admin.workspace_id, "contact.created") == 0

    async def test_refusals_in_several_chunks_are_all_reported(self, client, database):
        """Items are checked and written a chunk at a time (PostgreSQL): a refusal in a later
        chunk rolls back what the earlier ones wrote, and every refusal after it is still found."""
        admin = await register(client)
        items = people(1000)
        for index in (3, 600, 999):
            items[index]["owner_id"] = NOBODY
        response = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422, response.text
        assert [d["index"] for d in response.json()["error"]["details"]] == [3, 600, 999]
        assert await total(client, admin, CONTACTS) == 0
        assert await event_count(database, admin.workspace_id, "contact.created") == 0
        partial = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert sorted(failed(partial)) == [3, 600, 999]
        assert await total(client, admin, CONTACTS) == 997
        assert await event_count(database, admin.workspace_id, "contact.created") == 997

    async def test_duplicate_emails_in_different_chunks(self, client):
        """An email an earlier chunk's item took, or a stored contact holds, is refused in a later
        chunk; one whose earlier item was refused stays free."""
        admin = await register(client)
        stored = await make_contact(client, admin, email="stored@example.com")
        items = people(1000)
        items[400]["email"] = "P1@example.com"  # item 1's, case aside
        items[800]["email"] = "stored@example.com"
        items[260]["owner_id"] = NOBODY  # fails: its email stays free for item 700
        items[700]["email"] = items[260]["email"]
        response = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(response)
        assert sorted(errors) == [260, 400, 800]
        first = response.json()["data"]["items"][1]["data"]["id"]
        assert errors[400]["details"][0]["existing_id"] == first
        assert errors[800]["details"][0]["existing_id"] == stored["id"]
        assert response.json()["data"]["items"][700]["success"] is True
        assert await total(client, admin, CONTACTS) == 1 + 997

    async def test_non_atomic_writes_the_other_999(self, client):
        admin = await register(client)
        items = people(1000)
        items[412]["primary_company_id"] = NOBODY
        response = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert failed(response) == {
            412: {
                "code": "invalid_reference",
                "message": "The referenced record does not exist.",
                "details": [
                    {
                        "field": "body.primary_company_id",
                        "reason": "no such record in this workspace",
                    }
                ],
            }
        }
        assert response.json()["data"]["succeeded"] == 999
        assert await total(client, admin, CONTACTS) == 999

    async def test_duplicate_emails_are_reported_per_index(self, client):
        admin = await register(client)
        stored = await make_contact(client, admin, email="stored@example.com")
        items = people(10)
        items[3]["email"] = "P1@example.com"  # item 1's, case aside
        items[7]["email"] = "p1@example.com"
        items[8]["email"] = "stored@example.com"
        items[2]["owner_id"] = NOBODY  # fails: its email stays free for item 5
        items[5]["email"] = items[2]["email"]
        atomic = await client.post(f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers)
        assert atomic.status_code == 422
        assert [d["index"] for d in atomic.json()["error"]["details"]] == [2, 3, 7, 8]
        assert await total(client, admin, CONTACTS) == 1
        partial = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(partial)
        assert sorted(errors) == [2, 3, 7, 8]
        first = partial.json()["data"]["items"][1]["data"]["id"]
        for index, holder in ((3, first), (7, first), (8, stored["id"])):
            assert errors[index]["code"] == "contact_email_taken"
            assert errors[index]["details"] == [
                {
                    "field": "body.email",
                    "reason": f"already used by contact {holder}",
                    "existing_id": holder,
                }
            ]
        assert partial.json()["data"]["items"][5]["success"] is True
        assert await total(client, admin, CONTACTS) == 7


class TestCustomFields:
    async def test_checked_per_item_against_definitions_read_once(
        self,
        client,
        statements,  # noqa: F811
    ):
        admin = await register(client)
        for definition in (
            {"name": "tier", "type": "select", "options": ["gold", "silver"], "required": True},
            {"name": "score", "type": "number"},
        ):
            created = await client.post(
                "/api/v1/custom-fields",
                json={"resource": "contact", "label": definition["name"], **definition},
                headers=admin.headers,
            )
            assert created.status_code == 201, created.text

        def batch(count: int, tag: str) -> list[dict]:
            items = people(count, tag)
            for i, item in enumerate(items):
                item["custom_fields"] = {"tier": ("gold", "silver")[i % 2], "score": i}
            return items

        await client.get(CONTACTS, headers=admin.headers)
        small, few = await counted(
            client, statements, admin, "POST", f"{CONTACTS}/bulk", batch(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{CONTACTS}/bulk", batch(200, "l")
        )
        assert small.status_code == large.status_code == 200
        assert many <= few + SLACK, (few, many)
        assert written(large)[3]["custom_fields"] == {"tier": "silver", "score": 3}
        items = batch(5, "x")
        items[1]["custom_fields"] = {"score": 2}
        items[3]["custom_fields"] = {"tier": "bronze", "colour": "red"}
        response = await client.post(
            f"{CONTACTS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(response)
        assert {i: e["code"] for i, e in errors.items()} == {
            1: "invalid_custom_fields",
            3: "invalid_custom_fields",
        }
        assert errors[1]["details"] == [
            {"field": "body.custom_fields.tier", "reason": "is required"}
        ]
        assert {d["field"] for d in errors[3]["details"]} == {
            "body.custom_fields.tier",
            "body.custom_fields.colour",
        }


class TestUpsert:
    async def test_a_mix_of_new_and_existing_contacts(self, client, database):
        admin = await register(client)
        company = await make_company(client, admin, name="Initech")
        ada = await make_contact(client, admin, email="ada@example.com", job_title="Analyst")
        bob = await make_contact(client, admin, first_name="Bob", email="bob@example.com")
        items = [
            {"first_name": "New", "email": "new@example.com"},
            {"email": "ADA@example.com", "status": "customer"},
            {"first_name": "Newer", "email": "newer@example.com"},
            {"email": "new@example.com", "job_title": "CTO"},  # item 0's contact
            {"email": "bob@example.com", "primary_company_id": company["id"]},
            {"email": "ada@example.com", "owner_id": NOBODY},  # fails: nothing of it is written
            {"email": "ada@example.com", "tags": ["vip"]},  # Ada again, after item 1
        ]
        response = await client.post(
            f"{CONTACTS}/bulk?upsert=email&atomic=false",
            json={"items": items},
            headers=admin.headers,
        )
        assert sorted(failed(response)) == [5]
        results = [r.get("data") for r in response.json()["data"]["items"]]
        outcomes = [r["outcome"] if r else None for r in results]
        assert outcomes == ["created", "updated", "created", "updated", "updated", None, "updated"]
        assert results[0]["version"] == 1 and results[0]["job_title"] is None
        assert results[3]["id"] == results[0]["id"]
        assert results[3]["version"] == 2 and results[3]["job_title"] == "CTO"
        assert results[1]["id"] == results[6]["id"] == ada["id"]
        assert (results[1]["version"], results[6]["version"]) == (2, 3)
        assert results[6]["status"] == "customer" and results[6]["tags"] == ["vip"]
        assert results[6]["job_title"] == "Analyst"
        assert results[4]["id"] == bob["id"] and results[4]["company_name"] == "Initech"
        assert await total(client, admin, CONTACTS) == 4
        assert [t for t, _ in await events_of(database, results[0]["id"])] == [
            "contact.created",
            "contact.updated",
        ]
        assert [t for t, _ in await events_of(database, ada["id"])][-2:] == ["contact.updated"] * 2
        assert await search_ids(client, admin, "newer@") == [results[2]["id"]]
        assert await search_ids(client, admin, "initech") == [company["id"], bob["id"]]

    async def test_items_of_one_contact_in_different_chunks(self, client):
        """Checked and written a chunk at a time (PostgreSQL), a batch still sees the items
        before it: the same email in chunks 1, 2 and 4 is one contact, created then updated, and
        a stored contact's email met in chunk 3 updates it."""
        admin = await register(client)
        ada = await make_contact(client, admin, email="ada@example.com", job_title="Analyst")
        items = people(1000, "fill")
        items[5] = {"first_name": "New", "email": "new@example.com"}
        items[300] = {"email": "NEW@example.com", "job_title": "CTO"}
        items[600] = {"email": "ada@example.com", "status": "customer"}
        items[900] = {"email": "new@example.com", "tags": ["vip"]}
        response = await client.post(
            f"{CONTACTS}/bulk?upsert=email&atomic=false",
            json={"items": items},
            headers=admin.headers,
        )
        assert failed(response) == {}
        results = [r["data"] for r in response.json()["data"]["items"]]
        picked = [results[i] for i in (5, 300, 600, 900)]
        assert [r["outcome"] for r in picked] == ["created", "updated", "updated", "updated"]
        assert picked[0]["id"] == picked[1]["id"] == picked[3]["id"]
        assert (picked[3]["version"], picked[3]["job_title"], picked[3]["tags"]) == (
            3,
            "CTO",
            ["vip"],
        )
        assert picked[2]["id"] == ada["id"] and picked[2]["status"] == "customer"
        assert await total(client, admin, CONTACTS) == 1 + 1 + 996

    async def test_atomic_upsert_failure_writes_nothing(self, client):
        admin = await register(client)
        ada = await make_contact(client, admin, email="ada@example.com", job_title="Analyst")
        items = [
            {"first_name": "New", "email": "new@example.com"},
            {"email": "ada@example.com", "job_title": "Boss"},
            {"email": "ada@example.com", "owner_id": NOBODY},
        ]
        response = await client.post(
            f"{CONTACTS}/bulk?upsert=email", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422
        assert [d["index"] for d in response.json()["error"]["details"]] == [2]
        assert await total(client, admin, CONTACTS) == 1
        again = await client.get(f"{CONTACTS}/{ada['id']}", headers=admin.headers)
        assert again.json()["data"]["job_title"] == "Analyst"


class TestUpdate:
    async def test_emails_move_in_item_order(self, client):
        admin = await register(client)
        a = await make_contact(client, admin, email="a@example.com")
        b = await make_contact(client, admin, email="b@example.com")
        # b cannot take a's email before a gives it up...
        refused = await client.patch(
            f"{CONTACTS}/bulk?atomic=false",
            json={
                "items": [
                    {"id": b["id"], "email": "a@example.com"},
                    {"id": a["id"], "email": "c@example.com"},
                ]
            },
            headers=admin.headers,
        )
        assert failed(refused)[0]["details"][0]["existing_id"] == a["id"]
        # ...and can once it has (a moved on to c above).
        moved = await client.patch(
            f"{CONTACTS}/bulk",
            json={
                "items": [
                    {"id": a["id"], "email": "d@example.com"},
                    {"id": b["id"], "email": "c@example.com"},
                ]
            },
            headers=admin.headers,
        )
        assert [r["email"] for r in written(moved)] == ["d@example.com", "c@example.com"]

    async def test_the_same_contact_twice_and_links_kept_in_step(self, client, database):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        ada = await make_contact(client, admin, primary_company_id=acme["id"])
        for company in (acme, globex):
            assert (await link(client, admin, ada["id"], company["id"])).status_code in (200, 201)
        response = await client.patch(
            f"{CONTACTS}/bulk",
            json={
                "items": [
                    {"id": ada["id"], "primary_company_id": globex["id"]},
                    {"id": ada["id"], "job_title": "CFO"},
                    {"id": ada["id"]},
                ]
            },
            headers=admin.headers,
        )
        rows = written(response)
        assert [r["version"] for r in rows] == [2, 3, 3]
        assert rows[2]["job_title"] == "CFO" and rows[2]["company_name"] == "Globex"
        primaries = {c: p for _, c, _, p in await link_rows(database, admin.workspace_id)}
        assert primaries == {acme["id"]: False, globex["id"]: True}
        assert [t for t, _ in await events_of(database, ada["id"])][-2:] == ["contact.updated"] * 2
        assert set(await search_ids(client, admin, "globex")) == {globex["id"], ada["id"]}

    async def test_statements_grow_by_one_update_per_item(self, client, statements):  # noqa: F811
        admin = await register(client)
        created = written(
            await client.post(
                f"{CONTACTS}/bulk", json={"items": people(200)}, headers=admin.headers
            )
        )
        await client.get(CONTACTS, headers=admin.headers)

        def patch(rows: list[dict]) -> list[dict]:
            return [
                {"id": r["id"], "job_title": "Engineer", "owner_id": admin.user["id"]} for r in rows
            ]

        small, few = await counted(
            client, statements, admin, "PATCH", f"{CONTACTS}/bulk", patch(created[:10])
        )
        large, many = await counted(
            client, statements, admin, "PATCH", f"{CONTACTS}/bulk", patch(created[10:200])
        )
        assert small.status_code == large.status_code == 200
        assert few - 10 <= many - 190 <= few - 10 + SLACK, (few, many)


class TestConcurrentWriter:
    async def _post_while_held(
        self, client, database, backend: str, count: int, taken: int
    ) -> tuple[dict, uuid.UUID]:
        """A non-atomic bulk create of `people(count)` while another transaction holds item
        `taken`'s email, committed once the batch waits for it: (errors by index, rival id)."""
        admin = await register(client)
        rival_id = new_id()
        email = f"p{taken}@example.com"
        workspace_id = uuid.UUID(admin.workspace_id)
        async with holding_email(database, workspace_id, email, rival_id) as rival:
            request = asyncio.create_task(
                client.post(
                    f"{CONTACTS}/bulk?atomic=false",
                    json={"items": people(count)},
                    headers=admin.headers,
                )
            )
            if backend == "postgres":  # the batch's COPY waits on the rival's row
                assert await waits_on_a_row_lock(database), "the batch never reached its COPY"
            else:
                await asyncio.sleep(0.2)  # the request waits for the rival's write lock
                assert not request.done()
            await rival.commit()
            response = await request
        assert await total(client, admin, CONTACTS) == count
        created = await event_count(database, admin.workspace_id, "contact.created")
        assert created == count - 1
        return failed(response), rival_id

    async def test_an_email_taken_meanwhile_is_reported_for_its_item(
        self, client, database, backend
    ):
        """Another transaction takes an email while the batch runs. PostgreSQL: between the
        batch's checks and its COPY, so the database refuses the batch and the items run again
        one by one. SQLite: writers take turns, so the batch waits, then sees the email taken.
        Either way the item gets the single-item error and the others are written."""
        errors, rival_id = await self._post_while_held(client, database, backend, 20, 7)
        assert sorted(errors) == [7]
        assert errors[7]["code"] == "contact_email_taken"
        assert errors[7]["details"][0]["existing_id"] == str(rival_id)

    async def test_an_email_taken_meanwhile_in_a_later_chunk(self, client, database, backend):
        """The same in the third chunk of a batch: the chunks written before it are rolled
        back with the batch's savepoint, and the items run again one by one."""
        if backend == "sqlite":
            pytest.skip("SQLite writes a batch at once: no chunk is written before another")
        errors, rival_id = await self._post_while_held(client, database, backend, 700, 555)
        assert sorted(errors) == [555]
        assert errors[555]["details"][0]["existing_id"] == str(rival_id)
