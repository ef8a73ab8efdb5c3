"""The expected-close-date sort of GET /deals reads its expression index in order (no sort of the
whole workspace) on both backends, first page and cursor pages alike, and the constant that
stands in for a missing date pages exactly, even next to deals dated at the very end of time."""

from __future__ import annotations

import pytest

from tests.activities.test_router import ids
from tests.deals.factories import DEALS
from tests.factories import register
from tests.query_plans import captured, plan_of


async def page_through(client, account, path: str, **params) -> list[str]:
    """Every id of a list, page by page; a cursor that never ends the list fails the test."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=account.headers)
        seen += ids(response)
        cursor = response.json()["meta"]["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"pagination did not end: {len(seen)} rows so far")


async def _seed(client, account, dates: list[str | None]) -> None:
    items = [
        {"name": f"d{i}", **({"expected_close_date": day} if day else {})}
        for i, day in enumerate(dates)
    ]
    response = await client.post(f"{DEALS}/bulk", json={"items": items}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["failed"] == 0, response.text


class TestSortPlans:
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_list_walks_the_sort_index(self, client, database, sort_order):
        admin = await register(client)
        await _seed(client, admin, ["2026-05-01", None, "2026-07-01", None, "2026-05-01", None])
        params = {"sort_by": "expected_close_date", "sort_order": sort_order, "limit": 2}
        with captured(database, "FROM deal", "ORDER BY") as statements:
            first = await client.get(DEALS, params=params, headers=admin.headers)
            cursor = first.json()["meta"]["next_cursor"]
            assert first.status_code == 200 and cursor, first.text
            second = await client.get(
                DEALS, params={**params, "cursor": cursor}, headers=admin.headers
            )
            assert len(ids(second)) == 2
        assert len(statements) == 2, [s.sql for s in statements]
        for statement in statements:
            plan = await plan_of(database, statement)
            assert "ix_deal_sort_close" in plan.indexes(), f"{statement.sql}\n{plan}"
            assert not plan.sorts(), f"{statement.sql}\n{plan}"


class TestFarDate:
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_undated_deals_page_exactly_beside_the_last_possible_dates(
        self, client, sort_order
    ):
        """9999-12-31 is date.max, which asyncpg sends as 'infinity': a cursor holding it used to
        compare past an inline '9999-12-31' and repeat undated deals forever. Undated deals sort
        after every ordinary date; each deal comes back exactly once, one per page."""
        admin = await register(client)
        dates = ["2026-05-01", None, "9999-12-31", None, "9999-12-30", None, "9999-12-31"]
        await _seed(client, admin, dates)
        params = {"sort_by": "expected_close_date", "sort_order": sort_order}
        whole = await client.get(DEALS, params={**params, "limit": 200}, headers=admin.headers)
        names = [row["name"] for row in whole.json()["data"]]
        ordinary_first = names[0] == "d0" if sort_order == "asc" else names[-1] == "d0"
        assert ordinary_first, names
        paged = await page_through(client, admin, DEALS, limit=1, **params)
        assert len(paged) == len(dates) and paged == ids(whole)
