from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select, true, update
from sqlalchemy.engine import RowMapping

from rapport.activities.models import Activity
from rapport.companies.models import Company
from rapport.core.clock import utcnow
from rapport.core.errors import ValidationFailed
from rapport.core.listing import EQUALITY, RANGE, BigInt, Filter, Listing, Sort, tag_filter
from rapport.core.repository import TenantRepository
from rapport.core.values import MINOR_UNITS_MAX
from rapport.identity.models import Workspace
from rapport.leads.models import Lead
from rapport.search.indexer import record_matches
from rapport.tasks.models import Task

t = Lead.__table__
workspaces = Workspace.__table__
ALL_STATUSES = ("", "all")  # `status=all` or `status=`: no status filter


def _invalid_filter(key: str, reason: str) -> ValidationFailed:
    return ValidationFailed(
        "Unknown or invalid filter.",
        code="invalid_filter",
        details=[{"field": f"query.{key}", "reason": reason}],
    )


def _minor_units(key: str, raw: str) -> int:
    """Money filters take 0..10^15 (the core int filter stops at 2^31, below real amounts)."""
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid_filter(key, "is not a valid int") from exc
    if not 0 <= value <= MINOR_UNITS_MAX:
        raise _invalid_filter(key, "is out of range")
    return value


def money_filter(name: str, column: ColumnElement[Any]) -> Filter:
    """`value=100`, `value=100,200`, `value[gte]=100` ... in minor units (BIGINT)."""
    return Filter(column, BigInt, RANGE, description=f"{name} in minor units.")


def status_filter() -> Filter:
    def build(_op: str, values: list[Any]) -> ColumnElement[bool]:
        if any(v in ALL_STATUSES for v in values):
            return true()
        return t.c.status.in_(values) if len(values) > 1 else t.c.status == values[0]

    return Filter(
        t.c.status,
        builder=build,
        description="A status (comma-separated: any of); `all` or empty: every status.",
    )


def budget_bound_filter(name: str) -> Filter:
    """reference 004: a bound matches when either end of the lead's budget crosses it.
    `min_budget=X`: budget_max >= X or budget_min >= X; `max_budget=Y`: budget_min <= Y or
    budget_max <= Y. Leads without any budget never match."""

    def build(_op: str, values: list[Any]) -> ColumnElement[bool]:
        if len(values) != 1:
            raise _invalid_filter(name, "takes one value")
        bound = _minor_units(name, values[0])
        if name == "min_budget":
            return or_(t.c.budget_max >= bound, t.c.budget_min >= bound)
        return or_(t.c.budget_min <= bound, t.c.budget_max <= bound)

    return Filter(
        t.c.budget_min,
        str,
        frozenset({"eq"}),
        builder=build,
        description=(
            "Leads whose budget_max or budget_min is at least this amount (minor units)."
            if name == "min_budget"
            else "Leads whose budget_min or budget_max is at most this amount (minor units)."
        ),
    )


LEAD_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "status": status_filter(),
        "source": Filter(t.c.source, description="Exact source (comma-separated: any of)."),
        "owner_id": Filter(t.c.owner_id, uuid.UUID, EQUALITY, description="A user id, or `me`."),
        "tag": tag_filter(t.c.tags),
        "currency": Filter(t.c.currency),
        "value": money_filter("value", t.c.value),
        "budget_min": money_filter("budget_min", t.c.budget_min),
        "budget_max": money_filter("budget_max", t.c.budget_max),
        "min_budget": budget_bound_filter("min_budget"),
        "max_budget": budget_bound_filter("max_budget"),
        "created_at": Filter(t.c.created_at, datetime, RANGE),
        "updated_at": Filter(t.c.updated_at, datetime, RANGE),
        "converted_at": Filter(t.c.converted_at, datetime, RANGE),
    },
    sorts={
        "created_at": Sort(t.c.created_at, datetime),
        "updated_at": Sort(t.c.updated_at, datetime),
        "value": Sort(func.coalesce(t.c.value, literal_column("0")), BigInt),
        "last_name": Sort(func.coalesce(t.c.last_name, literal_column("''"))),
    },
    default_sort="created_at",
    custom_fields=True,
    search_builder=lambda term: record_matches("lead", t.c.id, t.c.workspace_id, term),
)


def lead_openapi_parameters() -> list[dict[str, Any]]:
    """The listing's parameters, with the money bounds documented as integers (equality stays
    a string: it takes comma-separated amounts)."""
    params = LEAD_LISTING.openapi_parameters()
    money = ("value", "budget_min", "budget_max")
    bounds = ("min_budget", "max_budget")
    integer = {"type": "integer", "minimum": 0, "maximum": MINOR_UNITS_MAX}
    for param in params:
        name = param["name"]
        if name in bounds:
            param["schema"] = dict(integer)
            param["description"] = LEAD_LISTING.filters[name].description
        elif "[" in name and name.split("[", 1)[0] in money:
            param["schema"] = dict(integer)
    return params


class LeadRepository(TenantRepository):
    table = t

    async def get_for_update(self, lead_id: uuid.UUID) -> RowMapping | None:
        """The live lead, locked until the end of the transaction (PostgreSQL; SQLite's write
        transactions are already exclusive)."""
        stmt = self.select().where(t.c.id == lead_id).with_for_update()
        return (await self.session.execute(stmt)).mappings().first()

    async def duplicate_of(
        self, email: str | None, phone_e164: str | None
    ) -> tuple[uuid.UUID, str] | None:
        """The oldest live lead with this email or phone, and which of the two matched."""
        matches = []
        if email:
            matches.append(t.c.email == email)
        if phone_e164:
            matches.append(t.c.phone_e164 == phone_e164)
        if not matches:
            return None
        stmt = (
            self.select(t.c.id, t.c.email, t.c.phone_e164)
            .where(or_(*matches))
            .order_by(t.c.created_at, t.c.id)
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        return row.id, "email" if email and row.email == email else "phone"

    async def duplicates_among(
        self, emails: Sequence[str], phones: Sequence[str]
    ) -> list[RowMapping]:
        """(id, email, phone_e164) of the live leads with any of these emails or phones, oldest
        first: what `duplicate_of` would find, for a whole bulk create in one query."""
        matches = []
        if emails:
            matches.append(t.c.email.in_(list(emails)))
        if phones:
            matches.append(t.c.phone_e164.in_(list(phones)))
        if not matches:
            return []
        stmt = (
            self.select(t.c.id, t.c.email, t.c.phone_e164)
            .where(or_(*matches))
            .order_by(t.c.created_at, t.c.id)
        )
        return list((await self.session.execute(stmt)).mappings().all())

    async def mark_converted(self, lead_id: uuid.UUID, values: dict[str, Any]) -> RowMapping | None:
        """Convert once: None when the lead is gone or already converted."""
        stmt = (
            self.update_stmt()
            .where(t.c.id == lead_id, t.c.converted_at.is_(None))
            .values(**values, version=t.c.version + 1, updated_at=utcnow())
            .returning(t)
        )
        return (await self.session.execute(stmt)).mappings().first()


class LeadActivityRepository(TenantRepository):
    """The lead's side of the activity table: status notes, and detaching on erase/convert."""

    table = Activity.__table__

    async def add_notes(
        self, notes: Sequence[tuple[uuid.UUID, str]], author_id: uuid.UUID | None
    ) -> list[RowMapping]:
        """Status notes, `(lead_id, subject)` each, in one batched INSERT ... RETURNING."""
        now = utcnow()
        return await self.insert_returning(
            [
                {
                    "kind": "note",
                    "subject": subject,
                    "occurred_at": now,
                    "lead_id": lead_id,
                    "author_id": author_id,
                    "tags": [],
                    "custom_fields": {},
                }
                for lead_id, subject in notes
            ]
        )

    async def detach_lead(self, lead_id: uuid.UUID) -> None:
        c = self.table.c
        await self.session.execute(
            self.update_stmt(include_deleted=True).where(c.lead_id == lead_id).values(lead_id=None)
        )

    async def move_to_contact(self, lead_id: uuid.UUID, contact_id: uuid.UUID) -> int:
        """The lead's activities that name no contact yet now name this one."""
        c = self.table.c
        result = await self.session.execute(
            self.update_stmt(include_deleted=True)
            .where(c.lead_id == lead_id, c.contact_id.is_(None))
            .values(contact_id=contact_id)
            .returning(c.id)
        )
        return len(result.all())


class LeadCompanyLookup(TenantRepository):
    """Conversion's read-only view of companies: the live company a lead already names."""

    table = Company.__table__

    async def by_name(self, name: str) -> RowMapping | None:
        c = self.table.c
        stmt = (
            self.select(c.id, c.name)
            .where(func.lower(c.name) == name.lower())
            .order_by(c.created_at, c.id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def by_domain(self, domain: str) -> RowMapping | None:
        c = self.table.c
        stmt = self.select(c.id, c.name).where(c.domain == domain).limit(1)
        return (await self.session.execute(stmt)).mappings().first()

    async def name_of(self, company_id: uuid.UUID) -> str | None:
        c = self.table.c
        stmt = self.select(c.name).where(c.id == company_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class LeadTaskRepository(TenantRepository):
    table = Task.__table__

    async def detach_lead(self, lead_id: uuid.UUID) -> None:
        c = self.table.c
        await self.session.execute(
            self.update_stmt(include_deleted=True).where(c.lead_id == lead_id).values(lead_id=None)
        )


class WorkspaceSettingsRepository:
    """The caller's own workspace row (settings JSON), addressed by its id only."""

    def __init__(self, session: Any, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def read(self) -> tuple[dict[str, Any], int]:
        stmt = select(workspaces.c.settings, workspaces.c.version).where(
            workspaces.c.id == self.workspace_id
        )
        row = (await self.session.execute(stmt)).one()
        return dict(row.settings or {}), row.version

    async def write(self, settings: dict[str, Any], expected_version: int) -> bool:
        """Replace the settings if nobody changed them since `expected_version` was read."""
        stmt = (
            update(workspaces)
            .where(workspaces.c.id == self.workspace_id, workspaces.c.version == expected_version)
            .values(settings=settings, version=workspaces.c.version + 1, updated_at=utcnow())
            .returning(workspaces.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None
