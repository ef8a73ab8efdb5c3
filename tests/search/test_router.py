"""GET /search: ranked, workspace-scoped, literal, kept in step with writes."""

from __future__ import annotations

from tests.factories import register

COMPANIES = "/api/v1/companies"


async def company(client, account, name, **fields):
    response = await client.post(COMPANIES, json={"name": name, **fields}, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


class TestSearch:
    async def test_ranks_exact_then_prefix_then_substring(self, client):
        admin = await register(client)
        inner = await company(client, admin, "The Orbit Works")
        prefix = await company(client, admin, "Orbital Systems")
        exact = await company(client, admin, "Orbit")
        response = await client.get("/api/v1/search", params={"q": "orbit"}, headers=admin.headers)
        assert response.status_code == 200
        assert [h["id"] for h in response.json()["data"]] == [
            exact["id"],
            prefix["id"],
            inner["id"],
        ]
        assert [h["rank"] for h in response.json()["data"]] == [0, 1, 2]

    async def test_follows_updates_deletes_and_restores(self, client):
        admin = await register(client)
        c = await company(client, admin, "Quartzite")
        await client.patch(f"{COMPANIES}/{c['id']}", json={"name": "Basalt"}, headers=admin.headers)
        hits = lambda r: [h["id"] for h in r.json()["data"]]  # noqa: E731
        assert hits(await client.get("/api/v1/search?q=quartz", headers=admin.headers)) == []
        assert hits(await client.get("/api/v1/search?q=basalt", headers=admin.headers)) == [c["id"]]
        await client.delete(f"{COMPANIES}/{c['id']}", headers=admin.headers)
        assert hits(await client.get("/api/v1/search?q=basalt", headers=admin.headers)) == []
        await client.post(f"{COMPANIES}/{c['id']}/restore", headers=admin.headers)
        assert hits(await client.get("/api/v1/search?q=basalt", headers=admin.headers)) == [c["id"]]

    async def test_is_scoped_literal_and_validated(self, client):
        owner = await register(client)
        other = await register(client)
        await company(client, owner, "Nebula 100% Ltd")
        await company(client, owner, "Nebula 1000 Ltd")
        assert (await client.get("/api/v1/search?q=nebula", headers=other.headers)).json()[
            "data"
        ] == []
        literal = await client.get("/api/v1/search", params={"q": "100%"}, headers=owner.headers)
        assert [h["title"] for h in literal.json()["data"]] == ["Nebula 100% Ltd"]
        short = await client.get("/api/v1/search", params={"q": "%"}, headers=owner.headers)
        assert [h["title"] for h in short.json()["data"]] == ["Nebula 100% Ltd"]
        for params in (
            {"q": ""},
            {"q": "x", "types": "planet"},
            {"q": "x", "limit": 500},
            {"q": "a\x00b"},
        ):
            assert (
                await client.get("/api/v1/search", params=params, headers=owner.headers)
            ).status_code == 422
        typed = await client.get(
            "/api/v1/search", params={"q": "nebula", "types": "contact"}, headers=owner.headers
        )
        assert typed.json()["data"] == []

    async def test_finds_phone_numbers_however_typed(self, client):
        admin = await register(client)
        c = await company(client, admin, "Dialtone", phone="+1 979 236 1958")
        for q in ("(979) 236-1958", "979-236-1958", "2361958", "+19792361958"):
            response = await client.get("/api/v1/search", params={"q": q}, headers=admin.headers)
            assert [h["id"] for h in response.json()["data"]] == [c["id"]], q

    async def test_unicode_and_case(self, client):
        admin = await register(client)
        c = await company(client, admin, "Ωμέγα Éditions")
        for q in ("ωμέγα", "ÉDITIONS", "éditions"):
            response = await client.get("/api/v1/search", params={"q": q}, headers=admin.headers)
            assert [h["id"] for h in response.json()["data"]] == [c["id"]], q

    async def test_finds_tasks_and_activities(self, client):
        admin = await register(client)
        c = await company(client, admin, "Anchor Co")
        task = await client.post(
            "/api/v1/tasks", json={"title": "Renew the zeppelin contract"}, headers=admin.headers
        )
        activity = await client.post(
            "/api/v1/activities",
            json={"kind": "note", "subject": "Zeppelin hangar visit", "company_id": c["id"]},
            headers=admin.headers,
        )
        assert task.status_code == 201 and activity.status_code == 201
        found = await client.get("/api/v1/search", params={"q": "zeppelin"}, headers=admin.headers)
        assert {h["type"] for h in found.json()["data"]} == {"task", "activity"}
        only = await client.get(
            "/api/v1/search", params={"q": "zeppelin", "types": "task"}, headers=admin.headers
        )
        assert [h["id"] for h in only.json()["data"]] == [task.json()["data"]["id"]]
