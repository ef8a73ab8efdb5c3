"""Helpers for the import and export tests: CSV text, uploads through HTTP, and running the jobs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import select

from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from tests.factories import Account

IMPORTS = "/api/v1/imports"
EXPORTS = "/api/v1/exports"
CONTACTS = "/api/v1/contacts"


def csv_text(rows: Sequence[Sequence[Any]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def parse_csv(content: bytes | str) -> list[list[str]]:
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    return list(csv.reader(io.StringIO(text, newline="")))


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    content: str | bytes,
    *,
    filename: str = "people.csv",
    mapping: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    data = {"resource": "contacts"}
    for name, value in fields.items():
        data[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if mapping is not None:
        data["mapping"] = json.dumps(mapping)
    raw = content.encode("utf-8") if isinstance(content, str) else content
    return await client.post(
        IMPORTS, files={"file": (filename, raw, "text/csv")}, data=data, headers=account.headers
    )


async def start_import(
    client: httpx.AsyncClient, account: Account, content: str | bytes, **fields: Any
) -> dict[str, Any]:
    response = await upload(client, account, content, **fields)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def get_import(client: httpx.AsyncClient, account: Account, import_id: str) -> dict:
    response = await client.get(f"{IMPORTS}/{import_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def run_import(
    client: httpx.AsyncClient, app: Any, account: Account, content: str | bytes, **fields: Any
) -> dict[str, Any]:
    """Upload, run every due job, and return the import as the API reports it."""
    started = await start_import(client, account, content, **fields)
    await app.state.background.drain(rounds=200)
    return await get_import(client, account, started["id"])


async def error_report(
    client: httpx.AsyncClient, account: Account, import_id: str
) -> list[list[str]]:
    response = await client.get(f"{IMPORTS}/{import_id}/errors.csv", headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return parse_csv(response.content)


async def contacts(client: httpx.AsyncClient, account: Account, **params: Any) -> list[dict]:
    """Every live contact of the account's workspace (a few pages at most in these tests)."""
    found: list[dict] = []
    query: dict[str, Any] = {"limit": 200, "sort_order": "asc", **params}
    while True:
        response = await client.get(CONTACTS, params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["data"])
        if not body["meta"]["has_more"]:
            return found
        query["cursor"] = body["meta"]["next_cursor"]


async def define_field(
    client: httpx.AsyncClient, admin: Account, name: str, type_: str, **extra: Any
) -> dict[str, Any]:
    payload = {"resource": "contact", "name": name, "label": name.title(), "type": type_, **extra}
    response = await client.post("/api/v1/custom-fields", json=payload, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def event_types(database: Database, resource_id: str) -> list[str]:
    """The types of the events recorded about one import or export, in order."""
    import uuid

    async with database.read_sessions() as session:
        rows = await session.execute(
            select(EVENTS.c.type)
            .where(EVENTS.c.resource_id == uuid.UUID(resource_id))
            .order_by(EVENTS.c.id)
        )
        return list(rows.scalars())
