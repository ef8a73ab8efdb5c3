"""API keys through HTTP: shown once, stored hashed, acting with their role capped by their
creator's current role, revocable at once, expiring, and confined to their workspace."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from rapport.core.clock import utcnow
from rapport.identity.models import ApiKey
from tests.factories import add_member, create_api_key, create_tag, register

KEYS = "/api/v1/api-keys"
TAGS = "/api/v1/tags"
ME = "/api/v1/auth/me"
api_keys = ApiKey.__table__


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def key_row(database, key_id: str):  # noqa: ANN001, ANN201
    async with database.read_sessions() as session:
        stmt = select(api_keys).where(api_keys.c.id == uuid.UUID(key_id))
        return (await session.execute(stmt)).mappings().one()


class TestCreate:
    async def test_the_key_is_shown_once_and_stored_hashed(self, client, database):
        admin = await register(client)
        response = await client.post(
            KEYS, json={"name": "Zapier sync", "role": "viewer"}, headers=admin.headers
        )
        assert response.status_code == 201, response.text
        created = response.json()["data"]
        key = created["key"]
        assert key.startswith("rpk_") and len(key) > 40
        assert created["prefix"] == key[:12] and created["role"] == "viewer"
        assert created["name"] == "Zapier sync" and created["created_by"] == admin.user["id"]
        assert created["last_used_at"] is None and created["revoked_at"] is None

        listed = await client.get(KEYS, headers=admin.headers)
        assert listed.status_code == 200
        rows = listed.json()["data"]
        assert [r["id"] for r in rows] == [created["id"]]
        assert "key" not in rows[0] and "key_hash" not in rows[0]
        assert key not in listed.text and key[12:] not in listed.text

        row = await key_row(database, created["id"])
        assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
        assert key[12:] not in str(dict(row))

    async def test_is_admin_only(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        for role in ("member", "viewer"):
            account = await add_member(client, admin, role)
            for method, path, body in [
                ("POST", KEYS, {"name": "mine", "role": "viewer"}),
                ("GET", KEYS, None),
                ("DELETE", f"{KEYS}/{key['id']}", None),
            ]:
                response = await client.request(method, path, json=body, headers=account.headers)
                assert response.status_code == 403, (role, method, response.text)
        assert (await client.post(KEYS, json={"name": "anon"})).status_code == 401
        assert (await client.get(TAGS, headers=bearer(key["key"]))).status_code == 200  # untouched

    async def test_a_key_below_admin_cannot_manage_keys(self, client):
        admin = await register(client)
        member_key = await create_api_key(client, admin, "member")
        response = await client.post(
            KEYS, json={"name": "escalate", "role": "admin"}, headers=bearer(member_key["key"])
        )
        assert response.status_code == 403

    async def test_invalid_bodies_are_422(self, client):
        admin = await register(client)
        for body in (
            {"role": "member"},
            {"name": "x", "role": "root"},
            {"name": "x", "key": "rpk_mine"},
        ):
            response = await client.post(KEYS, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)

    async def test_list_paginates(self, client):
        admin = await register(client)
        ids = {(await create_api_key(client, admin, "viewer"))["id"] for _ in range(3)}
        first = (await client.get(KEYS, params={"limit": 2}, headers=admin.headers)).json()
        assert len(first["data"]) == 2 and first["meta"]["has_more"] is True
        second = (
            await client.get(
                KEYS,
                params={"limit": 2, "cursor": first["meta"]["next_cursor"]},
                headers=admin.headers,
            )
        ).json()
        assert second["meta"]["has_more"] is False
        assert {r["id"] for r in first["data"] + second["data"]} == ids


class TestUse:
    async def test_a_key_authenticates_as_its_role(self, client):
        admin = await register(client, workspace_name="Keyed Inc")
        tag = await create_tag(client, admin)
        key = await create_api_key(client, admin, "viewer")
        listed = await client.get(TAGS, headers=bearer(key["key"]))
        assert listed.status_code == 200
        assert [t["id"] for t in listed.json()["data"]] == [tag["id"]]
        me = await client.get(ME, headers=bearer(key["key"]))
        assert me.status_code == 200
        data = me.json()["data"]
        assert data["credential"] == "api_key"
        assert data["user"]["role"] == "viewer" and data["user"]["id"] == admin.user["id"]
        assert data["workspace"] == {"id": admin.workspace_id, "name": "Keyed Inc"}

    async def test_a_viewer_key_cannot_write_and_a_member_key_can(self, client):
        admin = await register(client)
        viewer_key = await create_api_key(client, admin, "viewer")
        member_key = await create_api_key(client, admin, "member")
        refused = await client.post(
            TAGS, json={"name": "by-viewer-key"}, headers=bearer(viewer_key["key"])
        )
        assert refused.status_code == 403
        created = await client.post(
            TAGS, json={"name": "by-member-key"}, headers=bearer(member_key["key"])
        )
        assert created.status_code == 201, created.text

    async def test_unknown_keys_are_401(self, client):
        response = await client.get(TAGS, headers=bearer("rpk_" + "x" * 43))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"

    async def test_last_used_at_is_recorded(self, client, database):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        before = utcnow()
        assert (await client.get(TAGS, headers=bearer(key["key"]))).status_code == 200
        row = await key_row(database, key["id"])
        assert row["last_used_at"] is not None and row["last_used_at"] >= before - timedelta(
            seconds=1
        )
        listed = (await client.get(KEYS, headers=admin.headers)).json()["data"]
        assert abs(parse_ts(listed[0]["last_used_at"]) - row["last_used_at"]) < timedelta(
            milliseconds=1
        )

    async def test_first_use_on_a_write_records_last_use_without_blocking(self, client, database):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        response = await client.post(TAGS, json={"name": "first-use"}, headers=bearer(key["key"]))
        assert response.status_code == 201, response.text
        assert (await key_row(database, key["id"]))["last_used_at"] is not None


class TestRoleCap:
    async def test_a_key_never_acts_above_its_creators_current_role(self, client):
        owner = await register(client)
        creator = await add_member(client, owner, "admin")
        key = await create_api_key(client, creator, "admin")
        headers = bearer(key["key"])
        tag = await create_tag(client, owner)
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 200

        demoted = await client.patch(
            f"/api/v1/users/{creator.user['id']}", json={"role": "member"}, headers=owner.headers
        )
        assert demoted.status_code == 200
        erase = await client.delete(f"{TAGS}/{tag['id']}?erase=true", headers=headers)
        assert erase.status_code == 403
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
        assert (await client.post(KEYS, json={"name": "x"}, headers=headers)).status_code == 403
        me = (await client.get(ME, headers=headers)).json()["data"]
        assert me["user"]["role"] == "member" and me["credential"] == "api_key"
        assert (
            await client.post(TAGS, json={"name": "still-member"}, headers=headers)
        ).status_code == 201

        await client.patch(
            f"/api/v1/users/{creator.user['id']}", json={"role": "admin"}, headers=owner.headers
        )
        assert (
            await client.delete(f"{TAGS}/{tag['id']}?erase=true", headers=headers)
        ).status_code == 200

    async def test_a_lower_key_stays_lower_for_an_admin_creator(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        tag = await create_tag(client, admin)
        erase = await client.delete(f"{TAGS}/{tag['id']}?erase=true", headers=bearer(key["key"]))
        assert erase.status_code == 403


class TestRevoke:
    async def test_revoked_keys_stop_working_at_once(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        headers = bearer(key["key"])
        assert (await client.get(TAGS, headers=headers)).status_code == 200
        revoked = await client.delete(f"{KEYS}/{key['id']}", headers=admin.headers)
        assert revoked.status_code == 200
        assert revoked.json()["data"] == {"id": key["id"], "deleted": True}
        after = await client.get(TAGS, headers=headers)
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "invalid_api_key"
        listed = (await client.get(KEYS, headers=admin.headers)).json()["data"]
        assert listed[0]["revoked_at"] is not None

    async def test_requests_racing_the_revocation_do_not_keep_the_key_alive(self, client):
        for _ in range(10):
            admin = await register(client)
            key = await create_api_key(client, admin, "member")
            headers = bearer(key["key"])
            results = await asyncio.gather(
                client.delete(f"{KEYS}/{key['id']}", headers=admin.headers),
                *[client.get(TAGS, headers=headers) for _ in range(10)],
            )
            assert results[0].status_code == 200
            after = await client.get(TAGS, headers=headers)
            assert after.status_code == 401, "a racing request cached the revoked key"

    async def test_revoking_twice_is_404(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        assert (
            await client.delete(f"{KEYS}/{key['id']}", headers=admin.headers)
        ).status_code == 200
        again = await client.delete(f"{KEYS}/{key['id']}", headers=admin.headers)
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "api_key_not_found"
        assert (
            await client.delete(f"{KEYS}/{uuid.uuid4()}", headers=admin.headers)
        ).status_code == 404

    async def test_a_key_can_revoke_itself(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "admin")
        headers = bearer(key["key"])
        assert (await client.delete(f"{KEYS}/{key['id']}", headers=headers)).status_code == 200
        assert (await client.get(TAGS, headers=headers)).status_code == 401


class TestExpiry:
    async def test_an_expired_key_is_401(self, client, database):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        async with database.write_sessions() as session, session.begin():
            await session.execute(
                update(api_keys)
                .where(api_keys.c.id == uuid.UUID(key["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        response = await client.get(TAGS, headers=bearer(key["key"]))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"

    async def test_a_key_cannot_be_created_already_expired(self, client):
        admin = await register(client)
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        response = await client.post(
            KEYS,
            json={"name": "stale", "role": "member", "expires_at": past},
            headers=admin.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "body.expires_at"

    async def test_a_key_works_until_it_expires(self, client):
        admin = await register(client)
        future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        response = await client.post(
            KEYS,
            json={"name": "temp", "role": "member", "expires_at": future},
            headers=admin.headers,
        )
        assert response.status_code == 201
        data = response.json()["data"]
        assert parse_ts(data["expires_at"]) == datetime.fromisoformat(future)
        assert (await client.get(TAGS, headers=bearer(data["key"]))).status_code == 200


class TestIsolation:
    async def test_a_key_of_one_workspace_cannot_reach_another(self, client):
        a = await register(client)
        b = await register(client)
        b_tag = await create_tag(client, b, name="b-secret")
        key = await create_api_key(client, a, "admin")
        headers = bearer(key["key"])
        for method, path in [
            ("GET", f"{TAGS}/{b_tag['id']}"),
            ("PATCH", f"{TAGS}/{b_tag['id']}"),
            ("DELETE", f"{TAGS}/{b_tag['id']}"),
        ]:
            response = await client.request(
                method, path, json={} if method == "PATCH" else None, headers=headers
            )
            assert response.status_code == 404, (method, response.text)
        listed = await client.get(TAGS, params={"search": "b-secret"}, headers=headers)
        assert listed.status_code == 200 and listed.json()["data"] == []
        assert (
            await client.get(f"/api/v1/users/{b.user['id']}", headers=headers)
        ).status_code == 404
        assert (await client.get(f"{TAGS}/{b_tag['id']}", headers=b.headers)).status_code == 200

    async def test_keys_are_listed_and_revoked_per_workspace(self, client):
        a = await register(client)
        b = await register(client)
        a_key = await create_api_key(client, a, "member")
        assert (await client.get(KEYS, headers=b.headers)).json()["data"] == []
        assert (await client.delete(f"{KEYS}/{a_key['id']}", headers=b.headers)).status_code == 404
        assert (await client.get(TAGS, headers=bearer(a_key["key"]))).status_code == 200
