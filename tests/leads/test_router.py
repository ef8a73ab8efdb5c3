"""Leads through HTTP: CRUD, statuses and transitions, duplicates, filters, sorts, search, bulk,
paging and access."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

import rapport.core.repository as repository
from rapport.core.clock import utcnow
from rapport.leads.models import Lead
from rapport.tasks.models import Task
from tests.factories import add_member, register
from tests.isolation import assert_isolated
from tests.leads.factories import LEADS, event_types, lead_notes, make_lead

BASE = LEADS
BIG = 5_000_000_000  # beyond 2^31: real amounts in minor units


def ids(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def names(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [row["first_name"] for row in response.json()["data"]]


class TestCrud:
    async def test_create_normalises_and_reads_back(self, client):
        admin = await register(client)
        lead = await make_lead(
            client,
            admin,
            email="Ada.Lovelace@Example.COM",
            phone="(979) 236-1958",
            company_name="Analytical Engines",
            source="website",
            value=125000,
            currency="eur",
            budget_min=100,
            budget_max=200,
            tags=["vip", "vip", "emea"],
            owner_id=admin.user["id"],
            notes="Met at the fair",
        )
        assert lead["full_name"] == "Ada Lovelace"
        assert lead["email"] == "ada.lovelace@example.com"
        assert lead["phone"] == "(979) 236-1958" and lead["phone_e164"] == "+19792361958"
        assert lead["status"] == "new" and lead["activity_count"] == 0
        assert lead["value"] == 125000 and lead["currency"] == "EUR"
        assert lead["tags"] == ["vip", "emea"] and lead["version"] == 1
        assert lead["converted_at"] is None and lead["converted_contact_id"] is None
        got = await client.get(f"{BASE}/{lead['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.headers["etag"] == '"1"'
        assert got.json()["data"] == lead

    async def test_only_a_company_name_is_enough(self, client):
        admin = await register(client)
        lead = await make_lead(client, admin, first_name=None, last_name=None, company_name="Acme")
        assert lead["full_name"] is None and lead["company_name"] == "Acme"

    async def test_bad_values_are_422(self, client):
        admin = await register(client)
        cases: list[tuple[dict[str, Any], str | None]] = [
            ({"first_name": "A", "value": 100}, "body.currency"),
            ({"first_name": "A", "budget_min": 500, "budget_max": 100}, "body.budget_min"),
            ({"first_name": "A", "status": "bogus"}, "body.status"),
            ({"first_name": "A", "status": "converted"}, "body.status"),
            ({"first_name": " ", "last_name": ""}, "body.first_name"),
            ({}, "body.first_name"),
            ({"first_name": "A", "email": "not-an-email"}, None),
            ({"first_name": "A", "phone": "banana"}, None),
            ({"first_name": "A", "value": -1, "currency": "USD"}, None),
            ({"first_name": "A", "value": 10**16, "currency": "USD"}, None),
            ({"first_name": "A", "currency": "US"}, None),
            ({"first_name": "A", "owner_id": str(uuid.uuid4())}, "body.owner_id"),
            ({"first_name": "A", "tags": ["ok", ""]}, None),
            ({"first_name": "A", "activity_count": 5}, None),
            ({"first_name": "A", "unknown": 1}, None),
            ({"first_name": "A", "custom_fields": {"nope": 1}}, None),
        ]
        for body, field in cases:
            response = await client.post(BASE, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
            if field is not None:
                assert response.json()["error"]["details"][0]["field"] == field, body
        converted = await client.post(
            BASE, json={"first_name": "A", "status": "converted"}, headers=admin.headers
        )
        assert converted.json()["error"]["code"] == "invalid_status_transition"
        unknown = await client.post(
            BASE, json={"first_name": "A", "status": "bogus"}, headers=admin.headers
        )
        assert unknown.json()["error"]["code"] == "invalid_status"
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_patch_updates_only_sent_fields_and_checks_the_merged_lead(self, client):
        admin = await register(client)
        lead = await make_lead(
            client, admin, source="ads", tags=["a"], value=100, currency="USD", budget_max=1000
        )
        response = await client.patch(
            f"{BASE}/{lead['id']}",
            json={"source": None, "last_name": "Byron", "budget_min": 900},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["source"] is None and data["last_name"] == "Byron"
        assert data["full_name"] == "Ada Byron" and data["tags"] == ["a"]
        assert data["budget_min"] == 900 and data["version"] == 2
        assert response.headers["etag"] == '"2"'
        stale = await client.patch(
            f"{BASE}/{lead['id']}",
            json={"source": "x"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert stale.status_code == 412
        for body, field in (
            ({"budget_max": 800}, "body.budget_min"),  # 900 > 800 once merged
            ({"currency": None}, "body.currency"),  # the value stays
            ({"first_name": None, "last_name": None}, "body.first_name"),
        ):
            bad = await client.patch(f"{BASE}/{lead['id']}", json=body, headers=admin.headers)
            assert bad.status_code == 422, (body, bad.text)
            assert bad.json()["error"]["details"][0]["field"] == field
        cleared = await client.patch(
            f"{BASE}/{lead['id']}",
            json={"value": None, "currency": None, "phone": "+44 20 7946 0958", "tags": None},
            headers=admin.headers,
        )
        data = cleared.json()["data"]
        assert data["value"] is None and data["currency"] is None and data["tags"] == []
        assert data["phone_e164"] == "+442079460958"
        unknown = await client.patch(
            f"{BASE}/{uuid.uuid4()}", json={"source": "x"}, headers=admin.headers
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "lead_not_found"
        extra = await client.patch(
            f"{BASE}/{lead['id']}", json={"activity_count": 9}, headers=admin.headers
        )
        assert extra.status_code == 422

    async def test_delete_restore_and_deleted_listing(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        lead = await make_lead(client, admin)
        stale = await client.delete(
            f"{BASE}/{lead['id']}", headers={**admin.headers, "If-Match": '"7"'}
        )
        assert stale.status_code == 412
        deleted = await client.delete(f"{BASE}/{lead['id']}", headers=member.headers)
        assert deleted.status_code == 200
        assert deleted.json()["data"] == {"id": lead["id"], "deleted": True}
        assert (await client.get(f"{BASE}/{lead['id']}", headers=admin.headers)).status_code == 404
        assert ids(await client.get(BASE, headers=admin.headers)) == []
        with_deleted = await client.get(f"{BASE}?include_deleted=true", headers=admin.headers)
        assert ids(with_deleted) == [lead["id"]]
        forbidden = await client.get(f"{BASE}?include_deleted=true", headers=member.headers)
        assert forbidden.status_code == 403
        restored = await client.post(f"{BASE}/{lead['id']}/restore", headers=member.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None
        assert ids(await client.get(BASE, headers=admin.headers)) == [lead["id"]]

    async def test_erase_detaches_activities_and_tasks(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        lead = await make_lead(client, admin, first_name="Ephemeral")
        moved = await client.patch(
            f"{BASE}/{lead['id']}", json={"status": "contacted"}, headers=admin.headers
        )
        assert moved.status_code == 200
        [note] = await lead_notes(database, lead["id"])
        workspace_id, lead_id = uuid.UUID(admin.workspace_id), uuid.UUID(lead["id"])
        task_id = uuid.uuid4()
        async with database.write_sessions() as session, session.begin():
            now = utcnow()
            await session.execute(
                insert(Task.__table__).values(
                    workspace_id=workspace_id,
                    id=task_id,
                    title="Call back",
                    lead_id=lead_id,
                    status="open",
                    priority="normal",
                    tags=[],
                    custom_fields={},
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
        refused = await client.delete(f"{BASE}/{lead['id']}?erase=true", headers=member.headers)
        assert refused.status_code == 403
        found = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert [h["id"] for h in found.json()["data"]] == [lead["id"]]
        erased = await client.delete(f"{BASE}/{lead['id']}?erase=true", headers=admin.headers)
        assert erased.status_code == 200, erased.text
        gone = await client.get("/api/v1/search", params={"q": "ephem"}, headers=admin.headers)
        assert gone.json()["data"] == []
        with_deleted = await client.get(f"{BASE}?include_deleted=true", headers=admin.headers)
        assert ids(with_deleted) == []
        async with database.read_sessions() as session:
            activity = Lead.metadata.tables["activity"]
            row = (
                (await session.execute(select(activity).where(activity.c.id == note["id"])))
                .mappings()
                .one()
            )
            assert row["lead_id"] is None and row["subject"] == note["subject"]
            task = Task.__table__
            task_row = (
                (await session.execute(select(task).where(task.c.id == task_id))).mappings().one()
            )
            assert task_row["lead_id"] is None
        assert "lead.erased" in await event_types(database, lead["id"])


class TestStatuses:
    async def test_default_statuses_and_transitions(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        response = await client.get(f"{BASE}/statuses", headers=viewer.headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["statuses"] == [
            "new",
            "contacted",
            "qualified",
            "negotiation",
            "converted",
            "closed",
            "lost",
        ]
        assert data["transitions"]["converted"] == []
        assert data["transitions"]["lost"] == ["contacted", "new"]
        assert data["transitions"]["closed"] == ["contacted", "new"]
        assert data["transitions"]["new"] == [
            "contacted",
            "qualified",
            "negotiation",
            "closed",
            "lost",
        ]
        assert all("converted" not in targets for targets in data["transitions"].values())

    async def test_each_change_is_a_timeline_note_and_an_event(self, client, database):
        admin = await register(client)
        lead = await make_lead(client, admin)
        path = f"{BASE}/{lead['id']}"
        for status in ("contacted", "qualified", "lost", "new"):
            response = await client.patch(path, json={"status": status}, headers=admin.headers)
            assert response.status_code == 200, (status, response.text)
        data = response.json()["data"]
        assert data["status"] == "new" and data["activity_count"] == 4
        same = await client.patch(path, json={"status": "new", "notes": "x"}, headers=admin.headers)
        assert same.json()["data"]["activity_count"] == 4  # no move, no note
        notes = await lead_notes(database, lead["id"])
        assert [n["subject"] for n in notes] == [
            "Status changed from new to contacted",
            "Status changed from contacted to qualified",
            "Status changed from qualified to lost",
            "Status changed from lost to new",
        ]
        assert {n["kind"] for n in notes} == {"note"}
        assert {str(n["author_id"]) for n in notes} == {admin.user["id"]}
        assert {str(n["workspace_id"]) for n in notes} == {admin.workspace_id}
        types = await event_types(database, lead["id"])
        assert types.count("lead.status_changed") == 4 and types[0] == "lead.created"

    async def test_refused_moves_are_422_and_write_nothing(self, client, database):
        admin = await register(client)
        lead = await make_lead(client, admin)
        path = f"{BASE}/{lead['id']}"
        into_converted = await client.patch(
            path, json={"status": "converted"}, headers=admin.headers
        )
        assert into_converted.status_code == 422
        assert into_converted.json()["error"]["code"] == "invalid_status_transition"
        unknown = await client.patch(path, json={"status": "won"}, headers=admin.headers)
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_status"
        await client.patch(path, json={"status": "lost"}, headers=admin.headers)
        for status in ("qualified", "negotiation", "closed"):
            refused = await client.patch(
                path, json={"status": status, "notes": "changed"}, headers=admin.headers
            )
            assert refused.status_code == 422, status
            assert refused.json()["error"]["code"] == "invalid_status_transition"
        reopened = await client.patch(path, json={"status": "contacted"}, headers=admin.headers)
        assert reopened.status_code == 200
        data = reopened.json()["data"]
        assert data["notes"] is None and data["activity_count"] == 2
        assert len(await lead_notes(database, lead["id"])) == 2

    async def test_admins_replace_the_statuses(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        path = f"{BASE}/statuses"
        body = {
            "statuses": ["new", "working", "nurture", "converted", "dead"],
            "transitions": {"dead": ["nurture"], "nurture": ["working", "dead"]},
        }
        refused = await client.patch(path, json=body, headers=member.headers)
        assert refused.status_code == 403
        for bad in (
            {"statuses": ["working", "converted"]},
            {"statuses": ["new", "working"]},
            {"statuses": ["new", "converted", "all"]},
            {"statuses": ["new", "converted", "Bad Name"]},
            {"statuses": ["new", "converted", "new"]},
            {"statuses": ["new", "converted"], "transitions": {"new": ["converted"]}},
            {"statuses": ["new", "converted"], "transitions": {"converted": ["new"]}},
            {"statuses": ["new", "converted"], "transitions": {"new": ["lost"]}},
            {"statuses": ["new", "converted"], "transitions": {"lost": ["new"]}},
            {"statuses": ["new", "converted"], "extra": 1},
        ):
            response = await client.patch(path, json=bad, headers=admin.headers)
            assert response.status_code == 422, (bad, response.text)
        response = await client.patch(path, json=body, headers=admin.headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["statuses"] == body["statuses"]
        assert data["transitions"] == {
            "new": ["working", "nurture", "dead"],  # the default rule
            "working": ["new", "nurture", "dead"],
            "nurture": ["working", "dead"],
            "converted": [],
            "dead": ["nurture"],
        }
        assert (await client.get(path, headers=member.headers)).json()["data"] == data
        lead = await make_lead(client, member, status="working")
        assert lead["status"] == "working"
        old = await client.post(
            BASE, json={"first_name": "B", "status": "qualified"}, headers=member.headers
        )
        assert old.status_code == 422 and old.json()["error"]["code"] == "invalid_status"
        lead_path = f"{BASE}/{lead['id']}"
        assert (
            await client.patch(lead_path, json={"status": "dead"}, headers=member.headers)
        ).status_code == 200
        assert (
            await client.patch(lead_path, json={"status": "new"}, headers=member.headers)
        ).status_code == 422
        assert (
            await client.patch(lead_path, json={"status": "nurture"}, headers=member.headers)
        ).status_code == 200
        # Without transitions: every status takes the default rule again.
        reset = await client.patch(
            path, json={"statuses": ["new", "converted", "lost"]}, headers=admin.headers
        )
        assert reset.json()["data"]["transitions"] == {
            "new": ["lost"],
            "converted": [],
            "lost": ["new"],
        }
        # A lead whose status was removed from the list may still move to a listed one.
        moved = await client.patch(lead_path, json={"status": "lost"}, headers=member.headers)
        assert moved.status_code == 200 and moved.json()["data"]["status"] == "lost"

    async def test_statuses_belong_to_their_workspace(self, client):
        admin = await register(client)
        other = await register(client)
        await client.patch(
            f"{BASE}/statuses",
            json={"statuses": ["new", "converted", "hot"]},
            headers=admin.headers,
        )
        theirs = await client.get(f"{BASE}/statuses", headers=other.headers)
        assert "hot" not in theirs.json()["data"]["statuses"]
        refused = await client.post(
            BASE, json={"first_name": "X", "status": "hot"}, headers=other.headers
        )
        assert refused.status_code == 422


class TestDuplicates:
    async def test_same_email_or_phone_is_409_with_the_existing_id(self, client, database):
        admin = await register(client)
        first = await make_lead(client, admin, email="dup@example.com", phone="(979) 236-1958")
        by_email = await client.post(
            BASE, json={"first_name": "B", "email": "DUP@Example.com"}, headers=admin.headers
        )
        assert by_email.status_code == 409
        error = by_email.json()["error"]
        assert error["code"] == "lead_duplicate"
        assert error["details"][0]["existing_id"] == first["id"]
        assert error["details"][0]["field"] == "body.email"
        by_phone = await client.post(
            BASE, json={"first_name": "C", "phone": "+1 979 236 1958"}, headers=admin.headers
        )
        assert by_phone.status_code == 409
        assert by_phone.json()["error"]["details"][0] == {
            "field": "body.phone",
            "reason": f"lead {first['id']} has the same phone",
            "existing_id": first["id"],
        }
        allowed = await client.post(
            f"{BASE}?allow_duplicate=true",
            json={"first_name": "B", "email": "dup@example.com"},
            headers=admin.headers,
        )
        assert allowed.status_code == 201
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 2

    async def test_deleted_leads_and_other_workspaces_do_not_count(self, client):
        admin = await register(client)
        other = await register(client)
        first = await make_lead(client, admin, email="gone@example.com")
        await make_lead(client, other, email="gone@example.com")
        await client.delete(f"{BASE}/{first['id']}", headers=admin.headers)
        again = await make_lead(client, admin, email="gone@example.com")
        assert again["id"] != first["id"]

    async def test_duplicates_inside_one_bulk(self, client):
        admin = await register(client)
        items = [{"first_name": "A", "email": "same@example.com"}] * 2
        atomic = await client.post(f"{BASE}/bulk", json={"items": items}, headers=admin.headers)
        assert atomic.status_code == 422
        assert [d["index"] for d in atomic.json()["error"]["details"]] == [1]
        allowed = await client.post(
            f"{BASE}/bulk?allow_duplicate=true", json={"items": items}, headers=admin.headers
        )
        assert allowed.status_code == 200 and allowed.json()["data"]["succeeded"] == 2


class TestListing:
    async def _budgets(self, client, admin):  # noqa: ANN001, ANN202
        """A: 100..200, B: 300..500, C: only min 250, D: only max 150, E: no budget."""
        await make_lead(client, admin, first_name="A", budget_min=100, budget_max=200)
        await make_lead(client, admin, first_name="B", budget_min=300, budget_max=500)
        await make_lead(client, admin, first_name="C", budget_min=250)
        await make_lead(client, admin, first_name="D", budget_max=150)
        await make_lead(client, admin, first_name="E")

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("min_budget=250", ["B", "C"]),  # budget_max >= 250 (B) or budget_min >= 250 (B, C)
            ("min_budget=200", ["A", "B", "C"]),  # A's max reaches 200 exactly
            ("min_budget=501", []),
            ("max_budget=200", ["A", "D"]),  # budget_min <= 200 (A) or budget_max <= 200 (A, D)
            ("max_budget=300", ["A", "B", "C", "D"]),  # B's min is 300: it crosses
            ("max_budget=99", []),
            ("min_budget=150&max_budget=260", ["A", "C", "D"]),
            ("min_budget=0", ["A", "B", "C", "D"]),  # a lead without a budget never matches
            ("budget_min[gte]=250", ["B", "C"]),
            ("budget_max[lt]=200", ["D"]),
        ],
    )
    async def test_budget_bounds_cross_either_end(self, client, query, expected):
        admin = await register(client)
        await self._budgets(client, admin)
        response = await client.get(
            f"{BASE}?{query}&sort_by=last_name&sort_order=asc&limit=200", headers=admin.headers
        )
        assert sorted(names(response)) == expected, query

    async def test_budget_bounds_refuse_bad_values(self, client):
        admin = await register(client)
        for query in (
            "min_budget=abc",
            "max_budget=-1",
            "min_budget=1,2",
            "min_budget[gte]=1",
            f"max_budget={10**16}",
            "value[gt]=1.5",
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert response.status_code == 422, query
            assert response.json()["error"]["code"] == "invalid_filter"

    async def test_status_filters_including_all_and_empty(self, client):
        admin = await register(client)
        await make_lead(client, admin, first_name="N")
        c = await make_lead(client, admin, first_name="C")
        q = await make_lead(client, admin, first_name="Q")
        await client.patch(f"{BASE}/{c['id']}", json={"status": "contacted"}, headers=admin.headers)
        await client.patch(f"{BASE}/{q['id']}", json={"status": "qualified"}, headers=admin.headers)
        for query, expected in (
            ("status=new", ["N"]),
            ("status=contacted,qualified", ["C", "Q"]),
            ("status=all", ["C", "N", "Q"]),
            ("status=", ["C", "N", "Q"]),
            ("status=ALL", []),
            ("status=lost", []),
            ("status=new,all", ["C", "N", "Q"]),
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert sorted(names(response)) == expected, query

    async def test_other_filters(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        await make_lead(
            client,
            admin,
            first_name="A",
            source="web",
            tags=["vip"],
            value=BIG,
            currency="USD",
            owner_id=admin.user["id"],
        )
        await make_lead(
            client,
            admin,
            first_name="B",
            source="referral",
            value=500,
            currency="EUR",
            owner_id=member.user["id"],
        )
        await make_lead(client, admin, first_name="C", source="web", tags=["vip", "emea"])
        for query, expected in (
            ("source=web", ["A", "C"]),
            ("source=web,referral", ["A", "B", "C"]),
            ("tag=vip", ["A", "C"]),
            ("tag=emea", ["C"]),
            (f"owner_id={member.user['id']}", ["B"]),
            ("currency=EUR", ["B"]),
            ("value=500", ["B"]),
            (f"value={BIG}", ["A"]),
            ("value[gte]=501", ["A"]),
            ("value[lt]=501", ["B"]),
            (f"value[lte]={BIG}", ["A", "B"]),
            ("value[gt]=0&source=web", ["A"]),
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert sorted(names(response)) == expected, query
        mine = await client.get(f"{BASE}?owner_id=me", headers=member.headers)
        assert names(mine) == ["B"]
        unknown = await client.get(f"{BASE}?colour=red", headers=admin.headers)
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_filter"

    async def test_created_and_updated_ranges(self, client, monkeypatch):
        admin = await register(client)
        early = datetime(2024, 1, 10, tzinfo=UTC)
        monkeypatch.setattr(repository, "utcnow", lambda: early)
        old = await make_lead(client, admin, first_name="Old")
        monkeypatch.setattr(repository, "utcnow", utcnow)
        await make_lead(client, admin, first_name="Fresh")
        for query, expected in (
            ("created_at[lt]=2025-01-01", ["Old"]),
            ("created_at[gte]=2025-01-01", ["Fresh"]),
            ("updated_at[lte]=2024-01-10T00:00:00Z", ["Old"]),
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert names(response) == expected, query
        await client.patch(f"{BASE}/{old['id']}", json={"notes": "touched"}, headers=admin.headers)
        recent = await client.get(f"{BASE}?updated_at[gte]=2025-01-01", headers=admin.headers)
        assert sorted(names(recent)) == ["Fresh", "Old"]

    async def test_custom_field_filters(self, client):
        admin = await register(client)
        for definition in (
            {
                "resource": "lead",
                "name": "interest",
                "label": "Interest",
                "type": "select",
                "options": ["condo", "house"],
            },
            {"resource": "lead", "name": "rooms", "label": "Rooms", "type": "number"},
        ):
            created = await client.post(
                "/api/v1/custom-fields", json=definition, headers=admin.headers
            )
            assert created.status_code == 201, created.text
        await make_lead(
            client, admin, first_name="A", custom_fields={"interest": "condo", "rooms": 2}
        )
        await make_lead(
            client, admin, first_name="B", custom_fields={"interest": "house", "rooms": 5}
        )
        bad = await client.post(
            BASE,
            json={"first_name": "X", "custom_fields": {"interest": "castle"}},
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "body.custom_fields.interest"
        for query, expected in (
            ("cf.interest=condo", ["A"]),
            ("cf.rooms[gte]=3", ["B"]),
            ("cf.interest=condo,house", ["A", "B"]),
        ):
            response = await client.get(f"{BASE}?{query}", headers=admin.headers)
            assert sorted(names(response)) == expected, query
        assert (await client.get(f"{BASE}?cf.nope=1", headers=admin.headers)).status_code == 422
        # A company's custom fields are not a lead's.
        patched = await client.patch(
            f"{BASE}/{(await make_lead(client, admin, first_name='C'))['id']}",
            json={"custom_fields": {"rooms": 3}},
            headers=admin.headers,
        )
        assert patched.json()["data"]["custom_fields"] == {"rooms": 3}

    async def test_sorts(self, client, monkeypatch):
        admin = await register(client)
        stamps = iter(datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 10))
        monkeypatch.setattr(repository, "utcnow", lambda: next(stamps))
        a = await make_lead(client, admin, first_name="A", last_name="Zimmer", value=300,
                            currency="USD")  # fmt: skip
        b = await make_lead(client, admin, first_name="B", last_name="Adams")
        c = await make_lead(client, admin, first_name="C", last_name=None, value=BIG,
                            currency="USD")  # fmt: skip
        await client.patch(f"{BASE}/{a['id']}", json={"notes": "x"}, headers=admin.headers)
        monkeypatch.setattr(repository, "utcnow", utcnow)
        expectations = {
            ("created_at", "asc"): ["A", "B", "C"],
            ("created_at", "desc"): ["C", "B", "A"],
            ("updated_at", "desc"): ["A", "C", "B"],
            ("value", "asc"): ["B", "A", "C"],  # no value sorts as 0
            ("value", "desc"): ["C", "A", "B"],
            ("last_name", "asc"): ["C", "B", "A"],  # no last name sorts first
            ("last_name", "desc"): ["A", "B", "C"],
        }
        for (sort_by, order), expected in expectations.items():
            response = await client.get(
                f"{BASE}?sort_by={sort_by}&sort_order={order}", headers=admin.headers
            )
            assert names(response) == expected, (sort_by, order)
        default = await client.get(BASE, headers=admin.headers)
        assert names(default) == ["C", "B", "A"]
        assert {b["id"], c["id"]} <= set(ids(default))
        bad = await client.get(f"{BASE}?sort_by=email", headers=admin.headers)
        assert bad.status_code == 422

    async def test_search(self, client):
        admin = await register(client)
        await make_lead(
            client,
            admin,
            first_name="Grace",
            last_name="Hopper",
            email="grace@navy.example",
            company_name="Univac",
        )
        await make_lead(
            client, admin, first_name="Alan", last_name="Turing", phone="+44 20 7946 0958"
        )
        await make_lead(client, admin, first_name="Edsger", company_name="Mathematisch Centrum")
        for term, expected in (
            ("grace", ["Grace"]),
            ("HOPPER", ["Grace"]),
            ("navy.example", ["Grace"]),
            ("univac", ["Grace"]),
            ("turing", ["Alan"]),
            ("7946 0958", ["Alan"]),
            ("+442079460958", ["Alan"]),
            ("centrum", ["Edsger"]),
            ("nobody", []),
        ):
            response = await client.get(BASE, params={"search": term}, headers=admin.headers)
            assert names(response) == expected, term
        both = await client.get(
            BASE, params={"search": "grace", "status": "new"}, headers=admin.headers
        )
        assert names(both) == ["Grace"]


class TestPaging:
    async def _seed(self, client, monkeypatch):  # noqa: ANN001, ANN202
        """24 leads: ties on created_at (8 at one instant), value (3 groups) and last_name."""
        admin = await register(client)
        frozen = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
        real_now = repository.utcnow
        items = []
        for i in range(24):
            if i == 4:
                monkeypatch.setattr(repository, "utcnow", lambda: frozen)
            if i == 12:
                monkeypatch.setattr(repository, "utcnow", real_now)
            value = (None, 100, BIG)[i % 3]
            items.append(
                await make_lead(
                    client,
                    admin,
                    first_name=f"L{i:02d}",
                    last_name=("Smith", "Jones", None)[i % 3],
                    value=value,
                    currency="USD" if value is not None else None,
                )
            )
        monkeypatch.setattr(repository, "utcnow", real_now)
        return admin, items

    async def _pages(self, client, admin, params, between=None):  # noqa: ANN001, ANN202
        rows: list[dict[str, Any]] = []
        cursor = None
        for page_number in range(100):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await client.get(BASE, params=query, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            rows.extend(body["data"])
            if not body["meta"]["has_more"]:
                assert body["meta"]["next_cursor"] is None
                return rows
            assert len(body["data"]) == params["limit"]
            cursor = body["meta"]["next_cursor"]
            if between is not None:
                await between(page_number)
        raise AssertionError("pagination did not end")

    @staticmethod
    def _key(row: dict[str, Any], sort_by: str) -> tuple[Any, str]:
        if sort_by == "value":
            return row["value"] or 0, row["id"]
        if sort_by == "last_name":
            return row["last_name"] or "", row["id"]
        # As times: a time on a whole second is written without a fraction ("...07Z"), which
        # sorts after "...07.05Z" as text.
        return datetime.fromisoformat(row[sort_by]), row["id"]

    @pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "value", "last_name"])
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_every_row_exactly_once_with_ties(self, client, monkeypatch, sort_by, sort_order):
        admin, items = await self._seed(client, monkeypatch)
        params = {"limit": 5, "sort_by": sort_by, "sort_order": sort_order}
        rows = await self._pages(client, admin, params)
        got = [row["id"] for row in rows]
        assert len(got) == len(set(got)) == 24
        assert set(got) == {item["id"] for item in items}
        keys = [self._key(row, sort_by) for row in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")

    @pytest.mark.parametrize("sort_by", ["created_at", "value", "last_name"])
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_inserts_between_pages_skip_and_repeat_nothing(
        self, client, monkeypatch, sort_by, sort_order
    ):
        admin, items = await self._seed(client, monkeypatch)

        async def insert_some(page_number: int) -> None:
            for last_name, value in (("Aaron", 0), ("Jones", 100), ("Zed", BIG), (None, None)):
                await make_lead(
                    client,
                    admin,
                    first_name=f"New{page_number}",
                    last_name=last_name,
                    value=value,
                    currency="USD" if value is not None else None,
                )

        params = {"limit": 5, "sort_by": sort_by, "sort_order": sort_order}
        rows = await self._pages(client, admin, params, between=insert_some)
        got = [row["id"] for row in rows]
        assert len(got) == len(set(got)), "a row came twice"
        assert {item["id"] for item in items} <= set(got), "an original row was skipped"
        keys = [self._key(row, sort_by) for row in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")

    async def test_a_cursor_belongs_to_its_sort(self, client, monkeypatch):
        admin, _ = await self._seed(client, monkeypatch)
        first = await client.get(f"{BASE}?limit=2&sort_by=value", headers=admin.headers)
        cursor = first.json()["meta"]["next_cursor"]
        other = await client.get(
            f"{BASE}?limit=2&sort_by=created_at&cursor={cursor}", headers=admin.headers
        )
        assert other.status_code == 422 and other.json()["error"]["code"] == "invalid_cursor"
        flipped = await client.get(
            f"{BASE}?limit=2&sort_by=value&sort_order=asc&cursor={cursor}", headers=admin.headers
        )
        assert flipped.status_code == 422
        for junk in ("abc", "W10", "WyJ2YWx1ZSIsImRlc2MiLC0xLCJ4Il0"):
            response = await client.get(
                f"{BASE}?sort_by=value&cursor={junk}", headers=admin.headers
            )
            assert response.status_code == 422, junk


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client):
        admin = await register(client)
        items = [{"first_name": f"Lead {i}"} for i in range(1000)]
        items[637] = {"first_name": "Bad", "budget_min": 9, "budget_max": 1}
        response = await client.post(f"{BASE}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "bulk_failed"
        assert {d["index"] for d in response.json()["error"]["details"]} == {637}
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_non_atomic_writes_the_other_999(self, client):
        admin = await register(client)
        items = [{"first_name": f"Lead {i}"} for i in range(1000)]
        items[500] = {"first_name": "Bad", "value": 5}  # no currency
        response = await client.post(
            f"{BASE}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()["data"]
        assert body["succeeded"] == 999 and body["failed"] == 1
        assert [r["index"] for r in body["items"] if not r["success"]] == [500]
        listed = await client.get(f"{BASE}?include_total=true", headers=admin.headers)
        assert listed.json()["meta"]["total"] == 999

    async def test_bulk_update_moves_statuses_atomically(self, client, database):
        admin = await register(client)
        a = await make_lead(client, admin, first_name="A")
        b = await make_lead(client, admin, first_name="B")
        bad = await client.patch(
            f"{BASE}/bulk",
            json={
                "items": [
                    {"id": a["id"], "status": "qualified"},
                    {"id": b["id"], "status": "converted"},
                ]
            },
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert [d["index"] for d in bad.json()["error"]["details"]] == [1]
        assert await lead_notes(database, a["id"]) == []
        good = await client.patch(
            f"{BASE}/bulk",
            json={
                "items": [
                    {"id": a["id"], "status": "qualified"},
                    {"id": b["id"], "source": "fair"},
                ]
            },
            headers=admin.headers,
        )
        assert good.status_code == 200 and good.json()["data"]["succeeded"] == 2
        assert len(await lead_notes(database, a["id"])) == 1
        empty = await client.post(f"{BASE}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400


class TestAccess:
    async def test_viewers_read_only(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        lead = await make_lead(client, admin)
        path = f"{BASE}/{lead['id']}"
        assert (await client.get(path, headers=viewer.headers)).status_code == 200
        assert ids(await client.get(BASE, headers=viewer.headers)) == [lead["id"]]
        for method, url, body in (
            ("POST", BASE, {"first_name": "x"}),
            ("PATCH", path, {"source": "x"}),
            ("DELETE", path, None),
            ("POST", f"{path}/restore", None),
            ("POST", f"{path}/convert", {}),
            ("POST", f"{BASE}/bulk", {"items": [{"first_name": "x"}]}),
            ("PATCH", f"{BASE}/bulk", {"items": [{"id": lead["id"], "source": "x"}]}),
            ("PATCH", f"{BASE}/statuses", {"statuses": ["new", "converted"]}),
        ):
            response = await client.request(method, url, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, url, response.text)
        after = await client.get(path, headers=admin.headers)
        assert after.json()["data"] == lead

    async def test_workspaces_are_isolated(self, client):
        admin = await register(client)
        lead = await make_lead(client, admin, first_name="Secretive", email="s@example.com")
        intruder = await register(client)
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=f"{BASE}/{lead['id']}",
            requests=[
                ("PATCH", f"{BASE}/{lead['id']}", {"status": "contacted"}),
                ("POST", f"{BASE}/{lead['id']}/convert", {}),
                ("DELETE", f"{BASE}/{lead['id']}?erase=true", None),
            ],
            list_path=BASE,
            search_term="secret",
        )
        bulk = await client.patch(
            f"{BASE}/bulk",
            json={"items": [{"id": lead["id"], "source": "x"}]},
            headers=intruder.headers,
        )
        assert bulk.status_code == 422
        assert bulk.json()["error"]["details"][0]["reason"].startswith("lead_not_found")
        # The intruder's own duplicate check does not see the owner's lead either.
        await make_lead(client, intruder, email="s@example.com")
