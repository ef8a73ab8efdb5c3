"""Tags: a small workspace record; its one rule of its own is a unique name, whatever its case."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import RowMapping

from rapport.records.service import Change, RecordService
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

    async def prepare_create(self, body: TagCreate, **_options: Any) -> dict[str, Any]:
        if await self.repo.name_taken(body.name):
            raise TagNameTaken()
        return body.model_dump()

    async def create(self, body: TagCreate) -> RowMapping:
        row = await self.repo.insert(await self.prepare_create(body))
        await self.after_write("created", row)
        return row

    async def _changes(self, body: TagUpdate, tag_id: uuid.UUID) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("name") is None:
            changes.pop("name", None)  # name is required: null means "leave as is"
        if "name" in changes and await self.repo.name_taken(changes["name"], exclude=tag_id):
            raise TagNameTaken()
        return changes

    async def prepare_update(
        self, body: TagUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        return Change(current, await self._changes(body, current["id"]))

    async def update(self, tag_id: uuid.UUID, body: TagUpdate, expected: int | None) -> RowMapping:
        # No read of the current tag first: the conditional UPDATE checks the version itself.
        return await self.updated(tag_id, await self._changes(body, tag_id), expected)

    async def before_restore(self, row: RowMapping) -> None:
        if await self.repo.name_taken(row["name"]):
            raise TagNameTaken("A live tag already has this name; rename it before restoring.")
