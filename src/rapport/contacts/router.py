from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Depends, Query

from rapport.contacts.repository import CONTACT_COMPANIES_LISTING, CONTACT_LISTING
from rapport.contacts.schemas import (
    ContactBulkRead,
    ContactCreate,
    ContactMerge,
    ContactMergeResult,
    ContactRead,
    ContactUpdate,
    DuplicateGroup,
    DuplicateReason,
    LinkBody,
    LinkDeleted,
    LinkedCompanyRead,
    LinkRead,
)
from rapport.contacts.service import (
    ContactService,
    contact_read,
    link_deleted,
    linked_company_read,
)
from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers

router = ContractRouter(prefix="/contacts", tags=["contacts"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
Upsert = Annotated[
    Literal["email"] | None,
    Query(description="`email`: update the live contact with the same email instead of failing."),
]
LIST_FILTERS = {"parameters": CONTACT_LISTING.openapi_parameters()}
LINK_FILTERS = {"parameters": CONTACT_COMPANIES_LISTING.openapi_parameters()}
ALREADY_LINKED = {200: {"model": Envelope[LinkRead], "description": "Already linked: updated"}}


@router.get(
    "",
    name="contacts-list",
    summary="List contacts (filters incl. status, tag, company_id, cf.<name>; search; cursor)",
    response_model=ListEnvelope[ContactRead],
    responses=errors(),
    openapi_extra=LIST_FILTERS,
)
async def list_contacts(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(CONTACT_LISTING.params)],
) -> EnvelopeResponse:
    page = await ContactService(session, principal).list(params)
    return ok([contact_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="contacts-create",
    summary="Create a contact",
    status_code=201,
    response_model=Envelope[ContactRead],
    responses=errors(409),
)
async def create_contact(
    body: ContactCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ContactService(session, principal).create(body)
    return ok(contact_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="contacts-bulk-create",
    summary="Create up to 1000 contacts (atomic by default; upsert=email updates by email)",
    response_model=Envelope[BulkResult[ContactBulkRead]],
    responses=errors(400),
)
async def bulk_create_contacts(
    body: BulkRequest,
    principal: MemberDep,
    session: SessionDep,
    atomic: Atomic = True,
    upsert: Upsert = None,
) -> EnvelopeResponse:
    return ok(await ContactService(session, principal).bulk_create(body.items, atomic, upsert))


@router.patch(
    "/bulk",
    name="contacts-bulk-update",
    summary="Update up to 1000 contacts by id (atomic by default)",
    response_model=Envelope[BulkResult[ContactRead]],
    responses=errors(400),
)
async def bulk_update_contacts(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await ContactService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/duplicates",
    name="contacts-duplicates",
    summary="Groups of live contacts that look like the same person (email, phone, name)",
    response_model=ListEnvelope[DuplicateGroup],
    responses=errors(),
)
async def contact_duplicates(
    principal: ReaderDep,
    session: SessionDep,
    reason: Annotated[
        DuplicateReason | None,
        Query(description="Only this kind: same email (ignoring +tags), phone, or name."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Groups per page.")] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> EnvelopeResponse:
    groups, next_cursor = await ContactService(session, principal).duplicates(reason, limit, cursor)
    meta = {"next_cursor": next_cursor, "has_more": next_cursor is not None, "limit": limit}
    return ok(groups, meta=meta)


@router.post(
    "/merge",
    name="contacts-merge",
    summary="Merge contacts into one (links, activities, tasks, deals and leads follow)",
    response_model=Envelope[ContactMergeResult],
    responses=errors(404, 409),
)
async def merge_contacts(
    body: ContactMerge, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    result = await ContactService(session, principal).merge(body)
    return ok(result, headers=etag_headers(result["winner"]["version"]))


@router.get(
    "/{contact_id}",
    name="contacts-get",
    summary="Get a contact",
    response_model=Envelope[ContactRead],
    responses=errors(404),
)
async def get_contact(
    contact_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ContactService(session, principal).get(contact_id)
    return ok(contact_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{contact_id}",
    name="contacts-update",
    summary="Update the fields sent (If-Match honoured)",
    response_model=Envelope[ContactRead],
    responses=errors(400, 404, 409, 412),
)
async def update_contact(
    contact_id: uuid.UUID,
    body: ContactUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await ContactService(session, principal).update(contact_id, body, if_match)
    return ok(contact_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{contact_id}",
    name="contacts-delete",
    summary="Soft-delete a contact, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 409, 412),
)
async def delete_contact(
    contact_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[
        bool,
        Query(description="Admins: remove for good (links deleted, other records detached)."),
    ] = False,
) -> EnvelopeResponse:
    service = ContactService(session, principal)
    if erase:
        await service.erase(contact_id)
    else:
        await service.delete(contact_id, if_match)
    return ok({"id": str(contact_id), "deleted": True})


@router.post(
    "/{contact_id}/restore",
    name="contacts-restore",
    summary="Restore a soft-deleted contact (409 if its email is taken again or it was merged)",
    response_model=Envelope[ContactRead],
    responses=errors(404, 409),
)
async def restore_contact(
    contact_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ContactService(session, principal).restore(contact_id)
    return ok(contact_read(row), headers=etag_headers(row["version"]))


@router.get(
    "/{contact_id}/companies",
    name="contacts-companies-list",
    summary="The companies a contact is linked to, with the role",
    response_model=ListEnvelope[LinkedCompanyRead],
    responses=errors(404),
    openapi_extra=LINK_FILTERS,
)
async def list_contact_companies(
    contact_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(CONTACT_COMPANIES_LISTING.params)],
) -> EnvelopeResponse:
    page = await ContactService(session, principal).companies_of(contact_id, params)
    return ok([linked_company_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "/{contact_id}/companies/{company_id}",
    name="contacts-companies-link",
    summary="Link a contact to a company with a role (201; 200 updates an existing link)",
    status_code=201,
    response_model=Envelope[LinkRead],
    responses={**errors(404), **ALREADY_LINKED},
)
async def link_contact_company(
    contact_id: uuid.UUID,
    company_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    body: LinkBody | None = None,
) -> EnvelopeResponse:
    link, created = await ContactService(session, principal).link_company(
        contact_id, company_id, body
    )
    return ok(link, status_code=201 if created else 200)


@router.delete(
    "/{contact_id}/companies/{company_id}",
    name="contacts-companies-unlink",
    summary="Unlink a contact from a company (404 link_not_found if not linked)",
    response_model=Envelope[LinkDeleted],
    responses=errors(404),
)
async def unlink_contact_company(
    contact_id: uuid.UUID, company_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    await ContactService(session, principal).unlink_company(contact_id, company_id)
    return ok(link_deleted(contact_id, company_id))
