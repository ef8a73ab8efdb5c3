"""Bulk task writes, batched: constant statements, related records and assignees checked for the
whole batch, completions recorded as the single-item path records them."""

from __future__ import annotations

import uuid

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
from tests.factories import add_member, register
from tests.tasks.factories import TASKS, make_task

COMPANIES = "/api/v1/companies"


class TestBulkCreate:
    async def test_1000_tasks_in_constant_statements(self, client, database, statements, backend):  # noqa: F811
        admin = await register(client)
        member = await add_member(client, admin)
        company = await client.post(COMPANIES, json={"name": "Acme"}, headers=admin.headers)
        company_id = company.json()["data"]["id"]
        await client.get(TASKS, headers=admin.headers)

        def tasks(count: int, tag: str) -> list[dict]:
            return [
                {
                    "title": f"{tag} task {i}",
                    "assignee_id": (admin.user["id"], member.user["id"])[i % 2],
                    "company_id": company_id,
                    "status": "done" if i % 10 == 0 else "open",
                }
                for i in range(count)
            ]

        small, few = await counted(
            client, statements, admin, "POST", f"{TASKS}/bulk", tasks(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{TASKS}/bulk", tasks(200, "m")
        )
        full, most = await counted(
            client, statements, admin, "POST", f"{TASKS}/bulk", tasks(1000, "f")
        )
        assert small.status_code == large.status_code == full.status_code == 200
        assert many <= few + SLACK and per_chunk(few, most, 1000, backend), (few, many, most)
        rows = written(full)
        assert [r["completed_at"] is not None for r in rows[:3]] == [True, False, False]
        ids = [r["id"] for r in rows]
        assert await event_count(database, admin.workspace_id, "task.created", ids) == 1000
        assert set(ids) <= set(await documents(database, admin.workspace_id, "task"))
        assert await search_ids(client, admin, "f task 345") == [ids[345]]

    async def test_references_per_index(self, client):
        admin = await register(client)
        other = await register(client)
        foreign = await client.post(COMPANIES, json={"name": "Theirs"}, headers=other.headers)
        items = [{"title": f"Task {i}"} for i in range(5)]
        items[1]["assignee_id"] = other.user["id"]
        items[2]["company_id"] = foreign.json()["data"]["id"]
        items[3]["lead_id"] = str(uuid.UUID(int=4))
        response = await client.post(
            f"{TASKS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(response)
        assert {i: (e["code"], e["details"][0]["field"]) for i, e in errors.items()} == {
            1: ("invalid_reference", "body.assignee_id"),
            2: ("invalid_reference", "body.company_id"),
            3: ("invalid_reference", "body.lead_id"),
        }
        assert await total(client, admin, TASKS) == 2


class TestBulkUpdate:
    async def test_completions_and_the_same_task_twice(self, client, database):
        admin = await register(client)
        a = await make_task(client, admin, title="A")
        b = await make_task(client, admin, title="B")
        response = await client.patch(
            f"{TASKS}/bulk",
            json={
                "items": [
                    {"id": a["id"], "status": "done"},
                    {"id": b["id"], "priority": "urgent"},
                    {"id": a["id"], "status": "open"},  # reopened right away
                    {"id": b["id"], "status": "done", "title": "B, finished"},
                ]
            },
            headers=admin.headers,
        )
        data = written(response)
        assert [(d["status"], d["completed_at"] is not None, d["version"]) for d in data] == [
            ("done", True, 2),
            ("open", False, 2),
            ("open", False, 3),
            ("done", True, 3),
        ]
        assert [t for t, _ in await events_of(database, a["id"])] == [
            "task.created",
            "task.updated",
            "task.completed",
            "task.updated",
        ]
        assert await search_ids(client, admin, "b, finished") == [b["id"]]
