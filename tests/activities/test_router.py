"""Activities through HTTP: CRUD, filters, sorts, paging, bulk, roles and workspace isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from rapport.activities.models import Activity
from tests.activities.factories import (
    ACTIVITIES,
    event_types,
    make_activity,
    make_company,
    make_contact,
    make_deal,
    make_lead,
    read_row,
)
from tests.factories import add_member, register
from tests.isolation import assert_isolated

NOWHERE = "00000000-0000-7000-8000-000000000000"


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def collect(client, account, path: str, **params) -> list[str]:
    """Every id of a list, page by page."""
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=account.headers)
        seen += ids(response)
        cursor = response.json()["meta"]["next_cursor"]
        if cursor is None:
            return seen


class TestCrud:
    async def test_create_defaults_author_and_time(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        before = datetime.now(UTC)
        response = await client.post(
            ACTIVITIES,
            json={
                "kind": "email",
                "direction": "inbound",
                "subject": "Re: pricing",
                "body": "Hello,\n\tthanks for the call.\r\nAda",
                "duration_minutes": 0,
                "contact_id": contact,
                "tags": ["hot", "hot"],
            },
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        assert response.headers["ETag"] == '"1"'
        data = response.json()["data"]
        assert data["author_id"] == admin.user["id"]
        assert data["contact_id"] == contact and data["lead_id"] is None
        assert data["body"] == "Hello,\n\tthanks for the call.\r\nAda"
        assert data["tags"] == ["hot"] and data["version"] == 1
        occurred = datetime.fromisoformat(data["occurred_at"].replace("Z", "+00:00"))
        assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC)
        got = await client.get(f"{ACTIVITIES}/{data['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.json()["data"] == data
        assert await event_types(database, data["id"]) == ["activity.created"]

    async def test_occurred_at_keeps_the_instant_given_in_any_timezone(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        data = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-03-02T15:30:00+01:00"
        )
        assert data["occurred_at"] == "2026-03-02T14:30:00Z"

    async def test_bad_input_is_422_and_writes_nothing(self, client, database):
        admin = await register(client)
        other = await register(client)
        contact = await make_contact(database, admin)
        foreign_contact = await make_contact(database, other)
        foreign_lead = await make_lead(database, other)
        foreign_deal = await make_deal(database, other)
        foreign_company = await make_company(client, other)
        for body, code in (
            ({"kind": "call"}, "validation_error"),  # names no record
            ({"kind": "fax", "contact_id": contact}, "validation_error"),
            ({"kind": "call", "direction": "sideways", "contact_id": contact}, "validation_error"),
            ({"kind": "call", "duration_minutes": -1, "contact_id": contact}, "validation_error"),
            ({"kind": "call", "duration_minutes": 10001, "contact_id": contact}, None),
            ({"kind": "call", "occurred_at": "2026-03-02T10:00:00", "contact_id": contact}, None),
            (
                {"kind": "call", "occurred_at": "0001-01-01T00:00:00+05:00", "contact_id": contact},
                None,
            ),
            ({"kind": "call", "subject": "a\x00b", "contact_id": contact}, None),
            ({"kind": "call", "contact_id": contact, "unknown": 1}, None),
            ({"kind": "call", "contact_id": contact, "author_id": NOWHERE}, "invalid_reference"),
            ({"kind": "call", "contact_id": NOWHERE}, "invalid_reference"),
            ({"kind": "call", "contact_id": foreign_contact}, "invalid_reference"),
            ({"kind": "call", "contact_id": contact, "lead_id": foreign_lead}, "invalid_reference"),
            ({"kind": "call", "deal_id": foreign_deal}, "invalid_reference"),
            ({"kind": "call", "company_id": foreign_company}, "invalid_reference"),
            ({"kind": "call", "contact_id": contact, "custom_fields": {"nope": 1}}, None),
        ):
            response = await client.post(ACTIVITIES, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
            if code:
                assert response.json()["error"]["code"] == code, body
        listed = await client.get(
            ACTIVITIES, params={"include_total": "true"}, headers=admin.headers
        )
        assert listed.json()["meta"]["total"] == 0
        theirs = await client.get(
            ACTIVITIES, params={"include_total": "true"}, headers=other.headers
        )
        assert theirs.json()["meta"]["total"] == 0

    async def test_missing_activity_is_404(self, client):
        admin = await register(client)
        for method in ("GET", "PATCH", "DELETE"):
            response = await client.request(
                method,
                f"{ACTIVITIES}/{NOWHERE}",
                json={} if method == "PATCH" else None,
                headers=admin.headers,
            )
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "activity_not_found"

    async def test_patch_updates_only_sent_fields(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        lead = await make_lead(database, admin)
        data = await make_activity(client, admin, contact_id=contact, subject="Call", tags=["a"])
        path = f"{ACTIVITIES}/{data['id']}"
        response = await client.patch(
            path,
            json={"subject": None, "kind": None, "duration_minutes": 30, "lead_id": lead},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        updated = response.json()["data"]
        assert updated["subject"] is None and updated["kind"] == "call"
        assert updated["duration_minutes"] == 30 and updated["lead_id"] == lead
        assert updated["tags"] == ["a"] and updated["contact_id"] == contact
        assert updated["version"] == 2 and response.headers["ETag"] == '"2"'
        stale = await client.patch(
            path, json={"subject": "x"}, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        unlinked = await client.patch(
            path, json={"contact_id": None, "lead_id": None}, headers=admin.headers
        )
        assert unlinked.status_code == 422
        foreign = await make_contact(database, await register(client))
        moved = await client.patch(path, json={"contact_id": foreign}, headers=admin.headers)
        assert moved.status_code == 422 and moved.json()["error"]["code"] == "invalid_reference"
        assert (await read_row(database, Activity.__table__, data["id"]))["contact_id"] == (
            uuid.UUID(contact)
        )
        assert await event_types(database, data["id"]) == ["activity.created", "activity.updated"]

    async def test_delete_restore_erase(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin)
        contact = await make_contact(database, admin)
        data = await make_activity(client, member, contact_id=contact)
        path = f"{ACTIVITIES}/{data['id']}"
        stale = await client.delete(path, headers={**member.headers, "If-Match": '"9"'})
        assert stale.status_code == 412
        deleted = await client.delete(path, headers=member.headers)
        assert deleted.status_code == 200
        assert deleted.json()["data"] == {"id": data["id"], "deleted": True}
        assert (await client.get(path, headers=member.headers)).status_code == 404
        assert ids(await client.get(ACTIVITIES, headers=member.headers)) == []
        forbidden = await client.get(
            ACTIVITIES, params={"include_deleted": "true"}, headers=member.headers
        )
        assert forbidden.status_code == 403
        shown = await client.get(
            ACTIVITIES, params={"include_deleted": "true"}, headers=admin.headers
        )
        assert ids(shown) == [data["id"]]
        restored = await client.post(f"{path}/restore", headers=member.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None
        again = await client.post(f"{path}/restore", headers=member.headers)
        assert again.status_code == 200 and again.json()["data"]["version"] == 3
        assert (
            await client.delete(f"{path}?erase=true", headers=member.headers)
        ).status_code == 403
        erased = await client.delete(f"{path}?erase=true", headers=admin.headers)
        assert erased.status_code == 200
        assert (await client.post(f"{path}/restore", headers=admin.headers)).status_code == 404
        shown = await client.get(
            ACTIVITIES, params={"include_deleted": "true"}, headers=admin.headers
        )
        assert ids(shown) == []
        assert await event_types(database, data["id"]) == [
            "activity.created",
            "activity.deleted",
            "activity.restored",
            "activity.erased",
        ]


class TestListing:
    async def test_each_filter(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin)
        contact = await make_contact(database, admin)
        other_contact = await make_contact(database, admin)
        company = await make_company(client, admin)
        lead = await make_lead(database, admin)
        deal = await make_deal(database, admin)
        created = await client.post(
            "/api/v1/custom-fields",
            json={
                "resource": "activity",
                "name": "outcome",
                "label": "Outcome",
                "type": "select",
                "options": ["won", "lost"],
            },
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        call = await make_activity(
            client,
            admin,
            kind="call",
            direction="outbound",
            contact_id=contact,
            occurred_at="2026-01-01T09:00:00Z",
            tags=["vip"],
            subject="Budget talk",
            custom_fields={"outcome": "won"},
        )
        email = await make_activity(
            client,
            member,
            kind="email",
            direction="inbound",
            company_id=company,
            occurred_at="2026-01-02T09:00:00Z",
            body="Quarterly numbers attached",
            custom_fields={"outcome": "lost"},
        )
        meeting = await make_activity(
            client,
            admin,
            kind="meeting",
            lead_id=lead,
            occurred_at="2026-01-03T09:00:00Z",
            author_id=member.user["id"],
        )
        note = await make_activity(
            client,
            admin,
            kind="note",
            deal_id=deal,
            contact_id=other_contact,
            occurred_at="2026-01-04T09:00:00Z",
            tags=["vip", "later"],
        )
        everything = ids(await client.get(ACTIVITIES, headers=admin.headers))
        assert everything == [note["id"], meeting["id"], email["id"], call["id"]]
        created_times = sorted(everything)  # UUIDv7: creation order
        for query, expected in (
            ({"kind": "call"}, [call]),
            ({"kind": "call,email"}, [email, call]),
            ({"direction": "inbound"}, [email]),
            ({"contact_id": contact}, [call]),
            ({"company_id": company}, [email]),
            ({"lead_id": lead}, [meeting]),
            ({"deal_id": deal}, [note]),
            ({"author_id": "me"}, [note, call]),
            ({"author_id": member.user["id"]}, [meeting, email]),
            ({"tag": "vip"}, [note, call]),
            ({"tag": "later,nope"}, [note]),
            ({"occurred_at[gte]": "2026-01-02T09:00:00Z"}, [note, meeting, email]),
            ({"occurred_at[lt]": "2026-01-02"}, [call]),
            (
                {
                    "occurred_at[gt]": "2026-01-02T09:00:00Z",
                    "occurred_at[lte]": "2026-01-03T09:00:00Z",
                },
                [meeting],
            ),
            ({"cf.outcome": "lost"}, [email]),
            ({"search": "budget"}, [call]),
            ({"search": "QUARTERLY"}, [email]),
        ):
            response = await client.get(ACTIVITIES, params=query, headers=admin.headers)
            assert ids(response) == [a["id"] for a in expected], query
        since = await client.get(
            ACTIVITIES,
            params={
                "created_at[gte]": email["created_at"],
                "sort_by": "created_at",
                "sort_order": "asc",
            },
            headers=admin.headers,
        )
        assert ids(since) == created_times[1:]
        for bad in (
            {"kind": "fax"},
            {"nope": "1"},
            {"contact_id": "x"},
            {"cf.nope": "1"},
            {"sort_by": "subject"},
            {"occurred_at[gte]": "yesterday"},
        ):
            response = await client.get(ACTIVITIES, params=bad, headers=admin.headers)
            assert response.status_code == 422, bad

    async def test_sorts(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        late = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-05-01T00:00:00Z"
        )
        early = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-01-01T00:00:00Z"
        )
        middle = await make_activity(
            client, admin, contact_id=contact, occurred_at="2026-03-01T00:00:00Z"
        )
        for params, expected in (
            ({}, [late, middle, early]),
            ({"sort_order": "asc"}, [early, middle, late]),
            ({"sort_by": "occurred_at", "sort_order": "desc"}, [late, middle, early]),
            ({"sort_by": "created_at"}, [middle, early, late]),
            ({"sort_by": "created_at", "sort_order": "asc"}, [late, early, middle]),
        ):
            response = await client.get(ACTIVITIES, params=params, headers=admin.headers)
            assert ids(response) == [a["id"] for a in expected], params

    async def test_paging_with_ties_returns_every_row_once(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        same = "2026-02-01T12:00:00Z"
        items = [
            {
                "kind": "call",
                "contact_id": contact,
                "occurred_at": same if i % 3 else f"2026-02-0{1 + i % 2}T08:00:00Z",
            }
            for i in range(30)
        ]
        response = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        full = ids(await client.get(ACTIVITIES, params={"limit": 200}, headers=admin.headers))
        for sort in ("occurred_at", "created_at"):
            for order in ("asc", "desc"):
                params = {"limit": 4, "sort_by": sort, "sort_order": order}
                paged = await collect(client, admin, ACTIVITIES, **params)
                assert len(paged) == 30 and set(paged) == set(full), (sort, order)
                whole = await client.get(
                    ACTIVITIES, params={**params, "limit": 200}, headers=admin.headers
                )
                assert paged == ids(whole)

    async def test_paging_stays_exact_while_rows_are_inserted(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        same = "2026-02-01T12:00:00Z"
        original = [
            (await make_activity(client, admin, contact_id=contact, occurred_at=same))["id"]
            for _ in range(12)
        ]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            response = await client.get(ACTIVITIES, params=query, headers=admin.headers)
            seen += ids(response)
            cursor = response.json()["meta"]["next_cursor"]
            pages += 1
            # Between pages: a tie (logged later, so it sorts before the cursor), a newer and an
            # older one.
            for when in (same, "2026-06-01T00:00:00Z", "2025-01-01T00:00:00Z"):
                await make_activity(client, admin, contact_id=contact, occurred_at=when)
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "a row came back twice"
        assert set(original) <= set(seen), "a row was skipped"

    async def test_bad_cursor_is_422(self, client):
        admin = await register(client)
        for cursor in ("garbage", "W10", "WyJvY2N1cnJlZF9hdCIsImRlc2MiLDEsIngiXQ"):
            response = await client.get(
                ACTIVITIES, params={"cursor": cursor}, headers=admin.headers
            )
            assert response.status_code == 422, cursor
            assert response.json()["error"]["code"] == "invalid_cursor"


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        items = [{"kind": "note", "contact_id": contact, "subject": f"n{i}"} for i in range(1000)]
        items[417] = {"kind": "note", "contact_id": NOWHERE}
        response = await client.post(
            f"{ACTIVITIES}/bulk", json={"items": items}, headers=admin.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "bulk_failed"
        assert {d["index"] for d in response.json()["error"]["details"]} == {417}
        listed = await client.get(
            ACTIVITIES, params={"include_total": "true"}, headers=admin.headers
        )
        assert listed.json()["meta"]["total"] == 0

    async def test_non_atomic_writes_the_valid_ones(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        items = [{"kind": "note", "contact_id": contact} for _ in range(1000)]
        items[3] = {"kind": "note"}
        response = await client.post(
            f"{ACTIVITIES}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        body = response.json()["data"]
        assert response.status_code == 200 and body["succeeded"] == 999 and body["failed"] == 1
        assert [r["index"] for r in body["items"] if not r["success"]] == [3]
        listed = await client.get(
            ACTIVITIES, params={"include_total": "true"}, headers=admin.headers
        )
        assert listed.json()["meta"]["total"] == 999

    async def test_bulk_update_and_empty_list(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        a = await make_activity(client, admin, contact_id=contact)
        b = await make_activity(client, admin, contact_id=contact)
        response = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={"items": [{"id": a["id"], "subject": "A"}, {"id": b["id"], "kind": "sms"}]},
            headers=admin.headers,
        )
        assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
        assert (await client.get(f"{ACTIVITIES}/{b['id']}", headers=admin.headers)).json()["data"][
            "kind"
        ] == "sms"
        missing = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={"items": [{"id": a["id"], "subject": "B"}, {"id": NOWHERE, "subject": "C"}]},
            headers=admin.headers,
        )
        assert missing.status_code == 422
        assert missing.json()["error"]["details"][0]["index"] == 1
        kept = await client.get(f"{ACTIVITIES}/{a['id']}", headers=admin.headers)
        assert kept.json()["data"]["subject"] == "A"
        empty = await client.post(f"{ACTIVITIES}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400


class TestAccess:
    async def test_viewer_reads_only(self, client, database):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        contact = await make_contact(database, admin)
        data = await make_activity(client, admin, contact_id=contact)
        path = f"{ACTIVITIES}/{data['id']}"
        assert (await client.get(path, headers=viewer.headers)).status_code == 200
        assert ids(await client.get(ACTIVITIES, headers=viewer.headers)) == [data["id"]]
        for method, url, body in (
            ("POST", ACTIVITIES, {"kind": "call", "contact_id": contact}),
            ("POST", f"{ACTIVITIES}/bulk", {"items": [{"kind": "call", "contact_id": contact}]}),
            ("PATCH", f"{ACTIVITIES}/bulk", {"items": [{"id": data["id"], "subject": "x"}]}),
            ("PATCH", path, {"subject": "x"}),
            ("DELETE", path, None),
            ("DELETE", f"{path}?erase=true", None),
            ("POST", f"{path}/restore", None),
        ):
            response = await client.request(method, url, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, url)
        assert (await client.get(path, headers=admin.headers)).json()["data"] == data

    async def test_workspaces_are_isolated(self, client, database):
        admin = await register(client)
        intruder = await register(client)
        contact = await make_contact(database, admin)
        data = await make_activity(client, admin, contact_id=contact, subject="Secret merger")
        path = f"{ACTIVITIES}/{data['id']}"
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=path,
            requests=[
                ("DELETE", f"{path}?erase=true", None),
                ("PATCH", path, {"subject": "mine now"}),
            ],
            list_path=ACTIVITIES,
            search_term="merger",
        )
        bulk = await client.patch(
            f"{ACTIVITIES}/bulk",
            json={"items": [{"id": data["id"], "subject": "x"}]},
            headers=intruder.headers,
        )
        assert bulk.status_code == 422
        assert bulk.json()["error"]["details"][0]["reason"].startswith("activity_not_found")
        # Naming the owner's contact from the other workspace is refused, never linked.
        linked = await client.post(
            ACTIVITIES, json={"kind": "call", "contact_id": contact}, headers=intruder.headers
        )
        assert linked.status_code == 422
        assert linked.json()["error"]["code"] == "invalid_reference"
        assert linked.json()["error"]["details"][0]["field"] == "body.contact_id"
        mine = await make_contact(database, intruder)
        own = await make_activity(client, intruder, contact_id=mine)
        moved = await client.patch(
            f"{ACTIVITIES}/{own['id']}", json={"contact_id": contact}, headers=intruder.headers
        )
        assert moved.status_code == 422
        timeline = await client.get(f"/api/v1/contacts/{contact}/activities", headers=admin.headers)
        assert ids(timeline) == [data["id"]]
