from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.activities.repository import ACTIVITY_LISTING, TIMELINE_LISTINGS
from rapport.activities.schemas import ActivityCreate, ActivityRead, ActivityUpdate
from rapport.activities.service import ActivityService, activity_read
from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers

router = ContractRouter(prefix="/activities", tags=["activities"])
# The timeline of each record: /contacts/{id}/activities, /companies/..., /leads/..., /deals/...
timeline_router = ContractRouter(tags=["activities"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
LIST_FILTERS = {"parameters": ACTIVITY_LISTING.openapi_parameters()}
CONTACT_TIMELINE = TIMELINE_LISTINGS["contact_id"]
COMPANY_TIMELINE = TIMELINE_LISTINGS["company_id"]
LEAD_TIMELINE = TIMELINE_LISTINGS["lead_id"]
DEAL_TIMELINE = TIMELINE_LISTINGS["deal_id"]
TIMELINE_ORDER = "newest first by occurred_at, then created_at, then id"


@router.get(
    "",
    name="activities-list",
    summary="List activities (filters incl. kind, links, tag and cf.<name>, search, cursor)",
    response_model=ListEnvelope[ActivityRead],
    responses=errors(),
    openapi_extra=LIST_FILTERS,
)
async def list_activities(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(ACTIVITY_LISTING.params)],
) -> EnvelopeResponse:
    page = await ActivityService(session, principal).list(params)
    return ok([activity_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="activities-create",
    summary="Log an activity on a contact, company, lead or deal",
    status_code=201,
    response_model=Envelope[ActivityRead],
    responses=errors(),
)
async def create_activity(
    body: ActivityCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ActivityService(session, principal).create(body)
    return ok(activity_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="activities-bulk-create",
    summary="Log up to 1000 activities (atomic by default)",
    response_model=Envelope[BulkResult[ActivityRead]],
    responses=errors(400),
)
async def bulk_create_activities(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await ActivityService(session, principal).bulk_create(body.items, atomic))


@router.patch(
    "/bulk",
    name="activities-bulk-update",
    summary="Update up to 1000 activities by id (atomic by default)",
    response_model=Envelope[BulkResult[ActivityRead]],
    responses=errors(400),
)
async def bulk_update_activities(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await ActivityService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/{activity_id}",
    name="activities-get",
    summary="Get an activity",
    response_model=Envelope[ActivityRead],
    responses=errors(404),
)
async def get_activity(
    activity_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ActivityService(session, principal).get(activity_id)
    return ok(activity_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{activity_id}",
    name="activities-update",
    summary="Update the fields sent (If-Match honoured); moving it moves the lead counts",
    response_model=Envelope[ActivityRead],
    responses=errors(400, 404, 412),
)
async def update_activity(
    activity_id: uuid.UUID,
    body: ActivityUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await ActivityService(session, principal).update(activity_id, body, if_match)
    return ok(activity_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{activity_id}",
    name="activities-delete",
    summary="Soft-delete an activity, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_activity(
    activity_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = ActivityService(session, principal)
    if erase:
        await service.erase(activity_id)
    else:
        await service.delete(activity_id, if_match)
    return ok({"id": str(activity_id), "deleted": True})


@router.post(
    "/{activity_id}/restore",
    name="activities-restore",
    summary="Restore a soft-deleted activity",
    response_model=Envelope[ActivityRead],
    responses=errors(404),
)
async def restore_activity(
    activity_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await ActivityService(session, principal).restore(activity_id)
    return ok(activity_read(row), headers=etag_headers(row["version"]))


# -- timelines ------------------------------------------------------------------------------------
@timeline_router.get(
    "/contacts/{contact_id}/activities",
    name="contacts-timeline",
    summary=f"A contact's timeline: its activities, {TIMELINE_ORDER}",
    response_model=ListEnvelope[ActivityRead],
    responses=errors(404),
    openapi_extra={"parameters": CONTACT_TIMELINE.openapi_parameters()},
)
async def contact_timeline(
    contact_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(CONTACT_TIMELINE.params)],
) -> EnvelopeResponse:
    page = await ActivityService(session, principal).timeline("contact_id", contact_id, params)
    return ok([activity_read(r) for r in page.rows], meta=page.meta())


@timeline_router.get(
    "/companies/{company_id}/activities",
    name="companies-timeline",
    summary=f"A company's timeline: its activities, {TIMELINE_ORDER}",
    response_model=ListEnvelope[ActivityRead],
    responses=errors(404),
    openapi_extra={"parameters": COMPANY_TIMELINE.openapi_parameters()},
)
async def company_timeline(
    company_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(COMPANY_TIMELINE.params)],
) -> EnvelopeResponse:
    page = await ActivityService(session, principal).timeline("company_id", company_id, params)
    return ok([activity_read(r) for r in page.rows], meta=page.meta())


@timeline_router.get(
    "/leads/{lead_id}/activities",
    name="leads-timeline",
    summary=f"A lead's timeline: its activities, {TIMELINE_ORDER}",
    response_model=ListEnvelope[ActivityRead],
    responses=errors(404),
    openapi_extra={"parameters": LEAD_TIMELINE.openapi_parameters()},
)
async def lead_timeline(
    lead_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(LEAD_TIMELINE.params)],
) -> EnvelopeResponse:
    page = await ActivityService(session, principal).timeline("lead_id", lead_id, params)
    return ok([activity_read(r) for r in page.rows], meta=page.meta())


@timeline_router.get(
    "/deals/{deal_id}/activities",
    name="deals-timeline",
    summary=f"A deal's timeline: its activities, {TIMELINE_ORDER}",
    response_model=ListEnvelope[ActivityRead],
    responses=errors(404),
    openapi_extra={"parameters": DEAL_TIMELINE.openapi_parameters()},
)
async def deal_timeline(
    deal_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(DEAL_TIMELINE.params)],
) -> EnvelopeResponse:
    page = await ActivityService(session, principal).timeline("deal_id", deal_id, params)
    return ok([activity_read(r) for r in page.rows], meta=page.meta())
