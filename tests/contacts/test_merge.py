"""Duplicates and merges of contacts and companies: everything that pointed at the losers follows
the winner, in one transaction; refused merges change nothing."""

from __future__ import annotations

from tests.contacts.factories import (
    COMPANIES,
    CONTACTS,
    contact_row,
    events_of,
    insert_related,
    link,
    link_rows,
    make_company,
    make_contact,
    references,
)
from tests.factories import register

MISSING = "00000000-0000-7000-8000-000000000000"


async def merge(client, account, path=CONTACTS, **body):  # noqa: ANN001, ANN201
    return await client.post(f"{path}/merge", json=body, headers=account.headers)


class TestContactMerge:
    async def test_merge_moves_every_related_record(self, client, database):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        initech = await make_company(client, admin, name="Initech")
        winner = await make_contact(
            client,
            admin,
            first_name="Ada",
            email="ada@example.com",
            tags=["vip"],
            custom_fields={},
        )
        loser1 = await make_contact(
            client,
            admin,
            first_name="Ada B",
            email="ada.b@example.com",
            phone="+1 979 236 1958",
            job_title="CFO",
            tags=["emea", "vip"],
            primary_company_id=globex["id"],
        )
        loser2 = await make_contact(
            client, admin, first_name="Ada C", email="ada.c@example.com", tags=["late"]
        )
        # Links: the winner and a loser share Acme (no duplicate key), losers bring the rest.
        await link(client, admin, winner["id"], acme["id"], role="Owner")
        await link(client, admin, loser1["id"], acme["id"], role="Buyer")
        await link(client, admin, loser1["id"], globex["id"], role="CFO")
        await link(client, admin, loser2["id"], globex["id"], role="Other")
        await link(client, admin, loser2["id"], initech["id"], role="Advisor")
        rows_w = await insert_related(database, admin, contact_id=winner["id"])
        rows_1 = await insert_related(database, admin, contact_id=loser1["id"])
        rows_2 = await insert_related(database, admin, contact_id=loser2["id"], deleted=True)
        earlier = await make_contact(client, admin, first_name="Earlier")
        first = await merge(
            client, admin, winner_id=loser2["id"], loser_ids=[earlier["id"]]
        )  # an earlier merge into a contact that is now a loser
        assert first.status_code == 200, first.text

        response = await merge(
            client,
            admin,
            winner_id=winner["id"],
            loser_ids=[loser1["id"], loser2["id"]],
            fields={"email": loser1["id"], "first_name": winner["id"]},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        merged = data["winner"]
        assert merged["id"] == winner["id"] and merged["email"] == "ada.b@example.com"
        assert merged["first_name"] == "Ada"
        # Gaps in the winner are filled from the first loser that has a value.
        assert merged["phone_e164"] == "+19792361958" and merged["job_title"] == "CFO"
        assert merged["primary_company_id"] == globex["id"] and merged["company_name"] == "Globex"
        assert merged["tags"] == ["vip", "emea", "late"]
        assert data["loser_ids"] == [loser1["id"], loser2["id"]]
        assert data["moved"] == {
            "links": 2,
            "contacts": 0,
            "activities": 2,
            "tasks": 2,
            "deals": 2,
            "leads": 2,
        }
        assert response.headers["etag"] == f'"{merged["version"]}"'

        for rows in (rows_w, rows_1, rows_2):
            assert await references(database, rows) == {name: (winner["id"], None) for name in rows}
        assert await link_rows(database, admin.workspace_id) == {
            (winner["id"], acme["id"], "Owner", False),
            (winner["id"], globex["id"], "CFO", True),
            (winner["id"], initech["id"], "Advisor", False),
        }
        for loser in (loser1, loser2):
            row = await contact_row(database, loser["id"])
            assert row["deleted_at"] is not None and str(row["merged_into_id"]) == winner["id"]
            gone = await client.get(f"{CONTACTS}/{loser['id']}", headers=admin.headers)
            assert gone.status_code == 404
            refused = await client.post(f"{CONTACTS}/{loser['id']}/restore", headers=admin.headers)
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "contact_merged"
        assert str((await contact_row(database, earlier["id"]))["merged_into_id"]) == winner["id"]

        # Search follows: the losers are gone, the winner is found by the email it took.
        found = await client.get(CONTACTS, params={"search": "ada"}, headers=admin.headers)
        assert [c["id"] for c in found.json()["data"]] == [winner["id"]]
        by_email = await client.get(
            CONTACTS, params={"search": "ada.b@example"}, headers=admin.headers
        )
        assert [c["id"] for c in by_email.json()["data"]] == [winner["id"]]
        events = await events_of(database, admin.workspace_id, "contact.merged")
        assert events[-1]["winner_id"] == winner["id"]
        assert events[-1]["loser_ids"] == [loser1["id"], loser2["id"]]

    async def test_custom_fields_merge_key_by_key(self, client):
        admin = await register(client)
        for name in ("tier", "region"):
            await client.post(
                "/api/v1/custom-fields",
                json={"resource": "contact", "name": name, "label": name, "type": "text"},
                headers=admin.headers,
            )
        winner = await make_contact(client, admin, custom_fields={"tier": "gold"})
        loser = await make_contact(
            client, admin, custom_fields={"tier": "silver", "region": "emea"}
        )
        response = await merge(client, admin, winner_id=winner["id"], loser_ids=[loser["id"]])
        assert response.json()["data"]["winner"]["custom_fields"] == {
            "tier": "gold",
            "region": "emea",
        }

    async def test_refused_merges_change_nothing(self, client, database):
        admin = await register(client)
        other = await register(client)
        a = await make_contact(client, admin, first_name="A")
        b = await make_contact(client, admin, first_name="B")
        deleted = await make_contact(client, admin, first_name="Deleted")
        await client.delete(f"{CONTACTS}/{deleted['id']}", headers=admin.headers)
        foreign = await make_contact(client, other, first_name="Foreign")
        rows = await insert_related(database, admin, contact_id=b["id"])
        cases = (
            ({"winner_id": a["id"], "loser_ids": [a["id"]]}, 422, "invalid_merge"),
            ({"winner_id": a["id"], "loser_ids": [b["id"], a["id"]]}, 422, "invalid_merge"),
            ({"winner_id": a["id"], "loser_ids": [b["id"], b["id"]]}, 422, "invalid_merge"),
            ({"winner_id": a["id"], "loser_ids": []}, 422, "validation_error"),
            ({"winner_id": a["id"], "loser_ids": [b["id"], MISSING]}, 404, "contact_not_found"),
            ({"winner_id": a["id"], "loser_ids": [deleted["id"]]}, 404, "contact_not_found"),
            ({"winner_id": deleted["id"], "loser_ids": [b["id"]]}, 404, "contact_not_found"),
            ({"winner_id": a["id"], "loser_ids": [foreign["id"]]}, 404, "contact_not_found"),
            ({"winner_id": foreign["id"], "loser_ids": [b["id"]]}, 404, "contact_not_found"),
            (
                {"winner_id": a["id"], "loser_ids": [b["id"]], "fields": {"email": MISSING}},
                422,
                "invalid_merge",
            ),
            (
                {"winner_id": a["id"], "loser_ids": [b["id"]], "fields": {"version": a["id"]}},
                422,
                "validation_error",
            ),
        )
        for body, status, code in cases:
            response = await merge(client, admin, **body)
            assert response.status_code == status, (body, response.text)
            assert response.json()["error"]["code"] == code, body
        foreign_side = await merge(client, other, winner_id=foreign["id"], loser_ids=[b["id"]])
        assert foreign_side.status_code == 404
        for contact in (a, b):
            row = await client.get(f"{CONTACTS}/{contact['id']}", headers=admin.headers)
            assert row.json()["data"] == contact
        assert (await client.get(f"{CONTACTS}/{foreign['id']}", headers=other.headers)).json()[
            "data"
        ] == foreign
        assert await references(database, rows) == {name: (b["id"], None) for name in rows}
        assert await events_of(database, admin.workspace_id, "contact.merged") == []


class TestContactDuplicates:
    async def test_groups_by_email_phone_and_name_at_the_same_company(self, client):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        e1 = await make_contact(client, admin, first_name="E1", email="sam@example.com")
        e2 = await make_contact(client, admin, first_name="E2", email="sam+news@example.com")
        p1 = await make_contact(client, admin, first_name="P1", phone="(979) 236-1958")
        p2 = await make_contact(client, admin, first_name="P2", phone="+1 979 236 1958")
        n1 = await make_contact(
            client, admin, first_name="Jo", last_name="Doe", primary_company_id=acme["id"]
        )
        n2 = await make_contact(
            client, admin, first_name=" JO", last_name="doe ", primary_company_id=acme["id"]
        )
        # Same name, other company / no company: not duplicates.
        await make_contact(
            client, admin, first_name="Jo", last_name="Doe", primary_company_id=globex["id"]
        )
        await make_contact(client, admin, first_name="Jo", last_name="Doe")
        gone = await make_contact(client, admin, first_name="P3", phone="979-236-1958")
        await client.delete(f"{CONTACTS}/{gone['id']}", headers=admin.headers)

        response = await client.get(f"{CONTACTS}/duplicates", headers=admin.headers)
        assert response.status_code == 200, response.text
        groups = response.json()["data"]
        summary = [(g["reason"], g["key"], g["count"]) for g in groups]
        assert summary == [
            ("email", "sam@example.com", 2),
            ("phone", "+19792361958", 2),
            ("name", "jo doe", 2),
        ]
        ids = [[c["id"] for c in g["contacts"]] for g in groups]
        assert ids == [[e1["id"], e2["id"]], [p1["id"], p2["id"]], [n1["id"], n2["id"]]]
        assert groups[2]["contacts"][0]["company_name"] == "Acme"

        only_phone = await client.get(f"{CONTACTS}/duplicates?reason=phone", headers=admin.headers)
        assert [g["reason"] for g in only_phone.json()["data"]] == ["phone"]
        seen = []
        cursor = None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = await client.get(f"{CONTACTS}/duplicates", params=params, headers=admin.headers)
            assert page.status_code == 200
            seen.extend((g["reason"], g["key"]) for g in page.json()["data"])
            cursor = page.json()["meta"]["next_cursor"]
            assert page.json()["meta"]["has_more"] is (cursor is not None)
            if not cursor:
                break
        assert seen == [(r, k) for r, k, _ in summary]
        bad = await client.get(f"{CONTACTS}/duplicates?cursor=nope", headers=admin.headers)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
        assert (
            await client.get(f"{CONTACTS}/duplicates?reason=zip", headers=admin.headers)
        ).status_code == 422

        # Merging a group makes it disappear.
        await merge(client, admin, winner_id=p1["id"], loser_ids=[p2["id"]])
        after = await client.get(f"{CONTACTS}/duplicates?reason=phone", headers=admin.headers)
        assert after.json()["data"] == []


class TestCompanyMerge:
    async def test_company_merge_moves_everything(self, client, database):
        admin = await register(client)
        winner = await make_company(client, admin, name="Acme", tags=["a"])
        loser = await make_company(
            client, admin, name="ACME Inc", domain="acme.com", industry="Retail", tags=["b"]
        )
        loser2 = await make_company(client, admin, name="Acme Corp", domain="acme.io")
        both = await make_contact(client, admin, first_name="Both")
        primary = await make_contact(
            client, admin, first_name="Primary", primary_company_id=loser["id"]
        )
        only2 = await make_contact(client, admin, first_name="Only2")
        await link(client, admin, both["id"], winner["id"], role="Owner")
        await link(client, admin, both["id"], loser["id"], role="Buyer")
        await link(client, admin, primary["id"], loser["id"], role="CFO", is_primary=True)
        await link(client, admin, only2["id"], loser["id"], role="A")
        await link(client, admin, only2["id"], loser2["id"], role="B")
        rows_1 = await insert_related(database, admin, company_id=loser["id"])
        rows_2 = await insert_related(database, admin, company_id=loser2["id"], deleted=True)

        response = await merge(
            client,
            admin,
            path=COMPANIES,
            winner_id=winner["id"],
            loser_ids=[loser["id"], loser2["id"]],
            fields={"domain": loser["id"]},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        merged = data["winner"]
        assert merged["domain"] == "acme.com" and merged["industry"] == "Retail"
        assert merged["name"] == "Acme" and merged["tags"] == ["a", "b"]
        assert data["moved"] == {
            "links": 2,
            "contacts": 1,
            "activities": 2,
            "tasks": 2,
            "deals": 2,
            "leads": 2,
        }
        for rows in (rows_1, rows_2):
            assert await references(database, rows) == {name: (None, winner["id"]) for name in rows}
        assert await link_rows(database, admin.workspace_id) == {
            (both["id"], winner["id"], "Owner", False),
            (primary["id"], winner["id"], "CFO", True),
            (only2["id"], winner["id"], "A", False),
        }
        moved = await client.get(f"{CONTACTS}/{primary['id']}", headers=admin.headers)
        assert moved.json()["data"]["primary_company_id"] == winner["id"]
        assert moved.json()["data"]["company_name"] == "Acme"
        for gone in (loser, loser2):
            assert (
                await client.get(f"{COMPANIES}/{gone['id']}", headers=admin.headers)
            ).status_code == 404
        listed = await client.get(f"{COMPANIES}/{winner['id']}/contacts", headers=admin.headers)
        assert len(listed.json()["data"]) == 3
        by_name = await client.get(CONTACTS, params={"search": "acme"}, headers=admin.headers)
        assert [c["id"] for c in by_name.json()["data"]] == [primary["id"]]
        events = await events_of(database, admin.workspace_id, "company.merged")
        assert events[-1]["loser_ids"] == [loser["id"], loser2["id"]]

    async def test_company_merge_refusals_and_duplicates(self, client):
        admin = await register(client)
        other = await register(client)
        a = await make_company(client, admin, name="Globex")
        b = await make_company(client, admin, name=" globex ")
        c = await make_company(client, admin, name="Initech")
        foreign = await make_company(client, other, name="Globex")
        for body, status in (
            ({"winner_id": a["id"], "loser_ids": [a["id"]]}, 422),
            ({"winner_id": a["id"], "loser_ids": [foreign["id"]]}, 404),
            ({"winner_id": a["id"], "loser_ids": [MISSING]}, 404),
        ):
            response = await merge(client, admin, path=COMPANIES, **body)
            assert response.status_code == status, response.text
        dupes = await client.get(f"{COMPANIES}/duplicates", headers=admin.headers)
        assert dupes.status_code == 200, dupes.text
        groups = dupes.json()["data"]
        assert [(g["reason"], g["key"], g["count"]) for g in groups] == [("name", "globex", 2)]
        assert [x["id"] for x in groups[0]["companies"]] == [a["id"], b["id"]]
        assert c["id"] not in {x["id"] for g in groups for x in g["companies"]}
        own = await client.get(f"{COMPANIES}/duplicates?reason=domain", headers=admin.headers)
        assert own.json()["data"] == []
        theirs = await client.get(f"{COMPANIES}/duplicates", headers=other.headers)
        assert theirs.json()["data"] == []
