from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    func,
    literal,
    literal_column,
    not_,
)

from rapport.core.clock import utcnow
from rapport.core.listing import EQUALITY, RANGE, Filter, Listing, Sort, tag_filter
from rapport.core.models import UTCDateTime
from rapport.core.repository import TenantRepository
from rapport.search.indexer import record_matches
from rapport.tasks.models import PRIORITIES, STATUSES, Task

t = Task.__table__
CLOSED = ("done", "cancelled")
# Tasks without a due date sort after every dated one.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
# Sort ranks: urgent first; a priority outside the list (none today) would sort last.
PRIORITY_RANKS = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
UNRANKED = len(PRIORITY_RANKS)


def due_sort_key(due_at: ColumnElement[Any]) -> ColumnElement[datetime]:
    """`coalesce(due_at, <far future>)`, exactly as index ix_task_sort_due holds it.

    The constant must be inline SQL (a bound parameter never matches an index expression) and it
    must be the very text the column's type stores: on SQLite UTCDateTime keeps naive UTC text,
    compared as text with stored values and with a cursor's value, so any other spelling of the
    same instant breaks keyset paging across undated rows. The type renders it at execution:
    '9999-12-31 00:00:00.000000' on SQLite, '9999-12-31 00:00:00+00:00' on PostgreSQL (a
    timestamptz with an explicit offset, the same in every session time zone).
    """
    return func.coalesce(due_at, literal(FAR_FUTURE, UTCDateTime(), literal_execute=True))


def priority_rank(priority: ColumnElement[Any]) -> ColumnElement[int]:
    """`CASE priority WHEN 'urgent' THEN 0 ... ELSE 4 END` with inline constants, exactly as index
    ix_task_sort_priority holds it."""
    ranks = [
        (literal_column(f"'{name}'", String), literal_column(str(rank), Integer))
        for name, rank in PRIORITY_RANKS.items()
    ]
    return case(*ranks, value=priority, else_=literal_column(str(UNRANKED), Integer))


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
        # Expression sorts: each one is the expression its index holds (migration 0004).
        "due_at": Sort(due_sort_key(t.c.due_at), datetime),
        "created_at": Sort(t.c.created_at, datetime),
        "priority": Sort(priority_rank(t.c.priority), int),
    },
    # Ascending by default: soonest due first (undated last), urgent first, oldest first.
    default_sort="due_at",
    default_order="asc",
    custom_fields=True,
    search_builder=lambda term: record_matches("task", t.c.id, t.c.workspace_id, term),
)


class TaskRepository(TenantRepository):
    table = t
