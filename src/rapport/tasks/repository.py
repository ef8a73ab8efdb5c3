from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, not_

from rapport.core.clock import utcnow
from rapport.core.listing import EQUALITY, RANGE, Filter, Listing, Sort, tag_filter
from rapport.core.repository import TenantRepository
from rapport.search.indexer import record_matches
from rapport.tasks.models import PRIORITIES, STATUSES, Task

t = Task.__table__
CLOSED = ("done", "cancelled")
# Tasks without a due date sort after every dated one.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
PRIORITY_RANK = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=t.c.priority, else_=4)


def _overdue(_op: str, values: list[Any]) -> ColumnElement[bool]:
    """`overdue=true`: due before now and still open; `overdue=false`: every other task."""
    overdue = and_(t.c.due_at.is_not(None), t.c.due_at < utcnow(), t.c.status.not_in(CLOSED))
    return overdue if values[0] else not_(overdue)


TASK_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "status": Filter(t.c.status, choices=STATUSES, description="Status (comma: any of)."),
        "priority": Filter(t.c.priority, choices=PRIORITIES),
        "assignee_id": Filter(
            t.c.assignee_id, uuid.UUID, EQUALITY, description="A user id, or `me`."
        ),
        "contact_id": Filter(t.c.contact_id, uuid.UUID, EQUALITY),
        "company_id": Filter(t.c.company_id, uuid.UUID, EQUALITY),
        "lead_id": Filter(t.c.lead_id, uuid.UUID, EQUALITY),
        "deal_id": Filter(t.c.deal_id, uuid.UUID, EQUALITY),
        "tag": tag_filter(t.c.tags),
        "due_at": Filter(t.c.due_at, datetime, RANGE),
        "overdue": Filter(
            t.c.due_at,
            bool,
            frozenset({"eq"}),
            builder=_overdue,
            description="true: due before now and not done or cancelled; false: the others.",
        ),
        "created_at": Filter(t.c.created_at, datetime, RANGE),
    },
    sorts={
        "due_at": Sort(func.coalesce(t.c.due_at, literal(FAR_FUTURE, t.c.due_at.type)), datetime),
        "created_at": Sort(t.c.created_at, datetime),
        "priority": Sort(PRIORITY_RANK, int),
    },
    # Ascending by default: soonest due first (undated last), urgent first, oldest first.
    default_sort="due_at",
    default_order="asc",
    custom_fields=True,
    search_builder=lambda term: record_matches("task", t.c.id, t.c.workspace_id, term),
)


class TaskRepository(TenantRepository):
    table = t
