from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from sqlalchemy import ColumnElement, Select, bindparam, func, literal, select, tuple_
from sqlalchemy.engine import RowMapping

from rapport.activities.models import DIRECTIONS, KINDS, Activity
from rapport.companies.repository import CompanyRepository
from rapport.contacts.models import Contact
from rapport.core.clock import utcnow
from rapport.core.errors import ValidationFailed
from rapport.core.listing import (
    EQUALITY,
    PARSERS,
    RANGE,
    SORT_KEY,
    Filter,
    Listing,
    ListParams,
    Page,
    Sort,
    has_control_characters,
    tag_filter,
)
from rapport.core.repository import TenantRepository
from rapport.deals.models import Deal
from rapport.leads.models import Lead
from rapport.search.indexer import record_matches

t = Activity.__table__
THEN_KEY = "_then_key"


class ContactRef(TenantRepository):
    """The contacts an activity names: existence checks and `last_activity_at`."""

    table = Contact.__table__

    async def touch_last_activity(self, contact_id: uuid.UUID, occurred_at: datetime) -> None:
        """Move last_activity_at forward to `occurred_at` (one conditional statement)."""
        c = self.table.c
        await self.session.execute(
            self.update_stmt(include_deleted=True)
            .where(c.id == contact_id)
            .where((c.last_activity_at.is_(None)) | (c.last_activity_at < occurred_at))
            .values(last_activity_at=occurred_at)
        )

    async def set_last_activity(self, contact_id: uuid.UUID, latest: Any) -> None:
        """last_activity_at from `latest`, a scalar subquery over the contact's activities."""
        await self.session.execute(
            self.update_stmt(include_deleted=True)
            .where(self.table.c.id == contact_id)
            .values(last_activity_at=latest)
        )

    async def touch_last_activities(self, latest: Mapping[uuid.UUID, datetime]) -> None:
        """`touch_last_activity` for many contacts: one batched statement, in id order."""
        if not latest:
            return
        c = self.table.c
        at = bindparam("at", type_=c.last_activity_at.type)
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(c.id == bindparam("contact", type_=c.id.type))
            .where((c.last_activity_at.is_(None)) | (c.last_activity_at < at))
            .values(last_activity_at=at)
        )
        await self.session.execute(
            stmt,
            [{"contact": k, "at": latest[k]} for k in sorted(latest, key=str)],
        )

    async def recount_last_activities(self, contact_ids: Sequence[uuid.UUID]) -> None:
        """last_activity_at of these contacts from their latest live activity, one statement."""
        if not contact_ids:
            return
        c = self.table.c
        latest = (
            select(func.max(t.c.occurred_at))
            .where(
                t.c.workspace_id == c.workspace_id,
                t.c.contact_id == c.id,
                t.c.deleted_at.is_(None),
            )
            .correlate(self.table)
            .scalar_subquery()
        )
        await self.session.execute(
            self.update_stmt(include_deleted=True)
            .where(c.id.in_(sorted(contact_ids, key=str)))
            .values(last_activity_at=latest)
        )


class LeadRef(TenantRepository):
    """The leads an activity names: existence checks and the exact `activity_count`."""

    table = Lead.__table__

    async def add_activities(self, deltas: Mapping[uuid.UUID, int]) -> None:
        """`activity_count = activity_count + delta`, one atomic UPDATE per lead sent as one
        batch, in id order so that two transactions touching the same leads always lock them in
        the same order."""
        moved = [(k, deltas[k]) for k in sorted(deltas, key=str) if deltas[k]]
        if not moved:
            return
        c = self.table.c
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(c.id == bindparam("lead", type_=c.id.type))
            .values(
                activity_count=c.activity_count + bindparam("delta", type_=c.activity_count.type)
            )
        )
        await self.session.execute(stmt, [{"lead": k, "delta": d} for k, d in moved])


class DealRef(TenantRepository):
    table = Deal.__table__


# The records an activity (or a task) may name, with the repository that checks each one.
RECORD_REPOSITORIES: dict[str, type[TenantRepository]] = {
    "contact_id": ContactRef,
    "company_id": CompanyRepository,
    "lead_id": LeadRef,
    "deal_id": DealRef,
}


def _cursor_error() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid for this list.",
        code="invalid_cursor",
        details=[{"field": "query.cursor", "reason": "not a cursor issued for this sort"}],
    )


class ActivityListing(Listing):
    """A Listing whose `occurred_at` order breaks ties by `created_at`, then by id: timelines
    read in the order things happened, then in the order they were logged. The keyset cursor
    carries both times, so pages stay exact with ties and with rows inserted between pages."""

    then: ClassVar[dict[str, ColumnElement[Any]]] = {"occurred_at": t.c.created_at}

    def apply_page(
        self, stmt: Select[Any], params: ListParams, *, bound: bool = False
    ) -> Select[Any]:
        second = self.then.get(params.sort_by)
        if second is None:
            return super().apply_page(stmt, params, bound=bound)
        first = self.sorts[params.sort_by].expression
        keys = tuple_(first, second, self.id_column)
        if params.cursor is not None:
            if bound:
                after = tuple_(
                    bindparam("cursor_value", type_=first.type),
                    bindparam("cursor_then", type_=second.type),
                    bindparam("cursor_id", type_=self.id_column.type),
                )
            else:
                (value, then), row_id = params.cursor
                after = tuple_(
                    literal(value, first.type),
                    literal(then, second.type),
                    literal(row_id, self.id_column.type),
                )
            stmt = stmt.where(keys > after if params.sort_order == "asc" else keys < after)
        direction = "asc" if params.sort_order == "asc" else "desc"
        stmt = stmt.order_by(
            *(getattr(col, direction)() for col in (first, second, self.id_column))
        )
        return stmt.add_columns(first.label(SORT_KEY), second.label(THEN_KEY)).limit(
            params.limit + 1
        )

    def page_values(self, params: ListParams) -> dict[str, Any]:
        if params.sort_by not in self.then or params.cursor is None:
            return super().page_values(params)
        (value, then), row_id = params.cursor
        return {"cursor_value": value, "cursor_then": then, "cursor_id": row_id}

    def page(self, rows: Sequence[Any], params: ListParams) -> Page:
        if params.sort_by not in self.then:
            return super().page(rows, params)
        has_more = len(rows) > params.limit
        rows = rows[: params.limit]
        next_cursor = None
        if has_more and rows:
            last = rows[-1]
            value = [last[k].astimezone(UTC).isoformat() for k in (SORT_KEY, THEN_KEY)]
            raw = orjson.dumps([params.sort_by, params.sort_order, value, str(last["id"])])
            next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return Page(rows=rows, next_cursor=next_cursor, has_more=has_more, limit=params.limit)

    def decode_cursor(self, cursor: str, sort_by: str, order: str) -> tuple[Any, uuid.UUID]:
        if sort_by not in self.then:
            return super().decode_cursor(cursor, sort_by, order)
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            c_sort, c_order, value, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
            if c_sort != sort_by or c_order != order:
                raise _cursor_error()
            first, then = value
            if any(not isinstance(v, str) or has_control_characters(v) for v in value):
                raise ValueError
            parse = PARSERS[datetime]
            return (parse(first), parse(then)), uuid.UUID(row_id)
        except ValidationFailed:
            raise
        except (
            ValueError,
            TypeError,
            AttributeError,
            OverflowError,
            binascii.Error,
            orjson.JSONDecodeError,
        ) as exc:
            raise _cursor_error() from exc


def activity_listing(without: str | None = None) -> ActivityListing:
    """The /activities listing; a timeline's drops the filter on its own record id."""
    filters = {
        "kind": Filter(t.c.kind, choices=KINDS, description="Kind (comma-separated: any of)."),
        "direction": Filter(t.c.direction, choices=DIRECTIONS),
        "contact_id": Filter(t.c.contact_id, uuid.UUID, EQUALITY),
        "company_id": Filter(t.c.company_id, uuid.UUID, EQUALITY),
        "lead_id": Filter(t.c.lead_id, uuid.UUID, EQUALITY),
        "deal_id": Filter(t.c.deal_id, uuid.UUID, EQUALITY),
        "author_id": Filter(t.c.author_id, uuid.UUID, EQUALITY, description="A user id, or `me`."),
        "tag": tag_filter(t.c.tags),
        "occurred_at": Filter(t.c.occurred_at, datetime, RANGE),
        "created_at": Filter(t.c.created_at, datetime, RANGE),
    }
    filters.pop(without or "", None)
    return ActivityListing(
        id_column=t.c.id,
        filters=filters,
        sorts={
            "occurred_at": Sort(t.c.occurred_at, datetime),
            "created_at": Sort(t.c.created_at, datetime),
        },
        default_sort="occurred_at",
        custom_fields=True,
        search_builder=lambda term: record_matches("activity", t.c.id, t.c.workspace_id, term),
    )


ACTIVITY_LISTING = activity_listing()
# The timeline of each record type: /{plural}/{id}/activities.
TIMELINE_LISTINGS = {field: activity_listing(without=field) for field in RECORD_REPOSITORIES}


class ActivityRepository(TenantRepository):
    table = t

    async def restore(self, activity_id: uuid.UUID) -> RowMapping | None:
        """Undelete, only if deleted: of two concurrent restores exactly one gets the row."""
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(t.c.id == activity_id, t.c.deleted_at.is_not(None))
            .values(deleted_at=None, version=t.c.version + 1, updated_at=utcnow())
            .returning(t)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def lock(self, activity_id: uuid.UUID) -> RowMapping | None:
        """The row, locked until commit (PostgreSQL; SQLite write transactions are serial)."""
        stmt = self.select(include_deleted=True).where(t.c.id == activity_id).with_for_update()
        return (await self.session.execute(stmt)).mappings().first()

    def latest_for_contact(self, contact_id: uuid.UUID) -> Any:
        """When the contact's latest live activity happened (a scalar subquery)."""
        return (
            self.select(func.max(t.c.occurred_at))
            .where(t.c.contact_id == contact_id)
            .scalar_subquery()
        )
