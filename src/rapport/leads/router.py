from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.core.auth import AdminDep, MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.leads.repository import LEAD_LISTING, lead_openapi_parameters
from rapport.leads.schemas import (
    LeadConversion,
    LeadConvert,
    LeadCreate,
    LeadRead,
    LeadStatuses,
    LeadStatusesUpdate,
    LeadUpdate,
)
from rapport.leads.service import LeadService, lead_read

router = ContractRouter(prefix="/leads", tags=["leads"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
AllowDuplicate = Annotated[
    bool,
    Query(description="true: create even when a live lead has the same email or phone."),
]
LIST_FILTERS = {"parameters": lead_openapi_parameters()}


@router.get(
    "",
    name="leads-list",
    summary="List leads (status incl. all, budgets, value, tag, cf.<name>, search, cursor)",
    response_model=ListEnvelope[LeadRead],
    responses=errors(),
    openapi_extra=LIST_FILTERS,
)
async def list_leads(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(LEAD_LISTING.params)],
) -> EnvelopeResponse:
    page = await LeadService(session, principal).list(params)
    return ok([lead_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="leads-create",
    summary="Create a lead (409 lead_duplicate on a matching email or phone)",
    status_code=201,
    response_model=Envelope[LeadRead],
    responses=errors(409),
)
async def create_lead(
    body: LeadCreate,
    principal: MemberDep,
    session: SessionDep,
    allow_duplicate: AllowDuplicate = False,
) -> EnvelopeResponse:
    row = await LeadService(session, principal).create(body, allow_duplicate=allow_duplicate)
    return ok(lead_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="leads-bulk-create",
    summary="Create up to 1000 leads (atomic by default)",
    response_model=Envelope[BulkResult[LeadRead]],
    responses=errors(400),
)
async def bulk_create_leads(
    body: BulkRequest,
    principal: MemberDep,
    session: SessionDep,
    atomic: Atomic = True,
    allow_duplicate: AllowDuplicate = False,
) -> EnvelopeResponse:
    service = LeadService(session, principal)
    return ok(await service.bulk_create(body.items, atomic, allow_duplicate=allow_duplicate))


@router.patch(
    "/bulk",
    name="leads-bulk-update",
    summary="Update up to 1000 leads by id (atomic by default)",
    response_model=Envelope[BulkResult[LeadRead]],
    responses=errors(400),
)
async def bulk_update_leads(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await LeadService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/statuses",
    name="leads-statuses-get",
    summary="The workspace's lead statuses and allowed transitions",
    response_model=Envelope[LeadStatuses],
    responses=errors(),
)
async def get_lead_statuses(principal: ReaderDep, session: SessionDep) -> EnvelopeResponse:
    rules = await LeadService(session, principal).status_rules()
    return ok(rules.as_dict())


@router.patch(
    "/statuses",
    name="leads-statuses-update",
    summary="Replace the lead statuses and transitions (admin)",
    response_model=Envelope[LeadStatuses],
    responses=errors(409),
)
async def update_lead_statuses(
    body: LeadStatusesUpdate, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    rules = await LeadService(session, principal).update_statuses(body)
    return ok(rules.as_dict())


@router.get(
    "/{lead_id}",
    name="leads-get",
    summary="Get a lead",
    response_model=Envelope[LeadRead],
    responses=errors(404),
)
async def get_lead(
    lead_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await LeadService(session, principal).get(lead_id)
    return ok(lead_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{lead_id}",
    name="leads-update",
    summary="Update the fields sent (status moves follow the transitions; If-Match honoured)",
    response_model=Envelope[LeadRead],
    responses=errors(400, 404, 412),
)
async def update_lead(
    lead_id: uuid.UUID,
    body: LeadUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await LeadService(session, principal).update(lead_id, body, if_match)
    return ok(lead_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{lead_id}",
    name="leads-delete",
    summary="Soft-delete a lead, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_lead(
    lead_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = LeadService(session, principal)
    if erase:
        await service.erase(lead_id)
    else:
        await service.delete(lead_id, if_match)
    return ok({"id": str(lead_id), "deleted": True})


@router.post(
    "/{lead_id}/restore",
    name="leads-restore",
    summary="Restore a soft-deleted lead",
    response_model=Envelope[LeadRead],
    responses=errors(404),
)
async def restore_lead(
    lead_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await LeadService(session, principal).restore(lead_id)
    return ok(lead_read(row), headers=etag_headers(row["version"]))


@router.post(
    "/{lead_id}/convert",
    name="leads-convert",
    summary="Convert a lead into a contact, a company and a deal, all or nothing",
    response_model=Envelope[LeadConversion],
    responses=errors(404, 409),
)
async def convert_lead(
    lead_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    body: LeadConvert | None = None,
) -> EnvelopeResponse:
    result = await LeadService(session, principal).convert(lead_id, body or LeadConvert())
    return ok(result)
