"""One WebSocket of `GET /api/v1/ws`: the handshake, then a receive loop and a send loop.

Authentication, in this order (the first credential present decides; a bad one is never passed
over for the next):
1. `Authorization: Bearer <access token or API key>`;
2. the `Sec-WebSocket-Protocol` header: subprotocols `["bearer", "<token>"]` (browsers cannot set
   headers); the server answers with the subprotocol `bearer`;
3. `?ticket=` from `POST /api/v1/realtime/tickets` (single use, ~30 s).
A refused handshake is accepted and then closed at once with a close code the client can read
(4401 unauthenticated, 4429 rate limited, 1013 try again later), never a bare HTTP 403: browsers
hide the status of a refused upgrade, but show close codes. Each handshake counts against the
caller's HTTP rate limit (user, API key, else IP), like a request.

Server → client (text frames, JSON): `connected` once; events
`{"id", "type", "timestamp", "data", "actor"}`; `subscribed` / `unsubscribed` (the resulting
subscription); `pong`; `heartbeat` whenever nothing else was sent for `realtime_heartbeat_seconds`;
`error` (`data.code`, `data.message`) for a message the server could not use, which never closes the
connection. Client → server: `{"action": "subscribe"|"unsubscribe", "types": [...]}`,
`{"action": "ping"}`.

Only the send loop writes to the socket, in batches of up to 64 queued messages. A batch that
takes longer than `realtime_send_timeout_seconds` means the peer is gone: the connection ends. Every
`realtime_recheck_seconds` the credential is read again: revoked, expired or deactivated closes with
4401; a role change applies to what the connection receives from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, cast

import orjson
from starlette.requests import Request
from starlette.websockets import WebSocket

from rapport.core.auth import Authenticator, Principal
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.core.envelope import dumps
from rapport.core.errors import Unauthorized
from rapport.core.observability import log
from rapport.core.ratelimit import RateLimiter, client_ip
from rapport.core.security import API_KEY_PREFIX, KeyRing, TokenError, bearer_token, sha256_hex
from rapport.realtime.audience import MAX_PATTERNS, TYPE_PATTERN
from rapport.realtime.hub import (
    INTERNAL,
    RATE_LIMITED,
    TRY_AGAIN_LATER,
    UNAUTHORIZED,
    Connection,
    Hub,
)
from rapport.realtime.repository import CredentialRepository
from rapport.realtime.tickets import TicketBook, TicketInvalid, TicketStoreUnavailable

BEARER = "bearer"
MAX_CLIENT_MESSAGE = 16 * 1024
SEND_BATCH = 64  # messages written under one send deadline
ACTIONS = "subscribe, unsubscribe or ping"


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _now() -> str:
    return utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(type_: str, data: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"type": type_, "timestamp": _now()}
    if data is not None:
        body["data"] = data
    return dumps(body).decode()


def error(code: str, text: str) -> str:
    return message("error", {"code": code, "message": text})


def _reason(text: str) -> str:
    """Close reasons are limited to 123 bytes of UTF-8."""
    return text.encode()[:123].decode(errors="ignore")


class Stream:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        hub: Hub,
        tickets: TicketBook,
        authenticator: Authenticator,
        limiter: RateLimiter,
        keyring: KeyRing,
    ) -> None:
        self.settings = settings
        self.db = db
        self.hub = hub
        self.tickets = tickets
        self.authenticator = authenticator
        self.limiter = limiter
        self.keyring = keyring

    async def serve(self, websocket: WebSocket) -> None:
        offered = list(websocket.scope.get("subprotocols") or ())
        subprotocol = BEARER if BEARER in offered else None
        try:
            principal = await self._handshake(websocket, offered)
        except Refused as refused:
            await self._refuse(websocket, subprotocol, refused.code, refused.reason)
            return
        except Exception:
            log.exception("realtime_handshake_failed")
            await self._refuse(websocket, subprotocol, INTERNAL, "Internal error; retry shortly.")
            return
        try:
            await websocket.accept(subprotocol=subprotocol)
        except Exception:  # noqa: BLE001 - the client left during the handshake
            return
        connection = Connection(principal, self.settings.realtime_send_queue_size)
        self.hub.add(connection)
        try:
            connection.offer(
                message(
                    "connected",
                    {
                        "workspace_id": str(principal.workspace_id),
                        "user_id": str(principal.user_id),
                        "role": principal.role.value,
                        "credential": principal.credential,
                        "heartbeat_seconds": self.settings.realtime_heartbeat_seconds,
                        **connection.subscription.describe(),
                    },
                )
            )
            await self._run(websocket, connection)
        finally:
            self.hub.remove(connection)
            connection.done.set()

    # -- handshake -----------------------------------------------------------------------------
    async def _handshake(self, websocket: WebSocket, offered: list[str]) -> Principal:
        authorization = websocket.headers.get("authorization")
        token = bearer_token(authorization)
        if authorization and token is None:
            raise Refused(UNAUTHORIZED, "Send the Authorization header as 'Bearer <token>'.")
        if token is None and BEARER in offered:
            position = offered.index(BEARER) + 1
            if position >= len(offered):
                raise Refused(UNAUTHORIZED, "Send the token as the subprotocol after 'bearer'.")
            token = offered[position]
        ticket = websocket.query_params.get("ticket")

        decision = await self.limiter.hit(self.limiter.default, self._identity(websocket, token))
        if decision is not None and not decision.allowed:
            raise Refused(RATE_LIMITED, f"Rate limited: retry in {decision.retry_after} s.")

        if token is not None:
            try:
                # The authenticator reads headers, scope and state: a WebSocket has them too.
                return await self.authenticator.authenticate(cast(Request, websocket), token)
            except Unauthorized as exc:
                raise Refused(UNAUTHORIZED, exc.message) from exc
        if ticket:
            return await self._redeem(ticket)
        raise Refused(
            UNAUTHORIZED,
            "Authenticate with Authorization: Bearer, the 'bearer' subprotocol or ?ticket=.",
        )

    def _identity(self, websocket: WebSocket, token: str | None) -> str:
        """The rate-limit key HTTP requests of the same caller use (`core/ratelimit.py`)."""
        if token:
            if token.startswith(API_KEY_PREFIX):
                return f"key:{sha256_hex(token)[:32]}"
            try:
                claims = self.keyring.decode_access(token)
            except TokenError:
                pass
            else:
                websocket.scope.setdefault("state", {})["claims"] = claims  # the authenticator's
                return f"user:{claims.user_id}"
        return f"ip:{client_ip(websocket.scope)}"

    async def _redeem(self, ticket: str) -> Principal:
        try:
            claims = await self.tickets.redeem(ticket)
        except TicketInvalid as exc:
            raise Refused(UNAUTHORIZED, exc.message) from exc
        except TicketStoreUnavailable as exc:
            log.warning("realtime_ticket_store_unavailable", error=str(exc)[:300])
            raise Refused(TRY_AGAIN_LATER, "Tickets cannot be checked now; retry shortly.") from exc
        async with self.db.read_sessions() as session:
            role = await CredentialRepository(session, claims.workspace_id).current_role(
                claims.user_id, claims.credential, claims.credential_id
            )
        if role is None:
            raise Refused(UNAUTHORIZED, "The ticket's credential is no longer valid.")
        return Principal(
            user_id=claims.user_id,
            workspace_id=claims.workspace_id,
            role=role,
            credential=claims.credential,
            credential_id=claims.credential_id,
        )

    @staticmethod
    async def _refuse(
        websocket: WebSocket, subprotocol: str | None, code: int, reason: str
    ) -> None:
        # Echo the subprotocol the client offered: browsers fail a handshake whose answer lacks
        # it, and would then hide the close code that says why.
        with contextlib.suppress(Exception):
            await websocket.accept(subprotocol=subprotocol)
            await websocket.close(code, _reason(reason))

    # -- the connection ------------------------------------------------------------------------
    async def _run(self, websocket: WebSocket, connection: Connection) -> None:
        receiver = asyncio.create_task(self._receive(websocket, connection))
        sender = asyncio.create_task(self._send(websocket, connection))
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, sender):
                task.cancel()
            await asyncio.gather(receiver, sender, return_exceptions=True)
        failed = [t.exception() for t in (receiver, sender) if t.done() and not t.cancelled()]
        for exc in failed:
            if exc is not None:
                log.warning("realtime_connection_failed", error=repr(exc)[:500])
        if receiver.done() and not receiver.cancelled():
            return  # the client went away (or reading failed): nothing more to say
        if not sender.done() or sender.cancelled():
            return
        close = (INTERNAL, "Internal error.") if sender.exception() else sender.result()
        if close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(close[0], _reason(close[1])),
                    self.settings.realtime_send_timeout_seconds,
                )

    async def _receive(self, websocket: WebSocket, connection: Connection) -> None:
        """Read client messages until the client disconnects."""
        while True:
            incoming = await websocket.receive()
            kind = incoming["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            text = incoming.get("text")
            if text is None:
                connection.offer(error("binary_not_supported", "Send messages as JSON text."))
                continue
            connection.offer(self.handle(connection, text))

    def handle(self, connection: Connection, text: str) -> str:
        """One client message → the reply. Never raises: bad input is an `error` message."""
        if len(text) > MAX_CLIENT_MESSAGE:
            return error("message_too_large", f"Messages are at most {MAX_CLIENT_MESSAGE} bytes.")
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            return error("invalid_json", "The message is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return error("invalid_message", f'Send a JSON object with an "action": {ACTIONS}.')
        action = body["action"]
        if action == "ping":
            return message("pong")
        if action not in ("subscribe", "unsubscribe"):
            return error("unknown_action", f"Unknown action {action[:50]!r}: use {ACTIONS}.")
        types = body.get("types")
        if (
            not isinstance(types, list)
            or not 1 <= len(types) <= MAX_PATTERNS
            or not all(isinstance(t, str) and TYPE_PATTERN.match(t) for t in types)
        ):
            return error(
                "invalid_types",
                f'"types" is a list of 1 to {MAX_PATTERNS} event types or patterns, '
                'like ["contact.*", "lead.created"].',
            )
        try:
            if action == "subscribe":
                connection.subscription.subscribe(types)
            else:
                connection.subscription.unsubscribe(types)
        except ValueError as exc:
            return error("too_many_types", str(exc))
        return message(f"{action}d", connection.subscription.describe())

    async def _send(self, websocket: WebSocket, connection: Connection) -> tuple[int, str] | None:
        """Write queued messages and heartbeats; re-check the credential now and then. Returns
        the close to send, or None when the socket is dead."""
        loop = asyncio.get_running_loop()
        heartbeat = self.settings.realtime_heartbeat_seconds
        recheck = self.settings.realtime_recheck_seconds
        last_sent = loop.time()
        recheck_at = last_sent + recheck
        while True:
            if connection.closing is not None:
                return connection.closing
            if not connection.queue:
                wait = min(last_sent + heartbeat, recheck_at) - loop.time()
                if wait > 0:
                    connection.ready.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(connection.ready.wait(), wait)
                    continue
            now = loop.time()
            if now >= recheck_at:
                recheck_at = now + recheck
                if not await self._still_valid(connection):
                    return UNAUTHORIZED, "The credential was revoked, expired or deactivated."
                continue
            if connection.queue:
                batch = SEND_BATCH
            elif now - last_sent >= heartbeat:
                connection.queue.append(message("heartbeat"))
                batch = 1
            else:
                continue
            try:
                # One deadline per batch (cheaper than one per message): a peer that cannot take
                # a batch within the send timeout is gone, or as good as gone.
                async with asyncio.timeout(self.settings.realtime_send_timeout_seconds):
                    while batch and connection.queue and connection.closing is None:
                        await websocket.send_text(connection.queue.popleft())
                        batch -= 1
            except TimeoutError:
                log.info("realtime_dead_socket", user_id=str(connection.principal.user_id))
                return None
            except Exception:  # noqa: BLE001 - the client went away mid-send
                return None
            last_sent = loop.time()

    async def _still_valid(self, connection: Connection) -> bool:
        principal = connection.principal
        try:
            async with self.db.read_sessions() as session:
                role = await CredentialRepository(session, principal.workspace_id).current_role(
                    principal.user_id, principal.credential, principal.credential_id
                )
        except Exception as exc:  # noqa: BLE001 - a database blip must not drop every socket
            log.warning("realtime_recheck_failed", error=repr(exc)[:300])
            return True
        if role is None:
            return False
        if role is not principal.role:
            connection.principal = dataclasses.replace(principal, role=role)
        return True
