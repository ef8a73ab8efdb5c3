"""Tasks: to-dos with a due date, a status, a priority, an assignee and at most one related
record. `completed_at` is set when a task is done and cleared when it is reopened; finishing one
also records `task.completed`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import RowMapping

from rapport.activities.repository import RECORD_REPOSITORIES
from rapport.core.clock import utcnow
from rapport.core.errors import ValidationFailed
from rapport.records.service import Change, RecordService, SearchDoc
from rapport.tasks.errors import TaskNotFound
from rapport.tasks.repository import TASK_LISTING, TaskRepository
from rapport.tasks.schemas import RELATED, RELATED_RULE, TaskBulkUpdate, TaskCreate, TaskUpdate

FIELDS = (
    "id",
    "title",
    "description",
    "due_at",
    "status",
    "priority",
    "assignee_id",
    "contact_id",
    "company_id",
    "lead_id",
    "deal_id",
    "completed_at",
    "tags",
    "custom_fields",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)
REQUIRED = ("title", "status", "priority")  # null in a PATCH leaves these as they are
SEARCHED_DESCRIPTION = 2000


def task_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


class TaskService(RecordService):
    resource = "task"
    repository_class = TaskRepository
    listing = TASK_LISTING
    not_found = TaskNotFound
    searchable = True
    member_fields = ("assignee_id",)
    record_fields = {field: RECORD_REPOSITORIES[field] for field in RELATED}
    repo: TaskRepository

    def read(self, row: RowMapping) -> dict[str, Any]:
        return task_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        return SearchDoc(
            title=row["title"],
            subtitle=row["status"],
            parts=[(row["description"] or "")[:SEARCHED_DESCRIPTION]],
        )

    async def _check_related(self, values: dict[str, Any], current: RowMapping | None) -> None:
        for field in RELATED:
            if field in values and (current is None or values[field] != current[field]):
                await self.check_record(RECORD_REPOSITORIES[field], values[field], field)

    async def prepare_create(self, body: TaskCreate, **_options: Any) -> dict[str, Any]:
        values = body.model_dump(exclude={"custom_fields"})
        await self._check_related(values, None)
        await self.check_member(body.assignee_id, "assignee_id")
        values["completed_at"] = utcnow() if body.status == "done" else None
        values["custom_fields"] = await self.custom_fields.validate(body.custom_fields)
        return values

    async def create(self, body: TaskCreate) -> RowMapping:
        row = await self.repo.insert(await self.prepare_create(body))
        await self.after_created([row])
        return row

    async def update(
        self, task_id: uuid.UUID, body: TaskUpdate, expected: int | None
    ) -> RowMapping:
        current = await self.get(task_id)
        return await self.apply_update(await self.prepare_update(body, current), expected)

    async def prepare_update(
        self, body: TaskUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        changes = {
            name: getattr(body, name)
            for name in sent
            if not (name in REQUIRED and getattr(body, name) is None)
        }
        if sum(changes.get(f, current[f]) is not None for f in RELATED) > 1:
            raise ValidationFailed(
                "A task relates to one record at most; set the other links to null.",
                details=[
                    {"field": f"body.{f}", "reason": RELATED_RULE}
                    for f in RELATED
                    if changes.get(f) is not None
                ],
            )
        await self._check_related(changes, current)
        if "assignee_id" in changes and changes["assignee_id"] != current["assignee_id"]:
            await self.check_member(changes["assignee_id"], "assignee_id")
        completed = False
        if changes.get("status", current["status"]) != current["status"]:
            completed = changes["status"] == "done"
            changes["completed_at"] = utcnow() if completed else None
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "custom_fields" in changes:
            changes["custom_fields"] = await self.custom_fields.validate(
                body.custom_fields or {}, current["custom_fields"]
            )
        return Change(current, changes, {"completed": completed})

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await super().after_updated(pairs)
        done = [row for c, row in pairs if c.notes["completed"]]
        # Its search document was just written with the same row.
        await self.after_write_many("completed", done, reindex=False)

    # -- bulk -----------------------------------------------------------------------------------
    async def bulk_create(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_create_items(items, TaskCreate, atomic)

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, TaskBulkUpdate, atomic)
