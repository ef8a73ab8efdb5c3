from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import RowMapping

from rapport.core.listing import EQUALITY, Filter, Listing, Sort
from rapport.core.repository import TenantRepository
from rapport.custom_fields.models import FIELD_TYPES, RESOURCES, CustomFieldDefinition

t = CustomFieldDefinition.__table__

CUSTOM_FIELD_LISTING = Listing(
    id_column=t.c.id,
    filters={
        "resource": Filter(t.c.resource, ops=EQUALITY, choices=RESOURCES),
        "type": Filter(t.c.type, ops=EQUALITY, choices=FIELD_TYPES),
        "name": Filter(t.c.name),
    },
    sorts={"position": Sort(t.c.position, int), "created_at": Sort(t.c.created_at, datetime)},
    default_sort="position",
    default_order="asc",
    search=(t.c.name, t.c.label),
    soft_delete=False,
)


class CustomFieldRepository(TenantRepository):
    table = t
    soft_delete = False

    async def for_resource(self, resource: str) -> list[RowMapping]:
        stmt = self.select().where(t.c.resource == resource).order_by(t.c.position, t.c.id)
        return list((await self.session.execute(stmt)).mappings().all())

    async def by_name(self, resource: str, name: str) -> RowMapping | None:
        stmt = self.select().where(t.c.resource == resource, t.c.name == name)
        return (await self.session.execute(stmt)).mappings().first()
