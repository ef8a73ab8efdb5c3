"""CSV exports: filters as the list takes them, keyset paging, the download, the round trip
through an import into another workspace, and isolation."""

from __future__ import annotations

from typing import Any

from tests.factories import add_member, register
from tests.imports.factories import (
    CONTACTS,
    EXPORTS,
    contacts,
    define_field,
    event_types,
    get_import,
    parse_csv,
    start_import,
)

COMPARED = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "status",
    "notes",
    "tags",
    "custom_fields",
    "address",
)


async def make(client, account, **fields: Any) -> dict:  # noqa: ANN001
    response = await client.post(CONTACTS, json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def export(client, app, account, **body: Any) -> dict:  # noqa: ANN001
    response = await client.post(
        EXPORTS, json={"resource": "contacts", **body}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    await app.state.background.drain()
    done = await client.get(f"{EXPORTS}/{response.json()['data']['id']}", headers=account.headers)
    assert done.status_code == 200
    return done.json()["data"]


async def download(client, account, export_id: str) -> bytes:  # noqa: ANN001
    response = await client.get(f"{EXPORTS}/{export_id}/download", headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return response.content


class TestExport:
    async def test_export_with_a_filter_round_trips_into_another_workspace(self, client, app):
        source = await register(client)
        target = await register(client)
        for account in (source, target):
            await define_field(client, account, "tier", "select", options=["gold", "silver"])
            await define_field(client, account, "score", "number")
        wanted = [
            await make(
                client,
                source,
                first_name="Ada",
                last_name="Lovelace",
                email="ada@example.com",
                phone="+1 (979) 236-1958",
                job_title="Countess",
                status="customer",
                notes='Line one,\nline "two"',
                tags=["vip", "emea"],
                custom_fields={"tier": "gold", "score": -3.5},
                address={"line1": "12 St James's Sq", "city": "London", "country": "UK"},
            ),
            await make(
                client,
                source,
                first_name="=cmd|' /C calc'!A0",
                email="formula@example.com",
                status="customer",
                custom_fields={"tier": "gold"},
            ),
        ]
        await make(
            client, source, first_name="Other", status="customer", custom_fields={"tier": "silver"}
        )
        await make(client, source, first_name="Lead", status="new", custom_fields={"tier": "gold"})

        done = await export(client, app, source, filters={"status": "customer", "cf.tier": "gold"})
        assert done["status"] == "completed" and done["rows"] == 2, done
        content = await download(client, source, done["id"])
        assert done["size_bytes"] == len(content)
        rows = parse_csv(content)
        assert rows[0][:3] == ["id", "first_name", "last_name"]
        assert rows[0][-4:] == [
            "cf.score",
            "cf.tier",
            "created_at",
            "updated_at",
        ]  # by position, name
        assert rows[2][1] == "'=cmd|' /C calc'!A0"  # never a formula in a spreadsheet

        imported = await start_import(client, target, content)
        assert "id" in imported["ignored_columns"] and "company_name" in imported["ignored_columns"]
        await app.state.background.drain()
        result = await get_import(client, target, imported["id"])
        assert (result["created"], result["errors"]) == (2, 0), result
        copies = await contacts(client, target)
        assert [{k: c[k] for k in COMPARED} for c in copies] == [
            {k: c[k] for k in COMPARED} for c in wanted
        ]

    async def test_keyset_pages_write_every_row_once_in_creation_order(
        self, client, app, settings, monkeypatch, database
    ):
        monkeypatch.setattr(settings, "export_page_rows", 2)
        admin = await register(client)
        made = [await make(client, admin, first_name=f"P{i}", tags=["x"]) for i in range(5)]
        await make(client, admin, first_name="untagged")
        done = await export(client, app, admin, filters={"tag": "x"})
        rows = parse_csv(await download(client, admin, done["id"]))
        assert [r[0] for r in rows[1:]] == [c["id"] for c in made]
        types = await event_types(database, done["id"])
        assert types == ["export.created", "export.completed"]

    async def test_search_and_owner_me(self, client, app):
        admin = await register(client)
        mine = await make(client, admin, first_name="Zebedee", owner_id=admin.user["id"])
        await make(client, admin, first_name="Zebedee")
        await make(client, admin, first_name="Other", owner_id=admin.user["id"])
        done = await export(client, app, admin, filters={"owner_id": "me"}, search="zebedee")
        rows = parse_csv(await download(client, admin, done["id"]))
        assert [r[0] for r in rows[1:]] == [mine["id"]]

    async def test_bad_filters_are_422_naming_the_body(self, client):
        admin = await register(client)
        for filters, field in (
            ({"colour": "red"}, "body.filters.colour"),
            ({"status": "nope"}, "body.filters.status"),
            ({"cf.missing": "x"}, "body.filters.cf.missing"),
            ({"limit": "5"}, "body.filters.limit"),
        ):
            response = await client.post(
                EXPORTS, json={"resource": "contacts", "filters": filters}, headers=admin.headers
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"][0]["field"] == field
        listed = await client.get(EXPORTS, headers=admin.headers)
        assert listed.json()["data"] == []

    async def test_download_waits_for_completion(self, client, app):
        admin = await register(client)
        response = await client.post(EXPORTS, json={"resource": "contacts"}, headers=admin.headers)
        export_id = response.json()["data"]["id"]
        early = await client.get(f"{EXPORTS}/{export_id}/download", headers=admin.headers)
        assert early.status_code == 409 and early.json()["error"]["code"] == "export_not_ready"
        await app.state.background.drain()
        rows = parse_csv(await download(client, admin, export_id))
        assert len(rows) == 1  # the header: an empty workspace

    async def test_companies_and_leads_export(self, client, app):
        admin = await register(client)
        await client.post(
            "/api/v1/companies", json={"name": "Acme", "domain": "acme.com"}, headers=admin.headers
        )
        done = await export(client, app, admin, resource="companies")
        rows = parse_csv(await download(client, admin, done["id"]))
        assert rows[1][1:3] == ["Acme", "acme.com"]
        await client.post(
            "/api/v1/leads",
            json={"first_name": "L", "value": 500, "currency": "USD"},
            headers=admin.headers,
        )
        done = await export(client, app, admin, resource="leads", filters={"value[gte]": "100"})
        assert done["rows"] == 1


class TestExportAccess:
    async def test_another_workspace_cannot_see_or_download(self, client, app):
        owner = await register(client)
        intruder = await register(client)
        await make(client, owner, first_name="Secret")
        done = await export(client, app, owner)
        for path in (f"{EXPORTS}/{done['id']}", f"{EXPORTS}/{done['id']}/download"):
            response = await client.get(path, headers=intruder.headers)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "export_not_found"
            assert (await client.get(path)).status_code == 401
        listed = await client.get(EXPORTS, headers=intruder.headers)
        assert listed.json()["data"] == []

    async def test_viewers_read_exports_but_do_not_start_them(self, client, app):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        refused = await client.post(EXPORTS, json={"resource": "contacts"}, headers=viewer.headers)
        assert refused.status_code == 403
        done = await export(client, app, admin)
        assert (await download(client, viewer, done["id"])).startswith(b"id,")
