"""Webhook queries, every one scoped to a workspace (the endpoint's for deliveries and attempts)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.clock import utcnow
from rapport.core.ids import new_id
from rapport.core.listing import RANGE, Filter, Listing, Sort
from rapport.core.repository import TenantRepository
from rapport.webhooks.models import (
    DELIVERY_STATUSES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

endpoints = WebhookEndpoint.__table__
deliveries = WebhookDelivery.__table__
attempts = WebhookAttempt.__table__

MAX_ATTEMPTS_SHOWN = 100

ENDPOINT_LISTING = Listing(
    id_column=endpoints.c.id,
    filters={
        "enabled": Filter(endpoints.c.enabled, bool, description="Enabled or disabled endpoints."),
        "created_at": Filter(endpoints.c.created_at, datetime, ops=RANGE),
        "updated_at": Filter(endpoints.c.updated_at, datetime, ops=RANGE),
    },
    sorts={
        "created_at": Sort(endpoints.c.created_at, datetime),
        "updated_at": Sort(endpoints.c.updated_at, datetime),
    },
    default_sort="created_at",
    search=(endpoints.c.url, endpoints.c.description),
    soft_delete=False,
)

DELIVERY_LISTING = Listing(
    id_column=deliveries.c.id,
    filters={
        "status": Filter(deliveries.c.status, choices=DELIVERY_STATUSES),
        "event_type": Filter(deliveries.c.event_type, description="Exact event type."),
        "event_id": Filter(deliveries.c.event_id, uuid.UUID),
        "created_at": Filter(deliveries.c.created_at, datetime, ops=RANGE),
    },
    sorts={"created_at": Sort(deliveries.c.created_at, datetime)},
    default_sort="created_at",
    soft_delete=False,
)


class EndpointRepository(TenantRepository):
    table = endpoints
    soft_delete = False


class DeliveryRepository(TenantRepository):
    table = deliveries
    soft_delete = False

    async def for_endpoint(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> RowMapping | None:
        stmt = self.select().where(
            deliveries.c.endpoint_id == endpoint_id, deliveries.c.id == delivery_id
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def attempts(self, delivery_id: uuid.UUID) -> list[RowMapping]:
        """The latest attempts of a delivery (at most MAX_ATTEMPTS_SHOWN), oldest first."""
        stmt = (
            select(attempts)
            .where(
                attempts.c.workspace_id == self.workspace_id, attempts.c.delivery_id == delivery_id
            )
            .order_by(attempts.c.attempt.desc())
            .limit(MAX_ATTEMPTS_SHOWN)
        )
        rows = (await self.session.execute(stmt)).mappings().all()
        return list(reversed(rows))

    async def add(self, values: dict[str, Any]) -> RowMapping:
        now = values.get("created_at") or utcnow()
        row = {"id": new_id(), "created_at": now, "updated_at": now, **values}
        row["workspace_id"] = self.workspace_id
        stmt = insert(deliveries).values(row).returning(deliveries)
        return (await self.session.execute(stmt)).mappings().one()

    async def count_attempt(
        self, delivery_id: uuid.UUID, values: dict[str, Any], now: datetime
    ) -> RowMapping | None:
        """One more attempt on the delivery (its number comes back in `attempts`)."""
        stmt = (
            update(deliveries)
            .where(deliveries.c.workspace_id == self.workspace_id, deliveries.c.id == delivery_id)
            .values(attempts=deliveries.c.attempts + 1, updated_at=now, **values)
            .returning(deliveries)
        )
        return (await self.session.execute(stmt)).mappings().first()

    async def add_attempt(self, values: dict[str, Any]) -> RowMapping:
        row = {"id": new_id(), **values, "workspace_id": self.workspace_id}
        stmt = insert(attempts).values(row).returning(attempts)
        return (await self.session.execute(stmt)).mappings().one()

    async def set_status(
        self, delivery_id: uuid.UUID, values: dict[str, Any], now: datetime
    ) -> None:
        await self.session.execute(
            update(deliveries)
            .where(deliveries.c.workspace_id == self.workspace_id, deliveries.c.id == delivery_id)
            .values(updated_at=now, **values)
        )


async def load_target(
    session: AsyncSession, workspace_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[RowMapping, RowMapping] | None:
    """A delivery and its endpoint, or None when either is gone (endpoint deleted)."""
    delivery = await DeliveryRepository(session, workspace_id).get(delivery_id)
    if delivery is None:
        return None
    endpoint = await EndpointRepository(session, workspace_id).get(delivery["endpoint_id"])
    if endpoint is None:
        return None
    return delivery, endpoint


async def enabled_endpoints(
    session: AsyncSession, workspace_ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    """The enabled endpoints of these workspaces, in one query (the relay's whole batch)."""
    stmt = (
        select(endpoints.c.workspace_id, endpoints.c.id, endpoints.c.events)
        .where(
            endpoints.c.workspace_id.in_(sorted(set(workspace_ids), key=str)),
            endpoints.c.enabled.is_(True),
        )
        .order_by(endpoints.c.workspace_id, endpoints.c.id)
    )
    return list((await session.execute(stmt)).mappings().all())
