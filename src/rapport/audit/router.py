from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from rapport.audit import handlers  # noqa: F401 - registers the audit subscriber
from rapport.audit.repository import AUDIT_LISTING, HISTORY_LISTING
from rapport.audit.schemas import AuditEntryRead
from rapport.audit.service import AuditService, entry_read
from rapport.core.auth import AdminDep, ReaderDep
from rapport.core.envelope import EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, SessionDep

router = ContractRouter(tags=["audit"])

HistoryParams = Annotated[ListParams, Depends(HISTORY_LISTING.params)]
HISTORY_FILTERS = {"parameters": HISTORY_LISTING.openapi_parameters()}
HISTORY = (
    "newest first; live and soft-deleted records (an erased record's entries: /audit-log, admins)"
)


@router.get(
    "/audit-log",
    name="audit-log",
    summary="The workspace's audit log, newest first: who changed which field, when, how (admin)",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(),
    openapi_extra={"parameters": AUDIT_LISTING.openapi_parameters()},
)
async def audit_log(
    principal: AdminDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(AUDIT_LISTING.params)],
) -> EnvelopeResponse:
    page = await AuditService(session, principal).log(params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/contacts/{contact_id}/history",
    name="contacts-history",
    summary=f"A contact's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def contact_history(
    contact_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("contact", contact_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/companies/{company_id}/history",
    name="companies-history",
    summary=f"A company's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def company_history(
    company_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("company", company_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/leads/{lead_id}/history",
    name="leads-history",
    summary=f"A lead's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def lead_history(
    lead_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("lead", lead_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/deals/{deal_id}/history",
    name="deals-history",
    summary=f"A deal's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def deal_history(
    deal_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("deal", deal_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/activities/{activity_id}/history",
    name="activities-history",
    summary=f"An activity's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def activity_history(
    activity_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("activity", activity_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/tasks/{task_id}/history",
    name="tasks-history",
    summary=f"A task's changes, {HISTORY}",
    response_model=ListEnvelope[AuditEntryRead],
    responses=errors(404),
    openapi_extra=HISTORY_FILTERS,
)
async def task_history(
    task_id: uuid.UUID, principal: ReaderDep, session: SessionDep, params: HistoryParams
) -> EnvelopeResponse:
    page = await AuditService(session, principal).history("task", task_id, params)
    return ok([entry_read(r) for r in page.rows], meta=page.meta())
