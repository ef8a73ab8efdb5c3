"""Imports and exports as the API sees them: checking a new import's file and mapping, queueing
the job, reading progress, the error report, and the exports' filters.

The work itself is in `runner.py` (the jobs); here a request only checks what it can check at
once (the header, the mapping, the filters) so that a mistake is a 422 now rather than a failed
job later.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events, jobs
from rapport.core.auth import Principal
from rapport.core.config import Settings
from rapport.core.errors import ValidationFailed
from rapport.core.listing import RESERVED, Listing, ListParams, Page
from rapport.custom_fields.service import CustomFieldValidator
from rapport.imports.csvio import CsvFileError, read_header
from rapport.imports.errors import (
    ExportNotFound,
    ExportNotReady,
    ImportNotFound,
    InvalidCsv,
    InvalidMapping,
)
from rapport.imports.repository import (
    EXPORT_LISTING,
    IMPORT_LISTING,
    ExportRepository,
    ImportErrorRepository,
    ImportRepository,
)
from rapport.imports.resources import (
    ADDRESS,
    CUSTOM,
    RESOURCES,
    ResourceSpec,
    cell,
)
from rapport.imports.schemas import ExportCreate, ImportOptions

IMPORT_FIELDS = (
    "id",
    "resource",
    "status",
    "phase",
    "filename",
    "size_bytes",
    "encoding",
    "delimiter",
    "mapping",
    "ignored_columns",
    "dedupe",
    "dry_run",
    "strict",
    "total",
    "processed",
    "created",
    "updated",
    "skipped",
    "errors",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
)
EXPORT_FIELDS = (
    "id",
    "resource",
    "status",
    "filters",
    "search",
    "rows",
    "size_bytes",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
)
ERRORS_PAGE = 1000
ERROR_COLUMNS = ("line", "column", "field", "reason")


def import_read(row: Mapping[str, Any]) -> dict[str, Any]:
    return {f: row[f] for f in IMPORT_FIELDS}


def export_read(row: Mapping[str, Any]) -> dict[str, Any]:
    return {f: row[f] for f in EXPORT_FIELDS}


def import_path(settings: Settings, import_id: uuid.UUID) -> Path:
    return settings.data_dir / "imports" / f"{import_id}.csv"


def seen_path(settings: Settings, import_id: uuid.UUID) -> Path:
    return settings.data_dir / "imports" / f"{import_id}.seen.sqlite"


def export_path(settings: Settings, export_id: uuid.UUID) -> Path:
    return settings.data_dir / "exports" / f"{export_id}.csv"


def normalise_column(name: str) -> str:
    """How a header cell is matched to a field when no mapping is sent: "First Name" → first_name;
    `cf.` and `address.` prefixes are kept."""
    key = name.strip().lower()
    for prefix in (CUSTOM, ADDRESS):
        if key.startswith(prefix):
            return prefix + key[len(prefix) :].strip().replace(" ", "_").replace("-", "_")
    return key.replace(" ", "_").replace("-", "_")


def resolve_mapping(
    spec: ResourceSpec,
    columns: list[str],
    mapping: dict[str, str] | None,
    custom_names: set[str],
) -> tuple[dict[str, str], list[str]]:
    """(column → field as used, the columns left out). An explicit mapping must name columns of
    the file and fields of the resource; without one, columns named like a field are used."""
    targets = set(spec.target_fields())
    present = [c for c in columns if c]
    if mapping is None:
        used: dict[str, str] = {}
        auto = spec.auto_fields()
        for column in present:
            field = normalise_column(column)
            known = field in auto or (
                field.startswith(CUSTOM) and field[len(CUSTOM) :] in custom_names
            )
            if known and field not in used.values():
                used[column] = field
        if not used:
            raise InvalidMapping(
                "No column is named like a field of this resource; send a mapping.",
                details=[{"field": "body.mapping", "reason": "no column matches a field"}],
            )
        return used, [c for c in present if c not in used]
    problems: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for column, field in mapping.items():
        where = f"body.mapping.{column}"[:200]
        if column not in present:
            problems.append({"field": where, "reason": "no such column in the file's header"})
            continue
        if field.startswith(CUSTOM):
            if field[len(CUSTOM) :] not in custom_names:
                problems.append({"field": where, "reason": f"no custom field {field[3:]!r}"})
                continue
        elif field not in targets:
            problems.append({"field": where, "reason": f"{field!r} is not a field of {spec.name}"})
            continue
        if field in seen:
            problems.append({"field": where, "reason": f"{field!r} is mapped from {seen[field]!r}"})
            continue
        seen[field] = column
    if problems:
        raise InvalidMapping(details=problems)
    if not mapping:
        raise InvalidMapping(details=[{"field": "body.mapping", "reason": "maps no column"}])
    return dict(mapping), [c for c in present if c not in mapping]


class ImportService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.repo = ImportRepository(session, principal.workspace_id)

    async def create(
        self,
        import_id: uuid.UUID,
        stored: Path,
        filename: str,
        size: int,
        options: ImportOptions,
    ) -> RowMapping:
        """Check the stored file's header and the mapping, record the import and queue its job;
        the file is moved to the import's own path."""
        spec = RESOURCES[options.resource]
        if options.dedupe not in spec.dedupes:
            raise ValidationFailed(
                f"{spec.name} can be deduplicated with: {', '.join(spec.dedupes)}.",
                details=[{"field": "body.dedupe", "reason": f"not supported for {spec.name}"}],
            )
        try:
            header = read_header(stored, encoding=options.encoding, delimiter=options.delimiter)
        except CsvFileError as exc:
            raise InvalidCsv(
                details=[{"field": "body.file", "reason": f"line {exc.line} {exc.reason}"}]
            ) from exc
        if header is None:
            raise InvalidCsv(
                "The file has no header row.",
                details=[{"field": "body.file", "reason": "is empty"}],
            )
        columns = [value.strip() for value in header.values]
        repeated = sorted({c for c in columns if c and columns.count(c) > 1})
        if repeated:
            raise InvalidCsv(
                "Each column name must appear once in the header.",
                details=[
                    {"field": "body.file", "reason": f"column {c!r} repeats"} for c in repeated
                ],
            )
        validator = CustomFieldValidator(self.session, self.principal.workspace_id, spec.record)
        custom_names = set(await validator.definitions())
        mapping, ignored = resolve_mapping(spec, columns, options.mapping, custom_names)
        row = await self.repo.insert(
            {
                "id": import_id,
                "resource": spec.name,
                "status": "queued",
                "filename": filename,
                "size_bytes": size,
                "encoding": options.encoding,
                "delimiter": options.delimiter,
                "columns": columns,
                "mapping": mapping,
                "ignored_columns": ignored,
                "dedupe": options.dedupe,
                "dry_run": options.dry_run,
                "strict": options.strict,
                "processed": 0,
                "created": 0,
                "updated": 0,
                "skipped": 0,
                "errors": 0,
                "byte_offset": 0,
                "line": 0,
                "created_by": self.principal.user_id,
                "actor_type": self.principal.credential,
                "credential_id": self.principal.credential_id,
                "role": self.principal.role.value,
            }
        )
        await jobs.enqueue(
            self.session,
            "imports.run",
            {"import_id": str(import_id)},
            workspace_id=self.principal.workspace_id,
            dedupe_key=f"import:{import_id}",
        )
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="import.created",
            data=import_read(row),
            principal=self.principal,
            resource_id=import_id,
        )
        await anyio.Path(stored).replace(import_path(self.settings, import_id))
        return row

    async def get(self, import_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(import_id)
        if row is None:
            raise ImportNotFound()
        return row

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list(IMPORT_LISTING, params)

    async def error_report(self, import_id: uuid.UUID) -> AsyncIterator[bytes]:
        """errors.csv: line, column, field, reason, then the row as it was in the file (a fixed
        copy of these rows can be imported again). Streamed page by page."""
        row = await self.get(import_id)
        errors = ImportErrorRepository(self.session, self.principal.workspace_id)
        header = [*ERROR_COLUMNS, *row["columns"]]

        async def lines() -> AsyncIterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow([cell(c) for c in header])
            after: tuple[int, uuid.UUID] | None = None
            while True:
                page = await errors.page(import_id, after, ERRORS_PAGE)
                for error in page:
                    writer.writerow(
                        [
                            error["line"],
                            cell(error["column"]),
                            cell(error["field"]),
                            cell(error["reason"]),
                            *(cell(v) for v in error["row"]),
                        ]
                    )
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
                if len(page) < ERRORS_PAGE:
                    return
                after = (page[-1]["line"], page[-1]["id"])

        return lines()


def _filter_error(exc: ValidationFailed) -> ValidationFailed:
    """The list's filter errors name `query.x`; an export's filters are in its body."""
    details = [
        {**d, "field": str(d.get("field") or "").replace("query.", "body.filters.", 1)}
        for d in exc.details or []
    ]
    return ValidationFailed(exc.message, code=exc.code, details=details)


async def export_params(
    session: AsyncSession,
    principal: Principal,
    spec: ResourceSpec,
    filters: Mapping[str, str],
    search: str | None,
    limit: int,
) -> ListParams:
    """The export's filters parsed exactly as the list endpoint parses its query (422 for an
    unknown or invalid filter), sorted by creation so that a re-import keeps the order."""
    listing: Listing = spec.listing
    items = list(filters.items())
    reserved = [k for k, _ in items if k in RESERVED]
    if reserved:
        raise ValidationFailed(
            "Paging and sorting are not filters.",
            code="invalid_filter",
            details=[{"field": f"body.filters.{k}", "reason": "not a filter"} for k in reserved],
        )
    params = ListParams(limit=limit, sort_by="created_at", sort_order="asc", search=search)
    try:
        if listing.custom_fields:
            params.custom_filters = listing.split_custom_filters(items)
            items = [(k, v) for k, v in items if not k.startswith(CUSTOM)]
        params.filters = listing.parse_filters(items, principal.user_id)
        if params.custom_filters:
            validator = CustomFieldValidator(session, principal.workspace_id, spec.record)
            await validator.filters(spec.table.c.custom_fields, params.custom_filters)
    except ValidationFailed as exc:
        raise _filter_error(exc) from exc
    return params


class ExportService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.repo = ExportRepository(session, principal.workspace_id)

    async def create(self, body: ExportCreate) -> RowMapping:
        spec = RESOURCES[body.resource]
        await export_params(self.session, self.principal, spec, body.filters, body.search, 1)
        row = await self.repo.insert(
            {
                "resource": spec.name,
                "status": "queued",
                "filters": dict(body.filters),
                "search": body.search,
                "rows": 0,
                "size_bytes": 0,
                "created_by": self.principal.user_id,
                "actor_type": self.principal.credential,
                "credential_id": self.principal.credential_id,
                "role": self.principal.role.value,
            }
        )
        export_id = row["id"]
        await jobs.enqueue(
            self.session,
            "exports.run",
            {"export_id": str(export_id)},
            workspace_id=self.principal.workspace_id,
            dedupe_key=f"export:{export_id}",
        )
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type="export.created",
            data=export_read(row),
            principal=self.principal,
            resource_id=export_id,
        )
        return row

    async def get(self, export_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(export_id)
        if row is None:
            raise ExportNotFound()
        return row

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list(EXPORT_LISTING, params)

    async def file(self, export_id: uuid.UUID) -> tuple[RowMapping, Path]:
        """The completed export's file (409 while it is being written)."""
        row = await self.get(export_id)
        path = export_path(self.settings, export_id)
        if row["status"] != "completed":
            raise ExportNotReady(details=[{"field": "status", "reason": row["status"]}])
        if not path.exists():
            raise ExportNotFound("The export's file is gone.")
        return row, path
