from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path

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


# (resource, path segment, whose changes): one history route each, same handler.
HISTORIES = (
    ("contact", "contacts", "A contact's"),
    ("company", "companies", "A company's"),
    ("lead", "leads", "A lead's"),
    ("deal", "deals", "A deal's"),
    ("activity", "activities", "An activity's"),
    ("task", "tasks", "A task's"),
)


def add_history_route(resource: str, segment: str, whose: str) -> None:
    id_name = f"{resource}_id"

    async def history(
        record_id: uuid.UUID,
        principal: ReaderDep,
        session: SessionDep,
        params: HistoryParams,
    ) -> EnvelopeResponse:
        page = await AuditService(session, principal).history(resource, record_id, params)
        return ok([entry_read(r) for r in page.rows], meta=page.meta())

    # The path names the id after its resource (`contact_id`); set as an object, since this
    # module's annotations are strings and `id_name` is local.
    history.__annotations__["record_id"] = Annotated[uuid.UUID, Path(alias=id_name)]
    router.get(
        f"/{segment}/{{{id_name}}}/history",
        name=f"{segment}-history",
        summary=f"{whose} changes, {HISTORY}",
        response_model=ListEnvelope[AuditEntryRead],
        responses=errors(404),
        openapi_extra=HISTORY_FILTERS,
    )(history)


for spec in HISTORIES:
    add_history_route(*spec)
