"""Activities: calls, emails, meetings, notes and SMS on the timelines of the records they name.

Each live activity counts once in its lead's `activity_count`: every write that makes an activity
live on a lead, or takes it away, moves the count in the same transaction with one atomic
`UPDATE lead SET activity_count = activity_count + delta`. A contact's `last_activity_at` follows
its latest live activity the same way.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from rapport.activities.errors import ActivityNotFound, TimelineRecordNotFound
from rapport.activities.repository import (
    ACTIVITY_LISTING,
    RECORD_REPOSITORIES,
    ActivityRepository,
    ContactRef,
    LeadRef,
)
from rapport.activities.schemas import LINKS, ActivityBulkUpdate, ActivityCreate, ActivityUpdate
from rapport.core.clock import utcnow
from rapport.core.errors import PreconditionFailed, ValidationFailed
from rapport.core.listing import Condition, ListParams, Page
from rapport.records.service import Change, RecordService, SearchDoc

FIELDS = (
    "id",
    "kind",
    "direction",
    "subject",
    "body",
    "duration_minutes",
    "occurred_at",
    "contact_id",
    "company_id",
    "lead_id",
    "deal_id",
    "author_id",
    "tags",
    "custom_fields",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)
SEARCHED_BODY = 2000  # characters of the body kept in the search document
UPDATE_ATTEMPTS = 5


def activity_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


def _key(value: Any) -> uuid.UUID:
    """One id type whatever the driver returned (asyncpg has its own UUID class)."""
    return uuid.UUID(str(value))


class ActivityService(RecordService):
    resource = "activity"
    repository_class = ActivityRepository
    listing = ACTIVITY_LISTING
    not_found = ActivityNotFound
    searchable = True
    member_fields = ("author_id",)
    record_fields = RECORD_REPOSITORIES
    repo: ActivityRepository

    def read(self, row: RowMapping) -> dict[str, Any]:
        return activity_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        return SearchDoc(
            title=row["subject"] or row["kind"],
            subtitle=row["kind"],
            parts=[(row["body"] or "")[:SEARCHED_BODY]],
        )

    # -- reads ----------------------------------------------------------------------------------
    async def timeline(self, field: str, record_id: uuid.UUID, params: ListParams) -> Page:
        """The activities naming one record (field: "contact_id", ...); 404 with the record's
        own code when it is not in the caller's workspace."""
        repo = RECORD_REPOSITORIES[field](self.session, self.workspace_id)
        include_deleted = params.include_deleted and self.principal.is_admin
        if not await repo.exists(record_id, include_deleted=include_deleted):
            raise TimelineRecordNotFound(field.removesuffix("_id"))
        params.filters.append(Condition(self.repo.table.c[field], "eq", record_id))
        return await self.list(params)

    # -- bookkeeping on the records an activity names -------------------------------------------
    async def _follow(self, before: RowMapping | None, after: RowMapping | None) -> None:
        """Keep lead counts and contact times in step when an activity goes from `before` to
        `after` (each the live state, or None when it was not or is no longer live)."""
        await self._follow_many([(before, after)])

    async def _follow_many(
        self, moves: Sequence[tuple[RowMapping | None, RowMapping | None]]
    ) -> None:
        """`_follow` for many activity writes at once, made after all of them: the lead counts
        move by their summed deltas (one batched statement), contacts are moved forward to their
        newest activity (one), and those that lost one are recounted from their live activities
        (one)."""
        leads: Counter[uuid.UUID] = Counter()
        touched: dict[uuid.UUID, datetime] = {}
        recount: dict[uuid.UUID, None] = {}
        for before, after in moves:
            if before is not None and before["lead_id"] is not None:
                leads[_key(before["lead_id"])] -= 1
            if after is not None and after["lead_id"] is not None:
                leads[_key(after["lead_id"])] += 1
            old = before["contact_id"] if before is not None else None
            new = after["contact_id"] if after is not None else None
            if old is not None and (
                new is None
                or _key(new) != _key(old)
                or (after is not None and after["occurred_at"] < before["occurred_at"])
            ):
                recount[_key(old)] = None
            if new is not None and after is not None:
                key, at = _key(new), after["occurred_at"]
                touched[key] = max(at, touched.get(key, at))
        await LeadRef(self.session, self.workspace_id).add_activities(leads)
        contacts = ContactRef(self.session, self.workspace_id)
        # Forward moves first: a recount (exact, from the rows as now written) has the last word.
        await contacts.touch_last_activities(touched)
        await contacts.recount_last_activities(list(recount))

    # -- writes ---------------------------------------------------------------------------------
    async def _check_links(self, values: dict[str, Any], current: RowMapping | None) -> None:
        for field in LINKS:
            if field in values and (current is None or values[field] != current[field]):
                await self.check_record(RECORD_REPOSITORIES[field], values[field], field)

    async def prepare_create(self, body: ActivityCreate, **_options: Any) -> dict[str, Any]:
        values = body.model_dump(exclude={"custom_fields"})
        await self._check_links(values, None)
        values["author_id"] = body.author_id or self.principal.user_id
        await self.check_member(values["author_id"], "author_id")
        values["occurred_at"] = body.occurred_at or utcnow()
        values["custom_fields"] = await self.custom_fields.validate(body.custom_fields)
        return values

    async def create(self, body: ActivityCreate) -> RowMapping:
        row = await self.repo.insert(await self.prepare_create(body))
        await self.after_created([row])
        return row

    async def after_created(
        self, rows: Sequence[RowMapping], reads: Sequence[dict[str, Any]] | None = None
    ) -> None:
        await self._follow_many([(None, row) for row in rows])
        await self.after_write_many("created", rows, reads=reads)

    async def prepare_update(
        self, body: ActivityUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        changes: dict[str, Any] = {}
        for name in sent:
            value = getattr(body, name)
            if name in ("kind", "occurred_at") and value is None:
                continue  # required: null leaves it as is
            changes[name] = value
        touched = [f for f in LINKS if f in changes]
        if touched and all(changes.get(f, current[f]) is None for f in LINKS):
            raise ValidationFailed(
                "An activity names at least one record.",
                details=[
                    {"field": f"body.{f}", "reason": "one of the links must stay set"}
                    for f in touched
                ],
            )
        await self._check_links(changes, current)
        if "author_id" in changes and changes["author_id"] != current["author_id"]:
            await self.check_member(changes["author_id"], "author_id")
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "custom_fields" in changes:
            changes["custom_fields"] = await self.custom_fields.validate(
                body.custom_fields or {}, current["custom_fields"]
            )
        return Change(current, changes)

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await self._follow_many([(c.current, row) for c, row in pairs])
        await self.after_write_many("updated", [row for _, row in pairs])

    async def update(
        self, activity_id: uuid.UUID, body: ActivityUpdate, expected: int | None
    ) -> RowMapping:
        # The write is conditional on the version read, so the counts move from the state the
        # write really replaced; a concurrent change in between means read again and retry.
        # (A bulk update locks the rows it loads instead.)
        for _ in range(UPDATE_ATTEMPTS):
            current = await self.get(activity_id)
            if expected is not None and current["version"] != expected:
                raise PreconditionFailed()
            change = await self.prepare_update(body, current)
            if not change.changes:
                return current
            row = await self.repo.update(
                activity_id, change.changes, expected_version=current["version"]
            )
            if row is not None:
                await self.after_updated([(change, row)])
                return row
        raise PreconditionFailed("The activity keeps changing; read it again and retry.")

    async def delete(self, record_id: uuid.UUID, expected: int | None) -> None:
        row = await self.repo.update(record_id, {"deleted_at": utcnow()}, expected_version=expected)
        if row is None:
            await self._missing(record_id, expected)
        assert row is not None
        await self._follow(row, None)
        await self.after_write("deleted", row)

    async def restore(self, record_id: uuid.UUID) -> RowMapping:
        row = await self.repo.restore(record_id)
        if row is None:  # live already (returned as is), or missing (404)
            return await self.get(record_id)
        await self._follow(None, row)
        await self.after_write("restored", row)
        return row

    async def erase(self, record_id: uuid.UUID) -> None:
        # Locked first, so a concurrent delete or move cannot change what the counts undo.
        row = await self.repo.lock(record_id)
        await super().erase(record_id)
        if row is not None and row["deleted_at"] is None:
            await self._follow(row, None)

    # -- bulk -----------------------------------------------------------------------------------
    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        # The default author (the caller) too, in the same query.
        await self.preload_members([self.principal.user_id, *(b.author_id for b in bodies)])
        await super().preload_creates(bodies, **options)

    async def bulk_create(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_create_items(items, ActivityCreate, atomic)

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, ActivityBulkUpdate, atomic)
