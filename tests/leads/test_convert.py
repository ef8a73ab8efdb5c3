"""POST /leads/{id}/convert: contact, company and deal in one transaction, all or nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.factories import Account, add_member, register
from tests.leads.factories import LEADS, event_types, lead_notes, make_lead

API = "/api/v1"


async def convert(client, account: Account, lead_id: str, body: Any = None):  # noqa: ANN001, ANN201
    kwargs = {} if body is None else {"json": body}
    return await client.post(f"{LEADS}/{lead_id}/convert", headers=account.headers, **kwargs)


async def total(client, account: Account, resource: str) -> int:  # noqa: ANN001
    response = await client.get(
        f"{API}/{resource}", params={"include_total": "true"}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["meta"]["total"]


async def get(client, account: Account, path: str) -> dict[str, Any]:  # noqa: ANN001
    response = await client.get(f"{API}/{path}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def counts(client, account: Account) -> dict[str, int]:  # noqa: ANN001
    return {r: await total(client, account, r) for r in ("contacts", "companies", "deals")}


async def full_lead(client, account: Account, **fields: Any) -> dict[str, Any]:  # noqa: ANN001
    return await make_lead(
        client,
        account,
        first_name="Grace",
        last_name="Hopper",
        email="grace@univac.example",
        phone="(979) 236-1958",
        company_name="Univac",
        value=250000,
        currency="USD",
        tags=["vip"],
        owner_id=account.user["id"],
        **fields,
    )


class TestConvert:
    async def test_creates_contact_company_and_deal(self, client, database):
        admin = await register(client)
        lead = await full_lead(client, admin)
        moved = await client.patch(
            f"{LEADS}/{lead['id']}", json={"status": "qualified"}, headers=admin.headers
        )
        assert moved.status_code == 200
        call = await client.post(
            f"{API}/activities",
            json={"kind": "call", "subject": "Intro call", "lead_id": lead["id"]},
            headers=admin.headers,
        )
        assert call.status_code == 201, call.text
        response = await convert(client, admin, lead["id"])
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["contact_created"] is True and data["company_created"] is True
        converted = data["lead"]
        assert converted["status"] == "converted" and converted["converted_at"] is not None
        assert converted["converted_contact_id"] == data["contact_id"]
        assert converted["converted_company_id"] == data["company_id"]
        assert converted["converted_deal_id"] == data["deal_id"]
        assert converted["activity_count"] == 3  # the status notes and the call
        assert converted["version"] == lead["version"] + 2
        contact = await get(client, admin, f"contacts/{data['contact_id']}")
        assert (contact["first_name"], contact["last_name"]) == ("Grace", "Hopper")
        assert contact["email"] == "grace@univac.example"
        assert contact["phone_e164"] == "+19792361958"
        assert contact["owner_id"] == admin.user["id"] and contact["tags"] == ["vip"]
        assert contact["primary_company_id"] == data["company_id"]
        assert contact["last_activity_at"] is not None
        company = await get(client, admin, f"companies/{data['company_id']}")
        assert company["name"] == "Univac"
        deal = await get(client, admin, f"deals/{data['deal_id']}")
        assert deal["name"] == "Univac deal"
        assert (deal["amount"], deal["currency"]) == (250000, "USD")
        assert deal["contact_id"] == data["contact_id"]
        assert deal["company_id"] == data["company_id"]
        assert deal["owner_id"] == admin.user["id"] and deal["status"] == "open"
        # The lead's activities now also sit on the contact's timeline.
        timeline = await get(client, admin, f"contacts/{data['contact_id']}/activities")
        subjects = sorted(a["subject"] for a in timeline)
        assert subjects == [
            "Intro call",
            "Status changed from new to qualified",
            "Status changed from qualified to converted",
        ]
        notes = await lead_notes(database, lead["id"])
        assert {str(n["contact_id"]) for n in notes} == {data["contact_id"]}
        types = await event_types(database, lead["id"])
        assert types[-2:] == ["lead.status_changed", "lead.converted"]

    async def test_converting_twice_is_409_and_converted_stays_converted(self, client):
        admin = await register(client)
        lead = await full_lead(client, admin)
        first = await convert(client, admin, lead["id"], {"deal": None})
        assert first.status_code == 200, first.text
        again = await convert(client, admin, lead["id"])
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "lead_already_converted"
        for status in ("new", "contacted", "lost"):
            back = await client.patch(
                f"{LEADS}/{lead['id']}", json={"status": status}, headers=admin.headers
            )
            assert back.status_code == 422, status
            assert back.json()["error"]["code"] == "invalid_status_transition"
        edited = await client.patch(
            f"{LEADS}/{lead['id']}", json={"notes": "still editable"}, headers=admin.headers
        )
        assert edited.status_code == 200
        assert edited.json()["data"]["status"] == "converted"
        assert await counts(client, admin) == {"contacts": 1, "companies": 1, "deals": 0}

    async def test_a_failing_step_writes_nothing(self, client, database):
        admin = await register(client)
        await get(client, admin, "pipelines")  # seeds the default pipeline
        other = await client.post(
            f"{API}/pipelines",
            json={"name": "Partners", "stages": [{"name": "Intro"}, {"name": "Signed"}]},
            headers=admin.headers,
        )
        assert other.status_code == 201, other.text
        foreign_stage = other.json()["data"]["stages"][0]["id"]
        lead = await full_lead(client, admin)
        before = await get(client, admin, f"leads/{lead['id']}")
        for body, code in (
            ({"deal": {"stage_id": foreign_stage}}, "stage_not_in_pipeline"),
            ({"deal": {"pipeline_id": str(uuid.uuid4())}}, "invalid_reference"),
            ({"deal": {"amount": 5, "currency": None, "name": "x" * 201}}, "validation_error"),
        ):
            response = await convert(client, admin, lead["id"], body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["code"] == code
            assert await counts(client, admin) == {"contacts": 0, "companies": 0, "deals": 0}
            assert await get(client, admin, f"leads/{lead['id']}") == before
        assert await lead_notes(database, lead["id"]) == []
        assert "lead.converted" not in await event_types(database, lead["id"])
        search = await get(client, admin, "search?q=univac")
        assert {hit["type"] for hit in search} == {"lead"}
        # The same lead converts once the request is right.
        fixed = await convert(
            client, admin, lead["id"], {"deal": {"pipeline_id": other.json()["data"]["id"]}}
        )
        assert fixed.status_code == 200, fixed.text
        deal = await get(client, admin, f"deals/{fixed.json()['data']['deal_id']}")
        assert deal["stage_id"] == foreign_stage

    async def test_a_deal_without_currency_fails_whole(self, client):
        admin = await register(client)
        lead = await make_lead(client, admin, company_name="Acme")
        response = await convert(client, admin, lead["id"], {"deal": {"amount": 100}})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "body.currency"
        assert await counts(client, admin) == {"contacts": 0, "companies": 0, "deals": 0}

    async def test_links_the_contact_with_the_same_email(self, client):
        admin = await register(client)
        existing = await client.post(
            f"{API}/contacts",
            json={"first_name": "G.", "email": "GRACE@univac.example"},
            headers=admin.headers,
        )
        assert existing.status_code == 201, existing.text
        contact_id = existing.json()["data"]["id"]
        lead = await full_lead(client, admin)
        response = await convert(client, admin, lead["id"])
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["contact_id"] == contact_id and data["contact_created"] is False
        contact = await get(client, admin, f"contacts/{contact_id}")
        assert contact["first_name"] == "G."  # linked, not overwritten
        assert contact["primary_company_id"] == data["company_id"]
        assert await counts(client, admin) == {"contacts": 1, "companies": 1, "deals": 1}

    async def test_links_an_existing_company_by_name_or_domain(self, client):
        admin = await register(client)
        by_name = await client.post(
            f"{API}/companies", json={"name": "UNIVAC"}, headers=admin.headers
        )
        by_domain = await client.post(
            f"{API}/companies", json={"name": "Initech", "domain": "initech.example"},
            headers=admin.headers,
        )  # fmt: skip
        lead = await full_lead(client, admin)
        first = (await convert(client, admin, lead["id"], {"deal": None})).json()["data"]
        assert first["company_id"] == by_name.json()["data"]["id"]
        assert first["company_created"] is False and first["deal_id"] is None
        other = await make_lead(client, admin, first_name="Peter", email="peter@initech.example")
        second = await convert(client, admin, other["id"])
        data = second.json()["data"]
        assert data["company_id"] == by_domain.json()["data"]["id"]
        deal = await get(client, admin, f"deals/{data['deal_id']}")
        assert deal["name"] == "Initech deal" and deal["amount"] is None
        assert await total(client, admin, "companies") == 2

    async def test_given_records_and_options(self, client):
        admin = await register(client)
        contact = await client.post(
            f"{API}/contacts", json={"first_name": "Chosen"}, headers=admin.headers
        )
        company = await client.post(
            f"{API}/companies", json={"name": "Chosen Co"}, headers=admin.headers
        )
        lead = await full_lead(client, admin)
        response = await convert(
            client,
            admin,
            lead["id"],
            {
                "contact_id": contact.json()["data"]["id"],
                "company_id": company.json()["data"]["id"],
                "deal": {"name": "Big one", "amount": 9, "currency": "EUR"},
            },
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["contact_id"] == contact.json()["data"]["id"]
        assert data["company_id"] == company.json()["data"]["id"]
        assert not data["contact_created"] and not data["company_created"]
        deal = await get(client, admin, f"deals/{data['deal_id']}")
        assert (deal["name"], deal["amount"], deal["currency"]) == ("Big one", 9, "EUR")
        plain = await make_lead(client, admin, first_name="Solo", company_name="Nowhere Inc")
        solo = await convert(client, admin, plain["id"], {"create_company": False})
        data = solo.json()["data"]
        assert data["company_id"] is None and data["contact_created"] is True
        deal = await get(client, admin, f"deals/{data['deal_id']}")
        assert deal["name"] == "Solo Lovelace deal" and deal["company_id"] is None
        assert await total(client, admin, "companies") == 1

    async def test_a_lead_without_name_or_email_needs_a_contact(self, client):
        admin = await register(client)
        lead = await make_lead(
            client, admin, first_name=None, last_name=None, company_name="Faceless"
        )
        refused = await convert(client, admin, lead["id"])
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "lead_needs_name"
        assert await counts(client, admin) == {"contacts": 0, "companies": 0, "deals": 0}
        contact = await client.post(
            f"{API}/contacts", json={"first_name": "Face"}, headers=admin.headers
        )
        linked = await convert(
            client, admin, lead["id"], {"contact_id": contact.json()["data"]["id"]}
        )
        assert linked.status_code == 200, linked.text

    async def test_bad_bodies_and_missing_leads(self, client):
        admin = await register(client)
        lead = await full_lead(client, admin)
        for body in ({"bogus": 1}, {"deal": {"amount": -1}}, {"create_company": "maybe"}):
            response = await convert(client, admin, lead["id"], body)
            assert response.status_code == 422, body
        missing = await convert(client, admin, str(uuid.uuid4()))
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "lead_not_found"
        await client.delete(f"{LEADS}/{lead['id']}", headers=admin.headers)
        deleted = await convert(client, admin, lead["id"])
        assert deleted.status_code == 404


class TestConcurrency:
    async def test_two_conversions_at_once_convert_once(self, client):
        admin = await register(client)
        lead = await full_lead(client, admin)
        responses = await asyncio.gather(
            convert(client, admin, lead["id"]), convert(client, admin, lead["id"])
        )
        assert sorted(r.status_code for r in responses) == [200, 409]
        assert await counts(client, admin) == {"contacts": 1, "companies": 1, "deals": 1}

    async def test_concurrent_moves_both_follow_the_transitions(self, client, database):
        admin = await register(client)
        lead = await make_lead(client, admin)
        path = f"{LEADS}/{lead['id']}"
        responses = await asyncio.gather(
            client.patch(path, json={"status": "lost"}, headers=admin.headers),
            client.patch(path, json={"status": "qualified"}, headers=admin.headers),
        )
        final = await get(client, admin, f"leads/{lead['id']}")
        notes = [n["subject"] for n in await lead_notes(database, lead["id"])]
        ok = [r for r in responses if r.status_code == 200]
        assert final["activity_count"] == len(notes) == len(ok)
        if len(ok) == 1:  # lost came first: qualified is not a way out of lost
            assert final["status"] == "lost" and notes == ["Status changed from new to lost"]
        else:
            assert notes == [
                "Status changed from new to qualified",
                "Status changed from qualified to lost",
            ]


class TestConvertAccess:
    async def test_records_of_another_workspace_are_refused(self, client):
        admin = await register(client)
        intruder = await register(client)
        theirs_contact = await client.post(
            f"{API}/contacts", json={"first_name": "Theirs"}, headers=intruder.headers
        )
        theirs_company = await client.post(
            f"{API}/companies", json={"name": "Theirs"}, headers=intruder.headers
        )
        lead = await full_lead(client, admin)
        for body, field in (
            ({"contact_id": theirs_contact.json()["data"]["id"]}, "body.contact_id"),
            ({"company_id": theirs_company.json()["data"]["id"]}, "body.company_id"),
        ):
            response = await convert(client, admin, lead["id"], body)
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_reference" and error["details"][0]["field"] == field
        assert await counts(client, admin) == {"contacts": 0, "companies": 0, "deals": 0}
        assert (await get(client, admin, f"leads/{lead['id']}"))["status"] == "new"
        stolen = await convert(client, intruder, lead["id"])
        assert stolen.status_code == 404

    async def test_members_convert_viewers_do_not(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        viewer = await add_member(client, admin, "viewer")
        lead = await full_lead(client, admin)
        assert (await convert(client, viewer, lead["id"])).status_code == 403
        assert (await convert(client, member, lead["id"])).status_code == 200
