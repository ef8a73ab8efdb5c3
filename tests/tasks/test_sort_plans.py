"""The due-date and priority sorts of GET /tasks read their expression indexes in order (no sort
of the whole workspace) on both backends, first page and cursor pages alike, and the far-future
constant that stands in for a missing due date pages exactly against stored values."""

from __future__ import annotations

import pytest

from tests.activities.test_router import ids
from tests.deals.test_sort_plans import page_through
from tests.factories import register
from tests.query_plans import captured, plan_of
from tests.tasks.factories import TASKS

# The instant the listing puts undated tasks at (tasks/repository.py FAR_FUTURE).
FAR_FUTURE = "9999-12-31T00:00:00Z"


async def _seed(client, account) -> None:
    """Dated and undated tasks of every priority, with ties on both sort keys."""
    items = [
        {
            "title": f"t{i}",
            "priority": ("urgent", "high", "normal", "low")[i % 4],
            **({"due_at": f"2026-07-0{1 + i % 3}T09:00:00Z"} if i % 3 else {}),
        }
        for i in range(12)
    ]
    response = await client.post(f"{TASKS}/bulk", json={"items": items}, headers=account.headers)
    assert response.status_code == 200, response.text


class TestSortPlans:
    @pytest.mark.parametrize(
        ("sort_by", "index"),
        [("due_at", "ix_task_sort_due"), ("priority", "ix_task_sort_priority")],
    )
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_list_walks_the_sort_index(self, client, database, sort_by, index, sort_order):
        admin = await register(client)
        await _seed(client, admin)
        params = {"sort_by": sort_by, "sort_order": sort_order, "limit": 3}
        with captured(database, "FROM task", "ORDER BY") as statements:
            first = await client.get(TASKS, params=params, headers=admin.headers)
            cursor = first.json()["meta"]["next_cursor"]
            assert first.status_code == 200 and cursor, first.text
            second = await client.get(
                TASKS, params={**params, "cursor": cursor}, headers=admin.headers
            )
            assert len(ids(second)) == 3
        assert len(statements) == 2, [s.sql for s in statements]
        for statement in statements:
            plan = await plan_of(database, statement)
            assert index in plan.indexes(), f"{statement.sql}\n{plan}"
            assert not plan.sorts(), f"{statement.sql}\n{plan}"

    async def test_a_filtered_list_still_reads_the_index_in_order(self, client, database):
        """The usual "my open tasks by due date": filters narrow the rows, the index orders them."""
        admin = await register(client)
        await _seed(client, admin)
        params = {"sort_by": "due_at", "status": "open,in_progress", "priority": "urgent,high"}
        with captured(database, "FROM task", "ORDER BY") as statements:
            response = await client.get(TASKS, params=params, headers=admin.headers)
            assert response.status_code == 200, response.text
        assert len(statements) == 1
        plan = await plan_of(database, statements[0])
        assert not plan.sorts(), plan


class TestFarFuture:
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_a_task_due_at_the_far_future_ties_with_undated_ones(self, client, sort_order):
        """A task due exactly at the constant has the same sort key as an undated one: paging one
        row at a time must still return each once, which fails if the constant's text differs
        from what the column stores (SQLite compares them as text)."""
        admin = await register(client)
        items = [{"title": "dated", "due_at": "2026-07-01T09:00:00Z"}]
        items += [{"title": f"far {i}", "due_at": FAR_FUTURE} for i in range(3)]
        items += [{"title": f"undated {i}"} for i in range(3)]
        response = await client.post(f"{TASKS}/bulk", json={"items": items}, headers=admin.headers)
        assert response.status_code == 200, response.text
        params = {"sort_by": "due_at", "sort_order": sort_order}
        whole = await client.get(TASKS, params={**params, "limit": 200}, headers=admin.headers)
        titles = [row["title"] for row in whole.json()["data"]]
        assert (titles.index("dated") == 0) == (sort_order == "asc"), titles
        paged = await page_through(client, admin, TASKS, limit=1, **params)
        assert len(paged) == 7 and paged == ids(whole)
