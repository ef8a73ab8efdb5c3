"""Webhook endpoints (admin configuration), their delivery log, redeliveries and test sends.

Secrets are shown in full only when made (create, rotation); reads carry a hint. Every change of
an endpoint records a `webhook_endpoint.*` event whose data never holds a secret.

Redeliver and test send at once and answer with the outcome. They never hold the request's
transaction across the HTTP call: what they need is read on an autocommit connection first, and
the request's unit of work only starts afterwards, to log the attempt.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.db import Database
from rapport.core.errors import PreconditionFailed
from rapport.core.ids import new_id
from rapport.core.listing import ListParams, Page
from rapport.core.outbox import DomainEvent
from rapport.webhooks.delivery import TEST_EVENT, encode_event, log_attempt, signing_secrets
from rapport.webhooks.errors import (
    DisabledReasonWithoutDisabling,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
    WebhookUrlRefused,
)
from rapport.webhooks.models import FAILED, REDELIVER, SUCCEEDED, TEST
from rapport.webhooks.repository import (
    DELIVERY_LISTING,
    ENDPOINT_LISTING,
    DeliveryRepository,
    EndpointRepository,
    deliveries,
)
from rapport.webhooks.schemas import (
    RotateSecret,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    delivery_detail,
    endpoint_read,
)
from rapport.webhooks.sender import new_secret, sender
from rapport.webhooks.ssrf import TargetRefused, check_url

RESOURCE = "webhook_endpoint"


class WebhookService:
    def __init__(
        self, session: AsyncSession, principal: Principal, services: dict[str, Any]
    ) -> None:
        self.session = session
        self.principal = principal
        self.workspace_id = principal.workspace_id
        self.services = services
        self.settings = services["settings"]
        self.db: Database = services["db"]
        self.endpoints = EndpointRepository(session, self.workspace_id)
        self.deliveries = DeliveryRepository(session, self.workspace_id)

    # -- endpoints -------------------------------------------------------------------------
    async def _check_url(self, url: str) -> None:
        try:
            await check_url(url, self.settings)
        except TargetRefused as refused:
            raise WebhookUrlRefused(refused.code, refused.reason) from None

    async def _record(self, verb: str, row: RowMapping, **extra: Any) -> None:
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type=f"{RESOURCE}.{verb}",
            data={**endpoint_read(row), **extra},
            principal=self.principal,
            resource_id=row["id"],
        )

    async def list(self, params: ListParams) -> Page:
        return await self.endpoints.list(ENDPOINT_LISTING, params)

    async def get(self, endpoint_id: uuid.UUID) -> RowMapping:
        row = await self.endpoints.get(endpoint_id)
        if row is None:
            raise WebhookEndpointNotFound()
        return row

    async def create(self, body: WebhookEndpointCreate) -> dict[str, Any]:
        if body.enabled and body.disabled_reason is not None:
            raise DisabledReasonWithoutDisabling()
        await self._check_url(body.url)
        row = await self.endpoints.insert(
            {
                "url": body.url,
                "description": body.description,
                "events": body.events,
                "enabled": body.enabled,
                "disabled_reason": None if body.enabled else body.disabled_reason,
                "disabled_at": None if body.enabled else utcnow(),
                "secret": new_secret(),
            }
        )
        await self._record("created", row)
        return {**endpoint_read(row), "secret": row["secret"]}

    async def update(
        self, endpoint_id: uuid.UUID, body: WebhookEndpointUpdate, expected: int | None
    ) -> RowMapping:
        sent = body.model_dump(exclude_unset=True)
        if sent.get("url") is not None:
            await self._check_url(sent["url"])  # DNS first: no transaction is open yet
        current = await self.get(endpoint_id)
        if expected is not None and current["version"] != expected:
            raise PreconditionFailed()
        changes: dict[str, Any] = {}
        # url, events and enabled are required: null means "leave as is".
        for name in ("url", "events", "description"):
            keep = name not in sent or (sent[name] is None and name != "description")
            if not keep and sent[name] != current[name]:
                changes[name] = sent[name]
        enabled = current["enabled"] if sent.get("enabled") is None else sent["enabled"]
        if "disabled_reason" in sent and sent["disabled_reason"] is not None and enabled:
            raise DisabledReasonWithoutDisabling()
        if enabled and not current["enabled"]:
            # Re-enabled: a fresh start for the disable rule.
            changes.update(enabled=True, disabled_reason=None, disabled_at=None, failing_since=None)
        elif not enabled:
            if current["enabled"]:
                changes.update(enabled=False, disabled_at=utcnow())
            if "disabled_reason" in sent and sent["disabled_reason"] != current["disabled_reason"]:
                changes["disabled_reason"] = sent["disabled_reason"]
        if not changes:
            return current
        row = await self.endpoints.update(endpoint_id, changes, expected_version=expected)
        if row is None:
            raise PreconditionFailed() if expected is not None else WebhookEndpointNotFound()
        await self._record("updated", row)
        return row

    async def delete(self, endpoint_id: uuid.UUID, expected: int | None) -> None:
        row = await self.get(endpoint_id)
        if expected is not None and row["version"] != expected:
            raise PreconditionFailed()
        # Deliveries and attempts go with it (ON DELETE CASCADE); pending jobs find nothing.
        await self.endpoints.erase(endpoint_id)
        await self._record("deleted", row)

    async def rotate_secret(self, endpoint_id: uuid.UUID, body: RotateSecret) -> dict[str, Any]:
        """A new secret; the old one keeps signing deliveries (beside the new one) for the overlap,
        so receivers can switch without losing a delivery. Only one previous secret is kept."""
        current = await self.get(endpoint_id)
        overlap = body.expire_previous_in_seconds
        row = await self.endpoints.update(
            endpoint_id,
            {
                "secret": new_secret(),
                "previous_secret": current["secret"] if overlap else None,
                "previous_secret_expires_at": (
                    utcnow() + timedelta(seconds=overlap) if overlap else None
                ),
            },
        )
        if row is None:
            raise WebhookEndpointNotFound()
        await self._record("secret_rotated", row)
        return {**endpoint_read(row), "secret": row["secret"]}

    # -- deliveries ------------------------------------------------------------------------
    async def list_deliveries(self, endpoint_id: uuid.UUID, params: ListParams) -> Page:
        await self.get(endpoint_id)
        return await self.deliveries.list(
            DELIVERY_LISTING, params, deliveries.c.endpoint_id == endpoint_id
        )

    async def delivery(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
        await self.get(endpoint_id)
        row = await self.deliveries.for_endpoint(endpoint_id, delivery_id)
        if row is None:
            raise WebhookDeliveryNotFound()
        return delivery_detail(row, await self.deliveries.attempts(delivery_id))

    async def _read_target(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID | None = None
    ) -> tuple[RowMapping, RowMapping | None]:
        """Endpoint (and delivery) read outside the request's transaction: nothing is locked
        while the HTTP call that follows runs."""
        async with self.db.read_sessions() as session:
            endpoint = await EndpointRepository(session, self.workspace_id).get(endpoint_id)
            if endpoint is None:
                raise WebhookEndpointNotFound()
            if delivery_id is None:
                return endpoint, None
            delivery = await DeliveryRepository(session, self.workspace_id).for_endpoint(
                endpoint_id, delivery_id
            )
            if delivery is None:
                raise WebhookDeliveryNotFound()
            return endpoint, delivery

    async def redeliver(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
        """A new attempt now, whatever the delivery's state (and even to a disabled endpoint: the
        admin asked). Success marks the delivery succeeded; a failure leaves its schedule be."""
        endpoint, delivery = await self._read_target(endpoint_id, delivery_id)
        assert delivery is not None
        result = await sender(self.services).send(
            endpoint["url"],
            str(delivery["event_id"]),
            delivery["payload"],
            signing_secrets(endpoint, utcnow()),
        )
        logged = await log_attempt(
            self.session,
            self.workspace_id,
            delivery_id,
            endpoint_id,
            result,
            now=utcnow(),
            trigger=REDELIVER,
        )
        if logged is None:
            raise WebhookDeliveryNotFound()
        return delivery_detail(logged.delivery, await self.deliveries.attempts(delivery_id))

    async def send_test(self, endpoint_id: uuid.UUID) -> dict[str, Any]:
        """A `webhook.test` event to this endpoint only (never through the outbox, so no other
        endpoint sees it), sent now; the delivery is logged like any other."""
        endpoint, _ = await self._read_target(endpoint_id)
        now = utcnow()
        event = DomainEvent(
            id=new_id(),
            workspace_id=self.workspace_id,
            type=TEST_EVENT,
            resource_id=endpoint_id,
            actor_type=self.principal.credential,
            actor_id=self.principal.user_id,
            credential_id=self.principal.credential_id,
            data={
                "endpoint_id": str(endpoint_id),
                "message": "A test event from Rapport: your endpoint is reachable.",
            },
            occurred_at=now,
        )
        body = encode_event(event)
        result = await sender(self.services).send(
            endpoint["url"], str(event.id), body, signing_secrets(endpoint, now)
        )
        stamp = utcnow()
        delivery = await self.deliveries.add(
            {
                "endpoint_id": endpoint_id,
                "event_id": event.id,
                "event_type": TEST_EVENT,
                "payload": body,
                "status": SUCCEEDED if result.ok else FAILED,
                "attempts": 0,
                "created_at": stamp,
            }
        )
        logged = await log_attempt(
            self.session,
            self.workspace_id,
            delivery["id"],
            endpoint_id,
            result,
            now=stamp,
            trigger=TEST,
        )
        assert logged is not None
        return delivery_detail(logged.delivery, [logged.attempt])
