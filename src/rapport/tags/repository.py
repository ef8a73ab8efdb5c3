from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func

from rapport.core.listing import RANGE, Filter, Listing, Sort
from rapport.core.repository import TenantRepository
from rapport.tags.models import Tag

t = Tag.__table__

TAG_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "name": Filter(t.c.name, description="Exact name (comma-separated: any of)."),
        "color": Filter(t.c.color),
        "created_at": Filter(t.c.created_at, datetime, ops=RANGE),
        "updated_at": Filter(t.c.updated_at, datetime, ops=RANGE),
        "version": Filter(t.c.version, int, ops=RANGE),
    },
    sorts={
        "created_at": Sort(t.c.created_at, datetime),
        "updated_at": Sort(t.c.updated_at, datetime),
        "name": Sort(func.lower(t.c.name)),
    },
    default_sort="created_at",
    default_order="desc",
    search=(t.c.name, t.c.description),
)


class TagRepository(TenantRepository):
    table = t

    async def name_taken(self, name: str, exclude: uuid.UUID | None = None) -> bool:
        stmt = self.select(t.c.id).where(func.lower(t.c.name) == name.lower())
        if exclude is not None:
            stmt = stmt.where(t.c.id != exclude)
        return (await self.session.execute(stmt.limit(1))).first() is not None
