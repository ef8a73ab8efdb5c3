"""/imports and /exports: CSV in and out as background jobs with progress.

The upload route reads its own body as a stream (`core.http.STREAMED_PATHS`): the file goes to
disk part by part, bounded by `import_max_bytes`, and is never held in memory.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.responses import StreamingResponse

from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.config import Settings
from rapport.core.envelope import Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.errors import ValidationFailed
from rapport.core.http import STREAMED_PATHS
from rapport.core.ids import new_id
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, SessionDep
from rapport.imports import runner  # noqa: F401 - registers the imports.run / exports.run jobs
from rapport.imports.repository import EXPORT_LISTING, IMPORT_LISTING
from rapport.imports.schemas import (
    IMPORT_FORM_SCHEMA,
    ExportCreate,
    ExportRead,
    ImportOptions,
    ImportRead,
)
from rapport.imports.service import (
    ExportService,
    ImportService,
    export_read,
    import_path,
    import_read,
)
from rapport.imports.upload import receive_upload

router = ContractRouter(tags=["imports"])
IMPORTS_PATH = "/api/v1/imports"  # the full path the body middleware must not buffer
STREAMED_PATHS.add(IMPORTS_PATH)
FILE_CHUNK = 64 * 1024

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": IMPORT_FORM_SCHEMA}},
    }
}
CSV_RESPONSE = {
    200: {
        "description": "The CSV file (UTF-8, CRLF line ends).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(settings_of)]


def _options(fields: dict[str, str]) -> ImportOptions:
    """The form's fields, checked (`mapping` is a JSON object in a string)."""
    values: dict[str, Any] = dict(fields)
    if "mapping" in values:
        if not values["mapping"].strip():
            values.pop("mapping")
        else:
            try:
                values["mapping"] = orjson.loads(values["mapping"])
            except orjson.JSONDecodeError as exc:
                raise ValidationFailed(
                    details=[{"field": "body.mapping", "reason": "is not a JSON object"}]
                ) from exc
    try:
        return ImportOptions.model_validate(values)
    except ValidationError as exc:
        raise ValidationFailed(
            details=[
                {
                    "field": "body." + ".".join(str(p) for p in err["loc"]),
                    "reason": str(err["msg"])[:300],
                }
                for err in exc.errors()[:50]
            ]
        ) from exc


@router.post(
    "/imports",
    name="imports-create",
    summary="Upload a CSV file to import (multipart: file, resource, mapping, dedupe, dry_run...)",
    status_code=201,
    response_model=Envelope[ImportRead],
    responses=errors(400, 413, 415),
    openapi_extra=UPLOAD_BODY,
)
async def create_import(
    request: Request, principal: MemberDep, session: SessionDep, settings: SettingsDep
) -> EnvelopeResponse:
    import_id = new_id()
    part = import_path(settings, import_id).with_suffix(".part")
    upload = await receive_upload(request, part, settings.import_max_bytes)
    try:
        options = _options(upload.fields)
        row = await ImportService(session, principal, settings).create(
            import_id, part, upload.filename or "upload.csv", upload.size, options
        )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
    return ok(import_read(row), status_code=201)


@router.get(
    "/imports",
    name="imports-list",
    summary="List the workspace's imports (newest first; filter by status, resource)",
    response_model=ListEnvelope[ImportRead],
    responses=errors(),
    openapi_extra={"parameters": IMPORT_LISTING.openapi_parameters()},
)
async def list_imports(
    principal: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    params: Annotated[ListParams, Depends(IMPORT_LISTING.params)],
) -> EnvelopeResponse:
    page = await ImportService(session, principal, settings).list(params)
    return ok([import_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/imports/{import_id}",
    name="imports-get",
    summary="An import's status and progress (processed, total, created, updated, skipped...)",
    response_model=Envelope[ImportRead],
    responses=errors(404),
)
async def get_import(
    import_id: uuid.UUID, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> EnvelopeResponse:
    return ok(import_read(await ImportService(session, principal, settings).get(import_id)))


@router.get(
    "/imports/{import_id}/errors.csv",
    name="imports-errors",
    summary="The refused rows: line, column, field, reason, then the row as it was (CSV)",
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **errors(404)},
)
async def import_errors(
    import_id: uuid.UUID, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    lines = await ImportService(session, principal, settings).error_report(import_id)
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


@router.post(
    "/exports",
    name="exports-create",
    summary="Export a resource's records, filtered as its list is, to a CSV file (a job)",
    status_code=201,
    response_model=Envelope[ExportRead],
    responses=errors(),
)
async def create_export(
    body: ExportCreate, principal: MemberDep, session: SessionDep, settings: SettingsDep
) -> EnvelopeResponse:
    row = await ExportService(session, principal, settings).create(body)
    return ok(export_read(row), status_code=201)


@router.get(
    "/exports",
    name="exports-list",
    summary="List the workspace's exports (newest first; filter by status, resource)",
    response_model=ListEnvelope[ExportRead],
    responses=errors(),
    openapi_extra={"parameters": EXPORT_LISTING.openapi_parameters()},
)
async def list_exports(
    principal: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    params: Annotated[ListParams, Depends(EXPORT_LISTING.params)],
) -> EnvelopeResponse:
    page = await ExportService(session, principal, settings).list(params)
    return ok([export_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/exports/{export_id}",
    name="exports-get",
    summary="An export's status and the rows written",
    response_model=Envelope[ExportRead],
    responses=errors(404),
)
async def get_export(
    export_id: uuid.UUID, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> EnvelopeResponse:
    return ok(export_read(await ExportService(session, principal, settings).get(export_id)))


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(FILE_CHUNK):
            yield chunk


@router.get(
    "/exports/{export_id}/download",
    name="exports-download",
    summary="Download a completed export's CSV file (409 until it has completed)",
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **errors(404, 409)},
)
async def download_export(
    export_id: uuid.UUID, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    row, path = await ExportService(session, principal, settings).file(export_id)
    return StreamingResponse(
        _file_chunks(path),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{row["resource"]}-{export_id}.csv"',
            "Content-Length": str(path.stat().st_size),
        },
    )
