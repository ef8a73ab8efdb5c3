"""Timelines: /{contacts,companies,leads,deals}/{id}/activities, ordered by occurred_at, then
created_at, then id; keyset-paged; filtered like /activities; 404 outside the workspace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapport.activities.models import Activity
from tests.activities.factories import (
    PLURAL,
    insert_row,
    make_activity,
    make_contact,
    make_record,
)
from tests.activities.test_router import NOWHERE, collect, ids
from tests.factories import add_member, register

RESOURCES = ("contact", "company", "lead", "deal")
SAME = "2026-04-01T10:00:00Z"


def timeline(resource: str, record_id: str) -> str:
    return f"/api/v1/{PLURAL[resource]}/{record_id}/activities"


@pytest.mark.parametrize("resource", RESOURCES)
class TestTimeline:
    async def test_ordered_by_occurred_at_then_created_at(self, client, database, resource):
        admin = await register(client)
        record = await make_record(client, database, admin, resource)
        elsewhere = await make_record(client, database, admin, resource)
        link = f"{resource}_id"
        first_tie = await make_activity(client, admin, **{link: record}, occurred_at=SAME)
        oldest = await make_activity(
            client, admin, **{link: record}, occurred_at="2026-01-01T00:00:00Z"
        )
        second_tie = await make_activity(client, admin, **{link: record}, occurred_at=SAME)
        newest = await make_activity(
            client, admin, **{link: record}, kind="email", occurred_at="2026-09-01T00:00:00Z"
        )
        third_tie = await make_activity(client, admin, **{link: record}, occurred_at=SAME)
        await make_activity(client, admin, **{link: elsewhere}, occurred_at=SAME)
        deleted = await make_activity(client, admin, **{link: record}, occurred_at=SAME)
        await client.delete(f"/api/v1/activities/{deleted['id']}", headers=admin.headers)

        path = timeline(resource, record)
        expected = [newest, third_tie, second_tie, first_tie, oldest]
        assert ids(await client.get(path, headers=admin.headers)) == [a["id"] for a in expected]
        ascending = await client.get(path, params={"sort_order": "asc"}, headers=admin.headers)
        assert ids(ascending) == [a["id"] for a in reversed(expected)]
        paged = await collect(client, admin, path, limit=2)
        assert paged == [a["id"] for a in expected]
        # The same filters as /activities, minus the record's own id.
        emails = await client.get(path, params={"kind": "email"}, headers=admin.headers)
        assert ids(emails) == [newest["id"]]
        ranged = await client.get(
            path, params={"occurred_at[lte]": SAME, "limit": 200}, headers=admin.headers
        )
        assert ids(ranged) == [a["id"] for a in expected[1:]]
        own_filter = await client.get(path, params={link: record}, headers=admin.headers)
        assert own_filter.status_code == 422
        counted = await client.get(path, params={"include_total": "true"}, headers=admin.headers)
        assert counted.json()["meta"]["total"] == 5
        with_deleted = await client.get(
            path, params={"include_deleted": "true"}, headers=admin.headers
        )
        assert deleted["id"] in ids(with_deleted)

    async def test_other_workspace_and_missing_records_are_404(self, client, database, resource):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        intruder = await register(client)
        record = await make_record(client, database, admin, resource)
        await make_activity(client, admin, **{f"{resource}_id": record})
        assert len(ids(await client.get(timeline(resource, record), headers=viewer.headers))) == 1
        for account, record_id in ((intruder, record), (admin, NOWHERE)):
            response = await client.get(timeline(resource, record_id), headers=account.headers)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == f"{resource}_not_found"
        bad = await client.get(timeline(resource, "not-a-uuid"), headers=admin.headers)
        assert bad.status_code == 422


class TestTieBreak:
    async def test_created_at_comes_before_the_id(self, client, database):
        """Rows whose ids run against their created_at (e.g. logged by another node whose clock
        ran ahead) still read in created_at order within one occurred_at."""
        admin = await register(client)
        contact = await make_contact(database, admin)
        occurred = datetime(2026, 4, 1, 10, tzinfo=UTC)
        base = datetime(2026, 4, 2, tzinfo=UTC)
        rows = []
        for i in range(6):
            rows.append(
                await insert_row(
                    database,
                    Activity.__table__,
                    admin,
                    kind="note",
                    occurred_at=occurred,
                    contact_id=uuid.UUID(contact),
                    # Later ids get earlier created_at.
                    created_at=base - timedelta(minutes=i),
                    updated_at=base,
                )
            )
        path = timeline("contact", contact)
        assert ids(await client.get(path, headers=admin.headers)) == rows
        assert await collect(client, admin, path, limit=4, sort_order="asc") == rows[::-1]
        assert await collect(client, admin, "/api/v1/activities", limit=4) == rows
