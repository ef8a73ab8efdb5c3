from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
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
        """A resource's definitions in order (read by every create and update: built once)."""
        query = self._prebuilt(
            ("for_resource",),
            lambda: (
                select(*self.row_columns())
                .where(
                    *self._scope_clauses(False, bound=True), t.c.resource == bindparam("resource")
                )
                .order_by(t.c.position, t.c.id)
            ),
        )
        rows = await query.all(self.session, **self._scope_values(), resource=resource)
        return rows  # type: ignore[return-value]

    async def by_name(self, resource: str, name: str) -> RowMapping | None:
        stmt = self.select().where(t.c.resource == resource, t.c.name == name)
        return (await self.session.execute(stmt)).mappings().first()
