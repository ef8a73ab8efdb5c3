"""`POST /api/v1/realtime/tickets` and `GET /api/v1/ws?ticket=`: a ticket connects once, for ~30 s,
as the credential that asked for it; it is refused once spent, expired, forged, or when its
credential has ended (logout, revoked key) in between."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import jwt

from rapport.core.auth import Principal, Role
from rapport.realtime.tickets import TicketBook
from tests.conftest import base_settings
from tests.factories import create_api_key, register
from tests.realtime.conftest import close_code, connected, open_ws, refused

TICKETS = "/api/v1/realtime/tickets"


async def new_ticket(client, headers: dict[str, str]) -> dict:  # noqa: ANN001
    r = await client.post(TICKETS, headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()["data"]


def with_ticket(live, ticket: str) -> str:  # noqa: ANN001
    return f"{live.ws_url}?ticket={quote(ticket)}"


class TestTickets:
    async def test_a_ticket_connects_once(self, rt_client, live):
        admin = await register(rt_client)
        data = await new_ticket(rt_client, admin.headers)
        assert data["expires_in"] == 30
        assert data["url"] == f"/api/v1/ws?ticket={data['ticket']}"
        async with open_ws(f"ws://127.0.0.1:{live.port}{data['url']}") as ws:
            hello = (await connected(ws))["data"]
        assert (hello["user_id"], hello["workspace_id"]) == (admin.user["id"], admin.workspace_id)
        assert (hello["role"], hello["credential"]) == ("admin", "user")
        code, reason = await refused(with_ticket(live, data["ticket"]))
        assert code == 4401 and "already used" in reason

    async def test_a_ticket_expires(self, rt_client, live, ticket_clock):
        admin = await register(rt_client)
        fresh = await new_ticket(rt_client, admin.headers)
        stale = await new_ticket(rt_client, admin.headers)
        ticket_clock.advance(seconds=29)
        async with open_ws(with_ticket(live, fresh["ticket"])) as ws:
            await connected(ws)
        ticket_clock.advance(seconds=2)
        code, reason = await refused(with_ticket(live, stale["ticket"]))
        assert code == 4401 and "expired" in reason

    async def test_an_api_key_ticket_acts_as_the_key(self, rt_client, live):
        admin = await register(rt_client)
        key = await create_api_key(rt_client, admin, role="member")
        data = await new_ticket(rt_client, {"Authorization": f"Bearer {key['key']}"})
        async with open_ws(with_ticket(live, data["ticket"])) as ws:
            hello = (await connected(ws))["data"]
        assert (hello["role"], hello["credential"]) == ("member", "api_key")

    async def test_a_ticket_dies_with_its_credential(self, rt_client, live):
        admin = await register(rt_client)
        key = await create_api_key(rt_client, admin)
        by_key = await new_ticket(rt_client, {"Authorization": f"Bearer {key['key']}"})
        by_session = await new_ticket(rt_client, admin.headers)
        r = await rt_client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin.headers)
        assert r.status_code == 200, r.text
        r = await rt_client.post("/api/v1/auth/logout", headers=admin.headers)
        assert r.status_code == 200, r.text
        for data in (by_key, by_session):
            code, reason = await refused(with_ticket(live, data["ticket"]))
            assert code == 4401 and "no longer valid" in reason

    async def test_forged_and_misused_tickets_are_refused(self, rt_client, live):
        admin = await register(rt_client)
        data = await new_ticket(rt_client, admin.headers)
        claims = jwt.decode(admin.token, options={"verify_signature": False})
        principal = Principal(
            user_id=uuid.UUID(claims["sub"]),
            workspace_id=uuid.UUID(claims["wid"]),
            role=Role.admin,
            credential="user",
            credential_id=uuid.UUID(claims["sid"]),
        )
        # Right claims, another server's secret.
        forged, _ = TicketBook(base_settings(), ["another-secret-" + "y" * 40]).issue(principal)
        head, body, signature = data["ticket"].split(".")
        tampered = f"{head}.{body}.{signature[::-1]}"
        for ticket in ("nonsense", forged, tampered, admin.token):  # a token is not a ticket
            assert await refused(with_ticket(live, ticket)) == (
                4401,
                "The ticket is not valid.",
            ), ticket
        # Nor is a ticket an access token, over HTTP or as the stream's bearer credential.
        r = await rt_client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {data['ticket']}"}
        )
        assert r.status_code == 401
        assert (await refused(live.ws_url, token=data["ticket"]))[0] == 4401
        async with open_ws(with_ticket(live, data["ticket"])) as ws:  # still unspent, still good
            await connected(ws)

    async def test_asking_for_a_ticket_needs_credentials(self, rt_client):
        r = await rt_client.post(TICKETS)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "not_authenticated"

    async def test_a_socket_opened_by_ticket_closes_when_its_session_ends(self, rt_client, live):
        admin = await register(rt_client)
        data = await new_ticket(rt_client, admin.headers)
        async with open_ws(with_ticket(live, data["ticket"])) as ws:
            await connected(ws)
            r = await rt_client.post("/api/v1/auth/logout", headers=admin.headers)
            assert r.status_code == 200, r.text
            assert (await close_code(ws))[0] == 4401
