"""What every CRM record service shares: reads with the contract's rules, soft delete, restore,
erase, domain events and search documents kept in step, owners checked, custom fields validated.

A domain subclasses `RecordService`, names its resource, repository, listing and errors, and says
how a row reads (`read`) and what is searchable (`search_document`). Its own rules stay in its own
methods; nothing here is a hidden hook beyond those named below.

Writes are split so that one item and a batch of 1000 follow the same rules:
- `prepare_create(body)` / `prepare_update(body, current)` check and normalise one item and return
  what to write; they ask their questions (is this user a member, does this record exist, is this
  email taken) through `check_member`, `check_record` and the domain's uniqueness checks, which a
  bulk write answers for the whole batch beforehand (`preload_*`, one query per kind);
- `after_created(rows)` / `after_updated(pairs)` do everything a write entails (events, search
  documents, the domain's own bookkeeping) for any number of rows, in batched statements.
`create`/`update` run them for one item; `bulk_create`/`bulk_update` (through
`core.bulk.run_batched`) for a batch: checks item by item in order, each seeing the items before it
(`claim_created` / `claim_updated` keep uniqueness in step), then one batched INSERT, the UPDATEs,
one batch of events and one of search documents.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ClauseElement

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.bulk import run_batched
from rapport.core.clock import utcnow
from rapport.core.errors import AppError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from rapport.core.ids import new_id
from rapport.core.listing import Listing, ListParams, Page
from rapport.core.repository import TenantRepository, one_of
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


@dataclass
class Change:
    """One update, checked: the record as it stood before it (`current`), the values to write
    (`changes`, possibly empty) and what the domain noted for its bookkeeping (`notes`)."""

    current: Mapping[str, Any]  # a PATCH that needs nothing of it may hold only its id
    changes: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.current["id"]


class Holders:
    """Who holds each value of a uniqueness rule (a live contact's email, a company's domain)
    during a bulk write: loaded for the batch's values in one query, then kept in step as the
    batch's items take values and give them up, so item n sees the items before it."""

    def __init__(self, values: Iterable[Any], held: Iterable[tuple[Any, uuid.UUID]]) -> None:
        self._known = set(values)
        self._holders: dict[Any, list[uuid.UUID]] = {}
        for value, record_id in held:
            self._holders.setdefault(value, []).append(record_id)

    def knows(self, value: Any) -> bool:
        return value in self._known

    def holder(self, value: Any, exclude: uuid.UUID | None = None) -> uuid.UUID | None:
        for held_by in self._holders.get(value, ()):  # a loop: asked once per item and rule
            if held_by != exclude:
                return held_by
        return None

    def move(self, record_id: uuid.UUID, old: Any, new: Any) -> None:
        if old is not None and record_id in self._holders.get(old, ()):
            self._holders[old].remove(record_id)
        if new is not None:
            self._known.add(new)
            self._holders.setdefault(new, []).append(record_id)


def waves(pairs: Sequence[tuple[Change, RowMapping]]) -> list[list[tuple[Change, RowMapping]]]:
    """Written updates split so that no record is in a wave twice: the n-th update of each record
    goes into wave n. A wave's events are written type by type; across waves, in order, so each
    record's events come in the order one update after another would have written them."""
    out: list[list[tuple[Change, RowMapping]]] = []
    seen: dict[Any, int] = {}
    for pair in pairs:
        n = seen[pair[0].id] = seen.get(pair[0].id, -1) + 1
        if n == len(out):
            out.append([])
        out[n].append(pair)
    return out


def plain_values(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes that are values (not SQL expressions such as `count + 1`)."""
    return {k: v for k, v in changes.items() if not isinstance(v, ClauseElement)}


class RecordService(ABC):
    resource: ClassVar[str]  # "company": event names, search documents, custom fields
    repository_class: ClassVar[type[TenantRepository]]
    listing: ClassVar[Listing]
    not_found: ClassVar[type[NotFound]] = NotFound
    searchable: ClassVar[bool] = False
    # What a bulk write looks up for the whole batch before checking its items: the fields that
    # name workspace members, and the fields that name records (with the repository of each).
    member_fields: ClassVar[tuple[str, ...]] = ()
    record_fields: ClassVar[dict[str, type[TenantRepository]]] = {}

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.workspace_id = principal.workspace_id
        self.repo = self.repository_class(session, principal.workspace_id)
        self.custom_fields = CustomFieldValidator(session, principal.workspace_id, self.resource)
        self._members: dict[uuid.UUID, bool] = {}
        self._records: dict[type[TenantRepository], dict[uuid.UUID, bool]] = {}
        self._current: dict[uuid.UUID, Any] = {}

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
        known = self._members.get(user_id)
        if known is None:
            stmt = select(memberships.c.user_id).where(
                memberships.c.workspace_id == self.workspace_id, memberships.c.user_id == user_id
            )
            known = (await self.session.execute(stmt)).first() is not None
        if not known:
            raise ValidationFailed(
                "No such user in this workspace.",
                code="invalid_reference",
                details=[
                    {"field": f"body.{field_name}", "reason": "not a member of this workspace"}
                ],
            )

    async def record_exists(self, repo_class: type[TenantRepository], record_id: uuid.UUID) -> bool:
        """Whether the record lives in this workspace (answered from a bulk write's lookup)."""
        known = self._records.get(repo_class, {}).get(record_id)
        if known is not None:
            return known
        return await repo_class(self.session, self.workspace_id).exists(
            record_id, include_deleted=False
        )

    async def check_record(
        self, repo_class: type[TenantRepository], record_id: uuid.UUID | None, field_name: str
    ) -> None:
        """A referenced record must exist, live, in this workspace (422 otherwise)."""
        if record_id is None:
            return
        if not await self.record_exists(repo_class, record_id):
            raise ValidationFailed(
                "The referenced record does not exist.",
                code="invalid_reference",
                details=[
                    {"field": f"body.{field_name}", "reason": "no such record in this workspace"}
                ],
            )

    # -- lookups for a whole batch ------------------------------------------------------------
    async def preload_members(self, ids: Iterable[uuid.UUID | None]) -> None:
        """Which of these users are members: one query, remembered for this service's checks."""
        wanted = {i for i in ids if i is not None} - self._members.keys()
        if not wanted:
            return
        stmt = select(memberships.c.user_id).where(
            memberships.c.workspace_id == self.workspace_id,
            one_of(self.session, memberships.c.user_id, sorted(wanted, key=str)),
        )
        found = {uuid.UUID(str(u)) for u in (await self.session.execute(stmt)).scalars()}
        for user_id in wanted:
            self._members[user_id] = user_id in found

    async def preload_records(
        self, repo_class: type[TenantRepository], ids: Iterable[uuid.UUID | None]
    ) -> None:
        """Which of these records live in this workspace: one query, remembered."""
        known = self._records.setdefault(repo_class, {})
        wanted = {i for i in ids if i is not None} - known.keys()
        if not wanted:
            return
        repo = repo_class(self.session, self.workspace_id)
        column = repo.table.c.id
        stmt = repo.select(column).where(one_of(self.session, column, sorted(wanted, key=str)))
        found = {uuid.UUID(str(i)) for i in (await self.session.execute(stmt)).scalars()}
        for record_id in wanted:
            known[record_id] = record_id in found

    async def preload_references(self, bodies: Sequence[BaseModel]) -> None:
        """The members and records the bodies name (`member_fields`, `record_fields`)."""
        if self.member_fields:
            await self.preload_members(
                getattr(b, name, None) for b in bodies for name in self.member_fields
            )
        for name, repo_class in self.record_fields.items():
            await self.preload_records(repo_class, (getattr(b, name, None) for b in bodies))

    def end_batch(self) -> None:
        """Forget what a bulk write looked up (before a fallback to the per-item path)."""
        self._members.clear()
        self._records.clear()
        self._current.clear()

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

    # -- creates and updates, one or many -----------------------------------------------------
    @abstractmethod
    async def prepare_create(self, body: Any, **options: Any) -> dict[str, Any]:
        """Check one new record and return the values to insert (raises the domain's errors)."""

    def claim_created(self, values: dict[str, Any]) -> None:
        """In a bulk write: the new record now holds its unique values (emails, domains)."""
        return None

    async def after_created(
        self, rows: Sequence[RowMapping], reads: Sequence[dict[str, Any]] | None = None
    ) -> None:
        """Everything creating these records entails: events, search documents, bookkeeping.
        `reads`: the rows as the API returns them, when the caller has them already."""
        await self.after_write_many("created", rows, reads=reads)

    async def insert_rows(self, values: Sequence[dict[str, Any]]) -> list[RowMapping]:
        return await self.repo.insert_returning(values)

    @abstractmethod
    async def prepare_update(
        self, body: Any, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        """Check one update of `current` and return it (raises the domain's errors)."""

    def claim_updated(self, change: Change) -> None:
        """In a bulk write: the updated record now holds its new unique values."""
        return None

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        """Everything these updates entail; `pairs` are (change, row as written), in order."""
        await self.after_write_many("updated", [row for _, row in pairs])

    async def update_rows(
        self, items: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> list[RowMapping | None]:
        """The UPDATEs of a bulk write, in order (one statement each; each bumps the version)."""
        return [await self.repo.update(record_id, values) for record_id, values in items]

    async def load_current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
        """The live records a bulk update names, locked until commit, in one query (id order,
        so two bulk updates lock shared rows in the same order)."""
        table = self.repo.table
        stmt = (
            self.repo.select()
            .where(one_of(self.session, table.c.id, sorted(set(ids), key=str)))
            .order_by(table.c.id)
            .with_for_update(of=table)
        )
        rows = (await self.session.execute(stmt)).mappings().all()
        return {uuid.UUID(str(row["id"])): row for row in rows}

    async def apply_update(self, change: Change, expected: int | None) -> RowMapping:
        """Write one checked update (If-Match honoured) and everything it entails."""
        record_id = change.id
        if not change.changes:
            row = await self.get(record_id)
            if expected is not None and row["version"] != expected:
                raise PreconditionFailed()
            return row
        row = await self.repo.update(record_id, change.changes, expected_version=expected)
        if row is None:
            await self._missing(record_id, expected)
        assert row is not None
        await self.after_updated([(change, row)])
        return row

    # -- bulk ---------------------------------------------------------------------------------
    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        """A bulk create's lookups for the whole batch; domains add their uniqueness keys."""
        await self.preload_references(bodies)

    async def preload_updates(self, bodies: Sequence[Any]) -> None:
        """A bulk update's lookups: the records themselves (locked), then their references."""
        self._current.update(await self.load_current([b.id for b in bodies]))
        await self.preload_references(bodies)

    async def bulk_create_items(
        self,
        items: list[dict[str, Any]],
        schema: type[BaseModel],
        atomic: bool,
        mark: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Bulk create through `run_batched`: one batched INSERT for the valid items. Each
        result is the record as read (and as its event carries it), with `mark` added."""

        def marked(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, **mark} if mark else data

        async def prepare(body: Any, _index: int) -> dict[str, Any]:
            values = await self.prepare_create(body, **options)
            values.setdefault("id", new_id())
            self.claim_created(values)
            return values

        async def write(plans: list[dict[str, Any]]) -> list[dict[str, Any] | AppError]:
            # Each COPY (records, events, search documents) is written by the server while the
            # next one's rows are made here (`run_batched` sends them ahead).
            rows = await self.insert_rows(plans)
            reads = [self.read(row) for row in rows]
            await self.after_created(rows, reads)  # the events' payloads copy these reads
            return [marked(r) for r in reads]

        async def one(body: Any, _index: int) -> dict[str, Any]:
            self.end_batch()
            return marked(self.read(await self.create(body, **options)))  # type: ignore[attr-defined]

        try:
            return await run_batched(
                self.session,
                items,
                schema,
                atomic=atomic,
                preload=lambda bodies: self.preload_creates(bodies, **options),
                prepare=prepare,
                write=write,
                fallback=one,
            )
        finally:
            self.end_batch()

    async def prepare_bulk_update(
        self, body: Any, record_id: uuid.UUID | None = None, sent: set[str] | None = None
    ) -> Change:
        """One item of a bulk update, checked against the record as the items before it left
        it (the same record may appear twice)."""
        record_id = body.id if record_id is None else record_id
        current = self._current.get(record_id)
        if current is None:
            raise self.not_found()
        change = await self.prepare_update(body, current, sent)
        self._current[record_id] = {**current, **plain_values(change.changes)}
        self.claim_updated(change)
        return change

    async def write_updates(self, changes: Sequence[Change]) -> list[RowMapping | AppError]:
        """The UPDATEs of a bulk write in order, then what they entail in batches; each item's
        row as written (an item without changes: the record as the items before it left it)."""
        written = await self.update_rows([(c.id, c.changes) for c in changes if c.changes])
        latest: dict[uuid.UUID, RowMapping] = {}
        out: list[RowMapping | AppError] = []
        pairs: list[tuple[Change, RowMapping]] = []
        rows = iter(written)
        for change in changes:
            if not change.changes:
                out.append(latest.get(change.id, change.current))
                continue
            row = next(rows)
            if row is None:  # gone since it was locked: only an erase in the same request
                out.append(self.not_found())
                continue
            latest[change.id] = row
            pairs.append((change, row))
            out.append(row)
        for wave in waves(pairs):
            await self.after_updated(wave)
        return out

    async def bulk_update_items(
        self, items: list[dict[str, Any]], schema: type[BaseModel], atomic: bool
    ) -> dict[str, Any]:
        """Bulk update through `run_batched`: the records loaded in one query, then the UPDATEs
        (one statement each) and batched events and search documents."""

        async def prepare(body: Any, _index: int) -> Change:
            return await self.prepare_bulk_update(body)

        async def write(plans: list[Change]) -> list[dict[str, Any] | AppError]:
            return [
                r if isinstance(r, AppError) else self.read(r)
                for r in await self.write_updates(plans)
            ]

        async def one(body: Any, _index: int) -> dict[str, Any]:
            self.end_batch()
            return self.read(await self.update(body.id, body, None))  # type: ignore[attr-defined]

        try:
            return await run_batched(
                self.session,
                items,
                schema,
                atomic=atomic,
                preload=self.preload_updates,
                prepare=prepare,
                write=write,
                fallback=one,
            )
        finally:
            self.end_batch()

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

    async def after_write_many(
        self,
        verb: str,
        rows: Sequence[RowMapping],
        *,
        reindex: bool = True,
        reads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """`after_write` for many rows: one batch of events, one of search documents (`reads`:
        the rows as the API returns them, if the caller made them already)."""
        if not rows:
            return
        payloads = reads if reads is not None else [self.read(row) for row in rows]
        await events.record_many(
            self.session,
            workspace_id=self.workspace_id,
            type=f"{self.resource}.{verb}",
            items=[(row["id"], payload) for row, payload in zip(rows, payloads, strict=True)],
            principal=self.principal,
        )
        if self.searchable and reindex:
            await self.reindex_many(rows, fresh=verb == "created")

    async def reindex_many(self, rows: Sequence[RowMapping], *, fresh: bool = False) -> None:
        """Search documents of many rows in one batched upsert (the last row of a record wins);
        `fresh`: the records were just created and have none yet."""
        latest = {row["id"]: row for row in rows}
        documents = []
        for row in latest.values():
            doc = self.search_document(row)
            if doc is not None:
                documents.append(
                    (
                        row["id"],
                        doc.title,
                        doc.subtitle,
                        doc.parts,
                        doc.phones,
                        row.get("deleted_at") is not None,
                    )
                )
        await indexer.index_many(
            self.session,
            workspace_id=self.workspace_id,
            resource=self.resource,
            documents_=documents,
            fresh=fresh,
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
