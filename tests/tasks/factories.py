"""Task factories: plain async functions with keyword overrides."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account

TASKS = "/api/v1/tasks"


async def make_task(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    payload = {"title": "Follow up", **fields}
    response = await client.post(TASKS, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]
