"""The import and export jobs.

An import reads its file in chunks of at most `import_chunk_rows` records. Each chunk is one
transaction: it moves the import's checkpoint (byte offset and line reached) from where the last
chunk left it, writes the chunk's records through the resource's bulk path (`atomic=False`: the
good rows are written, each bad one reported), stores the chunk's errors and counters, and now and
then an `import.progress` event. A run that dies loses at most its open chunk; the next run starts
from the checkpoint, and the conditional checkpoint move makes a chunk count once even if two
runners met (only one moves the offset).

Phases: `counting` (one pass: the total, and the file is readable CSV all the way through), then
`validating` for a dry run or a strict import (every chunk is written inside a savepoint that is
rolled back: the same checks as a real write, nothing kept), then `importing`. A strict import that
met any bad row fails after validation with nothing written. Duplicates across chunks cannot be
seen by a rolled-back chunk, so validation keeps the keys (emails, domains) it has passed in a
scratch SQLite file beside the upload, not in memory.

A run works for at most `import_slice_seconds`, then gives up its lock and asks the job runner to
call it again (`jobs.Retry`): a million-row import never outlives its job lease.

The next chunk is read from the file, made into items and validated while the current one is
written: the reading goes a slice at a time, and between slices the chunk being written takes
whatever step the database's answer allows, so the reading fills the time that chunk waits on the
database (its last COPYs, its commit) instead of following it. The bulk path takes the validated
models as they are.

The job acts as the user who started the import, with the weaker of the role they had then and the
role they have now; a user who is no longer an active member with write access fails the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events, jobs
from rapport.core.auth import Principal, Role, weaker_role
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database, UnitOfWork, plan_each_statement
from rapport.core.errors import AppError
from rapport.core.ids import new_id
from rapport.core.observability import log
from rapport.custom_fields.service import CustomFieldValidator
from rapport.imports.csvio import CsvFileError, Record, RecordReader
from rapport.imports.repository import (
    ACTIVE,
    ExportRepository,
    ImportErrorRepository,
    ImportRepository,
    imports,
    live_keys,
    member_role,
)
from rapport.imports.resources import (
    ADDRESS,
    CUSTOM,
    RESOURCES,
    ResourceSpec,
    build_item,
    export_row,
)
from rapport.imports.service import (
    export_params,
    export_path,
    export_read,
    import_path,
    import_read,
    seen_path,
)

Clock = Callable[[], datetime]
LEASE = timedelta(minutes=10)
EXPORT_LEASE = timedelta(hours=1)
WRITERS = frozenset({Role.admin, Role.member})
READERS = frozenset({Role.admin, Role.member, Role.viewer})
COUNT_YIELD = 20_000  # records counted between two yields to the event loop
# Records read ahead between two yields to the chunk being written: a slice (0.15 ms) is the most
# it delays that chunk's next step.
READ_SLICE = 10
MAX_REASON = 1000


@dataclass(frozen=True)
class Outcome:
    """What a run ended with: the import is finished, paused (call again now), or locked by
    another runner until `at`."""

    state: Literal["finished", "paused", "busy"]
    at: datetime | None = None


async def actor(
    session: AsyncSession, row: Mapping[str, Any], allowed: frozenset[Role]
) -> Principal | None:
    """The principal a job acts as: who started it, with the weaker of the role they had then and
    the role they have now (None if they may no longer do it)."""
    current = await member_role(session, row["workspace_id"], row["created_by"])
    if current is None:
        return None
    role = weaker_role(Role(row["role"]), Role(current))
    if role not in allowed:
        return None
    return Principal(
        user_id=row["created_by"],
        workspace_id=row["workspace_id"],
        role=role,
        credential=row["actor_type"],
        credential_id=row["credential_id"],
    )


def recorded_principal(row: Mapping[str, Any]) -> Principal:
    """Who the events of a run are attributed to, whatever their rights now."""
    return Principal(
        user_id=row["created_by"],
        workspace_id=row["workspace_id"],
        role=Role(row["role"]),
        credential=row["actor_type"],
        credential_id=row["credential_id"],
    )


# -- the keys validation has passed ------------------------------------------------------------
class SeenKeys:
    """Dedupe keys of rows a validation pass accepted, with the line of the first, in a scratch
    SQLite file: bounded memory at a million rows, and it survives a resumed run. Entries at or
    past a chunk's first line are ignored, so a chunk redone after a crash does not see itself."""

    BATCH = 500

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )

    def earlier(self, keys: Iterable[str], before_line: int) -> dict[str, int]:
        wanted = sorted(set(keys))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), self.BATCH):
            batch = wanted[start : start + self.BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                f"SELECT key, line FROM seen WHERE key IN ({marks}) AND line < ?",  # noqa: S608
                [*batch, before_line],
            )
            found.update(dict(rows))
        return found

    def add(self, pairs: Sequence[tuple[str, int]]) -> None:
        if pairs:
            self.conn.executemany("INSERT OR IGNORE INTO seen (key, line) VALUES (?, ?)", pairs)
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# -- mapping bulk results back to the file -------------------------------------------------------
def field_of(path: str | None) -> str | None:
    """A bulk error's field path → the resource field it names: `body.items.3.address.city` →
    `address.city`, `body.custom_fields.tier` → `cf.tier`, `body.items.3` → None."""
    if not path:
        return None
    parts = path.split(".")
    if parts and parts[0] == "body":
        parts = parts[1:]
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit():
        parts = parts[2:]
    if not parts:
        return None
    if parts[0] == "custom_fields" and len(parts) > 1:
        return CUSTOM + parts[1]
    if parts[0] == "address" and len(parts) > 1:
        return ADDRESS + parts[1]
    return parts[0]


@dataclass
class Pending:
    record: Record
    item: dict[str, Any]
    key: str | None
    updates_earlier: bool = False  # validation: a real run would update the contact of a row above
    # The item validated with the resource's create schema while read ahead; None if it is not
    # valid (the bulk path validates it again and reports why, as for any item).
    model: BaseModel | None = None


@dataclass
class ChunkRead:
    """A chunk as read from the file: its records, the items made of them, the cells refused
    on the way; or the file's error met while reading it (raised when the chunk's turn comes, so
    the chunk before it is written first, as when nothing was read ahead)."""

    records: list[Record]
    pending: list[Pending]
    result: ChunkResult
    error: CsvFileError | None = None


@dataclass
class ChunkResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: set[int] = field(default_factory=set)
    errors: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[tuple[str, int]] = field(default_factory=list)  # (key, line) written

    def refuse(self, record: Record, column: str | None, field_: str | None, reason: str) -> None:
        self.failed.add(record.line)
        self.errors.append(
            {
                "line": record.line,
                "column": column[:200] if column else None,
                "field": field_[:200] if field_ else None,
                "reason": reason[:MAX_REASON],
                "row": record.values,
            }
        )


class ImportRun:
    """Runs one import (or the next slice of it). The job calls it; so does `rapport import`."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        now: Clock = utcnow,
        on_progress: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.on_progress = on_progress

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work's transaction: the resources' bulk paths write through it as they do
        for `POST /{records}/bulk` (COPY on PostgreSQL)."""
        async with UnitOfWork.transaction(self.db) as session:
            yield session

    # -- the run -------------------------------------------------------------------------------
    async def run(self, workspace_id: uuid.UUID, import_id: uuid.UUID) -> Outcome:
        token = new_id()
        now = self.now()
        async with self.transaction() as session:
            repo = ImportRepository(session, workspace_id)
            row = await repo.claim(import_id, token, now, now + LEASE)
            current = row or await repo.get(import_id)
        if row is None:
            if current is None or current["status"] not in ACTIVE:
                return Outcome("finished")
            return Outcome("busy", current["locked_until"])
        try:
            return await self._work(row, token)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._set(row, token, {"lock_token": None, "locked_until": None})
            raise

    async def _work(self, row: RowMapping, token: uuid.UUID) -> Outcome:
        started = time.monotonic()
        path = import_path(self.settings, row["id"])
        async with self.db.read_sessions() as session:
            principal = await actor(session, row, WRITERS)
            spec = RESOURCES[row["resource"]]
            definitions = await CustomFieldValidator(
                session, row["workspace_id"], spec.record
            ).definitions()
        if principal is None:
            return await self._finish(
                row, token, "failed", "The user who started the import can no longer write records."
            )
        if not path.exists():
            return await self._finish(
                row, token, "failed", "The uploaded file is missing (is data_dir shared?)."
            )
        if row["started_at"] is None:
            row = await self._set(row, token, {"started_at": self.now()})
        if row["total"] is None:
            row = await self._set(row, token, {"phase": "counting"})
            try:
                total = await self._count(path, row)
            except CsvFileError as exc:
                return await self._finish(row, token, "failed", f"Line {exc.line} {exc.reason}.")
            first = "validating" if row["dry_run"] or row["strict"] else "importing"
            row = await self._set(row, token, {"total": total, "phase": first})
        last_event = time.monotonic()
        while True:
            validating = row["phase"] == "validating"
            seen = SeenKeys(seen_path(self.settings, row["id"])) if validating else None
            try:
                row, state, last_event = await self._pass(
                    row, token, spec, principal, definitions, seen, started, last_event
                )
            except CsvFileError as exc:
                return await self._finish(row, token, "failed", f"Line {exc.line} {exc.reason}.")
            finally:
                if seen is not None:
                    seen.close()
            if state != "done":
                return Outcome(state)  # type: ignore[arg-type]
            if not validating:
                return await self._finish(row, token, "completed")
            if row["dry_run"]:
                return await self._finish(row, token, "completed")
            if row["errors"]:
                return await self._finish(
                    row,
                    token,
                    "failed",
                    f"{row['errors']} rows were refused, so nothing was imported (strict).",
                    {"created": 0, "updated": 0, "skipped": 0},  # what would have been: not done
                )
            _remove(seen_path(self.settings, row["id"]))
            row = await self._set(
                row,
                token,
                {
                    "phase": "importing",
                    "byte_offset": 0,
                    "line": 0,
                    "processed": 0,
                    "created": 0,
                    "updated": 0,
                    "skipped": 0,
                },
            )

    async def _count(self, path: Path, row: RowMapping) -> int:
        """Records after the header; reading them all also proves the file is readable CSV."""
        total = 0
        with RecordReader(path, encoding=row["encoding"], delimiter=row["delimiter"]) as reader:
            next(reader, None)
            for _ in reader:
                total += 1
                if total % COUNT_YIELD == 0:
                    await asyncio.sleep(0)
        return total

    async def _pass(
        self,
        row: RowMapping,
        token: uuid.UUID,
        spec: ResourceSpec,
        principal: Principal,
        definitions: Mapping[str, Any],
        seen: SeenKeys | None,
        started: float,
        last_event: float,
    ) -> tuple[RowMapping, str, float]:
        """Chunks from the checkpoint to the end of the file (`done`), or until the slice is used
        up (`paused`) or the lock is lost (`finished`)."""
        header = row["columns"]
        positions = {name: i for i, name in enumerate(header)}
        columns = [(positions[c], f) for c, f in row["mapping"].items() if c in positions]
        reverse = {f: c for c, f in row["mapping"].items()}
        size = self.settings.import_chunk_rows
        width = len(header)
        with RecordReader(
            import_path(self.settings, row["id"]),
            encoding=row["encoding"],
            delimiter=row["delimiter"],
            offset=row["byte_offset"],
            lines=row["line"],
        ) as reader:
            if row["byte_offset"] == 0:
                next(reader, None)  # the header

            async def read() -> ChunkRead:
                return await self._read(reader, size, spec, width, columns, reverse, definitions)

            ahead = await read()
            while True:
                chunk = ahead
                if chunk.error is not None:
                    raise chunk.error
                if not chunk.records:
                    return row, "done", last_event
                emit = time.monotonic() - last_event >= self.settings.import_progress_seconds
                writing = asyncio.create_task(
                    self._chunk(row, token, spec, principal, chunk, reverse, seen, emit)
                )
                try:
                    ahead = await read()  # while the chunk waits on the database
                except BaseException:
                    writing.cancel()
                    with contextlib.suppress(BaseException):
                        await writing
                    raise
                written = await writing
                if written is None:
                    return row, "finished", last_event
                row = written
                if emit:
                    last_event = time.monotonic()
                if self.on_progress is not None:
                    self.on_progress(row)
                if time.monotonic() - started >= self.settings.import_slice_seconds:
                    await self._set(row, token, {"lock_token": None, "locked_until": None})
                    return row, "paused", last_event
                await asyncio.sleep(0)

    # -- one chunk -----------------------------------------------------------------------------
    async def _read(
        self,
        reader: RecordReader,
        size: int,
        spec: ResourceSpec,
        width: int,
        columns: Sequence[tuple[int, str]],
        reverse: Mapping[str, str],
        definitions: Mapping[str, Any],
    ) -> ChunkRead:
        """The next `size` records, their items and the items' models, `READ_SLICE` at a time:
        between two slices the event loop runs the chunk being written, if its database answer
        has come."""
        chunk = ChunkRead([], [], ChunkResult())
        try:
            while len(chunk.records) < size:
                piece = list(islice(reader, min(READ_SLICE, size - len(chunk.records))))
                if not piece:
                    break
                chunk.records.extend(piece)
                made = self._prepare(
                    piece, spec, width, columns, reverse, definitions, chunk.result
                )
                for pending in made:
                    with contextlib.suppress(ValidationError):
                        pending.model = spec.schema.model_validate(pending.item)
                chunk.pending.extend(made)
                await asyncio.sleep(0)
        except CsvFileError as exc:
            chunk.error = exc
        return chunk

    def _prepare(
        self,
        records: Sequence[Record],
        spec: ResourceSpec,
        width: int,
        columns: Sequence[tuple[int, str]],
        reverse: Mapping[str, str],
        definitions: Mapping[str, Any],
        result: ChunkResult,
    ) -> list[Pending]:
        """Records → items; cells that cannot be typed (and rows too wide) are refused here."""
        pending: list[Pending] = []
        for record in records:
            extra = record.values[width:]
            if any(v.strip() for v in extra):
                result.refuse(
                    record, None, None, f"has {len(record.values)} cells; the header has {width}"
                )
                continue
            item, problems = build_item(record.values, columns, definitions)
            if problems:
                for problem in problems:
                    result.refuse(record, reverse.get(problem.field), problem.field, problem.reason)
                continue
            raw_key = item.get(spec.key)
            key = spec.normalise_key(raw_key) if isinstance(raw_key, str) else None
            pending.append(Pending(record, item, key))
        return pending

    async def _dedupe(
        self,
        session: AsyncSession,
        row: RowMapping,
        spec: ResourceSpec,
        pending: list[Pending],
        seen: SeenKeys | None,
        reverse: Mapping[str, str],
        result: ChunkResult,
    ) -> list[Pending]:
        """The rows to write: `skip` drops rows whose key a live record (or a row above) holds;
        validation also checks the keys of the chunks before, which it did not keep."""
        keys = [p.key for p in pending if p.key]
        first_line = pending[0].record.line if pending else 0
        earlier = seen.earlier(keys, first_line) if seen is not None and keys else {}
        dedupe = row["dedupe"]
        if dedupe == "skip":
            existing = await live_keys(session, row["workspace_id"], spec, keys)
            kept: list[Pending] = []
            in_chunk: set[str] = set()
            for p in pending:
                if p.key and (p.key in existing or p.key in earlier or p.key in in_chunk):
                    result.skipped += 1
                    continue
                if p.key:
                    in_chunk.add(p.key)
                kept.append(p)
            return kept
        if not earlier:
            return pending
        kept = []
        for p in pending:
            line = earlier.get(p.key) if p.key else None
            if line is None:
                kept.append(p)
            elif dedupe == "update":
                p.updates_earlier = True
                kept.append(p)
            else:
                result.refuse(
                    p.record,
                    reverse.get(spec.key),
                    spec.key,
                    f"the row on line {line} has the same {spec.key}",
                )
        return kept

    def _outcomes(
        self,
        spec: ResourceSpec,
        dedupe: str,
        batch: Sequence[Pending],
        outcome: Mapping[str, Any],
        reverse: Mapping[str, str],
        result: ChunkResult,
    ) -> None:
        for item in outcome["items"]:
            p = batch[item["index"]]
            if item["success"]:
                kind = (item.get("data") or {}).get("outcome", "created")
                if p.updates_earlier or kind == "updated":
                    result.updated += 1
                else:
                    result.created += 1
                if p.key:
                    result.accepted.append((p.key, p.record.line))
                continue
            error = item.get("error") or {}
            code = error.get("code", "error")
            if dedupe == "skip" and code in spec.duplicate_codes:
                result.skipped += 1
                continue
            message = error.get("message") or code
            details = error.get("details") or []
            if not details:
                result.refuse(p.record, None, None, message)
            for detail in details[:20]:
                name = field_of(detail.get("field"))
                reason = str(detail.get("reason") or "")
                text = reason if code == "validation_error" else f"{message} ({reason})"
                result.refuse(p.record, reverse.get(name) if name else None, name, text)

    async def _chunk(
        self,
        row: RowMapping,
        token: uuid.UUID,
        spec: ResourceSpec,
        principal: Principal,
        chunk: ChunkRead,
        reverse: Mapping[str, str],
        seen: SeenKeys | None,
        emit: bool,
    ) -> RowMapping | None:
        """One chunk in one transaction; the import as written, or None if the lock was lost."""
        records, pending, result = chunk.records, chunk.pending, chunk.result
        validating = seen is not None
        now = self.now()
        async with self.transaction() as session:
            await plan_each_statement(session)
            repo = ImportRepository(session, row["workspace_id"])
            moved = await repo.held(
                row["id"],
                token,
                {
                    "byte_offset": records[-1].end_offset,
                    "line": records[-1].end_line,
                    "locked_until": now + LEASE,
                    "updated_at": now,
                },
                imports.c.byte_offset == row["byte_offset"],
            )
            if moved is None:
                return None
            batch = await self._dedupe(session, row, spec, pending, seen, reverse, result)
            if batch:
                await self._write(session, spec, principal, row, batch, reverse, result, validating)
            if seen is not None:
                seen.add(result.accepted)
            if result.errors and row["errors"] < self.settings.import_max_error_rows:
                await ImportErrorRepository(session, row["workspace_id"]).add(
                    row["id"], result.errors
                )
            written = await repo.held(
                row["id"],
                token,
                {
                    "processed": row["processed"] + len(records),
                    "created": row["created"] + result.created,
                    "updated": row["updated"] + result.updated,
                    "skipped": row["skipped"] + result.skipped,
                    "errors": row["errors"] + len(result.failed),
                },
            )
            assert written is not None
            if emit:
                await events.record(
                    session,
                    workspace_id=row["workspace_id"],
                    type="import.progress",
                    data=import_read(written),
                    principal=principal,
                    resource_id=row["id"],
                )
        return written

    async def _write(
        self,
        session: AsyncSession,
        spec: ResourceSpec,
        principal: Principal,
        row: RowMapping,
        batch: list[Pending],
        reverse: Mapping[str, str],
        result: ChunkResult,
        validating: bool,
    ) -> None:
        """The rows through the resource's bulk path; while validating, inside a savepoint that
        is rolled back (the checks of a real write, nothing kept)."""
        service = spec.make_service(session, principal)
        items = [p.item if p.model is None else p.model for p in batch]
        if validating:
            savepoint = await session.begin_nested()
            try:
                outcome = await spec.bulk(service, items, row["dedupe"])
            finally:
                await savepoint.rollback()
        else:
            outcome = await spec.bulk(service, items, row["dedupe"])
        self._outcomes(spec, row["dedupe"], batch, outcome, reverse, result)

    # -- bookkeeping ---------------------------------------------------------------------------
    async def _set(self, row: RowMapping, token: uuid.UUID, values: dict[str, Any]) -> RowMapping:
        async with self.transaction() as session:
            written = await ImportRepository(session, row["workspace_id"]).held(
                row["id"], token, {**values, "updated_at": self.now()}
            )
        if written is None:
            raise LookupError("the import's lock was lost")
        return written

    async def _finish(
        self,
        row: RowMapping,
        token: uuid.UUID,
        status: str,
        reason: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> Outcome:
        now = self.now()
        async with self.transaction() as session:
            written = await ImportRepository(session, row["workspace_id"]).held(
                row["id"],
                token,
                {
                    "status": status,
                    "phase": None,
                    "failure_reason": reason,
                    "finished_at": now,
                    "updated_at": now,
                    "lock_token": None,
                    "locked_until": None,
                    **(values or {}),
                },
            )
            if written is not None:
                await events.record(
                    session,
                    workspace_id=row["workspace_id"],
                    type=f"import.{status}",
                    data=import_read(written),
                    principal=recorded_principal(row),
                    resource_id=row["id"],
                )
        if written is not None:
            _remove(import_path(self.settings, row["id"]), seen_path(self.settings, row["id"]))
            if self.on_progress is not None:
                self.on_progress(written)
        return Outcome("finished")


async def fail_import(
    db: Database, settings: Settings, workspace_id: uuid.UUID, import_id: uuid.UUID, reason: str
) -> None:
    """The job gave up (its last attempt failed): the import fails, whoever holds its lock."""
    now = utcnow()
    async with db.write_sessions() as session, session.begin():
        written = await ImportRepository(session, workspace_id).set(
            import_id,
            {
                "status": "failed",
                "phase": None,
                "failure_reason": reason[:MAX_REASON],
                "finished_at": now,
                "updated_at": now,
                "lock_token": None,
                "locked_until": None,
            },
            imports.c.status.in_(ACTIVE),
        )
        if written is not None:
            await events.record(
                session,
                workspace_id=workspace_id,
                type="import.failed",
                data=import_read(written),
                principal=recorded_principal(written),
                resource_id=import_id,
            )
    if written is not None:
        _remove(import_path(settings, import_id), seen_path(settings, import_id))


# -- exports -------------------------------------------------------------------------------------
class ExportRun:
    """Writes an export's file by keyset-paging through the resource's list (the same filters and
    rules as GET /{resource}), one page in memory at a time; the file appears, complete, under its
    final name only when it is done. A rerun (after a crash) starts the file again."""

    def __init__(self, db: Database, settings: Settings, *, now: Clock = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.now = now

    async def run(self, workspace_id: uuid.UUID, export_id: uuid.UUID) -> None:
        now = self.now()
        async with self.db.write_sessions() as session, session.begin():
            repo = ExportRepository(session, workspace_id)
            row = await repo.set(
                export_id,
                {"status": "running", "started_at": now, "updated_at": now, "rows": 0},
                repo.table.c.status.in_(ACTIVE),
            )
        if row is None:
            return
        async with self.db.read_sessions() as session:
            principal = await actor(session, row, READERS)
        if principal is None:
            await self._finish(
                row, "failed", reason="The user who asked for it can no longer read."
            )
            return
        spec = RESOURCES[row["resource"]]
        path = export_path(self.settings, export_id)
        part = path.with_suffix(".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            rows = await self._write(row, spec, principal, part)
        except AppError as exc:  # e.g. a custom field filtered on was deleted since
            _remove(part)
            await self._finish(row, "failed", reason=exc.message)
            return
        except BaseException:
            _remove(part)
            raise
        part.replace(path)
        await self._finish(row, "completed", rows=rows, size=path.stat().st_size)

    async def _write(
        self, row: RowMapping, spec: ResourceSpec, principal: Principal, part: Path
    ) -> int:
        rows = 0
        last_progress = time.monotonic()
        with part.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            async with self.db.read_sessions() as session:
                definitions = await CustomFieldValidator(
                    session, row["workspace_id"], spec.record
                ).definitions()
                params = await export_params(
                    session,
                    principal,
                    spec,
                    row["filters"],
                    row["search"],
                    self.settings.export_page_rows,
                )
            custom = [
                name
                for name, d in sorted(
                    definitions.items(), key=lambda kv: (kv[1]["position"], kv[0])
                )
            ]
            writer.writerow(spec.export_columns(custom))
            while True:
                async with self.db.read_sessions() as session:
                    page = await spec.make_service(session, principal).list(params)
                writer.writerows(export_row(spec, spec.read(r), custom) for r in page.rows)
                rows += len(page.rows)
                if page.next_cursor is None:
                    return rows
                params.cursor = spec.listing.decode_cursor(
                    page.next_cursor, params.sort_by, params.sort_order
                )
                if time.monotonic() - last_progress >= self.settings.import_progress_seconds:
                    last_progress = time.monotonic()
                    async with self.db.write_sessions() as session, session.begin():
                        await ExportRepository(session, row["workspace_id"]).set(
                            row["id"], {"rows": rows, "updated_at": self.now()}
                        )
                await asyncio.sleep(0)

    async def _finish(
        self,
        row: RowMapping,
        status: str,
        *,
        rows: int = 0,
        size: int = 0,
        reason: str | None = None,
    ) -> None:
        now = self.now()
        async with self.db.write_sessions() as session, session.begin():
            repo = ExportRepository(session, row["workspace_id"])
            written = await repo.set(
                row["id"],
                {
                    "status": status,
                    "rows": rows,
                    "size_bytes": size,
                    "failure_reason": reason,
                    "finished_at": now,
                    "updated_at": now,
                },
                repo.table.c.status == "running",
            )
            if written is not None:
                await events.record(
                    session,
                    workspace_id=row["workspace_id"],
                    type=f"export.{status}",
                    data=export_read(written),
                    principal=recorded_principal(row),
                    resource_id=row["id"],
                )


async def fail_export(
    db: Database, workspace_id: uuid.UUID, export_id: uuid.UUID, reason: str
) -> None:
    now = utcnow()
    async with db.write_sessions() as session, session.begin():
        repo = ExportRepository(session, workspace_id)
        written = await repo.set(
            export_id,
            {
                "status": "failed",
                "failure_reason": reason[:MAX_REASON],
                "finished_at": now,
                "updated_at": now,
            },
            repo.table.c.status.in_(ACTIVE),
        )
        if written is not None:
            await events.record(
                session,
                workspace_id=workspace_id,
                type="export.failed",
                data=export_read(written),
                principal=recorded_principal(written),
                resource_id=export_id,
            )


# -- the jobs ------------------------------------------------------------------------------------
def _ids(ctx: jobs.JobContext, name: str) -> tuple[uuid.UUID, uuid.UUID]:
    assert ctx.workspace_id is not None
    return ctx.workspace_id, uuid.UUID(ctx.payload[name])


async def _import_dead(ctx: jobs.JobContext, error: str) -> None:
    workspace_id, import_id = _ids(ctx, "import_id")
    log.error("import_failed", import_id=str(import_id), error=error[:500])
    await fail_import(
        ctx.db, ctx.services["settings"], workspace_id, import_id, "The import stopped on an error."
    )


async def _export_dead(ctx: jobs.JobContext, error: str) -> None:
    workspace_id, export_id = _ids(ctx, "export_id")
    log.error("export_failed", export_id=str(export_id), error=error[:500])
    _remove(export_path(ctx.services["settings"], export_id).with_suffix(".part"))
    await fail_export(ctx.db, workspace_id, export_id, "The export stopped on an error.")


@jobs.handler("imports.run", lease=LEASE, on_dead=_import_dead)
async def run_import(ctx: jobs.JobContext) -> None:
    workspace_id, import_id = _ids(ctx, "import_id")
    outcome = await ImportRun(ctx.db, ctx.services["settings"], now=ctx.now).run(
        workspace_id, import_id
    )
    if outcome.state == "paused":
        raise jobs.Retry(ctx.now(), "continues where it paused")
    if outcome.state == "busy":
        raise jobs.Retry(outcome.at or ctx.now() + LEASE, "another runner holds the import")


@jobs.handler("exports.run", lease=EXPORT_LEASE, on_dead=_export_dead)
async def run_export(ctx: jobs.JobContext) -> None:
    workspace_id, export_id = _ids(ctx, "export_id")
    await ExportRun(ctx.db, ctx.services["settings"], now=ctx.now).run(workspace_id, export_id)
