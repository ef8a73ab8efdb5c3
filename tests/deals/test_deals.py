"""Deals through HTTP: CRUD, stage moves and their history, filters, sorts, search, bulk,
access and isolation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

import rapport.core.repository as repository
from rapport.activities.models import Activity
from rapport.deals.models import Deal
from rapport.tasks.models import Task
from tests.deals.factories import (
    DEALS,
    PIPELINES,
    default_pipeline,
    event_types,
    make_contact_row,
    make_deal,
    make_linked_rows,
    make_pipeline,
    row_of,
    stage_change_count,
    stage_id,
)
from tests.factories import add_member, register
from tests.isolation import assert_isolated

NO_SUCH_ID = "01900000-0000-7000-8000-000000000000"


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["data"]]


async def history(client, account, deal_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{DEALS}/{deal_id}/stage-history", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def patch(client, account, deal_id: str, body: dict[str, Any], status: int = 200):
    response = await client.patch(f"{DEALS}/{deal_id}", json=body, headers=account.headers)
    assert response.status_code == status, response.text
    return response.json()["data"] if status == 200 else response.json()["error"]


class TestCrud:
    async def test_create_defaults_and_read_model(self, client, database):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        company = await client.post(
            "/api/v1/companies", json={"name": "Acme Ltd"}, headers=admin.headers
        )
        contact_id = await make_contact_row(database, admin, "Ada", "Lovelace")
        response = await client.post(
            DEALS,
            json={
                "name": "Acme renewal",
                "amount": 125000,
                "currency": "eur",
                "expected_close_date": "2026-06-30",
                "contact_id": contact_id,
                "company_id": company.json()["data"]["id"],
                "owner_id": admin.user["id"],
                "tags": ["q2", "q2", "renewal"],
                "notes": "Renewal of the 2025 contract",
            },
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        assert response.headers["etag"] == '"1"'
        deal = response.json()["data"]
        assert deal["currency"] == "EUR" and deal["amount"] == 125000
        assert deal["pipeline_id"] == sales["id"] and deal["pipeline_name"] == "Sales"
        assert deal["stage_id"] == stage_id(sales, "Lead") and deal["stage_name"] == "Lead"
        assert deal["probability"] == 10 and deal["status"] == "open"
        assert deal["won_at"] is None and deal["lost_at"] is None
        assert deal["expected_close_date"] == "2026-06-30"
        assert deal["tags"] == ["q2", "renewal"] and deal["version"] == 1
        got = await client.get(f"{DEALS}/{deal['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.json()["data"] == deal
        assert got.headers["etag"] == '"1"'
        assert await event_types(database, deal["id"]) == ["deal.created", "deal.stage_changed"]

    async def test_patch_updates_only_sent_fields(self, client):
        admin = await register(client)
        deal = await make_deal(
            client, admin, amount=500, currency="USD", notes="n", expected_close_date="2026-01-31"
        )
        response = await client.patch(
            f"{DEALS}/{deal['id']}",
            json={"notes": None, "amount": 900, "name": None},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["notes"] is None and data["amount"] == 900 and data["name"] == deal["name"]
        assert data["currency"] == "USD" and data["expected_close_date"] == "2026-01-31"
        assert data["version"] == 2 and response.headers["etag"] == '"2"'
        stale = await client.patch(
            f"{DEALS}/{deal['id']}",
            json={"amount": 1},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert stale.status_code == 412
        nothing = await client.patch(f"{DEALS}/{deal['id']}", json={}, headers=admin.headers)
        assert nothing.status_code == 200 and nothing.json()["data"]["version"] == 2
        missing = await client.patch(f"{DEALS}/{NO_SUCH_ID}", json={}, headers=admin.headers)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "deal_not_found"

    async def test_amount_needs_a_currency(self, client):
        admin = await register(client)
        refused = await client.post(
            DEALS, json={"name": "No currency", "amount": 100}, headers=admin.headers
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "body.currency"
        deal = await make_deal(client, admin)
        error = await patch(client, admin, deal["id"], {"amount": 100}, 422)
        assert error["details"][0]["field"] == "body.currency"
        priced = await patch(client, admin, deal["id"], {"amount": 100, "currency": "GBP"})
        assert priced["amount"] == 100
        error = await patch(client, admin, deal["id"], {"currency": None}, 422)
        assert error["details"][0]["field"] == "body.currency"
        unpriced = await patch(client, admin, deal["id"], {"amount": None})
        assert unpriced["amount"] is None and unpriced["currency"] == "GBP"
        currency_only = await make_deal(client, admin, currency="JPY")
        assert currency_only["amount"] is None and currency_only["currency"] == "JPY"

    async def test_bad_values_are_422(self, client):
        admin = await register(client)
        for body in (
            {"name": ""},
            {"name": "x", "amount": -1, "currency": "USD"},
            {"name": "x", "amount": 10**16, "currency": "USD"},
            {"name": "x", "amount": 1, "currency": "US"},
            {"name": "x", "amount": 1, "currency": "U1D"},
            {"name": "x", "status": "pending"},
            {"name": "x", "expected_close_date": "2026-02-30"},
            {"name": "x", "owner_id": NO_SUCH_ID},
            {"name": "x", "contact_id": NO_SUCH_ID},
            {"name": "x", "company_id": NO_SUCH_ID},
            {"name": "x", "pipeline_id": NO_SUCH_ID},
            {"name": "x", "stage_id": NO_SUCH_ID},
            {"name": "x", "pipeline_id": "not-a-uuid"},
            {"name": "x", "tags": ["ok", ""]},
            {"name": "x", "custom_fields": {"nope": 1}},
            {"name": "x", "unknown": 1},
            {"name": "x", "won_at": "2026-01-01T00:00:00Z"},
        ):
            response = await client.post(DEALS, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
        listed = await client.get(f"{DEALS}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_big_amounts_round_trip(self, client):
        admin = await register(client)
        deal = await make_deal(client, admin, amount=10**15, currency="USD")
        assert deal["amount"] == 10**15

    async def test_delete_restore_and_erase(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        deal = await make_deal(client, admin, name="Ephemeral deal")
        await patch(client, admin, deal["id"], {"status": "won"})
        path = f"{DEALS}/{deal['id']}"
        stale = await client.delete(path, headers={**admin.headers, "If-Match": '"1"'})
        assert stale.status_code == 412
        deleted = await client.delete(path, headers=member.headers)
        assert deleted.status_code == 200 and deleted.json()["data"]["deleted"] is True
        assert (await client.get(path, headers=admin.headers)).status_code == 404
        assert (await client.get(f"{path}/stage-history", headers=admin.headers)).status_code == 404
        assert names(await client.get(DEALS, headers=admin.headers)) == []
        found = await client.get("/api/v1/search", params={"q": "ephemeral"}, headers=admin.headers)
        assert found.json()["data"] == []
        deleted_listed = await client.get(
            DEALS, params={"include_deleted": "true"}, headers=admin.headers
        )
        assert names(deleted_listed) == ["Ephemeral deal"]
        forbidden = await client.get(
            DEALS, params={"include_deleted": "true"}, headers=member.headers
        )
        assert forbidden.status_code == 403
        restored = await client.post(f"{path}/restore", headers=member.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None
        assert restored.json()["data"]["stage_name"] == "Won"
        found = await client.get("/api/v1/search", params={"q": "ephemeral"}, headers=admin.headers)
        assert [h["id"] for h in found.json()["data"]] == [deal["id"]]
        # Erase: admins only; the history goes, activities and tasks forget the deal.
        activity_id, task_id = await make_linked_rows(database, admin, deal["id"])
        assert await stage_change_count(database, deal["id"]) == 2
        refused = await client.delete(f"{path}?erase=true", headers=member.headers)
        assert refused.status_code == 403
        erased = await client.delete(f"{path}?erase=true", headers=admin.headers)
        assert erased.status_code == 200, erased.text
        assert await row_of(database, Deal.__table__, deal["id"]) is None
        assert await stage_change_count(database, deal["id"]) == 0
        activity = await row_of(database, Activity.__table__, activity_id)
        task = await row_of(database, Task.__table__, task_id)
        assert activity["deal_id"] is None and activity["version"] == 2
        assert task["deal_id"] is None and task["version"] == 2
        assert (await client.post(f"{path}/restore", headers=admin.headers)).status_code == 404
        found = await client.get("/api/v1/search", params={"q": "ephemeral"}, headers=admin.headers)
        assert found.json()["data"] == []
        assert (await event_types(database, deal["id"]))[-1] == "deal.erased"


class TestStageMoves:
    async def test_every_move_is_recorded_with_won_and_lost_times(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        sales = await default_pipeline(client, admin)
        lead, proposal = stage_id(sales, "Lead"), stage_id(sales, "Proposal")
        won, lost = stage_id(sales, "Won"), stage_id(sales, "Lost")
        deal = await make_deal(client, admin)
        moved = await patch(client, member, deal["id"], {"stage_id": proposal})
        assert moved["stage_name"] == "Proposal" and moved["probability"] == 50
        assert moved["status"] == "open"
        same = await patch(client, admin, deal["id"], {"stage_id": proposal, "name": "Renamed"})
        assert same["stage_id"] == proposal
        won_deal = await patch(client, admin, deal["id"], {"stage_id": won})
        assert won_deal["status"] == "won" and won_deal["won_at"] is not None
        assert won_deal["lost_at"] is None and won_deal["probability"] == 100
        lost_deal = await patch(
            client, admin, deal["id"], {"stage_id": lost, "lost_reason": "Price"}
        )
        assert lost_deal["status"] == "lost" and lost_deal["lost_at"] is not None
        assert lost_deal["won_at"] is None and lost_deal["lost_reason"] == "Price"
        reopened = await patch(client, admin, deal["id"], {"stage_id": lead})
        assert reopened["status"] == "open"
        assert reopened["won_at"] is None and reopened["lost_at"] is None
        moves = await history(client, admin, deal["id"])
        assert [(m["from_stage_id"], m["to_stage_id"]) for m in moves] == [
            (None, lead),
            (lead, proposal),
            (proposal, won),
            (won, lost),
            (lost, lead),
        ]
        assert [m["to_stage_name"] for m in moves] == ["Lead", "Proposal", "Won", "Lost", "Lead"]
        assert [m["changed_by"] for m in moves] == [
            admin.user["id"],
            member.user["id"],
            admin.user["id"],
            admin.user["id"],
            admin.user["id"],
        ]
        stamps = [datetime.fromisoformat(m["changed_at"].replace("Z", "+00:00")) for m in moves]
        assert stamps == sorted(stamps)
        won_at = datetime.fromisoformat(won_deal["won_at"].replace("Z", "+00:00"))
        lost_at = datetime.fromisoformat(lost_deal["lost_at"].replace("Z", "+00:00"))
        assert stamps[1] <= won_at <= stamps[2] <= lost_at <= stamps[3]
        types = await event_types(database, deal["id"])
        assert types.count("deal.stage_changed") == 5
        assert types.count("deal.won") == 1 and types.count("deal.lost") == 1
        paged = await client.get(
            f"{DEALS}/{deal['id']}/stage-history", params={"limit": 2}, headers=admin.headers
        )
        assert len(paged.json()["data"]) == 2 and paged.json()["meta"]["has_more"] is True
        rest = await client.get(
            f"{DEALS}/{deal['id']}/stage-history",
            params={"limit": 10, "cursor": paged.json()["meta"]["next_cursor"]},
            headers=admin.headers,
        )
        assert [m["id"] for m in paged.json()["data"] + rest.json()["data"]] == [
            m["id"] for m in moves
        ]

    async def test_status_moves_to_the_won_or_lost_stage(self, client):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        deal = await make_deal(client, admin, stage_id=stage_id(sales, "Negotiation"))
        won = await patch(client, admin, deal["id"], {"status": "won"})
        assert won["stage_name"] == "Won" and won["status"] == "won" and won["won_at"]
        lost = await patch(client, admin, deal["id"], {"status": "lost"})
        assert lost["stage_name"] == "Lost" and lost["lost_at"] and lost["won_at"] is None
        # Reopening needs an open stage to go to.
        error = await patch(client, admin, deal["id"], {"status": "open"}, 422)
        assert error["code"] == "status_conflicts_with_stage"
        conflict = await patch(
            client, admin, deal["id"], {"status": "won", "stage_id": stage_id(sales, "Lost")}, 422
        )
        assert conflict["code"] == "status_conflicts_with_stage"
        conflict = await patch(
            client, admin, deal["id"], {"status": "won", "stage_id": stage_id(sales, "Lead")}, 422
        )
        assert conflict["code"] == "status_conflicts_with_stage"
        reopened = await patch(
            client, admin, deal["id"], {"status": "open", "stage_id": stage_id(sales, "Proposal")}
        )
        assert reopened["status"] == "open" and reopened["stage_name"] == "Proposal"
        moves = await history(client, admin, deal["id"])
        assert [m["to_stage_name"] for m in moves] == [
            "Negotiation",
            "Won",
            "Lost",
            "Proposal",
        ]
        created_won = await make_deal(client, admin, status="won")
        assert created_won["stage_name"] == "Won" and created_won["won_at"]
        assert [m["to_stage_name"] for m in await history(client, admin, created_won["id"])] == [
            "Won"
        ]
        created_in_lost = await make_deal(client, admin, stage_id=stage_id(sales, "Lost"))
        assert created_in_lost["status"] == "lost" and created_in_lost["lost_at"]

    async def test_status_without_a_terminal_stage_stays_put(self, client):
        admin = await register(client)
        bare = await make_pipeline(
            client, admin, name="Bare", stages=[{"name": "One"}, {"name": "Two"}]
        )
        deal = await make_deal(client, admin, pipeline_id=bare["id"])
        won = await patch(client, admin, deal["id"], {"status": "won"})
        assert won["status"] == "won" and won["stage_name"] == "One" and won["won_at"]
        assert len(await history(client, admin, deal["id"])) == 1
        reopened = await patch(client, admin, deal["id"], {"status": "open"})
        assert reopened["status"] == "open" and reopened["won_at"] is None
        moved = await patch(client, admin, deal["id"], {"stage_id": stage_id(bare, "Two")})
        assert moved["status"] == "open" and moved["stage_name"] == "Two"

    async def test_stage_must_belong_to_the_deals_pipeline(self, client):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        other = await make_pipeline(client, admin)
        demo = stage_id(other, "Demo")
        refused = await client.post(
            DEALS,
            json={"name": "x", "pipeline_id": sales["id"], "stage_id": demo},
            headers=admin.headers,
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == (
            "stage_not_in_pipeline"
        )
        default_refused = await client.post(
            DEALS, json={"name": "x", "stage_id": demo}, headers=admin.headers
        )
        assert default_refused.status_code == 422
        deal = await make_deal(client, admin)
        error = await patch(client, admin, deal["id"], {"stage_id": demo}, 422)
        assert error["code"] == "stage_not_in_pipeline"
        # Moving pipelines: to the new pipeline's first stage, or to a stage named with it.
        moved = await patch(client, admin, deal["id"], {"pipeline_id": other["id"]})
        assert moved["pipeline_name"] == "Enterprise" and moved["stage_name"] == "Discovery"
        back = await patch(
            client,
            admin,
            deal["id"],
            {"pipeline_id": sales["id"], "stage_id": stage_id(sales, "Won")},
        )
        assert back["pipeline_name"] == "Sales" and back["status"] == "won"
        error = await patch(
            client,
            admin,
            deal["id"],
            {"pipeline_id": other["id"], "stage_id": sales["stages"][0]["id"]},
            422,
        )
        assert error["code"] == "stage_not_in_pipeline"
        assert [m["to_stage_name"] for m in await history(client, admin, deal["id"])] == [
            "Lead",
            "Discovery",
            "Won",
        ]
        deleted = await make_pipeline(client, admin, name="Gone")
        await client.delete(f"{PIPELINES}/{deleted['id']}", headers=admin.headers)
        error = await patch(client, admin, deal["id"], {"pipeline_id": deleted["id"]}, 422)
        assert error["code"] == "invalid_reference"
        empty = await make_pipeline(client, admin, name="Empty", stages=[])
        error = await patch(client, admin, deal["id"], {"pipeline_id": empty["id"]}, 422)
        assert error["code"] == "pipeline_has_no_stages"


async def _seed_listing(client, database, admin):
    sales = await default_pipeline(client, admin)
    other = await make_pipeline(client, admin)
    member = await add_member(client, admin, "member")
    company = (
        await client.post("/api/v1/companies", json={"name": "Globex"}, headers=admin.headers)
    ).json()["data"]
    contact_id = await make_contact_row(database, admin, "Grace", "Hopper")
    deals = {
        "Alpha": await make_deal(
            client,
            admin,
            name="Alpha",
            amount=5000,
            currency="USD",
            expected_close_date="2026-03-01",
            tags=["vip"],
            owner_id=admin.user["id"],
            contact_id=contact_id,
        ),
        "Bravo": await make_deal(
            client,
            admin,
            name="Bravo",
            amount=12_000_000_000,
            currency="USD",
            expected_close_date="2026-01-15",
            stage_id=stage_id(sales, "Won"),
            company_id=company["id"],
            owner_id=member.user["id"],
        ),
        "Charlie": await make_deal(
            client,
            admin,
            name="Charlie",
            pipeline_id=other["id"],
            stage_id=stage_id(other, "Closed lost"),
            tags=["vip", "emea"],
        ),
        "Delta": await make_deal(
            client,
            admin,
            name="Delta",
            amount=300,
            currency="EUR",
            expected_close_date="2026-12-31",
        ),
    }
    return sales, other, member, company, contact_id, deals


class TestListing:
    async def test_each_filter(self, client, database):
        admin = await register(client)
        sales, other, member, company, contact_id, deals = await _seed_listing(
            client, database, admin
        )
        cases = [
            ({"status": "open"}, ["Alpha", "Delta"]),
            ({"status": "won,lost"}, ["Bravo", "Charlie"]),
            ({"pipeline_id": other["id"]}, ["Charlie"]),
            ({"pipeline_id": sales["id"]}, ["Alpha", "Bravo", "Delta"]),
            ({"stage_id": stage_id(sales, "Won")}, ["Bravo"]),
            ({"stage_id": stage_id(sales, "Lead")}, ["Alpha", "Delta"]),
            ({"owner_id": "me"}, ["Alpha"]),
            ({"owner_id": member.user["id"]}, ["Bravo"]),
            ({"contact_id": contact_id}, ["Alpha"]),
            ({"company_id": company["id"]}, ["Bravo"]),
            ({"tag": "vip"}, ["Alpha", "Charlie"]),
            ({"tag": "emea"}, ["Charlie"]),
            ({"amount[gte]": "5000"}, ["Alpha", "Bravo"]),
            ({"amount[gt]": "5000000000"}, ["Bravo"]),
            ({"amount[lt]": "5000"}, ["Delta"]),
            ({"amount": "300,5000"}, ["Alpha", "Delta"]),
            ({"currency": "EUR"}, ["Delta"]),
            ({"expected_close_date[gte]": "2026-02-01"}, ["Alpha", "Delta"]),
            ({"expected_close_date[lt]": "2026-02-01"}, ["Bravo"]),
            ({"expected_close_date": "2026-12-31"}, ["Delta"]),
            ({"created_at[gte]": "2000-01-01"}, ["Alpha", "Bravo", "Charlie", "Delta"]),
            ({"created_at[lt]": "2000-01-01"}, []),
            ({"updated_at[gte]": "2999-01-01"}, []),
            ({"status": "open", "tag": "vip"}, ["Alpha"]),
        ]
        for params, expected in cases:
            response = await client.get(
                DEALS,
                params={**params, "sort_by": "name", "sort_order": "asc"},
                headers=admin.headers,
            )
            assert names(response) == expected, params
        for params in (
            {"status": "pending"},
            {"amount[gte]": "lots"},
            {"amount[gte]": "99999999999999999999"},
            {"expected_close_date[gte]": "tomorrow"},
            {"owner_id": "someone"},
            {"probability": "10"},
            {"stage_id[gt]": sales["id"]},
        ):
            response = await client.get(DEALS, params=params, headers=admin.headers)
            assert response.status_code == 422, (params, response.text)
            assert response.json()["error"]["code"] == "invalid_filter"
        # The read model shows the stage for every row of a page.
        rows = (
            await client.get(
                DEALS, params={"sort_by": "name", "sort_order": "asc"}, headers=admin.headers
            )
        ).json()["data"]
        assert [(r["stage_name"], r["pipeline_name"], r["probability"]) for r in rows] == [
            ("Lead", "Sales", 10),
            ("Won", "Sales", 100),
            ("Closed lost", "Enterprise", 0),
            ("Lead", "Sales", 10),
        ]

    async def test_custom_fields_are_validated_and_filterable(self, client):
        admin = await register(client)
        for definition in (
            {
                "resource": "deal",
                "name": "source",
                "label": "Source",
                "type": "select",
                "options": ["inbound", "outbound"],
            },
            {"resource": "deal", "name": "seats", "label": "Seats", "type": "number"},
        ):
            response = await client.post(
                "/api/v1/custom-fields", json=definition, headers=admin.headers
            )
            assert response.status_code == 201, response.text
        a = await make_deal(
            client, admin, name="A", custom_fields={"source": "inbound", "seats": 5}
        )
        await make_deal(client, admin, name="B", custom_fields={"source": "outbound", "seats": 50})
        bad = await client.post(
            DEALS,
            json={"name": "C", "custom_fields": {"source": "carrier pigeon"}},
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "body.custom_fields.source"
        for query, expected in (
            ({"cf.source": "inbound"}, ["A"]),
            ({"cf.seats[gte]": "10"}, ["B"]),
            ({"cf.seats[lt]": "10"}, ["A"]),
        ):
            assert names(await client.get(DEALS, params=query, headers=admin.headers)) == expected
        assert (
            await client.get(DEALS, params={"cf.nope": "1"}, headers=admin.headers)
        ).status_code == 422
        merged = await patch(client, admin, a["id"], {"custom_fields": {"seats": 6}})
        assert merged["custom_fields"] == {"source": "inbound", "seats": 6}

    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_each_sort(self, client, database, sort_order):
        admin = await register(client)
        *_, deals = await _seed_listing(client, database, admin)
        await patch(client, admin, deals["Charlie"]["id"], {"notes": "touched"})
        expected = {
            "name": ["Alpha", "Bravo", "Charlie", "Delta"],
            # No amount counts as 0.
            "amount": ["Charlie", "Delta", "Alpha", "Bravo"],
            # No expected close date sorts after every date.
            "expected_close_date": ["Bravo", "Alpha", "Delta", "Charlie"],
            "created_at": ["Alpha", "Bravo", "Charlie", "Delta"],
            "updated_at": ["Alpha", "Bravo", "Delta", "Charlie"],
        }
        for sort_by, ascending in expected.items():
            want = ascending if sort_order == "asc" else ascending[::-1]
            response = await client.get(
                DEALS, params={"sort_by": sort_by, "sort_order": sort_order}, headers=admin.headers
            )
            assert names(response) == want, sort_by
            # Page by page (one row each) gives the same order.
            got, cursor = [], None
            for _ in range(10):
                params = {"sort_by": sort_by, "sort_order": sort_order, "limit": 1}
                if cursor:
                    params["cursor"] = cursor
                page = await client.get(DEALS, params=params, headers=admin.headers)
                got += names(page)
                cursor = page.json()["meta"]["next_cursor"]
                if cursor is None:
                    break
            assert got == want, sort_by
        default = await client.get(DEALS, headers=admin.headers)
        assert names(default) == ["Delta", "Charlie", "Bravo", "Alpha"]
        bad = await client.get(DEALS, params={"sort_by": "probability"}, headers=admin.headers)
        assert bad.status_code == 422

    async def test_search_by_name_contact_and_company(self, client, database):
        admin = await register(client)
        *_, deals = await _seed_listing(client, database, admin)
        for term, expected in (
            ("alpha", ["Alpha"]),
            ("BRAV", ["Bravo"]),
            ("hopper", ["Alpha"]),
            ("grace hop", ["Alpha"]),
            ("globex", ["Bravo"]),
            ("nothing like it", []),
            ("%", []),
        ):
            response = await client.get(DEALS, params={"search": term}, headers=admin.headers)
            assert names(response) == expected, term
        # A change of company is a change of the search document.
        initech = await client.post(
            "/api/v1/companies", json={"name": "Initech"}, headers=admin.headers
        )
        await patch(
            client, admin, deals["Delta"]["id"], {"company_id": initech.json()["data"]["id"]}
        )
        assert names(
            await client.get(DEALS, params={"search": "initech"}, headers=admin.headers)
        ) == ["Delta"]
        found = await client.get(
            "/api/v1/search", params={"q": "globex", "types": "deal"}, headers=admin.headers
        )
        assert [h["id"] for h in found.json()["data"]] == [deals["Bravo"]["id"]]


class TestRoundTrips:
    async def test_a_page_and_a_record_are_one_statement_each(self, client, database):
        """Stage and pipeline names come joined into the deal query, never one query per row."""
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        for stage in sales["stages"]:
            await make_deal(client, admin, name=stage["name"], stage_id=stage["id"])
        await client.get(DEALS, headers=admin.headers)  # warms the principal cache
        seen: list[str] = []

        def record(conn, cursor, statement, *args):  # noqa: ANN001
            seen.append(statement.strip().split()[0].upper())

        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        try:
            listed = await client.get(DEALS, params={"limit": 50}, headers=admin.headers)
            one_page = list(seen)
            seen.clear()
            got = await client.get(
                f"{DEALS}/{listed.json()['data'][0]['id']}", headers=admin.headers
            )
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        assert listed.status_code == 200 and len(listed.json()["data"]) == 6
        assert {r["stage_name"] for r in listed.json()["data"]} == {
            s["name"] for s in sales["stages"]
        }
        assert one_page == ["SELECT"]
        assert got.status_code == 200 and seen == ["SELECT"]


class TestPaging:
    async def _pages(self, client, admin, params, between=None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        for page_number in range(100):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await client.get(DEALS, params=query, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            rows.extend(body["data"])
            if not body["meta"]["has_more"]:
                assert body["meta"]["next_cursor"] is None
                return rows
            cursor = body["meta"]["next_cursor"]
            if between is not None:
                await between(page_number)
        raise AssertionError("pagination did not end")

    @staticmethod
    def _key(row: dict[str, Any], sort_by: str) -> tuple[Any, str]:
        if sort_by == "amount":
            return row["amount"] or 0, row["id"]
        if sort_by == "expected_close_date":
            return row["expected_close_date"] or "9999-12-31", row["id"]
        if sort_by == "name":
            return row["name"], row["id"]
        return datetime.fromisoformat(row[sort_by].replace("Z", "+00:00")), row["id"]

    async def _seed(self, client, monkeypatch) -> Any:
        """36 deals: many equal amounts (and no amount, which sorts as 0), equal close dates,
        equal names, 12 created at one frozen instant."""
        admin = await register(client)
        items = []
        for i in range(36):
            item: dict[str, Any] = {"name": f"Deal {i % 4}"}
            if i % 3:
                item.update(amount=500 if i % 2 else 3_000_000_000, currency="USD")
            if i % 5:
                item["expected_close_date"] = "2026-05-01" if i % 2 else "2026-07-01"
            items.append(item)
        await client.post(f"{DEALS}/bulk", json={"items": items[:12]}, headers=admin.headers)
        frozen = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
        real_now = repository.utcnow
        monkeypatch.setattr(repository, "utcnow", lambda: frozen)
        response = await client.post(
            f"{DEALS}/bulk", json={"items": items[12:24]}, headers=admin.headers
        )
        monkeypatch.setattr(repository, "utcnow", real_now)
        assert response.status_code == 200, response.text
        await client.post(f"{DEALS}/bulk", json={"items": items[24:]}, headers=admin.headers)
        return admin

    @pytest.mark.parametrize(
        "sort_by", ["amount", "expected_close_date", "name", "created_at", "updated_at"]
    )
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_every_row_exactly_once_in_order(self, client, monkeypatch, sort_by, sort_order):
        admin = await self._seed(client, monkeypatch)
        params = {"limit": 5, "sort_by": sort_by, "sort_order": sort_order}
        rows = await self._pages(client, admin, params)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == 36
        keys = [self._key(r, sort_by) for r in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")

    @pytest.mark.parametrize("sort_by", ["amount", "expected_close_date", "created_at"])
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_inserts_between_pages_skip_and_repeat_nothing(
        self, client, monkeypatch, sort_by, sort_order
    ):
        admin = await self._seed(client, monkeypatch)
        original = {r["id"] for r in await self._pages(client, admin, {"limit": 200})}

        async def insert(page_number: int) -> None:
            for item in (
                {"name": f"New {page_number}", "amount": 500, "currency": "USD"},
                {"name": f"Newer {page_number}", "expected_close_date": "2026-05-01"},
                {"name": f"Newest {page_number}", "amount": 1, "currency": "USD"},
            ):
                await make_deal(client, admin, **item)

        params = {"limit": 5, "sort_by": sort_by, "sort_order": sort_order}
        rows = await self._pages(client, admin, params, between=insert)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), "a row came twice"
        assert original <= set(ids), "an original row was skipped"
        keys = [self._key(r, sort_by) for r in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client, database):
        admin = await register(client)
        items = [{"name": f"Deal {i}", "amount": i, "currency": "USD"} for i in range(1000)]
        items[637] = {"name": "No currency", "amount": 5}
        response = await client.post(f"{DEALS}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "bulk_failed"
        assert {d["index"] for d in response.json()["error"]["details"]} == {637}
        listed = await client.get(f"{DEALS}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_non_atomic_writes_the_valid_ones(self, client):
        admin = await register(client)
        other = await register(client)
        foreign = await default_pipeline(client, other)
        items = [{"name": f"Deal {i}"} for i in range(1000)]
        items[10] = {"name": "Foreign stage", "stage_id": foreign["stages"][0]["id"]}
        response = await client.post(
            f"{DEALS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()["data"]
        assert body["succeeded"] == 999 and body["failed"] == 1
        assert [r["index"] for r in body["items"] if not r["success"]] == [10]
        listed = await client.get(f"{DEALS}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 999
        assert {r["data"]["stage_name"] for r in body["items"] if r["success"]} == {"Lead"}

    async def test_non_atomic_first_item_failing_keeps_the_default_pipeline(self, client):
        admin = await register(client)
        items = [{"name": "Bad", "amount": 1}, {"name": "Good"}]
        response = await client.post(
            f"{DEALS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["succeeded"] == 1
        assert (await default_pipeline(client, admin))["name"] == "Sales"

    async def test_bulk_update_moves_stages_and_empty_list(self, client):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        a = await make_deal(client, admin, name="A")
        b = await make_deal(client, admin, name="B")
        response = await client.patch(
            f"{DEALS}/bulk",
            json={
                "items": [
                    {"id": a["id"], "stage_id": stage_id(sales, "Proposal")},
                    {"id": b["id"], "status": "lost", "lost_reason": "Budget"},
                ]
            },
            headers=admin.headers,
        )
        assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
        assert [m["to_stage_name"] for m in await history(client, admin, b["id"])] == [
            "Lead",
            "Lost",
        ]
        bad = await client.patch(
            f"{DEALS}/bulk",
            json={"items": [{"id": a["id"], "name": "A2"}, {"id": NO_SUCH_ID, "name": "?"}]},
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert {d["index"] for d in bad.json()["error"]["details"]} == {1}
        unchanged = await client.get(f"{DEALS}/{a['id']}", headers=admin.headers)
        assert unchanged.json()["data"]["name"] == "A"
        empty = await client.post(f"{DEALS}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400


class TestAccess:
    async def test_viewer_reads_only(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        deal = await make_deal(client, admin)
        path = f"{DEALS}/{deal['id']}"
        assert (await client.get(path, headers=viewer.headers)).status_code == 200
        assert (await client.get(DEALS, headers=viewer.headers)).status_code == 200
        assert (
            await client.get(f"{path}/stage-history", headers=viewer.headers)
        ).status_code == 200
        for method, url, body in (
            ("POST", DEALS, {"name": "x"}),
            ("POST", f"{DEALS}/bulk", {"items": [{"name": "x"}]}),
            ("PATCH", f"{DEALS}/bulk", {"items": [{"id": deal["id"], "name": "x"}]}),
            ("PATCH", path, {"name": "x"}),
            ("DELETE", path, None),
            ("DELETE", f"{path}?erase=true", None),
            ("POST", f"{path}/restore", None),
        ):
            response = await client.request(method, url, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, url, response.text)
        after = await client.get(path, headers=admin.headers)
        assert after.json()["data"] == deal

    async def test_workspaces_are_isolated(self, client):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        deal = await make_deal(client, admin, name="Secret deal")
        intruder = await register(client)
        path = f"{DEALS}/{deal['id']}"
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=path,
            requests=[
                ("GET", f"{path}/stage-history", None),
                ("PATCH", path, {"name": "Stolen"}),
                ("DELETE", f"{path}?erase=true", None),
            ],
            list_path=DEALS,
            search_term="secret",
        )
        bulk = await client.patch(
            f"{DEALS}/bulk",
            json={"items": [{"id": deal["id"], "name": "x"}]},
            headers=intruder.headers,
        )
        assert bulk.status_code == 422
        assert bulk.json()["error"]["details"][0]["reason"].startswith("deal_not_found")
        # Another workspace's pipeline or stage ids in a body are never accepted.
        own = await make_deal(client, intruder)
        for body in (
            {"name": "x", "pipeline_id": sales["id"]},
            {"name": "x", "stage_id": stage_id(sales, "Won")},
            {"name": "x", "pipeline_id": sales["id"], "stage_id": stage_id(sales, "Won")},
            {"name": "x", "contact_id": deal["id"]},
            {"name": "x", "owner_id": admin.user["id"]},
        ):
            created = await client.post(DEALS, json=body, headers=intruder.headers)
            assert created.status_code in (404, 422), (body, created.text)
            patched = await client.patch(
                f"{DEALS}/{own['id']}",
                json={k: v for k, v in body.items() if k != "name"},
                headers=intruder.headers,
            )
            assert patched.status_code in (404, 422), (body, patched.text)
        unchanged = await client.get(f"{DEALS}/{own['id']}", headers=intruder.headers)
        assert unchanged.json()["data"]["version"] == 1
        assert unchanged.json()["data"]["pipeline_id"] != sales["id"]
        stages = await client.get(f"{PIPELINES}/{sales['id']}/stages", headers=intruder.headers)
        assert stages.status_code == 404
