"""Tags: the rules for a small workspace resource, and the pattern every record module follows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.errors import Forbidden, PreconditionFailed
from rapport.core.listing import ListParams, Page
from rapport.tags.errors import TagNameTaken, TagNotFound
from rapport.tags.repository import TAG_LISTING, TagRepository
from rapport.tags.schemas import TagCreate, TagUpdate

FIELDS = ("id", "name", "color", "description", "created_at", "updated_at", "deleted_at", "version")


def tag_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


class TagService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.repo = TagRepository(session, principal.workspace_id)

    async def _event(self, verb: str, row: RowMapping) -> None:
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type=f"tag.{verb}",
            data=tag_read(row),
            principal=self.principal,
            resource_id=row["id"],
        )

    async def _changed(
        self, tag_id: uuid.UUID, row: RowMapping | None, expected: int | None
    ) -> RowMapping:
        """After a conditional write that touched nothing: tell 404 from 412."""
        if row is not None:
            return row
        if expected is not None and await self.repo.exists(tag_id, include_deleted=False):
            raise PreconditionFailed()
        raise TagNotFound()

    async def list(self, params: ListParams) -> Page:
        if params.include_deleted and not self.principal.is_admin:
            raise Forbidden("Only admins can list deleted records.")
        return await self.repo.list(TAG_LISTING, params)

    async def get(self, tag_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(tag_id)
        if row is None:
            raise TagNotFound()
        return row

    async def create(self, body: TagCreate) -> RowMapping:
        if await self.repo.name_taken(body.name):
            raise TagNameTaken()
        row = await self.repo.insert(body.model_dump())
        await self._event("created", row)
        return row

    async def update(self, tag_id: uuid.UUID, body: TagUpdate, expected: int | None) -> RowMapping:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("name") is None:
            changes.pop("name", None)  # name is required: null means "leave as is"
        if "name" in changes and await self.repo.name_taken(changes["name"], exclude=tag_id):
            raise TagNameTaken()
        if not changes:
            row = await self.get(tag_id)
            if expected is not None and row["version"] != expected:
                raise PreconditionFailed()
            return row
        row = await self._changed(
            tag_id, await self.repo.update(tag_id, changes, expected_version=expected), expected
        )
        await self._event("updated", row)
        return row

    async def delete(self, tag_id: uuid.UUID, expected: int | None) -> None:
        row = await self._changed(
            tag_id,
            await self.repo.update(tag_id, {"deleted_at": utcnow()}, expected_version=expected),
            expected,
        )
        await self._event("deleted", row)

    async def restore(self, tag_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(tag_id, include_deleted=True)
        if row is None:
            raise TagNotFound()
        if row["deleted_at"] is None:
            return row
        if await self.repo.name_taken(row["name"]):
            raise TagNameTaken("A live tag already has this name; rename it before restoring.")
        restored = await self.repo.update(tag_id, {"deleted_at": None}, include_deleted=True)
        assert restored is not None
        await self._event("restored", restored)
        return restored

    async def erase(self, tag_id: uuid.UUID) -> None:
        if not self.principal.is_admin:
            raise Forbidden("Only admins can erase records for good.")
        row = await self.repo.get(tag_id, include_deleted=True)
        if row is None or not await self.repo.erase(tag_id):
            raise TagNotFound()
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="tag.erased",
            data={"id": tag_id},
            principal=self.principal,
            resource_id=tag_id,
        )
