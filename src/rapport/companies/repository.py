from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select

from rapport.companies.models import Company
from rapport.core.listing import EQUALITY, RANGE, Filter, Listing, Sort, tag_filter
from rapport.core.repository import TenantRepository, one_of
from rapport.search.indexer import record_matches

t = Company.__table__

COMPANY_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "name": Filter(t.c.name, description="Exact name (comma-separated: any of)."),
        "domain": Filter(t.c.domain),
        "industry": Filter(t.c.industry),
        "size": Filter(t.c.size),
        "owner_id": Filter(t.c.owner_id, uuid.UUID, EQUALITY, description="A user id, or `me`."),
        "tag": tag_filter(t.c.tags),
        "created_at": Filter(t.c.created_at, datetime, RANGE),
        "updated_at": Filter(t.c.updated_at, datetime, RANGE),
    },
    sorts={
        "created_at": Sort(t.c.created_at, datetime),
        "updated_at": Sort(t.c.updated_at, datetime),
        "name": Sort(t.c.name),
    },
    default_sort="created_at",
    custom_fields=True,
    search_builder=lambda term: record_matches("company", t.c.id, t.c.workspace_id, term),
)


class CompanyRepository(TenantRepository):
    table = t

    async def domain_taken(self, domain: str, exclude: uuid.UUID | None = None) -> bool:
        stmt = self.select(t.c.id).where(t.c.domain == domain)
        if exclude is not None:
            stmt = stmt.where(t.c.id != exclude)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def domain_holders(self, domains: Sequence[str]) -> list[tuple[str, uuid.UUID]]:
        """(domain, id) of the live companies holding any of these domains."""
        if not domains:
            return []
        stmt = self.select(t.c.domain, t.c.id).where(one_of(self.session, t.c.domain, domains))
        return [(row.domain, row.id) for row in (await self.session.execute(stmt)).all()]

    async def name(self, company_id: uuid.UUID) -> str | None:
        """One company's name, deleted or not (every contact write: built once)."""
        query = self._prebuilt(
            ("name",),
            lambda: select(t.c.name).where(
                *self._scope_clauses(True, bound=True), t.c.id == bindparam("id")
            ),
        )
        row = await query.first(self.session, **self._scope_values(), id=company_id)
        return row["name"] if row is not None else None

    async def names(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        stmt = self.select(t.c.id, t.c.name, include_deleted=True).where(t.c.id.in_(ids))
        return {row.id: row.name for row in (await self.session.execute(stmt)).all()}
