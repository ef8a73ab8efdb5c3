"""`GET /api/v1/ws` against a real server, on both backends: who may connect (header, subprotocol,
API key; bad, revoked or logged-out credentials closed with 4401), what each connection receives
(its workspace only, notifications only for their user, admin-only resources only for admins,
technicians only what is assigned to them), subscriptions, bad client messages, heartbeats, slow
consumers, credential re-checks on open sockets, rate limits and shutdown.

Events come from real HTTP writes relayed with `background.drain()`. A connection receives events
in commit order, so "X was not delivered" is shown by a later event arriving without X before it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from fastapi.routing import APIWebSocketRoute, iter_route_contexts

from rapport.core import events
from rapport.core.db import Database
from rapport.main import create_app
from tests.factories import Account, add_member, create_api_key, register
from tests.realtime.conftest import (
    QUEUE,
    LiveServer,
    close_code,
    connected,
    open_ws,
    realtime_settings,
    receive,
    refused,
    types,
    until,
)

CONTACTS = "/api/v1/contacts"
COMPANIES = "/api/v1/companies"


async def create_contact(client: httpx.AsyncClient, account: Account, **body: Any) -> str:
    r = await client.post(CONTACTS, json={"first_name": "Ada", **body}, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]


async def create_company(client: httpx.AsyncClient, account: Account) -> str:
    r = await client.post(COMPANIES, json={"name": "Acme"}, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]


async def record(database: Database, workspace_id: str, type_: str, data: dict[str, Any]) -> None:
    """An event straight into the outbox, as the service that owns it would record it."""
    async with database.write_sessions() as session, session.begin():
        await events.record(session, workspace_id=uuid.UUID(workspace_id), type=type_, data=data)


def of_type(messages: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == type_]


class TestAuthentication:
    async def test_access_token_in_the_authorization_header(self, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            hello = (await connected(ws))["data"]
        assert hello["workspace_id"] == admin.workspace_id
        assert hello["user_id"] == admin.user["id"]
        assert (hello["role"], hello["credential"]) == ("admin", "user")
        assert hello["types"] == ["*"]

    async def test_api_key_in_the_authorization_header(self, rt_client, live):
        admin = await register(rt_client)
        key = await create_api_key(rt_client, admin, role="viewer")
        async with open_ws(live.ws_url, key["key"]) as ws:
            hello = (await connected(ws))["data"]
        assert (hello["role"], hello["credential"]) == ("viewer", "api_key")
        assert hello["workspace_id"] == admin.workspace_id

    async def test_token_as_subprotocol_is_answered_with_bearer(self, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, subprotocols=["bearer", admin.token]) as ws:
            assert ws.subprotocol == "bearer"
            assert (await connected(ws))["data"]["user_id"] == admin.user["id"]

    async def test_missing_credentials_close_with_4401(self, live):
        code, reason = await refused(live.ws_url)
        assert code == 4401 and "Authenticate" in reason

    async def test_bad_credentials_close_with_4401(self, rt_client, live):
        admin = await register(rt_client)
        forged = admin.token[:-4] + ("AAAA" if not admin.token.endswith("AAAA") else "BBBB")
        for kwargs in (
            {"token": "not-a-token"},
            {"token": forged},
            {"token": "rpk_" + "x" * 40},
            {"additional_headers": {"Authorization": f"Basic {admin.token}"}},
            {"subprotocols": ["bearer"]},
        ):
            assert (await refused(live.ws_url, **kwargs))[0] == 4401, kwargs

    async def test_bad_subprotocol_token_still_gets_its_subprotocol_and_4401(self, live):
        async with open_ws(live.ws_url, subprotocols=["bearer", "garbage"]) as ws:
            assert ws.subprotocol == "bearer"  # or a browser would hide the close code
            assert (await close_code(ws))[0] == 4401

    async def test_revoked_api_key_and_logged_out_session_are_refused(self, rt_client, live):
        admin = await register(rt_client)
        key = await create_api_key(rt_client, admin)
        r = await rt_client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin.headers)
        assert r.status_code == 200, r.text
        assert (await refused(live.ws_url, token=key["key"]))[0] == 4401
        r = await rt_client.post("/api/v1/auth/logout", headers=admin.headers)
        assert r.status_code == 200, r.text
        assert (await refused(live.ws_url, token=admin.token))[0] == 4401

    async def test_every_websocket_route_refuses_a_handshake_without_credentials(
        self, rt_app, live
    ):
        paths = [
            c.path
            for c in iter_route_contexts(rt_app.routes)
            if isinstance(c.original_route, APIWebSocketRoute)
        ]
        assert paths == ["/api/v1/ws"]
        for path in paths:
            url = f"ws://127.0.0.1:{live.port}{path}"
            assert (await refused(url))[0] == 4401, path

    async def test_open_socket_of_a_deactivated_user_is_closed(self, rt_client, live):
        admin = await register(rt_client)
        member = await add_member(rt_client, admin)
        async with open_ws(live.ws_url, member.token) as ws:
            await connected(ws)
            r = await rt_client.patch(
                f"/api/v1/users/{member.user['id']}",
                json={"is_active": False},
                headers=admin.headers,
            )
            assert r.status_code == 200, r.text
            code, reason = await close_code(ws)  # at the next re-check (0.3 s here)
        assert code == 4401 and "revoked" in reason

    async def test_role_change_applies_to_an_open_socket(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        member = await add_member(rt_client, admin)
        async with open_ws(live.ws_url, member.token) as ws:
            await connected(ws)
            r = await rt_client.patch(
                f"/api/v1/users/{member.user['id']}", json={"role": "admin"}, headers=admin.headers
            )
            assert r.status_code == 200, r.text
            # Admin-only events reach the socket once its next re-check has seen the new role.
            for _ in range(50):
                await create_api_key(rt_client, admin)
                await create_contact(rt_client, admin)
                await rt_app.state.background.drain()
                if "api_key.created" in types(await until(ws, "contact.created")):
                    break
            else:
                raise AssertionError("the promoted member never received an admin-only event")


class TestWhatEachConnectionReceives:
    async def test_an_http_write_arrives_as_an_event(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            contact_id = await create_contact(rt_client, admin, first_name="Grace")
            await rt_app.state.background.drain()
            event = (await until(ws, "contact.created"))[-1]
        assert event["data"]["id"] == contact_id
        assert event["data"]["first_name"] == "Grace"
        assert uuid.UUID(event["id"]) and event["timestamp"].endswith("Z")
        assert event["actor"] == {"type": "user", "id": admin.user["id"]}

    async def test_another_workspace_events_never_arrive(self, rt_app, rt_client, live):
        a = await register(rt_client)
        b = await register(rt_client)
        async with open_ws(live.ws_url, a.token) as ws_a, open_ws(live.ws_url, b.token) as ws_b:
            await connected(ws_a)
            await connected(ws_b)
            b_first = await create_contact(rt_client, b)
            a_only = await create_contact(rt_client, a)
            b_last = await create_contact(rt_client, b)
            await rt_app.state.background.drain()
            seen_a = await until(ws_a, "contact.created")
            seen_b = await until(ws_b, "contact.created")
            seen_b += await until(ws_b, "contact.created")
        assert [m["data"]["id"] for m in of_type(seen_a, "contact.created")] == [a_only]
        assert [m["data"]["id"] for m in of_type(seen_b, "contact.created")] == [b_first, b_last]
        for message in seen_a:
            assert b.workspace_id not in orjson.dumps(message).decode()
        for message in seen_b:
            assert a.workspace_id not in orjson.dumps(message).decode()

    async def test_notifications_reach_only_their_user(self, rt_app, rt_client, live, database):
        admin = await register(rt_client)
        member = await add_member(rt_client, admin)
        admin_key = await create_api_key(rt_client, admin, role="admin")
        async with (
            open_ws(live.ws_url, admin.token) as ws_admin,
            open_ws(live.ws_url, member.token) as ws_member,
            open_ws(live.ws_url, admin_key["key"]) as ws_key,
        ):
            for ws in (ws_admin, ws_member, ws_key):
                await connected(ws)
            note = {"id": str(uuid.uuid4()), "title": "Call back", "user_id": member.user["id"]}
            await record(database, admin.workspace_id, "notification.created", note)
            await record(database, admin.workspace_id, "notification.created", {"title": "?"})
            await create_contact(rt_client, admin)
            await rt_app.state.background.drain()
            seen_member = await until(ws_member, "contact.created")
            seen_admin = await until(ws_admin, "contact.created")
            seen_key = await until(ws_key, "contact.created")
        assert [m["data"] for m in of_type(seen_member, "notification.created")] == [note]
        assert of_type(seen_admin, "notification.created") == []
        # The admin's own API key acts for an integration: it has no inbox either.
        assert of_type(seen_key, "notification.created") == []

    async def test_admin_only_events_do_not_reach_members_or_viewers(
        self, rt_app, rt_client, live, database
    ):
        admin = await register(rt_client)
        member = await add_member(rt_client, admin)
        viewer = await add_member(rt_client, admin, role="viewer")
        async with (
            open_ws(live.ws_url, admin.token) as ws_admin,
            open_ws(live.ws_url, member.token) as ws_member,
            open_ws(live.ws_url, viewer.token) as ws_viewer,
        ):
            for ws in (ws_admin, ws_member, ws_viewer):
                await connected(ws)
            await rt_app.state.background.drain()  # the joins above, before the sockets count
            await create_api_key(rt_client, admin)
            r = await rt_client.post(
                "/api/v1/users/invitations",
                json={"email": f"x-{uuid.uuid4().hex[:8]}@example.com", "role": "member"},
                headers=admin.headers,
            )
            assert r.status_code == 201, r.text
            for type_ in ("webhook_endpoint.created", "integration.error", "audit.recorded"):
                await record(database, admin.workspace_id, type_, {"id": str(uuid.uuid4())})
            await create_contact(rt_client, admin)
            await rt_app.state.background.drain()
            seen_admin = types(await until(ws_admin, "contact.created"))
            seen_member = types(await until(ws_member, "contact.created"))
            seen_viewer = types(await until(ws_viewer, "contact.created"))
        admin_only = [
            "api_key.created",
            "invitation.created",
            "webhook_endpoint.created",
            "integration.error",
            "audit.recorded",
        ]
        assert set(admin_only) <= set(seen_admin)
        assert seen_member == ["contact.created"]
        assert seen_viewer == ["contact.created"]

    async def test_technicians_receive_only_what_is_assigned_to_them(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        tech = await add_member(rt_client, admin, role="technician")
        async with open_ws(live.ws_url, tech.token) as ws:
            await connected(ws)
            await create_contact(rt_client, admin)
            r = await rt_client.post(
                "/api/v1/tasks",
                json={"title": "Fix the boiler", "assignee_id": tech.user["id"]},
                headers=admin.headers,
            )
            assert r.status_code == 201, r.text
            await rt_app.state.background.drain()
            seen = await until(ws, "task.created")
        assert "contact.created" not in types(seen)
        assert seen[-1]["data"]["assignee_id"] == tech.user["id"]


class TestSubscriptions:
    async def test_subscribe_narrows_the_default_to_the_types_named(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            await ws.send(orjson.dumps({"action": "subscribe", "types": ["contact.*"]}).decode())
            ack = await receive(ws)
            assert ack["type"] == "subscribed"
            assert ack["data"] == {"types": ["contact.*"], "excluded": []}
            await create_company(rt_client, admin)
            contact_id = await create_contact(rt_client, admin)
            await rt_app.state.background.drain()
            seen = await until(ws, "contact.created")
        assert types(seen) == ["contact.created"]  # neither user.joined nor company.created
        assert seen[0]["data"]["id"] == contact_id

    async def test_subscriptions_add_up_and_unsubscribe_removes(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            for action, names in [
                ("subscribe", ["company.created"]),
                ("subscribe", ["contact.created", "lead.*"]),
                ("unsubscribe", ["company.created"]),
            ]:
                await ws.send(orjson.dumps({"action": action, "types": names}).decode())
                ack = await receive(ws)
                assert ack["type"] == f"{action}d", ack
            assert ack["data"] == {"types": ["contact.created", "lead.*"], "excluded": []}
            await create_company(rt_client, admin)
            await create_contact(rt_client, admin)
            await rt_app.state.background.drain()
            assert types(await until(ws, "contact.created")) == ["contact.created"]

    async def test_unsubscribe_from_everything_but(self, rt_app, rt_client, live):
        admin = await register(rt_client)
        await rt_app.state.background.drain()  # the registration's event, before connecting
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            await ws.send(orjson.dumps({"action": "unsubscribe", "types": ["contact.*"]}).decode())
            ack = await receive(ws)
            assert ack["data"] == {"types": ["*"], "excluded": ["contact.*"]}
            await create_contact(rt_client, admin)
            await create_company(rt_client, admin)
            await rt_app.state.background.drain()
            assert types(await until(ws, "company.created")) == ["company.created"]

    async def test_bad_messages_get_errors_and_the_connection_lives_on(self, rt_client, live):
        admin = await register(rt_client)
        bad: list[tuple[str | bytes, str]] = [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_message"),
            ('{"action": 7}', "invalid_message"),
            ('{"types": ["contact.*"]}', "invalid_message"),
            ('{"action": "dance"}', "unknown_action"),
            ('{"action": "subscribe"}', "invalid_types"),
            ('{"action": "subscribe", "types": "contact.*"}', "invalid_types"),
            ('{"action": "subscribe", "types": []}', "invalid_types"),
            ('{"action": "subscribe", "types": ["contact.[!x]"]}', "invalid_types"),
            ('{"action": "unsubscribe", "types": [null]}', "invalid_types"),
            ("x" * 20000, "message_too_large"),
            (b"\x00\x01", "binary_not_supported"),
        ]
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            for payload, code in bad:
                await ws.send(payload)
                reply = await receive(ws)
                assert reply["type"] == "error", payload
                assert reply["data"]["code"] == code, (payload, reply)
                assert reply["data"]["message"]
            too_many = [f"type{i}.*" for i in range(50)]
            await ws.send(orjson.dumps({"action": "subscribe", "types": too_many}).decode())
            assert (await receive(ws))["type"] == "subscribed"
            await ws.send(orjson.dumps({"action": "subscribe", "types": ["one.more"]}).decode())
            assert (await receive(ws))["data"]["code"] == "too_many_types"
            await ws.send('{"action": "ping"}')
            assert (await receive(ws))["type"] == "pong"


class TestLiveness:
    async def test_heartbeats_while_idle(self, rt_client, live):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            beat = await receive(ws, heartbeats=True)  # 0.3 s here; 25 s by default
            assert beat["type"] == "heartbeat" and beat["timestamp"].endswith("Z")
            assert (await receive(ws, heartbeats=True))["type"] == "heartbeat"

    async def test_a_burst_beyond_the_send_queue_drops_the_connection(
        self, rt_app, rt_client, live
    ):
        admin = await register(rt_client)
        await rt_app.state.background.drain()  # the registration's event, before connecting
        async with (
            open_ws(live.ws_url, admin.token) as flooded,
            open_ws(live.ws_url, admin.token) as calm,
        ):
            await connected(flooded)
            await connected(calm)
            await calm.send(orjson.dumps({"action": "subscribe", "types": ["company.*"]}).decode())
            assert (await receive(calm))["type"] == "subscribed"
            items = [{"first_name": f"C{i}"} for i in range(QUEUE + 5)]
            r = await rt_client.post(
                f"{CONTACTS}/bulk", json={"items": items}, headers=admin.headers
            )
            assert r.status_code in (200, 201), r.text
            await create_company(rt_client, admin)
            await rt_app.state.background.drain()  # one batch: more than the queue holds at once
            code, reason = await close_code(flooded)
            assert code == 1013 and "Too slow" in reason
            # A connection that did not want those events kept its queue short and lives on.
            assert types(await until(calm, "company.created")) == ["company.created"]

    async def test_stopping_the_server_closes_sockets_with_going_away(
        self, rt_app, rt_client, live
    ):
        admin = await register(rt_client)
        async with open_ws(live.ws_url, admin.token) as ws:
            await connected(ws)
            await rt_app.state.realtime.stop()
            assert (await close_code(ws))[0] == 1001
        assert len(rt_app.state.hub) == 0


class TestHandshakeRateLimit:
    async def test_handshakes_count_against_the_callers_limit(
        self, database_url, tmp_root, database
    ):
        app = create_app(
            realtime_settings(database_url, tmp_root, rate_limit_default="2/minute"), db=database
        )
        async with (
            LiveServer(app) as server,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rapport.test"
            ) as client,
        ):
            admin = await register(client)
            for _ in range(2):
                async with open_ws(server.ws_url, admin.token) as ws:
                    await connected(ws)
            code, reason = await refused(server.ws_url, token=admin.token)
        assert code == 4429 and "retry in" in reason


class TestRedisDown:
    async def test_sockets_still_get_their_own_process_events(
        self, database_url, tmp_root, database
    ):
        """Redis configured but unreachable: publishing falls back to this process's sockets, and
        tickets (whose single use Redis must vouch for) ask the client to retry later."""
        app = create_app(
            realtime_settings(database_url, tmp_root, redis_url="redis://127.0.0.1:1/0"),
            db=database,
        )
        async with (
            LiveServer(app) as server,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rapport.test"
            ) as client,
        ):
            admin = await register(client)
            async with open_ws(server.ws_url, admin.token) as ws:
                await connected(ws)
                contact_id = await create_contact(client, admin)
                await app.state.background.drain()
                assert (await until(ws, "contact.created"))[-1]["data"]["id"] == contact_id
            r = await client.post("/api/v1/realtime/tickets", headers=admin.headers)
            assert r.status_code == 201, r.text
            ticket = r.json()["data"]["ticket"]
            code, _ = await refused(f"{server.ws_url}?ticket={ticket}")
        assert code == 1013
