"""Tags: a small workspace record; its one rule of its own is a unique name, whatever its case."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import RowMapping

from rapport.records.service import RecordService
from rapport.tags.errors import TagNameTaken, TagNotFound
from rapport.tags.repository import TAG_LISTING, TagRepository
from rapport.tags.schemas import TagCreate, TagUpdate

FIELDS = ("id", "name", "color", "description", "created_at", "updated_at", "deleted_at", "version")


def tag_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


class TagService(RecordService):
    resource = "tag"
    repository_class = TagRepository
    listing = TAG_LISTING
    not_found = TagNotFound
    repo: TagRepository

    def read(self, row: RowMapping) -> dict[str, Any]:
        return tag_read(row)

    async def create(self, body: TagCreate) -> RowMapping:
        if await self.repo.name_taken(body.name):
            raise TagNameTaken()
        row = await self.repo.insert(body.model_dump())
        await self.after_write("created", row)
        return row

    async def update(self, tag_id: uuid.UUID, body: TagUpdate, expected: int | None) -> RowMapping:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("name") is None:
            changes.pop("name", None)  # name is required: null means "leave as is"
        if "name" in changes and await self.repo.name_taken(changes["name"], exclude=tag_id):
            raise TagNameTaken()
        return await self.updated(tag_id, changes, expected)

    async def before_restore(self, row: RowMapping) -> None:
        if await self.repo.name_taken(row["name"]):
            raise TagNameTaken("A live tag already has this name; rename it before restoring.")
