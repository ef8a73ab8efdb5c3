from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Body, Depends, Request

from rapport.core.auth import AdminDep
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.webhooks import handlers  # noqa: F401 - registers the subscriber and the job kind
from rapport.webhooks.repository import DELIVERY_LISTING, ENDPOINT_LISTING
from rapport.webhooks.schemas import (
    RotateSecret,
    WebhookDeliveryDetail,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    delivery_read,
    endpoint_read,
)
from rapport.webhooks.service import WebhookService

router = ContractRouter(prefix="/webhooks", tags=["webhooks"])


async def background_services(request: Request) -> dict[str, Any]:
    """The process's shared services (settings, database, the webhook HTTP client)."""
    return request.app.state.background.services


ServicesDep = Annotated[dict[str, Any], Depends(background_services)]


@router.get(
    "",
    name="webhooks-list",
    summary="List webhook endpoints (admin)",
    response_model=ListEnvelope[WebhookEndpointRead],
    responses=errors(),
    openapi_extra={"parameters": ENDPOINT_LISTING.openapi_parameters()},
)
async def list_webhooks(
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
    params: Annotated[ListParams, Depends(ENDPOINT_LISTING.params)],
) -> EnvelopeResponse:
    page = await WebhookService(session, principal, services).list(params)
    return ok([endpoint_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="webhooks-create",
    summary="Create a webhook endpoint (admin); its signing secret is shown once",
    description=(
        "The URL must be a public https URL: private, loopback, link-local, reserved and cloud "
        "metadata addresses are refused (422 `webhook_url_private`) unless the operator allows "
        "private targets; `webhook_url_insecure` for http, `webhook_url_unresolvable` for a host "
        "that does not resolve, `webhook_url_invalid` otherwise."
    ),
    status_code=201,
    response_model=Envelope[WebhookEndpointWithSecret],
    responses=errors(),
)
async def create_webhook(
    body: WebhookEndpointCreate, principal: AdminDep, session: SessionDep, services: ServicesDep
) -> EnvelopeResponse:
    data = await WebhookService(session, principal, services).create(body)
    return ok(data, status_code=201, headers=etag_headers(data["version"]))


@router.get(
    "/{webhook_id}",
    name="webhooks-get",
    summary="Get a webhook endpoint (admin; the secret is never shown again)",
    response_model=Envelope[WebhookEndpointRead],
    responses=errors(404),
)
async def get_webhook(
    webhook_id: uuid.UUID, principal: AdminDep, session: SessionDep, services: ServicesDep
) -> EnvelopeResponse:
    row = await WebhookService(session, principal, services).get(webhook_id)
    return ok(endpoint_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{webhook_id}",
    name="webhooks-update",
    summary="Update a webhook endpoint (admin): URL, events, description, enabled",
    response_model=Envelope[WebhookEndpointRead],
    responses=errors(400, 404, 412),
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await WebhookService(session, principal, services).update(webhook_id, body, if_match)
    return ok(endpoint_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{webhook_id}",
    name="webhooks-delete",
    summary="Delete a webhook endpoint and its delivery log (admin)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_webhook(
    webhook_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    await WebhookService(session, principal, services).delete(webhook_id, if_match)
    return ok({"id": str(webhook_id), "deleted": True})


@router.post(
    "/{webhook_id}/rotate-secret",
    name="webhooks-rotate-secret",
    summary="Rotate the signing secret (admin); old and new both sign during the overlap",
    response_model=Envelope[WebhookEndpointWithSecret],
    responses=errors(404),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
    body: Annotated[RotateSecret | None, Body()] = None,
) -> EnvelopeResponse:
    data = await WebhookService(session, principal, services).rotate_secret(
        webhook_id, body or RotateSecret()
    )
    return ok(data, headers=etag_headers(data["version"]))


@router.post(
    "/{webhook_id}/test",
    name="webhooks-test",
    summary="Send a webhook.test event to this endpoint now and return the outcome (admin)",
    response_model=Envelope[WebhookDeliveryDetail],
    responses=errors(404),
)
async def test_webhook(
    webhook_id: uuid.UUID, principal: AdminDep, session: SessionDep, services: ServicesDep
) -> EnvelopeResponse:
    return ok(await WebhookService(session, principal, services).send_test(webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    name="webhooks-deliveries-list",
    summary="The endpoint's delivery log (admin): filter by status, event_type",
    response_model=ListEnvelope[WebhookDeliveryRead],
    responses=errors(404),
    openapi_extra={"parameters": DELIVERY_LISTING.openapi_parameters()},
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
    params: Annotated[ListParams, Depends(DELIVERY_LISTING.params)],
) -> EnvelopeResponse:
    page = await WebhookService(session, principal, services).list_deliveries(webhook_id, params)
    return ok([delivery_read(r) for r in page.rows], meta=page.meta())


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    name="webhooks-deliveries-get",
    summary="One delivery with its attempts: requests, responses, latencies, errors (admin)",
    response_model=Envelope[WebhookDeliveryDetail],
    responses=errors(404),
)
async def get_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
) -> EnvelopeResponse:
    return ok(await WebhookService(session, principal, services).delivery(webhook_id, delivery_id))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    name="webhooks-deliveries-redeliver",
    summary="Attempt a delivery again now and return the outcome (admin)",
    response_model=Envelope[WebhookDeliveryDetail],
    responses=errors(404),
)
async def redeliver_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    services: ServicesDep,
) -> EnvelopeResponse:
    return ok(await WebhookService(session, principal, services).redeliver(webhook_id, delivery_id))
