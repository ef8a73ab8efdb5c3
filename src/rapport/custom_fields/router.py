from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from rapport.core.auth import AdminDep, ReaderDep
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.custom_fields.repository import CUSTOM_FIELD_LISTING
from rapport.custom_fields.schemas import CustomFieldCreate, CustomFieldRead, CustomFieldUpdate
from rapport.custom_fields.service import CustomFieldService, definition_read

router = ContractRouter(prefix="/custom-fields", tags=["custom-fields"])


@router.get(
    "",
    name="custom-fields-list",
    summary="List custom field definitions",
    response_model=ListEnvelope[CustomFieldRead],
    responses=errors(),
    openapi_extra={"parameters": CUSTOM_FIELD_LISTING.openapi_parameters()},
)
async def list_fields(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(CUSTOM_FIELD_LISTING.params)],
) -> EnvelopeResponse:
    page = await CustomFieldService(session, principal).list(params)
    return ok([definition_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="custom-fields-create",
    summary="Define a custom field on a resource (admin)",
    status_code=201,
    response_model=Envelope[CustomFieldRead],
    responses=errors(409),
)
async def create_field(
    body: CustomFieldCreate, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    row = await CustomFieldService(session, principal).create(body)
    return ok(definition_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.get(
    "/{field_id}",
    name="custom-fields-get",
    summary="Get a custom field definition",
    response_model=Envelope[CustomFieldRead],
    responses=errors(404),
)
async def get_field(
    field_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await CustomFieldService(session, principal).get(field_id)
    return ok(definition_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{field_id}",
    name="custom-fields-update",
    summary="Change a definition's label, options, required flag or position (admin)",
    response_model=Envelope[CustomFieldRead],
    responses=errors(404, 412),
)
async def update_field(
    field_id: uuid.UUID,
    body: CustomFieldUpdate,
    principal: AdminDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await CustomFieldService(session, principal).update(field_id, body, if_match)
    return ok(definition_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{field_id}",
    name="custom-fields-delete",
    summary="Delete a custom field definition (admin)",
    response_model=Envelope[Deleted],
    responses=errors(404),
)
async def delete_field(
    field_id: uuid.UUID, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    await CustomFieldService(session, principal).delete(field_id)
    return ok({"id": str(field_id), "deleted": True})
