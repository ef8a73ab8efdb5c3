"""Listings made only of `Condition`s run a statement built once per shape
(`TenantRepository._page_of`): the same pages as the statement built per request, values bound
(never written into the SQL), and a bounded number of shapes kept."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

import rapport.core.repository as repository
from rapport.activities.repository import TIMELINE_LISTINGS, ActivityRepository
from rapport.contacts.repository import CONTACT_LISTING, ContactRepository
from rapport.core.clock import utcnow
from rapport.core.db import UnitOfWork
from rapport.core.listing import Condition, Listing, ListParams
from rapport.tasks.repository import TASK_LISTING, TaskRepository
from tests.factories import register
from tests.query_plans import captured


def _params(listing: Listing, query: dict[str, str], **kwargs: Any) -> ListParams:
    params = ListParams(
        limit=kwargs.pop("limit", 3),
        sort_by=kwargs.pop("sort_by", listing.default_sort),
        sort_order=kwargs.pop("sort_order", listing.default_order),
        **kwargs,
    )
    params.filters = listing.parse_filters(list(query.items()), None)
    return params


async def _walk(repo: Any, listing: Listing, params: ListParams, generic: bool) -> list[Any]:
    """Every page's ids, following the cursors; `generic`: each condition as a plain SQL
    expression, so the statement is built per request as before."""
    seen: list[Any] = []
    while True:
        if generic:
            params.filters = [
                c.__clause_element__() if isinstance(c, Condition) else c for c in params.filters
            ]
        page = await repo.list(listing, params)
        seen.append([row["id"] for row in page.rows])
        if page.next_cursor is None:
            return seen
        params.cursor = listing.decode_cursor(page.next_cursor, params.sort_by, params.sort_order)


@pytest.fixture
async def seeded(client, database):  # noqa: ANN001, ANN201
    admin = await register(client)
    workspace = uuid.UUID(admin.workspace_id)
    uow = UnitOfWork(database, write=True)
    repo = ContactRepository(uow.session, workspace)
    tasks = TaskRepository(uow.session, workspace)
    now = utcnow()
    for i in range(14):
        await repo.insert(
            {
                "first_name": f"P{i % 4}",
                "last_name": ["Ames", "Baker", None, "Cole"][i % 4],
                "status": ["new", "qualified", "customer"][i % 3],
            }
        )
        await tasks.insert(
            {
                "title": f"T{i}",
                "status": "open",
                "priority": "normal",
                "due_at": now + timedelta(days=i % 5) if i % 3 else None,
            }
        )
    await uow.commit()
    await uow.close()
    return workspace


QUERIES = [
    {},
    {"status": "qualified"},
    {"status": "new,customer"},
    {"created_at[lt]": "2100-01-01T00:00:00Z"},
    {"created_at[gte]": "2000-01-01T00:00:00Z", "status": "new"},
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize(
    "sort", [("created_at", "desc"), ("last_name", "asc"), ("first_name", "desc")]
)
async def test_pages_are_the_same_either_way(database, seeded, query, sort) -> None:  # noqa: ANN001
    reader = UnitOfWork(database, write=False)
    try:
        repo = ContactRepository(reader.session, seeded)
        walked = []
        for generic in (False, True):
            params = _params(CONTACT_LISTING, query, sort_by=sort[0], sort_order=sort[1])
            walked.append(await _walk(repo, CONTACT_LISTING, params, generic))
        assert walked[0] == walked[1]
        assert sum(len(page) for page in walked[0]) > 0
    finally:
        await reader.close()


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_sort_with_an_inline_constant_pages_the_same(database, seeded, order) -> None:  # noqa: ANN001
    """Tasks sort by `coalesce(due_at, <far future>)`, the constant written into the SQL."""
    reader = UnitOfWork(database, write=False)
    try:
        repo = TaskRepository(reader.session, seeded)
        walked = []
        for generic in (False, True):
            params = _params(TASK_LISTING, {"status": "open"}, sort_order=order)
            walked.append(await _walk(repo, TASK_LISTING, params, generic))
        assert walked[0] == walked[1]
        assert sum(len(page) for page in walked[0]) == 14
    finally:
        await reader.close()


async def test_values_are_bound_and_the_statement_reused(database, seeded) -> None:  # noqa: ANN001
    reader = UnitOfWork(database, write=False)
    try:
        repo = ContactRepository(reader.session, seeded)
        with captured(database, "FROM contact") as statements:
            for status in ("new", "qualified"):
                await repo.list(CONTACT_LISTING, _params(CONTACT_LISTING, {"status": status}))
        assert len(statements) == 2 and statements[0].sql == statements[1].sql
        assert "qualified" not in statements[0].sql
        timeline = TIMELINE_LISTINGS["contact_id"]
        activities = ActivityRepository(reader.session, seeded)
        with captured(database, "FROM activity") as statements:
            for _ in range(2):
                params = _params(timeline, {})
                params.filters.append(Condition(activities.table.c.contact_id, "eq", uuid.uuid4()))
                await activities.list(timeline, params)
        assert len(statements) == 2 and statements[0].sql == statements[1].sql
    finally:
        await reader.close()


async def test_shapes_kept_are_bounded(database, seeded, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(repository, "MAX_PAGE_SHAPES", 5)
    reader = UnitOfWork(database, write=False)
    try:
        repo = ContactRepository(reader.session, seeded)
        for limit in range(1, 12):
            page = await repo.list(CONTACT_LISTING, _params(CONTACT_LISTING, {}, limit=limit))
            assert len(page.rows) == limit
        assert len(repository._PAGES) <= 5
    finally:
        await reader.close()
