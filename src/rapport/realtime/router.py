"""`POST /realtime/tickets` (any role) and the `GET /ws` WebSocket itself (see `stream.py`).

WebSocket routes are not part of OpenAPI; the ticket route's description documents the stream.
"""

from __future__ import annotations

import math

from fastapi import Request, WebSocket

from rapport.core.auth import PrincipalDep
from rapport.core.envelope import Envelope, EnvelopeResponse, ok
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter
from rapport.realtime.schemas import TicketRead

router = ContractRouter(tags=["realtime"])

STREAM_PATH = "/api/v1/ws"
STREAM_DOC = """
A single-use ticket (valid ~30 s) for the realtime stream, for clients that cannot send headers on
a WebSocket (browsers): connect to `GET /api/v1/ws?ticket=...`. The ticket is bound to the caller's
credential and workspace; logging out or revoking the key before it is used makes it useless.

**The stream** (`GET /api/v1/ws`, WebSocket) authenticates by `Authorization: Bearer <token or API
key>`, by the subprotocols `["bearer", "<token>"]` (answered with `bearer`), or by `?ticket=`. A
refused connection is closed with code 4401 (unauthenticated), 4429 (rate limited) or 1013 (try
again later; also sent to a client too slow to keep up).

Server messages: `{"type": "connected"}`, then each event of the workspace the caller may see as
`{"id", "type", "timestamp", "data", "actor"}`, plus `heartbeat` (after 25 s without messages,
`RAPPORT_REALTIME_HEARTBEAT_SECONDS`), `pong`, `subscribed`/`unsubscribed` and `error`
(`data.code`, `data.message`). Client messages:
`{"action": "subscribe", "types": ["contact.*", "lead.created"]}` (the first one narrows the
default, everything, to those types), `{"action": "unsubscribe", "types": [...]}`,
`{"action": "ping"}`. `notification.*` events reach only their user; users, API keys, invitations,
webhooks, integrations and audit events reach admins only.
"""


@router.post(
    "/realtime/tickets",
    name="realtime-tickets-create",
    summary="Get a single-use ticket for the WebSocket stream (GET /api/v1/ws)",
    description=STREAM_DOC,
    status_code=201,
    response_model=Envelope[TicketRead],
    responses=errors(),
)
async def create_ticket(request: Request, principal: PrincipalDep) -> EnvelopeResponse:
    tickets = request.app.state.realtime.tickets
    ticket, expires_at = tickets.issue(principal)
    data = {
        "ticket": ticket,
        "expires_at": expires_at,
        "expires_in": math.floor(tickets.ttl),
        "url": f"{STREAM_PATH}?ticket={ticket}",
    }
    return ok(data, status_code=201, headers={"Cache-Control": "no-store"})


@router.websocket("/ws", name="realtime-stream")
async def stream(websocket: WebSocket) -> None:
    await websocket.app.state.realtime.stream.serve(websocket)
