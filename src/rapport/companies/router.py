from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.companies.repository import COMPANY_LISTING
from rapport.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate
from rapport.companies.service import CompanyService, company_read
from rapport.contacts.repository import COMPANY_CONTACTS_LISTING
from rapport.contacts.schemas import (
    CompanyDuplicateGroup,
    CompanyDuplicateReason,
    CompanyMerge,
    CompanyMergeResult,
    LinkBody,
    LinkDeleted,
    LinkedContactRead,
    LinkRead,
)
from rapport.contacts.service import ContactService, link_deleted, linked_contact_read
from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers

router = ContractRouter(prefix="/companies", tags=["companies"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
LIST_FILTERS = {"parameters": COMPANY_LISTING.openapi_parameters()}
CONTACT_FILTERS = {"parameters": COMPANY_CONTACTS_LISTING.openapi_parameters()}
ALREADY_LINKED = {200: {"model": Envelope[LinkRead], "description": "Already linked: updated"}}


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
    "/duplicates",
    name="companies-duplicates",
    summary="Groups of live companies that look like the same one (domain, name)",
    response_model=ListEnvelope[CompanyDuplicateGroup],
    responses=errors(),
)
async def company_duplicates(
    principal: ReaderDep,
    session: SessionDep,
    reason: Annotated[
        CompanyDuplicateReason | None,
        Query(description="Only this kind: same domain, or same name (case-insensitive)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Groups per page.")] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> EnvelopeResponse:
    groups, next_cursor = await CompanyService(session, principal).duplicates(reason, limit, cursor)
    meta = {"next_cursor": next_cursor, "has_more": next_cursor is not None, "limit": limit}
    return ok(groups, meta=meta)


@router.post(
    "/merge",
    name="companies-merge",
    summary="Merge companies into one (contacts, links, deals, activities, tasks, leads follow)",
    response_model=Envelope[CompanyMergeResult],
    responses=errors(404, 409),
)
async def merge_companies(
    body: CompanyMerge, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    result = await CompanyService(session, principal).merge(body)
    return ok(result, headers=etag_headers(result["winner"]["version"]))


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


# -- contact links, from the company's side -----------------------------------------------------
@router.get(
    "/{company_id}/contacts",
    name="companies-contacts-list",
    summary="The contacts linked to a company, with their role",
    response_model=ListEnvelope[LinkedContactRead],
    responses=errors(404),
    openapi_extra=CONTACT_FILTERS,
)
async def list_company_contacts(
    company_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(COMPANY_CONTACTS_LISTING.params)],
) -> EnvelopeResponse:
    page = await ContactService(session, principal).contacts_of(company_id, params)
    return ok([linked_contact_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "/{company_id}/contacts/{contact_id}",
    name="companies-contacts-link",
    summary="Link a contact to the company with a role (201; 200 updates an existing link)",
    status_code=201,
    response_model=Envelope[LinkRead],
    responses={**errors(404), **ALREADY_LINKED},
)
async def link_company_contact(
    company_id: uuid.UUID,
    contact_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    body: LinkBody | None = None,
) -> EnvelopeResponse:
    link, created = await ContactService(session, principal).link_company(
        contact_id, company_id, body, company_first=True
    )
    return ok(link, status_code=201 if created else 200)


@router.delete(
    "/{company_id}/contacts/{contact_id}",
    name="companies-contacts-unlink",
    summary="Unlink a contact from the company (404 link_not_found if not linked)",
    response_model=Envelope[LinkDeleted],
    responses=errors(404),
)
async def unlink_company_contact(
    company_id: uuid.UUID, contact_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    await ContactService(session, principal).unlink_company(
        contact_id, company_id, company_first=True
    )
    return ok(link_deleted(contact_id, company_id))
