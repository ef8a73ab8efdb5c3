"""The audit log and record histories through HTTP, on both backends: exact field-level diffs in
order, the credential of each change (login session or API key), merges, erasures, filters and
paging of /audit-log, who may read what, and isolation between workspaces."""

from __future__ import annotations

import hashlib
import json
import uuid

from tests.audit.factories import (
    API,
    AUDIT_LOG,
    actions,
    audit_log,
    drain,
    history,
    stored_entries,
)
from tests.contacts.factories import COMPANIES, CONTACTS, make_company, make_contact
from tests.factories import add_member, create_api_key, login, register
from tests.leads.factories import make_lead


class TestContactHistory:
    async def test_create_then_two_patches_give_exact_diffs_newest_first(self, app, client):
        admin = await register(client)
        contact = await make_contact(
            client, admin, first_name="Ada", last_name="Lovelace", job_title="CFO"
        )
        cid = contact["id"]
        await drain(app)  # the first patch diffs against the snapshot stored by this drain
        r = await client.patch(
            f"{CONTACTS}/{cid}", json={"job_title": "CEO"}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        r = await client.patch(
            f"{CONTACTS}/{cid}",
            json={"first_name": "Augusta", "job_title": None},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)

        entries = await history(client, admin, "contacts", cid)
        assert actions(entries) == ["updated", "updated", "created"]
        second, first, created = entries
        assert first["changes"] == {"job_title": {"from": "CFO", "to": "CEO"}}
        assert second["changes"] == {
            "first_name": {"from": "Ada", "to": "Augusta"},
            "full_name": {"from": "Ada Lovelace", "to": "Augusta Lovelace"},
            "job_title": {"from": "CEO", "to": None},
        }
        assert created["changes"]["first_name"] == {"from": None, "to": "Ada"}
        assert created["changes"]["job_title"] == {"from": None, "to": "CFO"}
        for entry in entries:
            assert entry["event_type"] == f"contact.{entry['action']}"
            assert entry["resource_type"] == "contact" and entry["resource_id"] == cid
            assert entry["actor_type"] == "user"
            assert entry["actor_id"] == admin.user["id"]
            assert entry["credential_id"] is not None
            assert not {"updated_at", "version", "id", "created_at"} & set(entry["changes"])
        # One login, one credential (the session family) for every change.
        assert len({e["credential_id"] for e in entries}) == 1
        assert entries[0]["occurred_at"] >= entries[-1]["occurred_at"]

    async def test_changes_in_one_batch_diff_against_each_other_in_order(self, app, client):
        admin = await register(client)
        contact = await make_contact(client, admin, first_name="Ada", phone=None)
        cid = contact["id"]
        # Created and updated twice (one bulk request names the contact twice) before any relay:
        # all three events reach the audit subscriber in one batch.
        r = await client.patch(
            f"{CONTACTS}/bulk",
            json={
                "items": [
                    {"id": cid, "job_title": "CTO"},
                    {"id": cid, "job_title": "CEO", "tags": ["vip"]},
                ]
            },
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)
        newest, middle, created = await history(client, admin, "contacts", cid)
        assert created["action"] == "created"
        assert "job_title" not in created["changes"]
        assert middle["changes"] == {"job_title": {"from": None, "to": "CTO"}}
        assert newest["changes"] == {
            "job_title": {"from": "CTO", "to": "CEO"},
            "tags": {"from": [], "to": ["vip"]},
        }

    async def test_nested_objects_diff_by_dotted_path(self, app, client):
        admin = await register(client)
        contact = await make_contact(
            client, admin, address={"city": "Paris", "country": "FR"}, custom_fields={}
        )
        r = await client.patch(
            f"{CONTACTS}/{contact['id']}",
            json={"address": {"city": "Lyon", "country": "FR"}},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)
        newest, created = await history(client, admin, "contacts", contact["id"])
        assert newest["changes"] == {"address.city": {"from": "Paris", "to": "Lyon"}}
        assert created["changes"]["address.city"] == {"from": None, "to": "Paris"}

    async def test_a_change_through_an_api_key_names_the_key(self, app, client):
        admin = await register(client)
        key = await create_api_key(client, admin, role="member")
        contact = await make_contact(client, admin, job_title="CFO")
        r = await client.patch(
            f"{CONTACTS}/{contact['id']}",
            json={"job_title": "CEO"},
            headers={"Authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 200, r.text
        await drain(app)
        by_key, by_user = await history(client, admin, "contacts", contact["id"])
        assert by_key["changes"] == {"job_title": {"from": "CFO", "to": "CEO"}}
        assert by_key["actor_type"] == "api_key"
        assert by_key["credential_id"] == key["id"]
        assert by_key["actor_id"] == admin.user["id"]  # a key acts for the admin who made it
        assert by_user["actor_type"] == "user"
        assert by_user["credential_id"] not in (None, key["id"])
        # A new login is a new credential for the same user.
        again = await login(client, admin.email)
        await client.patch(
            f"{CONTACTS}/{contact['id']}", json={"job_title": "CTO"}, headers=again.headers
        )
        await drain(app)
        latest = (await history(client, admin, "contacts", contact["id"]))[0]
        assert latest["actor_id"] == admin.user["id"] and latest["actor_type"] == "user"
        assert latest["credential_id"] not in (by_user["credential_id"], key["id"])

    async def test_soft_delete_and_restore_are_in_the_history(self, app, client):
        admin = await register(client)
        viewer = await add_member(client, admin, role="viewer")
        contact = await make_contact(client, admin)
        cid = contact["id"]
        assert (await client.delete(f"{CONTACTS}/{cid}", headers=admin.headers)).status_code == 200
        await drain(app)
        # A deleted record's history says who deleted it: readable, also by a viewer.
        deleted = await history(client, viewer, "contacts", cid)
        assert actions(deleted) == ["deleted", "created"]
        assert deleted[0]["changes"]["deleted_at"]["from"] is None
        assert deleted[0]["changes"]["deleted_at"]["to"] is not None
        r = await client.post(f"{CONTACTS}/{cid}/restore", headers=admin.headers)
        assert r.status_code == 200, r.text
        await drain(app)
        restored = (await history(client, viewer, "contacts", cid))[0]
        assert restored["action"] == "restored"
        assert restored["changes"] == {
            "deleted_at": {"from": deleted[0]["changes"]["deleted_at"]["to"], "to": None}
        }


class TestMergesAndErasures:
    async def test_a_contact_merge_is_in_the_winner_and_every_loser_history(self, app, client):
        admin = await register(client)
        winner = await make_contact(client, admin, first_name="Ada", email="ada@example.com")
        loser1 = await make_contact(client, admin, first_name="Ada B", job_title="CFO")
        loser2 = await make_contact(client, admin, first_name="Ada C")
        await drain(app)
        r = await client.post(
            f"{CONTACTS}/merge",
            json={
                "winner_id": winner["id"],
                "loser_ids": [loser1["id"], loser2["id"]],
                "fields": {"job_title": loser1["id"]},
            },
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)
        won = (await history(client, admin, "contacts", winner["id"]))[0]
        assert won["action"] == "merged" and won["event_type"] == "contact.merged"
        assert won["changes"] == {"job_title": {"from": None, "to": "CFO"}}
        assert won["details"]["winner_id"] == winner["id"]
        assert won["details"]["loser_ids"] == [loser1["id"], loser2["id"]]
        assert "moved" in won["details"]
        for loser in (loser1, loser2):
            entries = await history(client, admin, "contacts", loser["id"])
            assert actions(entries) == ["merged", "created"]
            merged = entries[0]
            assert merged["event_id"] == won["event_id"]
            assert merged["resource_id"] == loser["id"]
            assert merged["changes"] == {"merged_into_id": {"from": None, "to": winner["id"]}}
            assert merged["actor_id"] == admin.user["id"]
        # The audit log holds the merge once per record it touched.
        log = await audit_log(client, admin, event_type="contact.merged")
        assert sorted(e["resource_id"] for e in log) == sorted(
            [winner["id"], loser1["id"], loser2["id"]]
        )

    async def test_a_company_merge_is_in_the_winner_and_loser_history(self, app, client):
        admin = await register(client)
        winner = await make_company(client, admin, name="Acme")
        loser = await make_company(client, admin, name="Acme Inc", domain="acme.example")
        r = await client.post(
            f"{COMPANIES}/merge",
            json={"winner_id": winner["id"], "loser_ids": [loser["id"]]},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
        await drain(app)
        won = (await history(client, admin, "companies", winner["id"]))[0]
        lost = (await history(client, admin, "companies", loser["id"]))[0]
        assert won["action"] == lost["action"] == "merged"
        assert won["details"]["loser_ids"] == [loser["id"]]
        assert lost["changes"] == {"merged_into_id": {"from": None, "to": winner["id"]}}

    async def test_an_erasure_is_recorded_and_its_history_is_for_admins_only(self, app, client):
        admin = await register(client)
        contact = await make_contact(client, admin, email="gone@example.com")
        cid = contact["id"]
        await client.patch(f"{CONTACTS}/{cid}", json={"job_title": "CEO"}, headers=admin.headers)
        r = await client.delete(
            f"{CONTACTS}/{cid}", params={"erase": "true"}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        await drain(app)
        gone = await client.get(f"{API}/contacts/{cid}/history", headers=admin.headers)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "contact_not_found"
        entries = await audit_log(client, admin, resource_id=cid)
        assert actions(entries) == ["erased", "updated", "created"]
        erased = entries[0]
        assert erased["event_type"] == "contact.erased" and erased["resource_type"] == "contact"
        assert erased["actor_id"] == admin.user["id"] and erased["changes"] == {}
        assert entries[1]["changes"] == {"job_title": {"from": None, "to": "CEO"}}


class TestAuditLog:
    async def test_filters(self, app, client):
        admin = await register(client)
        member = await add_member(client, admin, role="member")
        key = await create_api_key(client, admin, role="member")
        ada = await make_contact(client, admin, first_name="Ada")
        acme = await make_company(client, member, name="Acme")
        await drain(app)
        start = (await audit_log(client, admin))[0]["occurred_at"]
        r = await client.patch(
            f"{CONTACTS}/{ada['id']}",
            json={"job_title": "CEO"},
            headers={"Authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 200, r.text
        await drain(app)

        everything = await audit_log(client, admin)
        types = {e["event_type"] for e in everything}
        # Not only records: users joining and API keys are in the log too.
        assert {"user.joined", "api_key.created", "contact.created", "company.created"} <= types
        assert [e["occurred_at"] for e in everything] == sorted(
            (e["occurred_at"] for e in everything), reverse=True
        )

        companies = await audit_log(client, admin, resource_type="company")
        assert [(e["event_type"], e["resource_id"]) for e in companies] == [
            ("company.created", acme["id"])
        ]
        of_ada = await audit_log(client, admin, resource_id=ada["id"])
        assert actions(of_ada) == ["updated", "created"]
        by_member = await audit_log(client, admin, actor_id=member.user["id"])
        assert [e["event_type"] for e in by_member] == ["company.created"]
        by_me = await audit_log(client, admin, actor_id="me")
        assert by_me and all(e["actor_id"] == admin.user["id"] for e in by_me)
        assert "company.created" not in {e["event_type"] for e in by_me}
        by_key = await audit_log(client, admin, credential_id=key["id"])
        assert [(e["event_type"], e["actor_type"]) for e in by_key] == [
            ("contact.updated", "api_key")
        ]
        updates = await audit_log(client, admin, action="updated")
        assert {e["event_type"] for e in updates} == {"contact.updated"}
        either = await audit_log(client, admin, event_type="company.created,contact.updated")
        assert sorted(e["event_type"] for e in either) == ["company.created", "contact.updated"]
        later = await audit_log(client, admin, **{"occurred_at[gt]": start})
        assert [e["event_type"] for e in later] == ["contact.updated"]
        earlier = await audit_log(client, admin, **{"occurred_at[lte]": start})
        assert len(earlier) == len(everything) - 1

    async def test_keyset_pages_cover_everything_once(self, app, client):
        admin = await register(client)
        for i in range(5):
            await make_contact(client, admin, first_name=f"C{i}")
        await drain(app)
        everything = await audit_log(client, admin)
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            r = await client.get(AUDIT_LOG, params=params, headers=admin.headers)
            assert r.status_code == 200, r.text
            seen.extend(e["id"] for e in r.json()["data"])
            cursor = r.json()["meta"]["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["id"] for e in everything] and len(everything) >= 6

    async def test_bad_filters_are_422(self, client):
        admin = await register(client)
        for params in (
            {"nope": "1"},
            {"resource_id": "not-a-uuid"},
            {"occurred_at[gte]": "yesterday"},
            {"include_deleted": "true"},
            {"sort_by": "action"},
            {"cursor": "garbage"},
        ):
            r = await client.get(AUDIT_LOG, params=params, headers=admin.headers)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["success"] is False

    async def test_only_admins_read_the_audit_log(self, client):
        admin = await register(client)
        for role in ("member", "viewer"):
            user = await add_member(client, admin, role=role)
            r = await client.get(AUDIT_LOG, headers=user.headers)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "forbidden"
        key = await create_api_key(client, admin, role="member")
        r = await client.get(AUDIT_LOG, headers={"Authorization": f"Bearer {key['key']}"})
        assert r.status_code == 403


class TestHistoryAccess:
    async def test_viewers_read_histories_of_every_record_type(self, app, client):
        admin = await register(client)
        viewer = await add_member(client, admin, role="viewer")
        contact = await make_contact(client, admin)
        records = {
            "contacts": contact["id"],
            "companies": (await make_company(client, admin))["id"],
            "leads": (await make_lead(client, admin))["id"],
            "deals": (await _create(client, admin, "deals", {"name": "Big deal"}))["id"],
            "activities": (
                await _create(
                    client, admin, "activities", {"kind": "call", "contact_id": contact["id"]}
                )
            )["id"],
            "tasks": (await _create(client, admin, "tasks", {"title": "Call back"}))["id"],
        }
        await drain(app)
        singular = {
            "contacts": "contact",
            "companies": "company",
            "leads": "lead",
            "deals": "deal",
            "activities": "activity",
            "tasks": "task",
        }
        for path, record_id in records.items():
            entries = await history(client, viewer, path, record_id)
            assert entries, path
            assert entries[-1]["event_type"] == f"{singular[path]}.created"
            assert {e["resource_id"] for e in entries} == {record_id}
            missing = await client.get(
                f"{API}/{path}/{uuid.uuid4()}/history", headers=viewer.headers
            )
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == f"{singular[path]}_not_found"

    async def test_history_filters_and_paging(self, app, client):
        admin = await register(client)
        contact = await make_contact(client, admin)
        for title in ("A", "B", "C"):
            await client.patch(
                f"{CONTACTS}/{contact['id']}", json={"job_title": title}, headers=admin.headers
            )
        await drain(app)
        url = f"{API}/contacts/{contact['id']}/history"
        r = await client.get(url, params={"limit": 2}, headers=admin.headers)
        page = r.json()
        assert [e["changes"]["job_title"]["to"] for e in page["data"]] == ["C", "B"]
        assert page["meta"]["has_more"] is True
        r = await client.get(
            url, params={"limit": 2, "cursor": page["meta"]["next_cursor"]}, headers=admin.headers
        )
        assert actions(r.json()["data"]) == ["updated", "created"]
        assert r.json()["meta"]["has_more"] is False
        created = await history(client, admin, "contacts", contact["id"], action="created")
        assert actions(created) == ["created"]
        oldest_first = await history(client, admin, "contacts", contact["id"], sort_order="asc")
        assert actions(oldest_first) == ["created", "updated", "updated", "updated"]
        r = await client.get(url, params={"resource_type": "contact"}, headers=admin.headers)
        assert r.status_code == 422  # a history is one record already

    async def test_technicians_cannot_read_histories(self, client):
        admin = await register(client)
        technician = await add_member(client, admin, role="technician")
        contact = await make_contact(client, admin)
        r = await client.get(f"{API}/contacts/{contact['id']}/history", headers=technician.headers)
        assert r.status_code == 403


class TestIsolation:
    async def test_workspaces_never_see_each_others_entries(self, app, client):
        owner = await register(client)
        intruder = await register(client)
        contact = await make_contact(client, owner, first_name="Secretive")
        await client.patch(
            f"{CONTACTS}/{contact['id']}", json={"job_title": "CEO"}, headers=owner.headers
        )
        await drain(app)
        assert len(await history(client, owner, "contacts", contact["id"])) == 2
        r = await client.get(f"{API}/contacts/{contact['id']}/history", headers=intruder.headers)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "contact_not_found"
        for params in ({}, {"resource_id": contact["id"]}, {"actor_id": owner.user["id"]}):
            log = await audit_log(client, intruder, **params)
            assert contact["id"] not in {e["resource_id"] for e in log}
            assert all(e["actor_id"] in (None, intruder.user["id"]) for e in log)
        own = await audit_log(client, intruder)
        assert [e["event_type"] for e in own] == ["user.joined"]


class TestSecrets:
    async def test_creating_an_api_key_leaves_no_secret_in_the_log(self, app, client, database):
        admin = await register(client)
        key = await create_api_key(client, admin, role="viewer")
        await drain(app)
        entries = await audit_log(client, admin, resource_id=key["id"])
        assert [e["event_type"] for e in entries] == ["api_key.created"]
        assert entries[0]["changes"]["name"] == {"from": None, "to": key["name"]}
        stored = await stored_entries(database, admin.workspace_id)
        text = json.dumps(stored, default=str)
        assert key["key"] not in text
        assert hashlib.sha256(key["key"].encode()).hexdigest() not in text
        assert key["key"][len(key["prefix"]) :] not in text


async def _create(client, account, path: str, body: dict) -> dict:  # noqa: ANN001
    r = await client.post(f"{API}/{path}", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]
