"""Custom field definitions and value validation (values are checked on companies here; every
record module validates through the same CustomFieldValidator)."""

from __future__ import annotations

import pytest

from tests.factories import add_member, register
from tests.isolation import assert_isolated

FIELDS = "/api/v1/custom-fields"
COMPANIES = "/api/v1/companies"


async def define(client, admin, **body):
    payload = {"resource": "company", "label": body.get("name", "x").title(), **body}
    response = await client.post(FIELDS, json=payload, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


class TestDefinitions:
    async def test_admin_defines_members_read(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        refused = await client.post(
            FIELDS,
            json={"resource": "company", "name": "x", "label": "X", "type": "text"},
            headers=member.headers,
        )
        assert refused.status_code == 403
        field = await define(client, admin, name="tier", type="select", options=["a", "b"])
        listed = await client.get(f"{FIELDS}?resource=company", headers=member.headers)
        assert [f["id"] for f in listed.json()["data"]] == [field["id"]]

    @pytest.mark.parametrize(
        "body",
        [
            {"resource": "company", "name": "Bad Name", "label": "x", "type": "text"},
            {"resource": "planet", "name": "x", "label": "x", "type": "text"},
            {"resource": "company", "name": "x", "label": "x", "type": "colour"},
            {"resource": "company", "name": "x", "label": "x", "type": "select"},
            {
                "resource": "company",
                "name": "x",
                "label": "x",
                "type": "select",
                "options": ["a", "a"],
            },
            {"resource": "company", "name": "x", "label": "x", "type": "text", "options": ["a"]},
        ],
    )
    async def test_invalid_definitions_are_422(self, client, body):
        admin = await register(client)
        response = await client.post(FIELDS, json=body, headers=admin.headers)
        assert response.status_code == 422, response.text

    async def test_names_are_unique_per_resource(self, client):
        admin = await register(client)
        await define(client, admin, name="score", type="number")
        dup = await client.post(
            FIELDS,
            json={"resource": "company", "name": "score", "label": "S", "type": "text"},
            headers=admin.headers,
        )
        assert dup.status_code == 409
        await define(client, admin, name="score", type="number", resource="contact")

    async def test_update_delete_and_isolation(self, client):
        admin = await register(client)
        field = await define(client, admin, name="tier", type="select", options=["a", "b"])
        patched = await client.patch(
            f"{FIELDS}/{field['id']}",
            json={"options": ["a", "b", "c"], "label": "Level"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert patched.status_code == 200 and patched.json()["data"]["options"] == ["a", "b", "c"]
        intruder = await register(client)
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=f"{FIELDS}/{field['id']}",
            requests=[("PATCH", f"{FIELDS}/{field['id']}", {"label": "x"})],
        )
        deleted = await client.delete(f"{FIELDS}/{field['id']}", headers=admin.headers)
        assert deleted.status_code == 200
        assert (
            await client.get(f"{FIELDS}/{field['id']}", headers=admin.headers)
        ).status_code == 404


class TestValues:
    @pytest.mark.parametrize(
        ("definition", "good", "bad"),
        [
            ({"type": "text"}, "hello\nworld", 12),
            ({"type": "number"}, 12.5, "12"),
            ({"type": "number"}, -3, True),
            ({"type": "date"}, "2026-02-28", "2026-02-30"),
            ({"type": "boolean"}, False, "false"),
            ({"type": "select", "options": ["x", "y"]}, "y", "z"),
            ({"type": "multi_select", "options": ["x", "y"]}, ["x", "y"], ["x", "q"]),
            ({"type": "url"}, "https://example.com/a", "ftp://example.com"),
            ({"type": "email"}, "Ada@Example.com", "not-an-email"),
        ],
    )
    async def test_each_type_is_validated(self, client, definition, good, bad):
        admin = await register(client)
        await define(client, admin, name="f", **definition)
        ok = await client.post(
            COMPANIES, json={"name": "ok", "custom_fields": {"f": good}}, headers=admin.headers
        )
        assert ok.status_code == 201, ok.text
        refused = await client.post(
            COMPANIES, json={"name": "no", "custom_fields": {"f": bad}}, headers=admin.headers
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"][0]["field"] == "body.custom_fields.f"

    async def test_required_fields_and_patch_semantics(self, client):
        admin = await register(client)
        await define(client, admin, name="region", type="text", required=True)
        await define(client, admin, name="note", type="text")
        missing = await client.post(COMPANIES, json={"name": "x"}, headers=admin.headers)
        assert missing.status_code == 422
        created = await client.post(
            COMPANIES,
            json={"name": "x", "custom_fields": {"region": "EMEA", "note": "hi"}},
            headers=admin.headers,
        )
        company_id = created.json()["data"]["id"]
        merged = await client.patch(
            f"{COMPANIES}/{company_id}",
            json={"custom_fields": {"note": None}},
            headers=admin.headers,
        )
        assert merged.json()["data"]["custom_fields"] == {"region": "EMEA"}
        cleared = await client.patch(
            f"{COMPANIES}/{company_id}",
            json={"custom_fields": {"region": None}},
            headers=admin.headers,
        )
        assert cleared.status_code == 422
        email = await define(client, admin, name="billing", type="email")
        assert email["type"] == "email"
        normalised = await client.patch(
            f"{COMPANIES}/{company_id}",
            json={"custom_fields": {"billing": "Ops@Example.COM"}},
            headers=admin.headers,
        )
        assert normalised.json()["data"]["custom_fields"]["billing"] == "ops@example.com"
