"""Webhook factories: endpoints through the API, and a look at a workspace's outbox."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from tests.factories import Account

PUBLIC_URL = "https://93.184.216.34/hooks/rapport"  # a public IP literal: no DNS involved


async def create_endpoint(
    client: httpx.AsyncClient, account: Account, url: str = PUBLIC_URL, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, **overrides}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def create_contact(client: httpx.AsyncClient, account: Account, **fields: Any) -> str:
    response = await client.post(
        "/api/v1/contacts", json={"first_name": "Ada", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


async def deliveries(
    client: httpx.AsyncClient, account: Account, endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def delivery(
    client: httpx.AsyncClient, account: Account, endpoint_id: str, delivery_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}", headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def recorded_events(database: Database, account: Account, type_: str) -> list[Any]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(EVENTS)
            .where(EVENTS.c.workspace_id == uuid.UUID(account.workspace_id), EVENTS.c.type == type_)
            .order_by(EVENTS.c.id)
        )
        return list(rows.mappings().all())
