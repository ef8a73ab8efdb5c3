"""Tags through HTTP: the kernel's contract on a small resource."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import add_member, create_tag, register
from tests.isolation import assert_isolated


class TestCrud:
    async def test_create_read_update_delete_restore(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin, name="VIP", color="#aa00ff")
        assert tag["version"] == 1 and tag["name"] == "VIP"
        got = await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.headers["etag"] == '"1"'
        patched = await client.patch(
            f"/api/v1/tags/{tag['id']}", json={"description": "big"}, headers=admin.headers
        )
        assert patched.status_code == 200
        assert patched.json()["data"]["description"] == "big"
        assert patched.json()["data"]["version"] == 2 and patched.headers["etag"] == '"2"'
        deleted = await client.delete(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
        assert deleted.status_code == 200
        assert deleted.json()["data"] == {"id": tag["id"], "deleted": True}
        assert (
            await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
        ).status_code == 404
        listed = await client.get("/api/v1/tags", headers=admin.headers)
        assert tag["id"] not in [t["id"] for t in listed.json()["data"]]
        with_deleted = await client.get("/api/v1/tags?include_deleted=true", headers=admin.headers)
        assert tag["id"] in [t["id"] for t in with_deleted.json()["data"]]
        restored = await client.post(f"/api/v1/tags/{tag['id']}/restore", headers=admin.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None

    async def test_names_are_unique_per_workspace_case_insensitively(self, client):
        admin = await register(client)
        await create_tag(client, admin, name="Hot")
        dup = await client.post("/api/v1/tags", json={"name": "hot"}, headers=admin.headers)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "tag_name_taken"
        other = await register(client)
        await create_tag(client, other, name="hot")  # another workspace may use it

    async def test_erase_is_admin_only_and_final(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin)
        refused = await client.delete(
            f"/api/v1/tags/{tag['id']}?erase=true", headers=member.headers
        )
        assert refused.status_code == 403
        erased = await client.delete(f"/api/v1/tags/{tag['id']}?erase=true", headers=admin.headers)
        assert erased.status_code == 200
        gone = await client.post(f"/api/v1/tags/{tag['id']}/restore", headers=admin.headers)
        assert gone.status_code == 404

    async def test_unknown_fields_are_refused(self, client):
        admin = await register(client)
        response = await client.post(
            "/api/v1/tags", json={"name": "x", "colour": "#000000"}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "body.colour"


class TestAccess:
    async def test_viewer_reads_but_cannot_write(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        tag = await create_tag(client, admin)
        assert (
            await client.get(f"/api/v1/tags/{tag['id']}", headers=viewer.headers)
        ).status_code == 200
        for method, path, body in [
            ("POST", "/api/v1/tags", {"name": "nope"}),
            ("PATCH", f"/api/v1/tags/{tag['id']}", {"name": "nope"}),
            ("DELETE", f"/api/v1/tags/{tag['id']}", None),
            ("POST", f"/api/v1/tags/{tag['id']}/restore", None),
        ]:
            response = await client.request(method, path, json=body, headers=viewer.headers)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"

    async def test_other_workspaces_get_404(self, client):
        owner = await register(client)
        intruder = await register(client)
        tag = await create_tag(client, owner, name="secret-project")
        await assert_isolated(
            client,
            owner=owner,
            intruder=intruder,
            record_path=f"/api/v1/tags/{tag['id']}",
            list_path="/api/v1/tags",
            search_term="secret",
        )

    async def test_include_deleted_is_for_admins(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        response = await client.get("/api/v1/tags?include_deleted=true", headers=member.headers)
        assert response.status_code == 403


class TestConcurrency:
    async def test_concurrent_patches_with_same_if_match_one_wins(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin)
        path = f"/api/v1/tags/{tag['id']}"
        headers = {**admin.headers, "If-Match": '"1"'}
        results = await asyncio.gather(
            *[
                client.patch(path, json={"description": f"writer {i}"}, headers=headers)
                for i in range(2)
            ]
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 412], [r.text for r in results]
        final = (await client.get(path, headers=admin.headers)).json()["data"]
        winner = next(r for r in results if r.status_code == 200).json()["data"]
        assert final["version"] == 2 and final["description"] == winner["description"]

    async def test_many_concurrent_patches_without_if_match_all_count(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin)
        path = f"/api/v1/tags/{tag['id']}"
        results = await asyncio.gather(
            *[
                client.patch(path, json={"description": f"w{i}"}, headers=admin.headers)
                for i in range(10)
            ]
        )
        assert all(r.status_code == 200 for r in results)
        versions = sorted(r.json()["data"]["version"] for r in results)
        assert versions == list(range(2, 12)), "no update may be lost"

    async def test_stale_if_match_on_delete_is_412(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin)
        path = f"/api/v1/tags/{tag['id']}"
        await client.patch(path, json={"description": "v2"}, headers=admin.headers)
        stale = await client.delete(path, headers={**admin.headers, "If-Match": '"1"'})
        assert stale.status_code == 412 and stale.json()["error"]["code"] == "version_mismatch"
        bad = await client.delete(path, headers={**admin.headers, "If-Match": "banana"})
        assert bad.status_code == 400

    @pytest.mark.parametrize("times", [5])
    async def test_same_idempotent_post_five_times_concurrently_creates_one(self, client, times):
        admin = await register(client)
        headers = {**admin.headers, "Idempotency-Key": "create-vip-once"}
        results = await asyncio.gather(
            *[
                client.post("/api/v1/tags", json={"name": "once"}, headers=headers)
                for _ in range(times)
            ]
        )
        assert [r.status_code for r in results] == [201] * times, [r.text for r in results]
        ids = {r.json()["data"]["id"] for r in results}
        assert len(ids) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == times - 1
        listed = await client.get(
            "/api/v1/tags?name=once&include_total=true", headers=admin.headers
        )
        assert listed.json()["meta"]["total"] == 1

    async def test_same_key_with_another_body_is_409(self, client):
        admin = await register(client)
        headers = {**admin.headers, "Idempotency-Key": "k-1"}
        first = await client.post("/api/v1/tags", json={"name": "a"}, headers=headers)
        assert first.status_code == 201
        other = await client.post("/api/v1/tags", json={"name": "b"}, headers=headers)
        assert (
            other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
        )

    async def test_keys_are_per_workspace_and_failures_release_them(self, client):
        a = await register(client)
        b = await register(client)
        key = {"Idempotency-Key": "shared-key"}
        ra = await client.post("/api/v1/tags", json={"name": "x"}, headers={**a.headers, **key})
        rb = await client.post("/api/v1/tags", json={"name": "x"}, headers={**b.headers, **key})
        assert ra.status_code == rb.status_code == 201
        assert ra.json()["data"]["id"] != rb.json()["data"]["id"]
        bad = await client.post(
            "/api/v1/tags", json={"name": ""}, headers={**a.headers, "Idempotency-Key": "k2"}
        )
        assert bad.status_code == 422
        good = await client.post(
            "/api/v1/tags", json={"name": ""}, headers={**a.headers, "Idempotency-Key": "k2"}
        )
        assert good.status_code == 422  # re-executed, not replayed: errors are not stored
        fixed = await client.post(
            "/api/v1/tags", json={"name": "ok"}, headers={**a.headers, "Idempotency-Key": "k3"}
        )
        assert fixed.status_code == 201
