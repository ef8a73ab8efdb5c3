"""What every CRM record service shares: reads with the contract's rules, soft delete, restore,
erase, domain events and search documents kept in step, owners checked, custom fields validated.

A domain subclasses `RecordService`, names its resource, repository, listing and errors, and says
how a row reads (`read`) and what is searchable (`search_document`). Its own rules stay in its own
methods; nothing here is a hidden hook beyond those named below.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.errors import Forbidden, NotFound, PreconditionFailed, ValidationFailed
from rapport.core.listing import Listing, ListParams, Page
from rapport.core.repository import TenantRepository
from rapport.custom_fields.service import CustomFieldValidator
from rapport.identity.models import Membership
from rapport.search import indexer

memberships = Membership.__table__


@dataclass
class SearchDoc:
    title: str
    subtitle: str | None = None
    parts: list[str | None] = field(default_factory=list)
    phones: list[str | None] = field(default_factory=list)


class RecordService(ABC):
    resource: ClassVar[str]  # "company": event names, search documents, custom fields
    repository_class: ClassVar[type[TenantRepository]]
    listing: ClassVar[Listing]
    not_found: ClassVar[type[NotFound]] = NotFound
    searchable: ClassVar[bool] = False

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.workspace_id = principal.workspace_id
        self.repo = self.repository_class(session, principal.workspace_id)
        self.custom_fields = CustomFieldValidator(session, principal.workspace_id, self.resource)

    # -- what a domain says -------------------------------------------------------------------
    @abstractmethod
    def read(self, row: RowMapping) -> dict[str, Any]:
        """The record as the API returns it."""

    def search_document(self, row: RowMapping) -> SearchDoc | None:
        return None

    # -- reads -------------------------------------------------------------------------------
    async def list(self, params: ListParams) -> Page:
        if params.include_deleted and not self.principal.is_admin:
            raise Forbidden("Only admins can list deleted records.")
        extra = (
            await self.custom_fields.filters(self.repo.table.c.custom_fields, params.custom_filters)
            if params.custom_filters
            else []
        )
        return await self.repo.list(self.listing, params, *extra)

    async def get(self, record_id: uuid.UUID, *, include_deleted: bool = False) -> RowMapping:
        row = await self.repo.get(record_id, include_deleted=include_deleted)
        if row is None:
            raise self.not_found()
        return row

    # -- shared checks ------------------------------------------------------------------------
    async def check_member(self, user_id: uuid.UUID | None, field_name: str) -> None:
        """Owners, assignees and authors must be members of the workspace (422 otherwise)."""
        if user_id is None:
            return
        stmt = select(memberships.c.user_id).where(
            memberships.c.workspace_id == self.workspace_id, memberships.c.user_id == user_id
        )
        if (await self.session.execute(stmt)).first() is None:
            raise ValidationFailed(
                "No such user in this workspace.",
                code="invalid_reference",
                details=[
                    {"field": f"body.{field_name}", "reason": "not a member of this workspace"}
                ],
            )

    async def check_record(
        self, repo_class: type[TenantRepository], record_id: uuid.UUID | None, field_name: str
    ) -> None:
        """A referenced record must exist, live, in this workspace (422 otherwise)."""
        if record_id is None:
            return
        if not await repo_class(self.session, self.workspace_id).exists(
            record_id, include_deleted=False
        ):
            raise ValidationFailed(
                "The referenced record does not exist.",
                code="invalid_reference",
                details=[
                    {"field": f"body.{field_name}", "reason": "no such record in this workspace"}
                ],
            )

    async def _missing(self, record_id: uuid.UUID, expected: int | None) -> RowMapping:
        """After a conditional write that touched nothing: 412 when the record exists, else 404."""
        if expected is not None and await self.repo.exists(record_id, include_deleted=False):
            raise PreconditionFailed()
        raise self.not_found()

    async def updated(
        self, record_id: uuid.UUID, changes: dict[str, Any], expected: int | None
    ) -> RowMapping:
        """Apply changes (version bump, If-Match honoured); record the event and reindex."""
        if not changes:
            row = await self.get(record_id)
            if expected is not None and row["version"] != expected:
                raise PreconditionFailed()
            return row
        row = await self.repo.update(record_id, changes, expected_version=expected)
        if row is None:
            await self._missing(record_id, expected)
        assert row is not None
        await self.after_write("updated", row)
        return row

    # -- writes shared by every record --------------------------------------------------------
    async def after_write(self, verb: str, row: RowMapping, **extra: Any) -> None:
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type=f"{self.resource}.{verb}",
            data={**self.read(row), **extra},
            principal=self.principal,
            resource_id=row["id"],
        )
        if self.searchable:
            await self.reindex(row)

    async def reindex(self, row: RowMapping) -> None:
        doc = self.search_document(row)
        if doc is None:
            return
        await indexer.index(
            self.session,
            workspace_id=self.workspace_id,
            resource=self.resource,
            record_id=row["id"],
            title=doc.title,
            subtitle=doc.subtitle,
            parts=doc.parts,
            phones=doc.phones,
            deleted=row.get("deleted_at") is not None,
        )

    async def delete(self, record_id: uuid.UUID, expected: int | None) -> None:
        row = await self.repo.update(record_id, {"deleted_at": utcnow()}, expected_version=expected)
        if row is None:
            await self._missing(record_id, expected)
        assert row is not None
        await self.after_write("deleted", row)

    async def restore(self, record_id: uuid.UUID) -> RowMapping:
        row = await self.get(record_id, include_deleted=True)
        if row["deleted_at"] is None:
            return row
        await self.before_restore(row)
        restored = await self.repo.update(record_id, {"deleted_at": None}, include_deleted=True)
        assert restored is not None
        await self.after_write("restored", restored)
        return restored

    async def before_restore(self, row: RowMapping) -> None:
        """Refuse a restore that would break a uniqueness rule (409); none by default."""
        return None

    async def erase(self, record_id: uuid.UUID) -> None:
        if not self.principal.is_admin:
            raise Forbidden("Only admins can erase records for good.")
        row = await self.get(record_id, include_deleted=True)
        await self.before_erase(row)
        if not await self.repo.erase(record_id):
            raise self.not_found()
        if self.searchable:
            await indexer.remove(
                self.session,
                workspace_id=self.workspace_id,
                resource=self.resource,
                record_id=record_id,
            )
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type=f"{self.resource}.erased",
            data={"id": record_id},
            principal=self.principal,
            resource_id=record_id,
        )

    async def before_erase(self, row: RowMapping) -> None:
        """Detach what references the record (links, timelines) before it is removed for good."""
        return None
