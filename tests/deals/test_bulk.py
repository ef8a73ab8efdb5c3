"""Bulk deal writes, batched: constant statements, stage history and stage/status events for every
deal, references and stages checked for the whole batch with the single-item errors."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from rapport.deals.models import DealStageChange
from tests.bulk_checks import (
    SLACK,
    counted,
    documents,
    event_count,
    events_of,
    failed,
    per_chunk,
    search_ids,
    statements,  # noqa: F401 - fixture
    total,
    written,
)
from tests.deals.factories import (
    DEALS,
    default_pipeline,
    make_deal,
    make_pipeline,
    stage_change_count,
    stage_id,
)
from tests.factories import register

CONTACTS = "/api/v1/contacts"
COMPANIES = "/api/v1/companies"
history = DealStageChange.__table__


async def history_rows(database, workspace_id: str) -> int:  # noqa: ANN001
    async with database.read_sessions() as session:
        stmt = select(func.count()).where(history.c.workspace_id == uuid.UUID(workspace_id))
        return (await session.execute(stmt)).scalar_one()


class TestBulkCreate:
    async def test_1000_deals_with_history_and_events(self, client, database, statements, backend):  # noqa: F811
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        contact = await client.post(
            CONTACTS, json={"first_name": "Grace", "last_name": "Hopper"}, headers=admin.headers
        )
        company = await client.post(COMPANIES, json={"name": "Univac"}, headers=admin.headers)
        parties = {
            "contact_id": contact.json()["data"]["id"],
            "company_id": company.json()["data"]["id"],
            "owner_id": admin.user["id"],
        }

        def deals(count: int, tag: str) -> list[dict]:
            return [
                {"name": f"{tag} deal {i}", "amount": i, "currency": "USD", **parties}
                for i in range(count)
            ]

        small, few = await counted(
            client, statements, admin, "POST", f"{DEALS}/bulk", deals(10, "s")
        )
        large, many = await counted(
            client, statements, admin, "POST", f"{DEALS}/bulk", deals(200, "m")
        )
        items = deals(1000, "f")
        items[10]["status"] = "won"
        items[11]["stage_id"] = stage_id(sales, "Lost")
        full, most = await counted(client, statements, admin, "POST", f"{DEALS}/bulk", items)
        assert small.status_code == large.status_code == full.status_code == 200
        assert many <= few + SLACK and per_chunk(few, most, 1000, backend), (few, many, most)
        rows = written(full)
        ids = [r["id"] for r in rows]
        assert [r["stage_name"] for r in rows[9:12]] == ["Lead", "Won", "Lost"]
        assert [r["status"] for r in rows[9:12]] == ["open", "won", "lost"]
        assert rows[10]["won_at"] is not None and rows[11]["lost_at"] is not None
        assert await history_rows(database, admin.workspace_id) == 1210
        assert await event_count(database, admin.workspace_id, "deal.created", ids) == 1000
        assert await event_count(database, admin.workspace_id, "deal.stage_changed", ids) == 1000
        assert await event_count(database, admin.workspace_id, "deal.won", ids) == 1
        assert await event_count(database, admin.workspace_id, "deal.lost", ids) == 1
        assert [t for t, _ in await events_of(database, ids[10])] == [
            "deal.created",
            "deal.stage_changed",
            "deal.won",
        ]
        assert set(ids) <= set(await documents(database, admin.workspace_id, "deal"))
        # The deal's search document carries its contact's and company's names.
        assert ids[500] in await search_ids(client, admin, "f deal 500")
        found = await client.get(DEALS, params={"search": "hopper"}, headers=admin.headers)
        assert found.json()["data"]

    async def test_references_and_stages_per_index(self, client):
        admin = await register(client)
        other = await register(client)
        sales = await default_pipeline(client, admin)
        side = await make_pipeline(client, admin, name="Side")
        foreign = await default_pipeline(client, other)
        items = [{"name": f"Deal {i}"} for i in range(8)]
        items[1]["contact_id"] = str(uuid.UUID(int=9))
        items[2]["stage_id"] = foreign["stages"][0]["id"]  # another workspace's: no such stage
        items[3]["stage_id"] = side["stages"][0]["id"]  # in another pipeline
        items[4]["pipeline_id"] = str(uuid.UUID(int=8))
        items[5].update(pipeline_id=side["id"], stage_id=side["stages"][-1]["id"])
        items[6].update(status="won", stage_id=stage_id(sales, "Lead"))
        items[7]["amount"] = 5
        response = await client.post(
            f"{DEALS}/bulk?atomic=false", json={"items": items}, headers=admin.headers
        )
        errors = failed(response)
        assert {i: (e["code"], e["details"][0]["field"]) for i, e in errors.items()} == {
            1: ("invalid_reference", "body.contact_id"),
            2: ("invalid_reference", "body.stage_id"),
            3: ("stage_not_in_pipeline", "body.stage_id"),
            4: ("invalid_reference", "body.pipeline_id"),
            6: ("status_conflicts_with_stage", "body.status"),
            7: ("validation_error", "body.currency"),
        }
        data = written(response)
        assert [(d["pipeline_name"], d["stage_name"]) for d in data] == [
            ("Sales", "Lead"),
            ("Side", side["stages"][-1]["name"]),
        ]
        assert await total(client, admin, DEALS) == 2


class TestBulkUpdate:
    async def test_stage_moves_and_statuses(self, client, database):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        a = await make_deal(client, admin, name="A")
        b = await make_deal(client, admin, name="B")
        response = await client.patch(
            f"{DEALS}/bulk",
            json={
                "items": [
                    {"id": a["id"], "stage_id": stage_id(sales, "Proposal")},
                    {"id": b["id"], "status": "won"},
                    {"id": a["id"], "stage_id": stage_id(sales, "Negotiation")},
                    {"id": b["id"], "name": "B2"},
                ]
            },
            headers=admin.headers,
        )
        data = written(response)
        assert [(d["stage_name"], d["status"], d["version"]) for d in data] == [
            ("Proposal", "open", 2),
            ("Won", "won", 2),
            ("Negotiation", "open", 3),
            ("Won", "won", 3),
        ]
        assert await stage_change_count(database, a["id"]) == 3
        moves = [d for t, d in await events_of(database, a["id"]) if t == "deal.stage_changed"]
        assert [m["from_stage_id"] for m in moves[1:]] == [
            stage_id(sales, "Lead"),
            stage_id(sales, "Proposal"),
        ]
        # Each record's events in the order one update after another writes them.
        assert [t for t, _ in await events_of(database, b["id"])] == [
            "deal.created",
            "deal.stage_changed",
            "deal.updated",
            "deal.stage_changed",
            "deal.won",
            "deal.updated",
        ]
