"""Contacts' queries, contact-company links, the duplicate finders, and the reference moves a merge
or an erase makes in the tables that point at contacts and companies (activities, tasks, deals,
leads). Every statement starts from a workspace-scoped `select()` / `update_stmt()` /
`delete_stmt()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Index,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from rapport.activities.models import Activity
from rapport.companies.models import Company
from rapport.companies.repository import CompanyRepository
from rapport.contacts.models import Contact, ContactCompany
from rapport.core.clock import utcnow
from rapport.core.listing import (
    EQUALITY,
    RANGE,
    Filter,
    Listing,
    ListParams,
    Page,
    Sort,
    tag_filter,
)
from rapport.core.repository import TenantRepository, one_of
from rapport.deals.models import Deal
from rapport.leads.models import Lead
from rapport.search.indexer import record_matches
from rapport.tasks.models import Task

t = Contact.__table__
links = ContactCompany.__table__
companies = Company.__table__

STATUSES = ("new", "contacted", "qualified", "customer", "inactive")
GROUP_MEMBERS = 50  # contacts (or companies) listed per duplicate group


def _company_name() -> Any:
    """The primary company's name, in the same statement as the contact (never one per row)."""
    return (
        select(companies.c.name)
        .where(
            companies.c.workspace_id == t.c.workspace_id,
            companies.c.id == t.c.primary_company_id,
        )
        .correlate(t)
        .scalar_subquery()
        .label("company_name")
    )


COMPANY_NAME = _company_name()


def _company_filter(_op: str, values: list[Any]) -> ColumnElement[bool]:
    """Contacts whose primary company is one of these, or linked to one through contact_company."""
    linked = exists().where(
        links.c.workspace_id == t.c.workspace_id,
        links.c.contact_id == t.c.id,
        links.c.company_id.in_(values),
    )
    return or_(t.c.primary_company_id.in_(values), linked)


def _email_filter(_op: str, values: list[Any]) -> ColumnElement[bool]:
    return t.c.email.in_([str(v).lower() for v in values])


def _name_sort(column: Any) -> ColumnElement[Any]:
    # Constants inline (not bound) so the expression indexes of migration 0003 match it.
    return func.coalesce(func.lower(column), literal_column("''"))


CONTACT_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "status": Filter(t.c.status, choices=STATUSES, description="Status (any of)."),
        "tag": tag_filter(t.c.tags),
        "company_id": Filter(
            t.c.primary_company_id,
            uuid.UUID,
            EQUALITY,
            builder=_company_filter,
            description="Linked to this company, or with it as primary company.",
        ),
        "owner_id": Filter(t.c.owner_id, uuid.UUID, EQUALITY, description="A user id, or `me`."),
        "email": Filter(
            t.c.email, builder=_email_filter, description="Exact email, case-insensitive."
        ),
        "created_at": Filter(t.c.created_at, datetime, RANGE),
        "updated_at": Filter(t.c.updated_at, datetime, RANGE),
    },
    sorts={
        "created_at": Sort(t.c.created_at, datetime),
        "updated_at": Sort(t.c.updated_at, datetime),
        "last_name": Sort(_name_sort(t.c.last_name)),
        "first_name": Sort(_name_sort(t.c.first_name)),
    },
    default_sort="created_at",
    custom_fields=True,
    search_builder=lambda term: record_matches("contact", t.c.id, t.c.workspace_id, term),
)

# GET /contacts/{id}/companies: the companies a contact is linked to (live companies only).
CONTACT_COMPANIES_LISTING = Listing(
    id_column=companies.c.id,
    filters={
        "role": Filter(links.c.role, description="Exact role (comma-separated: any of)."),
        "is_primary": Filter(links.c.is_primary, bool),
    },
    sorts={
        "linked_at": Sort(links.c.created_at, datetime),
        "name": Sort(companies.c.name),
    },
    default_sort="linked_at",
    soft_delete=False,
    search_builder=lambda term: record_matches(
        "company", companies.c.id, companies.c.workspace_id, term
    ),
)

# GET /companies/{id}/contacts: the contacts linked to a company (live contacts only).
COMPANY_CONTACTS_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "role": Filter(links.c.role, description="Exact role (comma-separated: any of)."),
        "is_primary": Filter(links.c.is_primary, bool),
        "status": Filter(t.c.status, choices=STATUSES),
    },
    sorts={
        "linked_at": Sort(links.c.created_at, datetime),
        "last_name": Sort(_name_sort(t.c.last_name)),
    },
    default_sort="linked_at",
    soft_delete=False,
    search_builder=lambda term: record_matches("contact", t.c.id, t.c.workspace_id, term),
)


# -- duplicate keys ------------------------------------------------------------------------------
class email_key(FunctionElement[str]):  # noqa: N801 - SQL function naming
    """An email without its +tag ("ada+news@x.com" → "ada@x.com"): the duplicate finders' key."""

    type = String()
    inherit_cache = True
    name = "email_key"


@compiles(email_key, "postgresql")
def _pg_email_key(element: Any, compiler: Any, **kw: Any) -> str:
    (column,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"regexp_replace({column}, '\\+[^@]*@', '@')"


@compiles(email_key, "sqlite")
def _sqlite_email_key(element: Any, compiler: Any, **kw: Any) -> str:
    (column,) = (compiler.process(arg, **kw) for arg in element.clauses)
    plus, at = f"instr({column}, '+')", f"instr({column}, '@')"
    return (
        f"(CASE WHEN {plus} > 0 AND {plus} < {at} "
        f"THEN substr({column}, 1, {plus} - 1) || substr({column}, {at}) ELSE {column} END)"
    )


def _name_key() -> ColumnElement[str]:
    def part(column: Any) -> ColumnElement[str]:
        return func.lower(func.trim(func.coalesce(column, "")), type_=String)

    return (
        part(t.c.first_name)
        + literal_column("' '", String)
        + part(t.c.last_name)
        + literal_column("'|'", String)
        + cast(t.c.primary_company_id, String)
    )


CONTACT_DUPLICATE_KEYS: dict[str, tuple[ColumnElement[Any], list[ColumnElement[bool]]]] = {
    "email": (email_key(t.c.email), [t.c.email.is_not(None)]),
    "phone": (t.c.phone_e164, [t.c.phone_e164.is_not(None)]),
    "name": (
        _name_key(),
        [
            t.c.primary_company_id.is_not(None),
            or_(t.c.first_name.is_not(None), t.c.last_name.is_not(None)),
        ],
    ),
}
COMPANY_DUPLICATE_KEYS: dict[str, tuple[ColumnElement[Any], list[ColumnElement[bool]]]] = {
    "domain": (companies.c.domain, [companies.c.domain.is_not(None)]),
    "name": (func.lower(func.trim(companies.c.name), type_=String), []),
}


class DuplicateQueries:
    """Groups of live records sharing a key; keyset-paged by the key, members bounded per group."""

    table: ClassVar[Any]
    session: Any
    select: Any  # TenantRepository.select (workspace-scoped)

    async def duplicate_keys(
        self,
        key: ColumnElement[Any],
        where: list[ColumnElement[bool]],
        after: str | None,
        limit: int,
    ) -> list[tuple[str, int]]:
        keyed = self.select(key.label("dup_key")).where(*where).subquery()
        stmt = select(keyed.c.dup_key, func.count().label("n")).where(keyed.c.dup_key.is_not(None))
        if after is not None:
            stmt = stmt.where(keyed.c.dup_key > after)
        stmt = (
            stmt.group_by(keyed.c.dup_key)
            .having(func.count() > 1)
            .order_by(keyed.c.dup_key)
            .limit(limit)
        )
        return [(row.dup_key, row.n) for row in (await self.session.execute(stmt)).all()]

    async def duplicate_members(
        self, key: ColumnElement[Any], where: list[ColumnElement[bool]], keys: Sequence[str]
    ) -> list[RowMapping]:
        if not keys:
            return []
        rank = func.row_number().over(
            partition_by=key, order_by=(self.table.c.created_at, self.table.c.id)
        )
        ranked = (
            self.select()
            .add_columns(key.label("dup_key"), rank.label("dup_rank"))
            .where(*where, key.in_(list(keys)))
            .subquery()
        )
        stmt = (
            select(ranked)
            .where(ranked.c.dup_rank <= GROUP_MEMBERS)
            .order_by(ranked.c.dup_key, ranked.c.dup_rank)
        )
        return list((await self.session.execute(stmt)).mappings().all())


class ContactRepository(DuplicateQueries, TenantRepository):
    table = t

    def row_columns(self) -> tuple[Any, ...]:
        """Whole rows come with `company_name` (a correlated subquery, same statement)."""
        return (t, COMPANY_NAME)

    async def _named(self, row: RowMapping | None) -> RowMapping | None:
        """An inserted row with its `company_name` looked up (a new contact's company, if any, is
        one the request has just checked; an update returns the name itself)."""
        if row is None:
            return None
        name = None
        if (company_id := row["primary_company_id"]) is not None:
            name = await CompanyRepository(self.session, self.workspace_id).name(company_id)
        return {**row, "company_name": name}  # type: ignore[return-value]

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        row = await self._named(await super().insert(values))
        assert row is not None
        return row

    async def insert_unless_held(self, values: dict[str, Any], unique: Index) -> RowMapping | None:
        return await self._named(await super().insert_unless_held(values, unique))

    async def _named_many(self, rows: Sequence[RowMapping | None]) -> list[RowMapping | None]:
        """Written rows with their `company_name`, looked up in one query for all of them."""
        ids = sorted({r["primary_company_id"] for r in rows if r and r["primary_company_id"]})
        names = await CompanyRepository(self.session, self.workspace_id).names(ids)
        return [
            None if r is None else {**r, "company_name": names.get(r["primary_company_id"])}  # type: ignore[misc]
            for r in rows
        ]

    async def insert_returning(self, rows: Sequence[dict[str, Any]]) -> list[RowMapping]:
        named = await self._named_many(await super().insert_returning(rows))
        return [r for r in named if r is not None]

    async def update_each(
        self, items: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> list[RowMapping | None]:
        """A bulk update's UPDATEs, one statement each (each returns its company's name)."""
        return [await self.update(record_id, values) for record_id, values in items]

    async def live_by_emails(self, emails: Sequence[str]) -> list[RowMapping]:
        """The live contacts holding any of these (normalised) emails, whole rows."""
        if not emails:
            return []
        stmt = self.select().where(one_of(self.session, t.c.email, sorted(set(emails))))
        return list((await self.session.execute(stmt)).mappings().all())

    async def email_owner(self, email: str, exclude: uuid.UUID | None = None) -> uuid.UUID | None:
        """The live contact holding this (normalised) email, if any (every create: built once)."""
        excluding = exclude is not None

        def build() -> Select[Any]:
            clauses = self._scope_clauses(False, bound=True)
            clauses.append(t.c.email == bindparam("email"))
            if excluding:
                clauses.append(t.c.id != bindparam("exclude"))
            return select(t.c.id).where(*clauses).limit(1)

        query = self._prebuilt(("email_owner", excluding), build)
        params = {"exclude": exclude} if excluding else {}
        row = await query.first(self.session, **self._scope_values(), email=email, **params)
        return row["id"] if row is not None else None

    async def live_by_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
        stmt = self.select().where(t.c.id.in_(list(ids)))
        return {row["id"]: row for row in (await self.session.execute(stmt)).mappings().all()}

    async def with_primary_companies(
        self, company_ids: Sequence[uuid.UUID], after: uuid.UUID | None, limit: int
    ) -> list[RowMapping]:
        """Contacts (deleted too) whose primary company is one of these, by id, in chunks."""
        stmt = self.select(t, COMPANY_NAME, include_deleted=True).where(
            t.c.primary_company_id.in_(list(company_ids))
        )
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        stmt = stmt.order_by(t.c.id).limit(limit)
        return list((await self.session.execute(stmt)).mappings().all())

    async def move_primary_company(
        self, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID | None
    ) -> int:
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(t.c.primary_company_id.in_(list(from_ids)))
            .values(primary_company_id=to_id, version=t.c.version + 1, updated_at=utcnow())
        )
        return (await self.session.execute(stmt)).rowcount or 0

    async def repoint_merged(self, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID | None) -> None:
        """Contacts merged earlier into one of `from_ids` now point at `to_id` (None: nothing)."""
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(t.c.merged_into_id.in_(list(from_ids)))
            .values(merged_into_id=to_id)
        )
        await self.session.execute(stmt)


class ContactCompanyRepository(TenantRepository):
    """The contact_company links: (workspace, contact, company) → role, is_primary."""

    table = links
    soft_delete = False

    def _link(self, contact_id: uuid.UUID, company_id: uuid.UUID) -> list[ColumnElement[bool]]:
        return [links.c.contact_id == contact_id, links.c.company_id == company_id]

    async def get_link(self, contact_id: uuid.UUID, company_id: uuid.UUID) -> RowMapping | None:
        stmt = self.select().where(*self._link(contact_id, company_id))
        return (await self.session.execute(stmt)).mappings().first()

    async def insert_link(
        self, contact_id: uuid.UUID, company_id: uuid.UUID, role: str | None, is_primary: bool
    ) -> RowMapping:
        stmt = (
            insert(links)
            .values(
                workspace_id=self.workspace_id,
                contact_id=contact_id,
                company_id=company_id,
                role=role,
                is_primary=is_primary,
                created_at=utcnow(),
            )
            .returning(links)
        )
        return (await self.session.execute(stmt)).mappings().one()

    async def update_link(
        self, contact_id: uuid.UUID, company_id: uuid.UUID, values: dict[str, Any]
    ) -> RowMapping | None:
        stmt = (
            self.update_stmt()
            .where(*self._link(contact_id, company_id))
            .values(**values)
            .returning(links)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def delete_link(self, contact_id: uuid.UUID, company_id: uuid.UUID) -> bool:
        stmt = (
            self.delete_stmt()
            .where(*self._link(contact_id, company_id))
            .returning(links.c.contact_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def sync_primary(self, contact_id: uuid.UUID, company_id: uuid.UUID | None) -> None:
        """is_primary is true on the link to the contact's primary company and on no other."""
        flag = links.c.company_id == company_id if company_id is not None else False
        stmt = self.update_stmt().where(links.c.contact_id == contact_id).values(is_primary=flag)
        await self.session.execute(stmt)

    async def sync_primary_many(
        self, primaries: Sequence[tuple[uuid.UUID, uuid.UUID | None]]
    ) -> None:
        """`sync_primary` for many (contact, primary company) pairs, in two batched statements;
        a contact named twice ends with the last pair's company, as one call after another."""
        final = dict(primaries)
        cleared = [contact_id for contact_id, company_id in final.items() if company_id is None]
        if cleared:
            await self.session.execute(
                self.update_stmt().where(links.c.contact_id.in_(cleared)).values(is_primary=False)
            )
        moved = [
            {"contact": contact_id, "company": company_id}
            for contact_id, company_id in final.items()
            if company_id is not None
        ]
        if moved:
            stmt = (
                self.update_stmt()
                .where(links.c.contact_id == bindparam("contact"))
                .values(is_primary=links.c.company_id == bindparam("company"))
            )
            await self.session.execute(stmt, moved)

    async def links_of(self, column: str, ids: Sequence[uuid.UUID]) -> list[RowMapping]:
        stmt = self.select().where(links.c[column].in_(list(ids)))
        return list((await self.session.execute(stmt)).mappings().all())

    async def delete_links_of(self, column: str, ids: Sequence[uuid.UUID]) -> int:
        stmt = self.delete_stmt().where(links.c[column].in_(list(ids)))
        return (await self.session.execute(stmt)).rowcount or 0

    async def insert_links(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            prepared = [{**r, "workspace_id": self.workspace_id} for r in rows]
            await self.session.execute(insert(links), prepared)

    async def companies_of(self, contact_id: uuid.UUID, params: ListParams) -> Page:
        listing = CONTACT_COMPANIES_LISTING
        joined = links.join(
            companies,
            and_(
                companies.c.workspace_id == links.c.workspace_id,
                companies.c.id == links.c.company_id,
            ),
        )
        where = [
            links.c.contact_id == contact_id,
            companies.c.deleted_at.is_(None),
            *listing.where(params),
        ]
        columns = (
            companies,
            links.c.role,
            links.c.is_primary,
            links.c.created_at.label("linked_at"),
        )
        return await self._page(listing, params, joined, columns, where)

    async def contacts_of(self, company_id: uuid.UUID, params: ListParams) -> Page:
        listing = COMPANY_CONTACTS_LISTING
        joined = links.join(
            t, and_(t.c.workspace_id == links.c.workspace_id, t.c.id == links.c.contact_id)
        )
        where = [
            links.c.company_id == company_id,
            t.c.deleted_at.is_(None),
            *listing.where(params),
        ]
        columns = (
            t,
            COMPANY_NAME,
            links.c.role,
            links.c.is_primary,
            links.c.created_at.label("linked_at"),
        )
        return await self._page(listing, params, joined, columns, where)

    async def _page(
        self,
        listing: Listing,
        params: ListParams,
        joined: Any,
        columns: tuple[Any, ...],
        where: list[ColumnElement[bool]],
    ) -> Page:
        stmt = listing.apply_page(self.select(*columns).select_from(joined).where(*where), params)
        rows = (await self.session.execute(stmt)).mappings().all()
        page = listing.page(rows, params)
        if params.include_total:
            count = self.select(func.count()).select_from(joined).where(*where)
            page.total = (await self.session.execute(count)).scalar_one()
        return page


class References(TenantRepository):
    """A table whose rows point at contacts or companies: a merge moves them, an erase detaches."""

    async def move(
        self, column: str, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID | None
    ) -> int:
        """Point every row (deleted ones too) from `from_ids` at `to_id`; bumps their version."""
        col = self.table.c[column]
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(col.in_(list(from_ids)))
            .values({column: to_id, "version": self.table.c.version + 1, "updated_at": utcnow()})
        )
        return (await self.session.execute(stmt)).rowcount or 0


class ActivityReferences(References):
    table = Activity.__table__


class TaskReferences(References):
    table = Task.__table__


class DealReferences(References):
    table = Deal.__table__


class LeadReferences(References):
    table = Lead.__table__


# (repository, column) pairs that point at a contact / at a company.
CONTACT_REFERENCES: dict[str, tuple[type[References], str]] = {
    "activities": (ActivityReferences, "contact_id"),
    "tasks": (TaskReferences, "contact_id"),
    "deals": (DealReferences, "contact_id"),
    "leads": (LeadReferences, "converted_contact_id"),
}
COMPANY_REFERENCES: dict[str, tuple[type[References], str]] = {
    "activities": (ActivityReferences, "company_id"),
    "tasks": (TaskReferences, "company_id"),
    "deals": (DealReferences, "company_id"),
    "leads": (LeadReferences, "converted_company_id"),
}


class CompanyMergeRepository(DuplicateQueries, CompanyRepository):
    """Company-side queries for duplicates and merges (the companies table itself)."""

    async def live_by_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
        stmt = self.select().where(companies.c.id.in_(list(ids)))
        return {row["id"]: row for row in (await self.session.execute(stmt)).mappings().all()}

    async def repoint_merged(self, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID | None) -> None:
        stmt = (
            self.update_stmt(include_deleted=True)
            .where(companies.c.merged_into_id.in_(list(from_ids)))
            .values(merged_into_id=to_id)
        )
        await self.session.execute(stmt)
