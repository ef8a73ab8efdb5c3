"""The caller's own notifications (any role). Importing this module registers the subscriber and
the reminder job (`handlers`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from rapport.core.auth import PrincipalDep
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, SessionDep
from rapport.notifications import handlers  # noqa: F401 - registers the subscriber and job
from rapport.notifications.repository import NOTIFICATION_LISTING
from rapport.notifications.schemas import NotificationRead, ReadAllResult, UnreadCount
from rapport.notifications.service import NotificationService, notification_read

router = ContractRouter(prefix="/notifications", tags=["notifications"])


@router.get(
    "",
    name="notifications-list",
    summary="List my notifications (status=unread|read|all, type, created_at ranges, cursor)",
    response_model=ListEnvelope[NotificationRead],
    responses=errors(),
    openapi_extra={"parameters": NOTIFICATION_LISTING.openapi_parameters()},
)
async def list_notifications(
    principal: PrincipalDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(NOTIFICATION_LISTING.params)],
) -> EnvelopeResponse:
    page = await NotificationService(session, principal).list(params)
    return ok([notification_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/unread-count",
    name="notifications-unread-count",
    summary="How many of my notifications are unread",
    response_model=Envelope[UnreadCount],
    responses=errors(),
)
async def unread_count(principal: PrincipalDep, session: SessionDep) -> EnvelopeResponse:
    return ok({"unread": await NotificationService(session, principal).unread_count()})


@router.post(
    "/read-all",
    name="notifications-read-all",
    summary="Mark all my notifications read",
    response_model=Envelope[ReadAllResult],
    responses=errors(),
)
async def read_all(principal: PrincipalDep, session: SessionDep) -> EnvelopeResponse:
    return ok(await NotificationService(session, principal).mark_all_read())


@router.get(
    "/{notification_id}",
    name="notifications-get",
    summary="Get one of my notifications",
    response_model=Envelope[NotificationRead],
    responses=errors(404),
)
async def get_notification(
    notification_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> EnvelopeResponse:
    row = await NotificationService(session, principal).get(notification_id)
    return ok(notification_read(row))


@router.post(
    "/{notification_id}/read",
    name="notifications-read",
    summary="Mark one of my notifications read (a read one keeps its first read_at)",
    response_model=Envelope[NotificationRead],
    responses=errors(404),
)
async def read_notification(
    notification_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> EnvelopeResponse:
    row = await NotificationService(session, principal).mark_read(notification_id)
    return ok(notification_read(row))


@router.delete(
    "/{notification_id}",
    name="notifications-delete",
    summary="Delete one of my notifications for good",
    response_model=Envelope[Deleted],
    responses=errors(404),
)
async def delete_notification(
    notification_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> EnvelopeResponse:
    await NotificationService(session, principal).delete(notification_id)
    return ok({"id": str(notification_id), "deleted": True})
