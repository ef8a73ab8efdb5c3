"""Companies through HTTP: the record template (CRUD, filters, search, custom fields, bulk)."""

from __future__ import annotations

import pytest

from tests.factories import add_member, register
from tests.isolation import assert_isolated

BASE = "/api/v1/companies"


async def make_company(client, account, **fields):
    payload = {"name": "Acme", **fields}
    response = await client.post(BASE, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


class TestCrud:
    async def test_create_normalises_domain_and_phone(self, client):
        admin = await register(client)
        company = await make_company(
            client,
            admin,
            domain="https://www.Acme.COM/about",
            phone="(979) 236-1958",
            address={"city": "Austin", "country": "US"},
            tags=["vip", "vip", "emea"],
            owner_id=admin.user["id"],
        )
        assert company["domain"] == "acme.com"
        assert company["phone"] == "(979) 236-1958" and company["phone_e164"] == "+19792361958"
        assert company["tags"] == ["vip", "emea"]
        assert company["address"] == {"city": "Austin", "country": "US"}

    async def test_domain_is_unique_among_live_companies(self, client):
        admin = await register(client)
        first = await make_company(client, admin, domain="acme.com")
        dup = await client.post(
            BASE, json={"name": "B", "domain": "ACME.com"}, headers=admin.headers
        )
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "company_domain_taken"
        await client.delete(f"{BASE}/{first['id']}", headers=admin.headers)
        second = await make_company(client, admin, domain="acme.com")
        restore = await client.post(f"{BASE}/{first['id']}/restore", headers=admin.headers)
        assert restore.status_code == 409
        assert second["id"] != first["id"]

    async def test_patch_updates_only_sent_fields_and_bumps_version(self, client):
        admin = await register(client)
        company = await make_company(client, admin, industry="Retail", tags=["a"])
        response = await client.patch(
            f"{BASE}/{company['id']}",
            json={"industry": None, "size": "11-50"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        data = response.json()["data"]
        assert response.status_code == 200
        assert data["industry"] is None and data["size"] == "11-50" and data["tags"] == ["a"]
        assert data["version"] == 2
        stale = await client.patch(
            f"{BASE}/{company['id']}",
            json={"size": "1-10"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert stale.status_code == 412

    async def test_notes_may_span_lines_but_names_may_not(self, client):
        admin = await register(client)
        company = await make_company(client, admin, notes="line one\nline two\ttabbed")
        assert company["notes"] == "line one\nline two\ttabbed"
        refused = await client.post(BASE, json={"name": "two\nlines"}, headers=admin.headers)
        assert refused.status_code == 422

    async def test_bad_values_are_422(self, client):
        admin = await register(client)
        for body in (
            {"name": ""},
            {"name": "x", "domain": "not a domain"},
            {"name": "x", "size": "huge"},
            {"name": "x", "phone": "banana"},
            {"name": "x", "owner_id": "00000000-0000-7000-8000-000000000000"},
            {"name": "x", "tags": ["ok", ""]},
            {"name": "x", "unknown": 1},
        ):
            response = await client.post(BASE, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)


class TestListing:
    async def test_filters_sorts_and_search(self, client):
        admin = await register(client)
        await make_company(client, admin, name="Zeta Corp", industry="Retail", tags=["vip"])
        await make_company(client, admin, name="Alpha Inc", industry="Energy", domain="alpha.io")
        await make_company(
            client, admin, name="Beta GmbH", industry="Retail", phone="+49 30 1234567"
        )
        names = lambda r: [c["name"] for c in r.json()["data"]]  # noqa: E731
        by_name = await client.get(f"{BASE}?sort_by=name&sort_order=asc", headers=admin.headers)
        assert names(by_name) == ["Alpha Inc", "Beta GmbH", "Zeta Corp"]
        retail = await client.get(
            f"{BASE}?industry=Retail&sort_by=name&sort_order=asc", headers=admin.headers
        )
        assert names(retail) == ["Beta GmbH", "Zeta Corp"]
        vip = await client.get(f"{BASE}?tag=vip", headers=admin.headers)
        assert names(vip) == ["Zeta Corp"]
        for term, expected in (
            ("alpha", ["Alpha Inc"]),
            ("ALPHA.IO", ["Alpha Inc"]),
            ("gm", ["Beta GmbH"]),
            ("1234567", ["Beta GmbH"]),
            ("(30) 123-4567", ["Beta GmbH"]),
            ("nothing", []),
        ):
            found = await client.get(f"{BASE}", params={"search": term}, headers=admin.headers)
            assert names(found) == expected, term
        mine = await client.get(f"{BASE}?owner_id=me", headers=admin.headers)
        assert mine.status_code == 200 and names(mine) == []

    async def test_custom_fields_are_validated_and_filterable(self, client):
        admin = await register(client)
        for definition in (
            {
                "resource": "company",
                "name": "tier",
                "label": "Tier",
                "type": "select",
                "options": ["gold", "silver"],
            },
            {"resource": "company", "name": "seats", "label": "Seats", "type": "number"},
            {
                "resource": "company",
                "name": "regions",
                "label": "Regions",
                "type": "multi_select",
                "options": ["emea", "apac", "amer"],
            },
            {"resource": "company", "name": "active", "label": "Active", "type": "boolean"},
        ):
            response = await client.post(
                "/api/v1/custom-fields", json=definition, headers=admin.headers
            )
            assert response.status_code == 201, response.text
        await make_company(
            client,
            admin,
            name="Gold",
            custom_fields={"tier": "gold", "seats": 120, "regions": ["emea"], "active": True},
        )
        await make_company(
            client,
            admin,
            name="Silver",
            custom_fields={
                "tier": "silver",
                "seats": 15,
                "regions": ["apac", "amer"],
                "active": False,
            },
        )
        bad = await client.post(
            BASE, json={"name": "Bad", "custom_fields": {"tier": "bronze"}}, headers=admin.headers
        )
        assert (
            bad.status_code == 422
            and bad.json()["error"]["details"][0]["field"] == "body.custom_fields.tier"
        )
        unknown = await client.post(
            BASE, json={"name": "Bad", "custom_fields": {"nope": 1}}, headers=admin.headers
        )
        assert unknown.status_code == 422
        names = lambda r: sorted(c["name"] for c in r.json()["data"])  # noqa: E731
        for query, expected in (
            ("cf.tier=gold", ["Gold"]),
            ("cf.seats[gte]=100", ["Gold"]),
            ("cf.seats[lt]=100", ["Silver"]),
            ("cf.regions=amer", ["Silver"]),
            ("cf.regions=emea,apac", ["Gold", "Silver"]),
            ("cf.active=true", ["Gold"]),
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert response.status_code == 200, (query, response.text)
            assert names(response) == expected, query
        assert (await client.get(f"{BASE}?cf.nope=1", headers=admin.headers)).status_code == 422
        assert (await client.get(f"{BASE}?cf.tier[gt]=a", headers=admin.headers)).status_code == 422


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client):
        admin = await register(client)
        items = [{"name": f"Co {i}"} for i in range(1000)]
        items[637] = {"name": ""}
        response = await client.post(f"{BASE}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 422
        assert {d["index"] for d in response.json()["error"]["details"]} == {637}
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_non_atomic_writes_the_valid_ones(self, client):
        admin = await register(client)
        items = [{"name": f"Co {i}"} for i in range(1000)]
        items[10] = {"name": "Dup", "domain": "dup.com"}
        items[20] = {"name": "Dup again", "domain": "dup.com"}
        items[30] = {"bogus": True}
        response = await client.post(
            f"{BASE}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        body = response.json()["data"]
        assert response.status_code == 200 and body["succeeded"] == 998 and body["failed"] == 2
        assert [r["index"] for r in body["items"] if not r["success"]] == [20, 30]
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 998

    async def test_bulk_update_and_empty_list(self, client):
        admin = await register(client)
        a = await make_company(client, admin, name="A")
        b = await make_company(client, admin, name="B")
        response = await client.patch(
            f"{BASE}/bulk",
            json={"items": [{"id": a["id"], "industry": "X"}, {"id": b["id"], "industry": "Y"}]},
            headers=admin.headers,
        )
        assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
        empty = await client.post(f"{BASE}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400


class TestAccess:
    async def test_viewer_reads_only_and_workspaces_are_isolated(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        company = await make_company(client, admin, name="Secretive")
        assert (
            await client.get(f"{BASE}/{company['id']}", headers=viewer.headers)
        ).status_code == 200
        assert (
            await client.post(BASE, json={"name": "x"}, headers=viewer.headers)
        ).status_code == 403
        intruder = await register(client)
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=f"{BASE}/{company['id']}",
            list_path=BASE,
            search_term="secret",
        )

    @pytest.mark.parametrize("erase_as", ["admin"])
    async def test_erase_removes_from_search(self, client, erase_as):
        admin = await register(client)
        company = await make_company(client, admin, name="Ephemeral")
        found = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert [h["id"] for h in found.json()["data"]] == [company["id"]]
        await client.delete(f"{BASE}/{company['id']}?erase=true", headers=admin.headers)
        gone = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert gone.json()["data"] == []


class TestEveryFilterAndSort:
    async def test_each_filter(self, client):
        admin = await register(client)
        a = await make_company(
            client,
            admin,
            name="Alpha",
            domain="alpha.com",
            industry="Retail",
            size="1-10",
            tags=["vip"],
            owner_id=admin.user["id"],
        )
        b = await make_company(
            client, admin, name="Beta", domain="beta.com", industry="Energy", size="11-50"
        )
        ids = lambda r: sorted(c["id"] for c in r.json()["data"])  # noqa: E731
        cases = {
            "name=Alpha": [a["id"]],
            "name=Alpha,Beta": sorted([a["id"], b["id"]]),
            "domain=beta.com": [b["id"]],
            "industry=Retail": [a["id"]],
            "size=11-50": [b["id"]],
            "owner_id=me": [a["id"]],
            f"owner_id={admin.user['id']}": [a["id"]],
            "tag=vip": [a["id"]],
            f"created_at[gte]={a['created_at']}": sorted([a["id"], b["id"]]),
            f"created_at[gt]={b['created_at']}": [],
            f"updated_at[lte]={a['updated_at']}": [a["id"]],
        }
        for query, expected in cases.items():
            response = await client.get(
                f"{BASE}?{query}".replace("+", "%2B"), headers=admin.headers
            )
            assert response.status_code == 200, (query, response.text)
            assert ids(response) == expected, query

    @pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "name"])
    @pytest.mark.parametrize("order", ["asc", "desc"])
    async def test_ties_and_inserts_between_pages_lose_and_repeat_nothing(
        self, client, sort_by, order
    ):
        admin = await register(client)
        originals = set()
        for i in range(23):
            originals.add((await make_company(client, admin, name=f"Same {i % 3}"))["id"])
        seen: list[str] = []
        cursor = None
        for page in range(20):
            params = {"sort_by": sort_by, "sort_order": order, "limit": 5}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(BASE, params=params, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            seen.extend(c["id"] for c in body["data"])
            keys = [c[sort_by] if sort_by != "name" else c["name"] for c in body["data"]]
            assert keys == sorted(keys, reverse=order == "desc")
            await make_company(client, admin, name=f"Same {page % 3}")  # inserted between pages
            cursor = body["meta"]["next_cursor"]
            if not body["meta"]["has_more"]:
                assert cursor is None
                break
        assert len(seen) == len(set(seen)), "a row was repeated"
        assert originals <= set(seen), "an original row was skipped"


class TestEraseDetaches:
    async def test_erasing_a_referenced_company_detaches_everything(self, client):
        admin = await register(client)
        company = await make_company(client, admin, name="Doomed")
        cid = company["id"]
        contact = await client.post(
            "/api/v1/contacts",
            json={"first_name": "Ada", "primary_company_id": cid},
            headers=admin.headers,
        )
        assert contact.status_code == 201, contact.text
        contact_id = contact.json()["data"]["id"]
        link = await client.post(
            f"/api/v1/contacts/{contact_id}/companies/{cid}",
            json={"role": "CTO"},
            headers=admin.headers,
        )
        assert link.status_code in (200, 201), link.text
        deal = await client.post(
            "/api/v1/deals", json={"name": "Big", "company_id": cid}, headers=admin.headers
        )
        assert deal.status_code == 201, deal.text
        activity = await client.post(
            "/api/v1/activities",
            json={"kind": "call", "company_id": cid, "contact_id": contact_id},
            headers=admin.headers,
        )
        assert activity.status_code == 201, activity.text
        task = await client.post(
            "/api/v1/tasks", json={"title": "Call", "company_id": cid}, headers=admin.headers
        )
        assert task.status_code == 201, task.text
        erased = await client.delete(f"{BASE}/{cid}?erase=true", headers=admin.headers)
        assert erased.status_code == 200, erased.text
        got = lambda path: client.get(path, headers=admin.headers)  # noqa: E731
        assert (await got(f"/api/v1/contacts/{contact_id}")).json()["data"][
            "primary_company_id"
        ] is None
        assert (await got(f"/api/v1/contacts/{contact_id}/companies")).json()["data"] == []
        assert (await got(f"/api/v1/deals/{deal.json()['data']['id']}")).json()["data"][
            "company_id"
        ] is None
        kept = (await got(f"/api/v1/activities/{activity.json()['data']['id']}")).json()["data"]
        assert kept["company_id"] is None and kept["contact_id"] == contact_id
        assert (await got(f"/api/v1/tasks/{task.json()['data']['id']}")).json()["data"][
            "company_id"
        ] is None
        assert (await got(f"{BASE}/{cid}")).status_code == 404
