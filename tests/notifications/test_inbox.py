"""The inbox routes: each user lists, reads, counts and deletes only their own notifications;
filters, keyset pages and bad input behave like every other list."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

from tests.factories import add_member, create_api_key, register
from tests.notifications.factories import (
    NOTIFICATIONS,
    drain,
    inbox,
    make_task,
    unread,
)


async def seeded(app, client, count: int = 3):  # noqa: ANN001, ANN201
    """A workspace whose member Bob has `count` task assignments from the admin."""
    admin = await register(client)
    bob = await add_member(client, admin)
    for i in range(count):
        await make_task(client, admin, title=f"Task {i}", assignee_id=bob.user["id"])
    await drain(app)
    return admin, bob


class TestInbox:
    async def test_read_read_all_and_unread_count(self, app, client):
        admin, bob = await seeded(app, client)
        assert await unread(client, bob) == 3
        first, second, third = await inbox(client, bob)

        r = await client.post(f"{NOTIFICATIONS}/{first['id']}/read", headers=bob.headers)
        assert r.status_code == 200, r.text
        read = r.json()["data"]
        assert read["status"] == "read" and read["read_at"] is not None
        again = await client.post(f"{NOTIFICATIONS}/{first['id']}/read", headers=bob.headers)
        assert again.json()["data"]["read_at"] == read["read_at"], "the first read time stays"
        assert await unread(client, bob) == 2

        assert [n["id"] for n in await inbox(client, bob, status="unread")] == [
            second["id"],
            third["id"],
        ]
        assert [n["id"] for n in await inbox(client, bob, status="read")] == [first["id"]]
        assert len(await inbox(client, bob, status="read,unread")) == 3
        assert len(await inbox(client, bob, status="all")) == 3

        r = await client.post(f"{NOTIFICATIONS}/read-all", headers=bob.headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["marked_read"] == 2
        assert await unread(client, bob) == 0
        r = await client.post(f"{NOTIFICATIONS}/read-all", headers=bob.headers)
        assert r.json()["data"]["marked_read"] == 0

        got = await client.get(f"{NOTIFICATIONS}/{second['id']}", headers=bob.headers)
        assert got.status_code == 200 and got.json()["data"]["status"] == "read"

    async def test_delete(self, app, client):
        _, bob = await seeded(app, client, count=2)
        first, second = await inbox(client, bob)
        r = await client.delete(f"{NOTIFICATIONS}/{first['id']}", headers=bob.headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"id": first["id"], "deleted": True}
        assert [n["id"] for n in await inbox(client, bob)] == [second["id"]]
        for method, path in (
            ("GET", f"{NOTIFICATIONS}/{first['id']}"),
            ("POST", f"{NOTIFICATIONS}/{first['id']}/read"),
            ("DELETE", f"{NOTIFICATIONS}/{first['id']}"),
        ):
            r = await client.request(method, path, headers=bob.headers)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "notification_not_found"

    async def test_filters_and_pages(self, app, client, clock):
        admin = await register(client)
        bob = await add_member(client, admin)
        await make_task(client, admin, assignee_id=bob.user["id"])
        await drain(app)
        start = clock()
        clock.advance(hours=2)
        r = await client.post(
            "/api/v1/deals", json={"name": "Big", "owner_id": bob.user["id"]}, headers=admin.headers
        )
        assert r.status_code == 201
        for i in range(4):
            await make_task(client, admin, title=f"Later {i}", assignee_id=bob.user["id"])
        await drain(app)

        assert len(await inbox(client, bob)) == 6
        assert [n["type"] for n in await inbox(client, bob, type="deal.assigned")] == [
            "deal.assigned"
        ]
        assert len(await inbox(client, bob, type="task.assigned,deal.assigned")) == 6
        assert len(await inbox(client, bob, resource_type="task")) == 5
        mid = (start + timedelta(hours=1)).astimezone(UTC).isoformat().replace("+00:00", "Z")
        assert len(await inbox(client, bob, **{"created_at[gte]": mid})) == 5
        assert len(await inbox(client, bob, **{"created_at[lt]": mid})) == 1
        assert len(await inbox(client, bob, search="later 2")) == 1

        ids, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            r = await client.get(NOTIFICATIONS, params=params, headers=bob.headers)
            assert r.status_code == 200, r.text
            ids += [n["id"] for n in r.json()["data"]]
            cursor = r.json()["meta"]["next_cursor"]
            if cursor is None:
                break
        assert ids == [n["id"] for n in await inbox(client, bob)]
        assert len(set(ids)) == 6
        oldest_first = await inbox(client, bob, sort_order="asc")
        assert [n["id"] for n in oldest_first] == ids[::-1]

        r = await client.get(NOTIFICATIONS, params={"include_total": "true"}, headers=bob.headers)
        assert r.json()["meta"]["total"] == 6

    async def test_bad_input_is_422(self, app, client):
        _, bob = await seeded(app, client, count=1)
        for params in (
            {"status": "archived"},
            {"type": "nope"},
            {"owner_id": "me"},
            {"created_at[gte]": "yesterday"},
            {"sort_by": "title"},
            {"include_deleted": "true"},
            {"cursor": "garbage"},
        ):
            r = await client.get(NOTIFICATIONS, params=params, headers=bob.headers)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["success"] is False
        r = await client.post(f"{NOTIFICATIONS}/not-a-uuid/read", headers=bob.headers)
        assert r.status_code == 422

    async def test_any_role_reads_their_own(self, app, client):
        admin = await register(client)
        viewer = await add_member(client, admin, role="viewer")
        technician = await add_member(client, admin, role="technician")
        for account in (viewer, technician):
            assert await inbox(client, account) == []
            assert await unread(client, account) == 0
        r = await client.get(NOTIFICATIONS)
        assert r.status_code == 401


class TestPrivacy:
    async def test_users_cannot_see_or_mark_others_notifications(self, app, client):
        admin, bob = await seeded(app, client, count=2)
        carol = await add_member(client, admin)
        stranger = await register(client)
        note = (await inbox(client, bob))[0]
        for intruder in (admin, carol, stranger):
            assert await inbox(client, intruder) == []
            assert await unread(client, intruder) == 0
            for method, path in (
                ("GET", f"{NOTIFICATIONS}/{note['id']}"),
                ("POST", f"{NOTIFICATIONS}/{note['id']}/read"),
                ("DELETE", f"{NOTIFICATIONS}/{note['id']}"),
            ):
                r = await client.request(method, path, headers=intruder.headers)
                assert r.status_code == 404, (method, path, r.text)
            r = await client.post(f"{NOTIFICATIONS}/read-all", headers=intruder.headers)
            assert r.json()["data"]["marked_read"] == 0
        assert await unread(client, bob) == 2
        assert await inbox(client, bob, resource_id=note["resource_id"]) == [note]
        r = await client.get(f"{NOTIFICATIONS}/{uuid.uuid4()}", headers=bob.headers)
        assert r.status_code == 404

    async def test_an_api_key_reads_the_inbox_of_the_user_who_made_it(self, app, client):
        admin, bob = await seeded(app, client, count=1)
        key = await create_api_key(client, admin, role="admin")
        r = await client.get(NOTIFICATIONS, headers={"Authorization": f"Bearer {key['key']}"})
        assert r.status_code == 200, r.text
        assert r.json()["data"] == []  # the admin's (empty) inbox, never Bob's
