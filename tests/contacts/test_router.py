"""Contacts through HTTP: CRUD, filters, sorts, search, paging, access and isolation."""

from __future__ import annotations

import pytest

from tests.contacts.factories import (
    COMPANIES,
    CONTACTS,
    contact_row,
    insert_related,
    link,
    link_rows,
    make_company,
    make_contact,
    references,
)
from tests.factories import add_member, register
from tests.isolation import assert_isolated
from tests.query_plans import captured

NOBODY = "00000000-0000-7000-8000-000000000000"


def names(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [c["full_name"] for c in response.json()["data"]]


class TestCrud:
    async def test_create_normalises_and_reads_company_name(self, client):
        admin = await register(client)
        company = await make_company(client, admin, name="Acme Ltd")
        contact = await make_contact(
            client,
            admin,
            first_name="  Ada ",
            last_name="Lovelace",
            email="Ada.Lovelace@Example.COM",
            phone="(979) 236-1958",
            job_title="Analyst",
            address={"city": "London", "country": "GB"},
            tags=["vip", "vip", "emea"],
            owner_id=admin.user["id"],
            primary_company_id=company["id"],
            notes="Met at the conference.",
        )
        assert contact["email"] == "ada.lovelace@example.com"
        assert contact["phone"] == "(979) 236-1958" and contact["phone_e164"] == "+19792361958"
        assert contact["first_name"] == "Ada" and contact["full_name"] == "Ada Lovelace"
        assert contact["status"] == "new" and contact["tags"] == ["vip", "emea"]
        assert contact["company_name"] == "Acme Ltd"
        assert contact["address"] == {"city": "London", "country": "GB"}
        assert contact["version"] == 1 and contact["merged_into_id"] is None
        got = await client.get(f"{CONTACTS}/{contact['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.headers["etag"] == '"1"'
        assert got.json()["data"] == contact

    async def test_full_name_with_one_part_or_none(self, client):
        admin = await register(client)
        only_last = await make_contact(client, admin, first_name=None, last_name="Curie")
        assert only_last["full_name"] == "Curie"
        only_email = await make_contact(
            client, admin, first_name=None, last_name=None, email="x@example.com"
        )
        assert only_email["full_name"] == ""

    async def test_email_is_unique_case_insensitively_among_live_contacts(self, client):
        admin = await register(client)
        first = await make_contact(client, admin, email="ada@example.com")
        dup = await client.post(
            CONTACTS, json={"first_name": "B", "email": "ADA@Example.com"}, headers=admin.headers
        )
        assert dup.status_code == 409
        error = dup.json()["error"]
        assert error["code"] == "contact_email_taken"
        assert error["details"][0]["existing_id"] == first["id"]
        other = await make_contact(client, admin, email="other@example.com")
        patched = await client.patch(
            f"{CONTACTS}/{other['id']}", json={"email": "Ada@example.com"}, headers=admin.headers
        )
        assert patched.status_code == 409 and patched.json()["error"]["code"] == (
            "contact_email_taken"
        )
        # Deleted contacts do not hold their email; restoring one whose email is taken is a 409.
        assert (
            await client.delete(f"{CONTACTS}/{first['id']}", headers=admin.headers)
        ).status_code == 200
        second = await make_contact(client, admin, email="ada@example.com")
        restore = await client.post(f"{CONTACTS}/{first['id']}/restore", headers=admin.headers)
        assert restore.status_code == 409
        assert restore.json()["error"]["details"][0]["existing_id"] == second["id"]
        # Another workspace may use the same email.
        elsewhere = await register(client)
        await make_contact(client, elsewhere, email="ada@example.com")

    async def test_bad_values_are_422(self, client):
        admin = await register(client)
        company = await make_company(client, admin)
        await client.delete(f"{COMPANIES}/{company['id']}", headers=admin.headers)
        for body in (
            {},
            {"first_name": ""},
            {"first_name": "x", "email": "not an email"},
            {"first_name": "x", "phone": "banana"},
            {"first_name": "x", "status": "vip"},
            {"first_name": "x", "owner_id": "00000000-0000-7000-8000-000000000000"},
            {"first_name": "x", "primary_company_id": "00000000-0000-7000-8000-000000000000"},
            {"first_name": "x", "primary_company_id": company["id"]},  # deleted company
            {"first_name": "x", "tags": ["ok", ""]},
            {"first_name": "x", "custom_fields": {"nope": 1}},
            {"first_name": "x", "address": {"planet": "Mars"}},
            {"first_name": "x", "unknown": 1},
        ):
            response = await client.post(CONTACTS, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
        reference = await client.post(
            CONTACTS,
            json={"first_name": "x", "primary_company_id": company["id"]},
            headers=admin.headers,
        )
        assert reference.json()["error"]["code"] == "invalid_reference"

    async def test_patch_updates_only_sent_fields_and_honours_if_match(self, client):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        contact = await make_contact(
            client, admin, job_title="Analyst", tags=["a"], primary_company_id=acme["id"]
        )
        response = await client.patch(
            f"{CONTACTS}/{contact['id']}",
            json={
                "job_title": None,
                "status": "qualified",
                "phone": "+44 20 7946 0958",
                "primary_company_id": globex["id"],
            },
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["job_title"] is None and data["status"] == "qualified"
        assert data["tags"] == ["a"] and data["first_name"] == "Ada"
        assert data["phone_e164"] == "+442079460958"
        assert data["company_name"] == "Globex" and data["version"] == 2
        assert response.headers["etag"] == '"2"'
        stale = await client.patch(
            f"{CONTACTS}/{contact['id']}",
            json={"status": "customer"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert stale.status_code == 412
        # status: null leaves it; emptying every name and the email is refused.
        kept = await client.patch(
            f"{CONTACTS}/{contact['id']}", json={"status": None}, headers=admin.headers
        )
        assert kept.json()["data"]["status"] == "qualified"
        nameless = await client.patch(
            f"{CONTACTS}/{contact['id']}",
            json={"first_name": None, "last_name": None},
            headers=admin.headers,
        )
        assert nameless.status_code == 422
        assert nameless.json()["error"]["code"] == "contact_needs_name"
        unknown = await client.patch(
            f"{CONTACTS}/{contact['id']}", json={"bogus": 1}, headers=admin.headers
        )
        assert unknown.status_code == 422

    async def test_a_patch_checked_against_nothing_stored_reads_nothing_first(
        self, client, database
    ):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme Ltd")
        contact = await make_contact(client, admin, primary_company_id=acme["id"])
        url = f"{CONTACTS}/{contact['id']}"
        with captured(database, "contact") as statements:
            response = await client.patch(
                url, json={"job_title": "CTO", "tags": ["x"]}, headers=admin.headers
            )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["job_title"] == "CTO" and data["version"] == 2
        assert data["company_name"] == "Acme Ltd" and data["first_name"] == contact["first_name"]
        # One UPDATE, which returns the company's name too: no read of the contact before it.
        reads = [s.sql for s in statements if s.sql.lstrip().upper().startswith("SELECT")]
        assert reads == [] and data == (await client.get(url, headers=admin.headers)).json()["data"]
        # Its UPDATE answers for the contact's existence and version.
        stale = await client.patch(
            url, json={"job_title": "CEO"}, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        missing = await client.patch(
            f"{CONTACTS}/{NOBODY}", json={"job_title": "CEO"}, headers=admin.headers
        )
        assert missing.status_code == 404
        assert (await client.delete(url, headers=admin.headers)).status_code == 200
        deleted = await client.patch(url, json={"job_title": "CEO"}, headers=admin.headers)
        assert deleted.status_code == 404
        # A name field is checked against the stored contact: the last name keeps it named.
        restored = await client.post(f"{url}/restore", headers=admin.headers)
        assert restored.status_code == 200, restored.text
        unnamed = await client.patch(url, json={"first_name": None}, headers=admin.headers)
        assert unnamed.status_code == 200, unnamed.text
        assert unnamed.json()["data"]["full_name"] == contact["last_name"]

    async def test_delete_and_restore(self, client):
        admin = await register(client)
        contact = await make_contact(client, admin, email="gone@example.com")
        stale = await client.delete(
            f"{CONTACTS}/{contact['id']}", headers={**admin.headers, "If-Match": '"9"'}
        )
        assert stale.status_code == 412
        deleted = await client.delete(f"{CONTACTS}/{contact['id']}", headers=admin.headers)
        assert deleted.status_code == 200
        assert deleted.json()["data"] == {"id": contact["id"], "deleted": True}
        assert (
            await client.get(f"{CONTACTS}/{contact['id']}", headers=admin.headers)
        ).status_code == 404
        listed = await client.get(CONTACTS, headers=admin.headers)
        assert listed.json()["data"] == []
        with_deleted = await client.get(f"{CONTACTS}?include_deleted=true", headers=admin.headers)
        assert [c["id"] for c in with_deleted.json()["data"]] == [contact["id"]]
        restored = await client.post(f"{CONTACTS}/{contact['id']}/restore", headers=admin.headers)
        assert restored.status_code == 200
        assert restored.json()["data"]["deleted_at"] is None
        missing = await client.post(
            f"{CONTACTS}/00000000-0000-7000-8000-000000000000/restore", headers=admin.headers
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "contact_not_found"

    async def test_erase_is_admin_only_and_detaches_what_points_at_the_contact(
        self, client, database
    ):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        company = await make_company(client, admin, name="Acme")
        contact = await make_contact(client, admin, first_name="Ephemeral")
        assert (await link(client, admin, contact["id"], company["id"])).status_code == 201
        related = await insert_related(
            database, admin, contact_id=contact["id"], company_id=company["id"]
        )
        refused = await client.delete(
            f"{CONTACTS}/{contact['id']}?erase=true", headers=member.headers
        )
        assert refused.status_code == 403
        found = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert [h["id"] for h in found.json()["data"]] == [contact["id"]]
        erased = await client.delete(
            f"{CONTACTS}/{contact['id']}?erase=true", headers=admin.headers
        )
        assert erased.status_code == 200, erased.text
        assert await contact_row(database, contact["id"]) is None
        assert await link_rows(database, admin.workspace_id) == set()
        assert await references(database, related) == {
            name: (None, company["id"]) for name in related
        }
        gone = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert gone.json()["data"] == []
        again = await client.delete(f"{CONTACTS}/{contact['id']}?erase=true", headers=admin.headers)
        assert again.status_code == 404


class TestFilters:
    async def test_status_tag_owner_and_email(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        await make_contact(client, admin, first_name="A", status="new", tags=["vip"])
        await make_contact(
            client, admin, first_name="B", status="qualified", owner_id=member.user["id"]
        )
        await make_contact(
            client,
            admin,
            first_name="C",
            status="customer",
            tags=["vip", "emea"],
            email="c@example.com",
            owner_id=admin.user["id"],
        )
        get = lambda q: client.get(  # noqa: E731
            f"{CONTACTS}?{q}&sort_by=first_name&sort_order=asc", headers=admin.headers
        )
        assert names(await get("status=qualified")) == ["B Lovelace"]
        assert names(await get("status=new,customer")) == ["A Lovelace", "C Lovelace"]
        assert names(await get("tag=vip")) == ["A Lovelace", "C Lovelace"]
        assert names(await get("tag=emea")) == ["C Lovelace"]
        assert names(await get("owner_id=me")) == ["C Lovelace"]
        assert names(await get(f"owner_id={member.user['id']}")) == ["B Lovelace"]
        mine = await client.get(f"{CONTACTS}?owner_id=me", headers=member.headers)
        assert names(mine) == ["B Lovelace"]
        assert names(await get("email=C@Example.com")) == ["C Lovelace"]
        for bad in ("status=vip", "unknown=1", "owner_id=nope", "created_at[gte]=yesterday"):
            response = await get(bad)
            assert response.status_code == 422, bad
            assert response.json()["error"]["code"] == "invalid_filter"

    async def test_company_id_matches_primary_and_linked_companies(self, client):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        globex = await make_company(client, admin, name="Globex")
        await make_contact(client, admin, first_name="Primary", primary_company_id=acme["id"])
        linked = await make_contact(client, admin, first_name="Linked")
        await make_contact(client, admin, first_name="Other", primary_company_id=globex["id"])
        await make_contact(client, admin, first_name="Nobody")
        assert (await link(client, admin, linked["id"], acme["id"])).status_code == 201
        get = lambda q: client.get(  # noqa: E731
            f"{CONTACTS}?{q}&sort_by=first_name&sort_order=asc", headers=admin.headers
        )
        assert names(await get(f"company_id={acme['id']}")) == [
            "Linked Lovelace",
            "Primary Lovelace",
        ]
        assert names(await get(f"company_id={acme['id']},{globex['id']}")) == [
            "Linked Lovelace",
            "Other Lovelace",
            "Primary Lovelace",
        ]
        assert (await get("company_id=acme")).status_code == 422

    async def test_created_and_updated_ranges(self, client):
        admin = await register(client)
        first = await make_contact(client, admin, first_name="First")
        second = await make_contact(client, admin, first_name="Second")
        await client.patch(
            f"{CONTACTS}/{first['id']}", json={"status": "contacted"}, headers=admin.headers
        )
        get = lambda q: client.get(  # noqa: E731
            CONTACTS, params={**q, "sort_by": "first_name"}, headers=admin.headers
        )
        assert names(await get({"created_at[gte]": second["created_at"]})) == ["Second Lovelace"]
        assert names(await get({"created_at[lt]": second["created_at"]})) == ["First Lovelace"]
        assert names(await get({"updated_at[gt]": second["updated_at"]})) == ["First Lovelace"]
        assert names(await get({"updated_at[lte]": second["updated_at"]})) == ["Second Lovelace"]
        assert names(await get({"created_at[gte]": "2000-01-01"})) == [
            "Second Lovelace",
            "First Lovelace",
        ]

    async def test_custom_fields_are_validated_and_filterable(self, client):
        admin = await register(client)
        for definition in (
            {
                "resource": "contact",
                "name": "tier",
                "label": "Tier",
                "type": "select",
                "options": ["gold", "silver"],
            },
            {"resource": "contact", "name": "score", "label": "Score", "type": "number"},
        ):
            response = await client.post(
                "/api/v1/custom-fields", json=definition, headers=admin.headers
            )
            assert response.status_code == 201, response.text
        await make_contact(client, admin, first_name="Gold", custom_fields={"tier": "gold"})
        silver = await make_contact(
            client, admin, first_name="Silver", custom_fields={"tier": "silver", "score": 3}
        )
        bad = await client.post(
            CONTACTS,
            json={"first_name": "Bad", "custom_fields": {"tier": "bronze"}},
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "body.custom_fields.tier"
        patched = await client.patch(
            f"{CONTACTS}/{silver['id']}",
            json={"custom_fields": {"score": 9}},
            headers=admin.headers,
        )
        assert patched.json()["data"]["custom_fields"] == {"tier": "silver", "score": 9}
        get = lambda q: client.get(f"{CONTACTS}?{q}", headers=admin.headers)  # noqa: E731
        assert names(await get("cf.tier=gold")) == ["Gold Lovelace"]
        assert names(await get("cf.score[gte]=5")) == ["Silver Lovelace"]
        assert (await get("cf.nope=1")).status_code == 422


class TestSorts:
    async def test_every_sort_both_ways(self, client):
        admin = await register(client)
        made = []
        for first, last in (
            ("Bob", "smith"),
            ("alice", "Jones"),
            ("Carl", None),
            ("Dora", "Adams"),
        ):
            made.append(await make_contact(client, admin, first_name=first, last_name=last))
        # Touch the first one so updated_at differs from created order.
        await client.patch(
            f"{CONTACTS}/{made[0]['id']}", json={"status": "contacted"}, headers=admin.headers
        )
        get = lambda s, o: client.get(  # noqa: E731
            f"{CONTACTS}?sort_by={s}&sort_order={o}", headers=admin.headers
        )
        firsts = lambda r: [c["first_name"] for c in r.json()["data"]]  # noqa: E731
        assert firsts(await get("created_at", "asc")) == ["Bob", "alice", "Carl", "Dora"]
        assert firsts(await get("created_at", "desc")) == ["Dora", "Carl", "alice", "Bob"]
        assert firsts(await get("updated_at", "desc")) == ["Bob", "Dora", "Carl", "alice"]
        assert firsts(await get("updated_at", "asc")) == ["alice", "Carl", "Dora", "Bob"]
        # Case-insensitive; contacts without a last name sort first ascending.
        assert firsts(await get("last_name", "asc")) == ["Carl", "Dora", "alice", "Bob"]
        assert firsts(await get("last_name", "desc")) == ["Bob", "alice", "Dora", "Carl"]
        assert firsts(await get("first_name", "asc")) == ["alice", "Bob", "Carl", "Dora"]
        assert firsts(await get("first_name", "desc")) == ["Dora", "Carl", "Bob", "alice"]
        assert (await get("email", "asc")).status_code == 422

    @pytest.mark.parametrize("order", ["asc", "desc"])
    async def test_paging_with_ties_returns_every_row_once_while_rows_arrive(self, client, order):
        admin = await register(client)
        items = [
            {"first_name": f"P{i:02d}", "last_name": "Smith" if i % 5 else None} for i in range(40)
        ]
        created = await client.post(
            f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
        )
        assert created.status_code == 200
        expected = {r["data"]["id"] for r in created.json()["data"]["items"]}
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"sort_by": "last_name", "sort_order": order, "limit": 7}
            if cursor:
                params["cursor"] = cursor
            page = await client.get(CONTACTS, params=params, headers=admin.headers)
            assert page.status_code == 200, page.text
            seen.extend(c["id"] for c in page.json()["data"])
            cursor = page.json()["meta"]["next_cursor"]
            pages += 1
            # New rows with the same sort value arrive between pages.
            await make_contact(client, admin, first_name=f"Late{pages}", last_name="Smith")
            if not cursor:
                break
        originals = [i for i in seen if i in expected]
        assert len(originals) == len(set(originals)) == 40
        assert set(originals) == expected
        assert len(seen) == len(set(seen))


class TestSearch:
    async def test_search_names_email_phone_and_company(self, client):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme Widgets")
        await make_contact(
            client,
            admin,
            first_name="Grace",
            last_name="Hopper",
            email="grace@navy.example",
            phone="+1 979 236 1958",
            primary_company_id=acme["id"],
        )
        await make_contact(
            client, admin, first_name="Alan", last_name="Turing", phone="+44 20 7946 0958"
        )
        for term, expected in (
            ("grace", ["Grace Hopper"]),
            ("HOPPER", ["Grace Hopper"]),
            ("grace hop", ["Grace Hopper"]),
            ("navy.example", ["Grace Hopper"]),
            ("(979) 236-1958", ["Grace Hopper"]),
            ("9792361958", ["Grace Hopper"]),
            ("+19792361958", ["Grace Hopper"]),
            ("acme", ["Grace Hopper"]),
            ("widgets", ["Grace Hopper"]),
            ("turing", ["Alan Turing"]),
            ("7946-0958", ["Alan Turing"]),
            ("tu", ["Alan Turing"]),
            ("nothing", []),
            ("%", []),
        ):
            found = await client.get(CONTACTS, params={"search": term}, headers=admin.headers)
            assert names(found) == expected, term

    async def test_renaming_a_company_refreshes_its_contacts_documents(self, client):
        admin = await register(client)
        acme = await make_company(client, admin, name="Acme")
        await make_contact(client, admin, first_name="Grace", primary_company_id=acme["id"])
        renamed = await client.patch(
            f"{COMPANIES}/{acme['id']}", json={"name": "Initech"}, headers=admin.headers
        )
        assert renamed.status_code == 200
        found = await client.get(CONTACTS, params={"search": "initech"}, headers=admin.headers)
        assert names(found) == ["Grace Lovelace"]
        assert found.json()["data"][0]["company_name"] == "Initech"
        stale = await client.get(CONTACTS, params={"search": "acme"}, headers=admin.headers)
        assert names(stale) == []

    async def test_deleted_contacts_leave_search(self, client):
        admin = await register(client)
        contact = await make_contact(client, admin, first_name="Vanishing")
        await client.delete(f"{CONTACTS}/{contact['id']}", headers=admin.headers)
        found = await client.get(CONTACTS, params={"search": "vanish"}, headers=admin.headers)
        assert names(found) == []
        hits = await client.get("/api/v1/search", params={"q": "vanish"}, headers=admin.headers)
        assert hits.json()["data"] == []


class TestAccess:
    async def test_viewer_reads_only(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        contact = await make_contact(client, admin)
        company = await make_company(client, admin)
        path = f"{CONTACTS}/{contact['id']}"
        for method, url in (("GET", path), ("GET", CONTACTS), ("GET", f"{path}/companies")):
            response = await client.request(method, url, headers=viewer.headers)
            assert response.status_code == 200, (method, url)
        assert (
            await client.get(f"{CONTACTS}/duplicates", headers=viewer.headers)
        ).status_code == 200
        for method, url, body in (
            ("POST", CONTACTS, {"first_name": "x"}),
            ("PATCH", path, {"first_name": "x"}),
            ("DELETE", path, None),
            ("POST", f"{path}/restore", None),
            ("POST", f"{CONTACTS}/bulk", {"items": [{"first_name": "x"}]}),
            ("PATCH", f"{CONTACTS}/bulk", {"items": [{"id": contact["id"]}]}),
            ("POST", f"{CONTACTS}/merge", {"winner_id": contact["id"], "loser_ids": [path[-36:]]}),
            ("POST", f"{path}/companies/{company['id']}", None),
            ("DELETE", f"{path}/companies/{company['id']}", None),
            ("POST", f"{COMPANIES}/{company['id']}/contacts/{contact['id']}", None),
        ):
            response = await client.request(method, url, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, url, response.text)
        after = await client.get(path, headers=admin.headers)
        assert after.json()["data"] == contact

    async def test_workspaces_are_isolated(self, client):
        admin = await register(client)
        company = await make_company(client, admin, name="Secret Co")
        contact = await make_contact(
            client, admin, first_name="Secretive", primary_company_id=company["id"]
        )
        assert (await link(client, admin, contact["id"], company["id"])).status_code == 201
        intruder = await register(client)
        own_company = await make_company(client, intruder, name="Mine")
        own_contact = await make_contact(client, intruder, first_name="Mine")
        path = f"{CONTACTS}/{contact['id']}"
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=path,
            requests=[
                ("GET", f"{path}/companies", None),
                ("POST", f"{path}/companies/{company['id']}", {"role": "x"}),
                ("POST", f"{path}/companies/{own_company['id']}", None),
                ("DELETE", f"{path}/companies/{company['id']}", None),
                ("POST", f"{CONTACTS}/{own_contact['id']}/companies/{company['id']}", None),
                ("GET", f"{COMPANIES}/{company['id']}/contacts", None),
                ("POST", f"{COMPANIES}/{company['id']}/contacts/{contact['id']}", None),
                ("POST", f"{COMPANIES}/{own_company['id']}/contacts/{contact['id']}", None),
                ("DELETE", f"{COMPANIES}/{company['id']}/contacts/{contact['id']}", None),
                ("DELETE", f"{path}?erase=true", None),
            ],
            list_path=CONTACTS,
            search_term="secret",
        )
        for query in (f"company_id={company['id']}", "search=secretive"):
            listed = await client.get(f"{CONTACTS}?{query}", headers=intruder.headers)
            assert listed.status_code == 200 and listed.json()["data"] == []
        dupes = await client.get(f"{CONTACTS}/duplicates", headers=intruder.headers)
        assert dupes.json()["data"] == []
        links = await client.get(f"{path}/companies", headers=admin.headers)
        assert [c["company_id"] for c in links.json()["data"]] == [company["id"]]
