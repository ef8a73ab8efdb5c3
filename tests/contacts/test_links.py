"""Contact-company links with a role, from both sides; primary company kept in step."""

from __future__ import annotations

from tests.contacts.factories import (
    COMPANIES,
    CONTACTS,
    events_of,
    link,
    link_rows,
    make_company,
    make_contact,
)
from tests.factories import register

MISSING = "00000000-0000-7000-8000-000000000000"


class TestLinks:
    async def test_link_from_both_sides_and_list_with_role(self, client, database):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        ada = await make_contact(client, admin, first_name="Ada")
        bob = await make_contact(client, admin, first_name="Bob")
        first = await link(client, admin, ada["id"], acme["id"], role="CFO")
        assert first.status_code == 201, first.text
        data = first.json()["data"]
        assert data["contact_id"] == ada["id"] and data["company_id"] == acme["id"]
        assert data["role"] == "CFO" and data["is_primary"] is False
        from_company = await client.post(
            f"{COMPANIES}/{acme['id']}/contacts/{bob['id']}",
            json={"role": "Engineer"},
            headers=admin.headers,
        )
        assert from_company.status_code == 201
        no_body = await client.post(
            f"{CONTACTS}/{ada['id']}/companies/{globex['id']}", headers=admin.headers
        )
        assert no_body.status_code == 201 and no_body.json()["data"]["role"] is None

        people = await client.get(
            f"{COMPANIES}/{acme['id']}/contacts?sort_by=last_name", headers=admin.headers
        )
        assert people.status_code == 200
        rows = people.json()["data"]
        assert {(r["contact"]["first_name"], r["role"]) for r in rows} == {
            ("Ada", "CFO"),
            ("Bob", "Engineer"),
        }
        assert all(r["contact_id"] == r["contact"]["id"] for r in rows)
        companies = await client.get(
            f"{CONTACTS}/{ada['id']}/companies?sort_by=name&sort_order=asc&include_total=true",
            headers=admin.headers,
        )
        assert [(r["company"]["name"], r["role"]) for r in companies.json()["data"]] == [
            ("Acme", "CFO"),
            ("Globex", None),
        ]
        assert companies.json()["meta"]["total"] == 2
        cfo = await client.get(f"{COMPANIES}/{acme['id']}/contacts?role=CFO", headers=admin.headers)
        assert [r["contact"]["first_name"] for r in cfo.json()["data"]] == ["Ada"]
        searched = await client.get(
            f"{COMPANIES}/{acme['id']}/contacts", params={"search": "bob"}, headers=admin.headers
        )
        assert [r["contact"]["first_name"] for r in searched.json()["data"]] == ["Bob"]
        paged = await client.get(
            f"{COMPANIES}/{acme['id']}/contacts?limit=1", headers=admin.headers
        )
        cursor = paged.json()["meta"]["next_cursor"]
        rest = await client.get(
            f"{COMPANIES}/{acme['id']}/contacts",
            params={"limit": 1, "cursor": cursor},
            headers=admin.headers,
        )
        both = [r["contact_id"] for r in paged.json()["data"] + rest.json()["data"]]
        assert sorted(both) == sorted([ada["id"], bob["id"]])
        assert len(await events_of(database, admin.workspace_id, "contact.linked")) == 3

    async def test_linking_again_updates_the_role(self, client):
        admin = await register(client)
        acme = await make_company(client, admin)
        ada = await make_contact(client, admin)
        assert (await link(client, admin, ada["id"], acme["id"], role="CFO")).status_code == 201
        again = await link(client, admin, ada["id"], acme["id"], role="CEO")
        assert again.status_code == 200 and again.json()["data"]["role"] == "CEO"
        keep = await link(client, admin, ada["id"], acme["id"])
        assert keep.status_code == 200 and keep.json()["data"]["role"] == "CEO"
        listed = await client.get(f"{CONTACTS}/{ada['id']}/companies", headers=admin.headers)
        assert [r["role"] for r in listed.json()["data"]] == ["CEO"]

    async def test_unlink_and_missing_link(self, client, database):
        admin = await register(client)
        acme = await make_company(client, admin)
        ada = await make_contact(client, admin)
        await link(client, admin, ada["id"], acme["id"])
        gone = await client.delete(
            f"{CONTACTS}/{ada['id']}/companies/{acme['id']}", headers=admin.headers
        )
        assert gone.status_code == 200
        assert gone.json()["data"]["deleted"] is True
        again = await client.delete(
            f"{COMPANIES}/{acme['id']}/contacts/{ada['id']}", headers=admin.headers
        )
        assert again.status_code == 404 and again.json()["error"]["code"] == "link_not_found"
        assert await link_rows(database, admin.workspace_id) == set()
        unlinked = await events_of(database, admin.workspace_id, "contact.unlinked")
        assert unlinked == [{"contact_id": ada["id"], "company_id": acme["id"]}]

    async def test_missing_or_deleted_parties_are_404(self, client):
        admin = await register(client)
        acme = await make_company(client, admin)
        ada = await make_contact(client, admin)
        for path, code in (
            (f"{CONTACTS}/{MISSING}/companies/{acme['id']}", "contact_not_found"),
            (f"{CONTACTS}/{ada['id']}/companies/{MISSING}", "company_not_found"),
            (f"{COMPANIES}/{MISSING}/contacts/{ada['id']}", "company_not_found"),
            (f"{COMPANIES}/{acme['id']}/contacts/{MISSING}", "contact_not_found"),
        ):
            response = await client.post(path, headers=admin.headers)
            assert response.status_code == 404 and response.json()["error"]["code"] == code
        await client.delete(f"{COMPANIES}/{acme['id']}", headers=admin.headers)
        deleted = await link(client, admin, ada["id"], acme["id"])
        assert deleted.status_code == 404
        assert (
            await client.get(f"{COMPANIES}/{acme['id']}/contacts", headers=admin.headers)
        ).status_code == 404
        bad = await client.post(
            f"{CONTACTS}/{ada['id']}/companies/{MISSING}",
            json={"role": "x", "bogus": 1},
            headers=admin.headers,
        )
        assert bad.status_code == 422

    async def test_primary_flag_follows_primary_company(self, client, database):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        ada = await make_contact(client, admin)
        await link(client, admin, ada["id"], acme["id"], is_primary=True)
        got = (await client.get(f"{CONTACTS}/{ada['id']}", headers=admin.headers)).json()["data"]
        assert got["primary_company_id"] == acme["id"] and got["company_name"] == "Acme"
        await link(client, admin, ada["id"], globex["id"], is_primary=True)
        rows = await link_rows(database, admin.workspace_id)
        assert rows == {
            (ada["id"], acme["id"], None, False),
            (ada["id"], globex["id"], None, True),
        }
        # Setting the primary company on the contact moves the flag too.
        await client.patch(
            f"{CONTACTS}/{ada['id']}",
            json={"primary_company_id": acme["id"]},
            headers=admin.headers,
        )
        flags = {c: p for _, c, _, p in await link_rows(database, admin.workspace_id)}
        assert flags == {acme["id"]: True, globex["id"]: False}
        # Unlinking the primary company clears it.
        await client.delete(f"{CONTACTS}/{ada['id']}/companies/{acme['id']}", headers=admin.headers)
        got = (await client.get(f"{CONTACTS}/{ada['id']}", headers=admin.headers)).json()["data"]
        assert got["primary_company_id"] is None and got["company_name"] is None
        # is_primary=false on the primary company clears it as well.
        await link(client, admin, ada["id"], globex["id"], is_primary=True)
        await link(client, admin, ada["id"], globex["id"], is_primary=False)
        got = (await client.get(f"{CONTACTS}/{ada['id']}", headers=admin.headers)).json()["data"]
        assert got["primary_company_id"] is None
