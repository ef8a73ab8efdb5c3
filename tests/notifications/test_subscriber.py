"""Domain events become notifications for the right members: assignments (not your own, not on
every edit), lead conversions, disabled webhook endpoints; one insert per batch; each one
announced by a `notification.created` event naming its user; never across workspaces."""

from __future__ import annotations

import uuid

from rapport.core.events import jsonable
from tests.factories import add_member, register
from tests.notifications.factories import (
    TASKS,
    drain,
    inbox,
    make_task,
    notification_events,
    patch,
    record_event,
    statements,
)

CONTACTS, LEADS, DEALS = "/api/v1/contacts", "/api/v1/leads", "/api/v1/deals"


class TestAssignments:
    async def test_a_task_assigned_to_someone_else_notifies_them_only(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        task = await make_task(client, admin, assignee_id=bob.user["id"], priority="high")
        await drain(app)

        [note] = await inbox(client, bob)
        assert note["type"] == "task.assigned"
        assert note["user_id"] == bob.user["id"]
        assert note["resource_type"] == "task" and note["resource_id"] == task["id"]
        assert "Send the proposal" in note["title"]
        assert note["status"] == "unread" and note["read_at"] is None
        assert note["data"]["actor"]["id"] == admin.user["id"]
        assert await inbox(client, admin) == []

    async def test_nobody_is_notified_of_their_own_doing(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        await make_task(client, bob, assignee_id=bob.user["id"])
        r = await client.post(
            CONTACTS,
            json={"first_name": "Ann", "owner_id": admin.user["id"]},
            headers=admin.headers,
        )
        assert r.status_code == 201
        await drain(app)
        assert await inbox(client, bob) == []
        assert await inbox(client, admin) == []

    async def test_only_a_change_of_assignee_notifies(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        carol = await add_member(client, admin)
        task = await make_task(client, admin, assignee_id=bob.user["id"])
        path = f"{TASKS}/{task['id']}"
        await drain(app)
        await patch(client, admin, path, title="Send the revised proposal")
        await patch(client, bob, path, priority="urgent")
        await drain(app)
        assert len(await inbox(client, bob)) == 1, "an edit is not an assignment"

        await patch(client, admin, path, assignee_id=carol.user["id"])
        await drain(app)
        [to_carol] = await inbox(client, carol)
        assert to_carol["data"]["previous_assignee_id"] == bob.user["id"]

        await patch(client, carol, path, assignee_id=bob.user["id"])
        await patch(client, admin, path, assignee_id=None)
        await patch(client, admin, path, assignee_id=bob.user["id"])
        await drain(app)  # both reassignments to Bob in one batch: each one counts
        assert len(await inbox(client, bob)) == 3
        assert len(await inbox(client, carol)) == 1

    async def test_owners_of_contacts_leads_and_deals(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        owner = {"owner_id": bob.user["id"]}
        for path, body in (
            (CONTACTS, {"first_name": "Ann", "last_name": "Lee"}),
            (LEADS, {"first_name": "Lou", "last_name": "Reed"}),
            (DEALS, {"name": "Acme renewal"}),
        ):
            r = await client.post(path, json={**body, **owner}, headers=admin.headers)
            assert r.status_code == 201, r.text
        await drain(app)
        notes = await inbox(client, bob)
        assert {n["type"] for n in notes} == {"contact.assigned", "lead.assigned", "deal.assigned"}
        titles = " ".join(n["title"] for n in notes)
        assert "Ann Lee" in titles and "Lou Reed" in titles and "Acme renewal" in titles

        lead = next(n for n in notes if n["type"] == "lead.assigned")
        await patch(client, bob, f"{LEADS}/{lead['resource_id']}", owner_id=admin.user["id"])
        await drain(app)
        [to_admin] = await inbox(client, admin)
        assert to_admin["type"] == "lead.assigned"
        assert to_admin["data"]["actor"]["id"] == bob.user["id"]

    async def test_lead_converted_notifies_its_owner(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        r = await client.post(
            LEADS,
            json={"first_name": "Lou", "company_name": "Velvet", "owner_id": bob.user["id"]},
            headers=admin.headers,
        )
        lead = r.json()["data"]
        converted = await client.post(
            f"{LEADS}/{lead['id']}/convert", json={}, headers=admin.headers
        )
        assert converted.status_code in (200, 201), converted.text
        await drain(app)
        [note] = await inbox(client, bob, type="lead.converted")
        assert note["resource_id"] == lead["id"]
        assert note["data"]["contact_id"] == converted.json()["data"]["contact_id"]
        # Converting your own lead tells you nothing new.
        own = await client.post(
            LEADS, json={"first_name": "Mo", "owner_id": bob.user["id"]}, headers=bob.headers
        )
        r = await client.post(
            f"{LEADS}/{own.json()['data']['id']}/convert", json={}, headers=bob.headers
        )
        assert r.status_code in (200, 201), r.text
        await drain(app)
        assert len(await inbox(client, bob, type="lead.converted")) == 1

    async def test_an_erased_record_takes_its_notifications_with_it(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        kept = await make_task(client, admin, assignee_id=bob.user["id"], title="Kept")
        gone = await make_task(client, admin, assignee_id=bob.user["id"], title="Gone")
        await drain(app)
        assert len(await inbox(client, bob)) == 2
        r = await client.delete(f"{TASKS}/{gone['id']}?erase=true", headers=admin.headers)
        assert r.status_code == 200, r.text
        # Created and erased before the relay ran: nothing is ever sent about it.
        brief = await make_task(client, admin, assignee_id=bob.user["id"], title="Brief")
        r = await client.delete(f"{TASKS}/{brief['id']}?erase=true", headers=admin.headers)
        assert r.status_code == 200, r.text
        await drain(app)
        assert [n["resource_id"] for n in await inbox(client, bob)] == [kept["id"]]

    async def test_a_member_deactivated_before_delivery_gets_nothing(self, app, client):
        admin = await register(client)
        bob = await add_member(client, admin)
        await make_task(client, admin, assignee_id=bob.user["id"])
        r = await client.patch(
            f"/api/v1/users/{bob.user['id']}", json={"is_active": False}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        await drain(app)
        assert await notification_events(app.state.background.db, admin.workspace_id) == []

    async def test_each_notification_is_an_event_for_its_user(self, app, client, database):
        admin = await register(client)
        bob = await add_member(client, admin)
        await make_task(client, admin, assignee_id=bob.user["id"])
        await drain(app)
        [note] = await inbox(client, bob)
        [event] = await notification_events(database, admin.workspace_id)
        assert event["data"] == jsonable(note)
        assert event["data"]["user_id"] == bob.user["id"]
        assert str(event["resource_id"]) == note["id"]

    async def test_a_batch_is_one_insert(self, app, client, database):
        admin = await register(client)
        bob = await add_member(client, admin)
        items = [{"title": f"Call {i}", "assignee_id": bob.user["id"]} for i in range(60)]
        r = await client.post(f"{TASKS}/bulk", json={"items": items}, headers=admin.headers)
        assert r.status_code in (200, 201), r.text
        with statements(database) as seen:
            await drain(app)
        assert len(await inbox(client, bob)) == 60
        inserts = [s for s in seen if s.upper().startswith("INSERT INTO NOTIFICATION ")]
        assert len(inserts) == 1, inserts
        # Records the batch creates have no holder yet: none is looked up.
        assert not [s for s in seen if s.upper().startswith("SELECT NOTIFICATION_HOLDER")]
        # Their holders are saved: an edit that keeps the assignee notifies nobody, a new
        # assignee is notified.
        carol = await add_member(client, admin)
        first = (await inbox(client, bob))[0]["resource_id"]
        await patch(client, admin, f"{TASKS}/{first}", title="Again", assignee_id=bob.user["id"])
        await drain(app)
        await patch(client, admin, f"{TASKS}/{first}", assignee_id=carol.user["id"])
        await drain(app)
        assert len(await inbox(client, bob)) == 60
        assert len(await inbox(client, carol)) == 1


class TestWebhookEndpointDisabled:
    async def test_every_admin_is_notified(self, app, client, database):
        admin = await register(client)
        second_admin = await add_member(client, admin, role="admin")
        member = await add_member(client, admin)
        other = await register(client)
        endpoint_id = str(uuid.uuid4())
        await record_event(
            database,
            admin.workspace_id,
            "webhook_endpoint.disabled",
            {"id": endpoint_id, "url": "https://hooks.example.com/x", "reason": "410 Gone"},
            endpoint_id,
        )
        await drain(app)
        for account in (admin, second_admin):
            [note] = await inbox(client, account)
            assert note["type"] == "webhook_endpoint.disabled"
            assert note["resource_id"] == endpoint_id
            assert "https://hooks.example.com/x" in note["body"] and "410 Gone" in note["body"]
            assert note["data"]["reason"] == "410 Gone"
        assert await inbox(client, member) == []
        assert await inbox(client, other) == []


class TestIsolation:
    async def test_no_workspace_receives_another_workspaces_notifications(
        self, app, client, database
    ):
        first = await register(client)
        bob = await add_member(client, first)
        second = await register(client)
        await make_task(client, first, assignee_id=bob.user["id"])
        # An event of the second workspace naming users of the first (as a buggy or hostile
        # writer could) notifies nobody: they are not members there.
        task_id = str(uuid.uuid4())
        await record_event(
            database,
            second.workspace_id,
            "task.created",
            {"id": task_id, "title": "Spoof", "assignee_id": bob.user["id"], "status": "open"},
            task_id,
        )
        await record_event(
            database,
            second.workspace_id,
            "lead.converted",
            {"id": task_id, "first_name": "X", "owner_id": first.user["id"]},
            task_id,
        )
        await drain(app)
        [note] = await inbox(client, bob)
        assert note["title"].endswith("Send the proposal")
        assert await inbox(client, first) == []
        assert await inbox(client, second) == []
        assert await notification_events(database, second.workspace_id) == []
        [only] = await notification_events(database, first.workspace_id)
        assert only["data"]["user_id"] == bob.user["id"]
