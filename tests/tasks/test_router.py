"""Tasks through HTTP: CRUD and completion, filters (assignee_id=me, due_at ranges, overdue),
sorts (due date with undated last, priority urgent first), paging, bulk, roles, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.activities.factories import (
    event_types,
    make_company,
    make_contact,
    make_deal,
    make_lead,
)
from tests.activities.test_router import NOWHERE, collect, ids
from tests.factories import add_member, register
from tests.isolation import assert_isolated
from tests.tasks.factories import TASKS, make_task


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TestCrud:
    async def test_create_with_defaults_and_related_record(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        response = await client.post(
            TASKS,
            json={
                "title": "Send proposal",
                "description": "Pricing for:\n- seats\n- support",
                "due_at": "2026-05-01T17:00:00+02:00",
                "assignee_id": admin.user["id"],
                "contact_id": contact,
                "tags": ["q2"],
            },
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        assert response.headers["ETag"] == '"1"'
        data = response.json()["data"]
        assert data["status"] == "open" and data["priority"] == "normal"
        assert data["due_at"] == "2026-05-01T15:00:00Z" and data["completed_at"] is None
        assert data["contact_id"] == contact and data["description"].count("\n") == 2
        got = await client.get(f"{TASKS}/{data['id']}", headers=admin.headers)
        assert got.json()["data"] == data
        done = await make_task(client, admin, status="done")
        assert done["completed_at"] is not None

    async def test_bad_input_is_422(self, client, database):
        admin = await register(client)
        other = await register(client)
        contact = await make_contact(database, admin)
        lead = await make_lead(database, admin)
        foreign = await make_contact(database, other)
        for body, code in (
            ({"title": ""}, None),
            ({"title": "x", "status": "closed"}, None),
            ({"title": "x", "priority": "asap"}, None),
            ({"title": "x", "due_at": "2026-05-01T10:00:00"}, None),
            ({"title": "x", "contact_id": contact, "lead_id": lead}, "validation_error"),
            ({"title": "x", "assignee_id": NOWHERE}, "invalid_reference"),
            ({"title": "x", "assignee_id": other.user["id"]}, "invalid_reference"),
            ({"title": "x", "contact_id": foreign}, "invalid_reference"),
            ({"title": "x", "deal_id": NOWHERE}, "invalid_reference"),
            ({"title": "x", "bogus": 1}, None),
        ):
            response = await client.post(TASKS, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
            if code:
                assert response.json()["error"]["code"] == code, body
        listed = await client.get(TASKS, params={"include_total": "true"}, headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_patch_completes_and_reopens(self, client, database):
        admin = await register(client)
        task = await make_task(client, admin, priority="high")
        path = f"{TASKS}/{task['id']}"
        done = await client.patch(
            path,
            json={"status": "done", "title": None},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert done.status_code == 200, done.text
        data = done.json()["data"]
        assert data["status"] == "done" and data["completed_at"] is not None
        assert data["title"] == "Follow up" and data["priority"] == "high" and data["version"] == 2
        stale = await client.patch(
            path, json={"title": "y"}, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        still = await client.patch(path, json={"status": "done"}, headers=admin.headers)
        assert still.json()["data"]["completed_at"] == data["completed_at"]
        reopened = await client.patch(path, json={"status": "in_progress"}, headers=admin.headers)
        assert reopened.json()["data"]["completed_at"] is None
        assert await event_types(database, task["id"]) == [
            "task.created",
            "task.updated",
            "task.completed",
            "task.updated",  # done again: no second completion
            "task.updated",
        ]

    async def test_one_related_record_at_most(self, client, database):
        admin = await register(client)
        contact = await make_contact(database, admin)
        company = await make_company(client, admin)
        task = await make_task(client, admin, contact_id=contact)
        path = f"{TASKS}/{task['id']}"
        both = await client.patch(path, json={"company_id": company}, headers=admin.headers)
        assert both.status_code == 422
        assert both.json()["error"]["details"][0]["field"] == "body.company_id"
        switched = await client.patch(
            path, json={"company_id": company, "contact_id": None}, headers=admin.headers
        )
        assert switched.status_code == 200
        assert switched.json()["data"]["company_id"] == company
        assert switched.json()["data"]["contact_id"] is None

    async def test_delete_restore_erase(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin)
        task = await make_task(client, member, title="Disposable")
        path = f"{TASKS}/{task['id']}"
        assert (await client.delete(path, headers=member.headers)).status_code == 200
        assert (await client.get(path, headers=member.headers)).status_code == 404
        assert (await client.delete(path, headers=member.headers)).status_code == 404
        restored = await client.post(f"{path}/restore", headers=member.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None
        assert (
            await client.delete(f"{path}?erase=true", headers=member.headers)
        ).status_code == 403
        assert (await client.delete(f"{path}?erase=true", headers=admin.headers)).status_code == 200
        gone = await client.get(path, headers=admin.headers)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "task_not_found"
        found = await client.get(TASKS, params={"search": "disposable"}, headers=admin.headers)
        assert ids(found) == []
        assert await event_types(database, task["id"]) == [
            "task.created",
            "task.deleted",
            "task.restored",
            "task.erased",
        ]


class TestListing:
    async def test_filters(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin)
        contact = await make_contact(database, admin)
        company = await make_company(client, admin)
        lead = await make_lead(database, admin)
        deal = await make_deal(database, admin)
        now = datetime.now(UTC)
        created = await client.post(
            "/api/v1/custom-fields",
            json={"resource": "task", "name": "effort", "label": "Effort", "type": "number"},
            headers=admin.headers,
        )
        assert created.status_code == 201
        overdue = await make_task(
            client,
            admin,
            title="Overdue call",
            due_at=iso(now - timedelta(days=2)),
            assignee_id=admin.user["id"],
            contact_id=contact,
            priority="urgent",
            tags=["vip"],
            custom_fields={"effort": 3},
        )
        done_late = await make_task(
            client,
            admin,
            title="Done late",
            due_at=iso(now - timedelta(days=3)),
            status="done",
            assignee_id=member.user["id"],
            company_id=company,
        )
        cancelled_late = await make_task(
            client,
            admin,
            title="Cancelled",
            due_at=iso(now - timedelta(days=1)),
            status="cancelled",
            lead_id=lead,
        )
        upcoming = await make_task(
            client,
            member,
            title="Upcoming demo",
            due_at=iso(now + timedelta(days=5)),
            status="in_progress",
            assignee_id=admin.user["id"],
            deal_id=deal,
            priority="low",
            custom_fields={"effort": 8},
        )
        undated = await make_task(client, admin, title="Someday", tags=["vip", "later"])
        # Default order: due soonest first, undated last.
        everything = [done_late, overdue, cancelled_late, upcoming, undated]
        listed = await client.get(TASKS, headers=admin.headers)
        assert ids(listed) == [t["id"] for t in everything]
        in_two_days = iso(now + timedelta(days=2))
        for query, expected in (
            ({"status": "open"}, [overdue, undated]),
            ({"status": "done,cancelled"}, [done_late, cancelled_late]),
            ({"priority": "urgent"}, [overdue]),
            ({"priority": "urgent,low"}, [overdue, upcoming]),
            ({"assignee_id": "me"}, [overdue, upcoming]),
            ({"assignee_id": member.user["id"]}, [done_late]),
            ({"contact_id": contact}, [overdue]),
            ({"company_id": company}, [done_late]),
            ({"lead_id": lead}, [cancelled_late]),
            ({"deal_id": deal}, [upcoming]),
            ({"tag": "vip"}, [overdue, undated]),
            ({"due_at[lte]": in_two_days}, [done_late, overdue, cancelled_late]),
            ({"due_at[gt]": in_two_days}, [upcoming]),
            (
                {"due_at[gte]": iso(now - timedelta(days=2)), "due_at[lt]": in_two_days},
                [overdue, cancelled_late],
            ),
            ({"overdue": "true"}, [overdue]),
            ({"overdue": "false"}, [done_late, cancelled_late, upcoming, undated]),
            ({"overdue": "true", "assignee_id": "me"}, [overdue]),
            ({"cf.effort[gt]": "5"}, [upcoming]),
            ({"search": "demo"}, [upcoming]),
            ({"created_at[gte]": upcoming["created_at"]}, [upcoming, undated]),
            ({"created_at[lt]": done_late["created_at"]}, [overdue]),
        ):
            response = await client.get(TASKS, params=query, headers=admin.headers)
            assert ids(response) == [t["id"] for t in expected], query
        for bad in (
            {"status": "closed"},
            {"overdue": "maybe"},
            {"overdue[gt]": "true"},
            {"due_at[lte]": "soon"},
            {"nope": "1"},
            {"sort_by": "title"},
        ):
            response = await client.get(TASKS, params=bad, headers=admin.headers)
            assert response.status_code == 422, bad

    async def test_sorts(self, client):
        admin = await register(client)
        base = datetime(2026, 6, 1, tzinfo=UTC)
        low = await make_task(client, admin, priority="low", due_at=iso(base + timedelta(days=1)))
        undated = await make_task(client, admin, priority="urgent")
        high = await make_task(client, admin, priority="high", due_at=iso(base))
        normal = await make_task(client, admin, due_at=iso(base + timedelta(days=9)))
        urgent = await make_task(
            client, admin, priority="urgent", due_at=iso(base + timedelta(days=3))
        )
        for params, expected in (
            ({}, [high, low, urgent, normal, undated]),
            ({"sort_by": "due_at", "sort_order": "desc"}, [undated, normal, urgent, low, high]),
            ({"sort_by": "priority"}, [undated, urgent, high, normal, low]),
            ({"sort_by": "priority", "sort_order": "desc"}, [low, normal, high, urgent, undated]),
            ({"sort_by": "created_at"}, [low, undated, high, normal, urgent]),
            ({"sort_by": "created_at", "sort_order": "desc"}, [urgent, normal, high, undated, low]),
        ):
            response = await client.get(TASKS, params=params, headers=admin.headers)
            assert ids(response) == [t["id"] for t in expected], params

    async def test_paging_with_ties_returns_every_row_once(self, client):
        admin = await register(client)
        due = "2026-07-01T09:00:00Z"
        items = [
            {
                "title": f"t{i}",
                "priority": ("low", "urgent")[i % 2],
                **({"due_at": due} if i % 3 else {}),
            }
            for i in range(23)
        ]
        response = await client.post(f"{TASKS}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 200
        for sort in ("due_at", "priority", "created_at"):
            for order in ("asc", "desc"):
                params = {"limit": 5, "sort_by": sort, "sort_order": order}
                paged = await collect(client, admin, TASKS, **params)
                whole = await client.get(
                    TASKS, params={**params, "limit": 200}, headers=admin.headers
                )
                assert len(paged) == 23 and paged == ids(whole), (sort, order)

    async def test_paging_stays_exact_while_rows_are_inserted(self, client):
        admin = await register(client)
        original = [(await make_task(client, admin, priority="high"))["id"] for _ in range(11)]
        seen: list[str] = []
        cursor = None
        while True:
            query = {"limit": 4, "sort_by": "priority", **({"cursor": cursor} if cursor else {})}
            response = await client.get(TASKS, params=query, headers=admin.headers)
            seen += ids(response)
            cursor = response.json()["meta"]["next_cursor"]
            for priority in ("urgent", "high", "low"):
                await make_task(client, admin, priority=priority)
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(original) <= set(seen)


class TestBulk:
    async def test_one_bad_item_in_1000_writes_nothing(self, client):
        admin = await register(client)
        items = [{"title": f"Task {i}"} for i in range(1000)]
        items[999] = {"title": "x", "priority": "asap"}
        response = await client.post(f"{TASKS}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 422
        assert {d["index"] for d in response.json()["error"]["details"]} == {999}
        listed = await client.get(TASKS, params={"include_total": "true"}, headers=admin.headers)
        assert listed.json()["meta"]["total"] == 0

    async def test_non_atomic_writes_the_valid_ones(self, client):
        admin = await register(client)
        items = [{"title": f"Task {i}"} for i in range(1000)]
        items[0] = {"title": "x", "assignee_id": NOWHERE}
        response = await client.post(
            f"{TASKS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        body = response.json()["data"]
        assert response.status_code == 200 and body["succeeded"] == 999 and body["failed"] == 1
        assert body["items"][0]["error"]["code"] == "invalid_reference"
        listed = await client.get(TASKS, params={"include_total": "true"}, headers=admin.headers)
        assert listed.json()["meta"]["total"] == 999

    async def test_bulk_update(self, client):
        admin = await register(client)
        a = await make_task(client, admin)
        b = await make_task(client, admin)
        response = await client.patch(
            f"{TASKS}/bulk",
            json={"items": [{"id": a["id"], "status": "done"}, {"id": b["id"], "priority": "low"}]},
            headers=admin.headers,
        )
        assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
        items = response.json()["data"]["items"]
        assert items[0]["data"]["completed_at"] is not None
        assert items[1]["data"]["priority"] == "low"
        empty = await client.patch(f"{TASKS}/bulk", json={"items": []}, headers=admin.headers)
        assert empty.status_code == 400


class TestAccess:
    async def test_viewer_reads_only(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        task = await make_task(client, admin, assignee_id=viewer.user["id"])
        path = f"{TASKS}/{task['id']}"
        assert (await client.get(path, headers=viewer.headers)).status_code == 200
        mine = await client.get(TASKS, params={"assignee_id": "me"}, headers=viewer.headers)
        assert ids(mine) == [task["id"]]
        for method, url, body in (
            ("POST", TASKS, {"title": "x"}),
            ("POST", f"{TASKS}/bulk", {"items": [{"title": "x"}]}),
            ("PATCH", f"{TASKS}/bulk", {"items": [{"id": task["id"], "title": "x"}]}),
            ("PATCH", path, {"status": "done"}),
            ("DELETE", path, None),
            ("POST", f"{path}/restore", None),
        ):
            response = await client.request(method, url, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, url)

    async def test_workspaces_are_isolated(self, client, database):
        admin = await register(client)
        intruder = await register(client)
        contact = await make_contact(database, admin)
        task = await make_task(client, admin, title="Secret renewal", contact_id=contact)
        path = f"{TASKS}/{task['id']}"
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=path,
            requests=[("DELETE", f"{path}?erase=true", None), ("PATCH", path, {"title": "x"})],
            list_path=TASKS,
            search_term="renewal",
        )
        linked = await client.post(
            TASKS, json={"title": "x", "contact_id": contact}, headers=intruder.headers
        )
        assert linked.status_code == 422
        assert linked.json()["error"]["code"] == "invalid_reference"
