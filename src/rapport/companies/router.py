from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from rapport.companies.repository import COMPANY_LISTING
from rapport.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate
from rapport.companies.service import CompanyService, company_read
from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRoute, IfMatchDep, SessionDep, etag_headers

router = APIRouter(prefix="/companies", tags=["companies"], route_class=ContractRoute)

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
LIST_FILTERS = {"parameters": COMPANY_LISTING.openapi_parameters()}


@router.get(
    "",
    name="companies-list",
    summary="List companies (filters incl. tag and cf.<name>, search, cursor)",
    response_model=ListEnvelope[CompanyRead],
    responses=errors(),
    openapi_extra=LIST_FILTERS,
)
async def list_companies(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(COMPANY_LISTING.params)],
) -> EnvelopeResponse:
    page = await CompanyService(session, principal).list(params)
    return ok([company_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="companies-create",
    summary="Create a company",
    status_code=201,
    response_model=Envelope[CompanyRead],
    responses=errors(409),
)
async def create_company(
    body: CompanyCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await CompanyService(session, principal).create(body)
    return ok(company_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="companies-bulk-create",
    summary="Create up to 1000 companies (atomic by default)",
    response_model=Envelope[BulkResult[CompanyRead]],
    responses=errors(400),
)
async def bulk_create_companies(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await CompanyService(session, principal).bulk_create(body.items, atomic))


@router.patch(
    "/bulk",
    name="companies-bulk-update",
    summary="Update up to 1000 companies by id (atomic by default)",
    response_model=Envelope[BulkResult[CompanyRead]],
    responses=errors(400),
)
async def bulk_update_companies(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await CompanyService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/{company_id}",
    name="companies-get",
    summary="Get a company",
    response_model=Envelope[CompanyRead],
    responses=errors(404),
)
async def get_company(
    company_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await CompanyService(session, principal).get(company_id)
    return ok(company_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{company_id}",
    name="companies-update",
    summary="Update the fields sent (If-Match honoured)",
    response_model=Envelope[CompanyRead],
    responses=errors(400, 404, 409, 412),
)
async def update_company(
    company_id: uuid.UUID,
    body: CompanyUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await CompanyService(session, principal).update(company_id, body, if_match)
    return ok(company_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{company_id}",
    name="companies-delete",
    summary="Soft-delete a company, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 409, 412),
)
async def delete_company(
    company_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = CompanyService(session, principal)
    if erase:
        await service.erase(company_id)
    else:
        await service.delete(company_id, if_match)
    return ok({"id": str(company_id), "deleted": True})


@router.post(
    "/{company_id}/restore",
    name="companies-restore",
    summary="Restore a soft-deleted company",
    response_model=Envelope[CompanyRead],
    responses=errors(404, 409),
)
async def restore_company(
    company_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await CompanyService(session, principal).restore(company_id)
    return ok(company_read(row), headers=etag_headers(row["version"]))
