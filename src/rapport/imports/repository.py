"""Imports', their errors' and exports' queries; every statement is workspace-scoped.

The job's writes to an import are conditional on its `lock_token` (and, for a chunk, on the
offset it started from), so a runner that lost its lock, or a second runner, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.engine import RowMapping

from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.core.listing import Filter, Listing, Sort
from rapport.core.repository import TenantRepository
from rapport.identity.models import Membership, User
from rapport.imports.models import CsvExport, CsvImport, CsvImportError
from rapport.imports.resources import RESOURCE_NAMES, ResourceSpec

imports = CsvImport.__table__
import_errors = CsvImportError.__table__
exports = CsvExport.__table__
memberships = Membership.__table__

STATUSES = ("queued", "running", "completed", "failed")
ACTIVE = ("queued", "running")

IMPORT_LISTING = Listing(
    id_column=imports.c.id,
    filters={
        "status": Filter(imports.c.status, choices=STATUSES, description="Status (any of)."),
        "resource": Filter(imports.c.resource, choices=RESOURCE_NAMES),
    },
    sorts={"created_at": Sort(imports.c.created_at, datetime)},
    default_sort="created_at",
    soft_delete=False,
)
EXPORT_LISTING = Listing(
    id_column=exports.c.id,
    filters={
        "status": Filter(exports.c.status, choices=STATUSES, description="Status (any of)."),
        "resource": Filter(exports.c.resource, choices=RESOURCE_NAMES),
    },
    sorts={"created_at": Sort(exports.c.created_at, datetime)},
    default_sort="created_at",
    soft_delete=False,
)


class _Runs(TenantRepository):
    """What imports and exports share: a row per run, claimed by one runner at a time."""

    soft_delete = False

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        now = utcnow()
        row = {"id": new_id(), "created_at": now, "updated_at": now, **values}
        row["workspace_id"] = self.workspace_id
        stmt = insert(self.table).values(row).returning(self.table)
        return (await self.session.execute(stmt)).mappings().one()

    async def set(
        self, record_id: uuid.UUID, values: dict[str, Any], *where: Any
    ) -> RowMapping | None:
        """Update the run (if `where` holds); the row as written, or None."""
        stmt = (
            self.update_stmt()
            .where(self.table.c.id == record_id, *where)
            .values(**values)
            .returning(self.table)
        )
        return (await self.session.execute(stmt)).mappings().first()


class ImportRepository(_Runs):
    table = imports

    async def claim(
        self, import_id: uuid.UUID, token: uuid.UUID, now: datetime, until: datetime
    ) -> RowMapping | None:
        """Take the import's lock if it is still to do and nobody holds it."""
        t = self.table
        return await self.set(
            import_id,
            {"lock_token": token, "locked_until": until, "status": "running", "updated_at": now},
            t.c.status.in_(ACTIVE),
            or_(t.c.locked_until.is_(None), t.c.locked_until < now),
        )

    async def held(
        self, import_id: uuid.UUID, token: uuid.UUID, values: dict[str, Any], *where: Any
    ) -> RowMapping | None:
        """Update the import only while `token` holds its lock."""
        return await self.set(import_id, values, self.table.c.lock_token == token, *where)


class ImportErrorRepository(TenantRepository):
    table = import_errors
    soft_delete = False

    async def add(self, import_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            prepared = [
                {**r, "id": new_id(), "workspace_id": self.workspace_id, "import_id": import_id}
                for r in rows
            ]
            await self.session.execute(insert(import_errors), prepared)

    async def page(
        self, import_id: uuid.UUID, after: tuple[int, uuid.UUID] | None, limit: int
    ) -> list[RowMapping]:
        """Errors in line order, keyset-paged by (line, id)."""
        t = self.table
        stmt = self.select().where(t.c.import_id == import_id)
        if after is not None:
            stmt = stmt.where(tuple_(t.c.line, t.c.id) > tuple_(*after))
        stmt = stmt.order_by(t.c.line, t.c.id).limit(limit)
        return list((await self.session.execute(stmt)).mappings().all())

    async def clear(self, import_id: uuid.UUID) -> None:
        await self.session.execute(self.delete_stmt().where(self.table.c.import_id == import_id))


class ExportRepository(_Runs):
    table = exports


async def live_keys(
    session: Any, workspace_id: uuid.UUID, spec: ResourceSpec, keys: Sequence[str]
) -> set[str]:
    """Which of these dedupe keys (emails, domains) live records of the resource hold."""
    if not keys:
        return set()
    repo = spec.service.repository_class(session, workspace_id)
    column = repo.table.c[spec.key]
    stmt = repo.select(column).where(column.in_(sorted(set(keys))))
    return {value for value in (await session.execute(stmt)).scalars() if value}


async def member_role(session: Any, workspace_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The user's role in the workspace if their membership is active."""
    stmt = select(memberships.c.role).where(
        memberships.c.workspace_id == workspace_id,
        memberships.c.user_id == user_id,
        memberships.c.is_active.is_(True),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_actor(
    session: Any, workspace_id: uuid.UUID | None, email: str | None
) -> list[RowMapping]:
    """Active memberships (workspace_id, user_id, role, email) that could run a command-line
    import: the user's (by email) or, without one, the admins', oldest first."""
    users = User.__table__
    stmt = (
        select(
            memberships.c.workspace_id,
            memberships.c.user_id,
            memberships.c.role,
            users.c.email,
        )
        .join(users, users.c.id == memberships.c.user_id)
        .where(memberships.c.is_active.is_(True))
        .order_by(memberships.c.created_at, memberships.c.workspace_id)
    )
    if workspace_id is not None:
        stmt = stmt.where(memberships.c.workspace_id == workspace_id)
    if email is not None:
        stmt = stmt.where(users.c.email == email.strip().lower())
    else:
        stmt = stmt.where(memberships.c.role == "admin")
    return list((await session.execute(stmt.limit(100))).mappings().all())
