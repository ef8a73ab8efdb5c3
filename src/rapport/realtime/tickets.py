"""Single-use tickets for `GET /api/v1/ws?ticket=...`: browsers cannot set headers on a WebSocket,
and a long-lived token in a URL ends up in proxy logs; a ticket lives ~30 s and works once.

A ticket is signed, not stored: an HMAC-signed token (pyjwt, HS256) naming the user, the credential
(session or API key) and the workspace, so any API process can check it with the shared secret.
Single use is a record of spent ticket ids: in Redis when configured (`SET NX`, shared by every
process, expiring with the ticket), else in this process (one process is what runs without Redis).

The signing key is derived from the secret key for this purpose only, so a ticket is never
accepted as an access token, nor an access token as a ticket. Redemption re-reads the credential
(`repository.py`): a ticket of a session that has logged out, or of a deactivated user, is refused.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.config import Settings

TICKET_TYPE = "rapport.realtime.ticket"
ALGORITHM = "HS256"
USED = "The ticket was already used; ask for a new one."


class TicketInvalid(Exception):
    """Malformed, not ours, expired or already used (the message says which, for the client)."""

    def __init__(self, message: str = "The ticket is not valid.") -> None:
        super().__init__(message)
        self.message = message


class TicketStoreUnavailable(Exception):
    """Redis is configured but unreachable: single use cannot be checked, so the ticket is refused
    (the client may retry)."""


@dataclass(frozen=True)
class TicketClaims:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    credential: str
    credential_id: uuid.UUID
    ticket_id: str
    expires_at: float  # unix seconds


def _signing_key(secret: str) -> tuple[str, str]:
    key = hashlib.sha256(("rapport-realtime-ticket:" + secret).encode()).hexdigest()
    return hashlib.sha256(key.encode()).hexdigest()[:16], key


class TicketBook:
    def __init__(
        self,
        settings: Settings,
        secrets: list[str],
        redis: Redis | None = None,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ttl = settings.realtime_ticket_seconds
        self.redis = redis
        self.prefix = f"{settings.redis_key_prefix}realtime:ticket:"
        keys = [_signing_key(s) for s in secrets]  # the last one signs
        self.current_kid, _ = keys[-1]
        self._keys = dict(keys)
        self.now = now
        self._spent: dict[str, float] = {}  # ticket id → expiry, when Redis is not configured

    def issue(self, principal: Principal) -> tuple[str, datetime]:
        issued = self.now()
        expires = issued + timedelta(seconds=self.ttl)
        claims = {
            "typ": TICKET_TYPE,
            "sub": str(principal.user_id),
            "wid": str(principal.workspace_id),
            "cred": principal.credential,
            "cid": str(principal.credential_id),
            "jti": uuid.uuid4().hex,
            "iat": issued.timestamp(),
            "exp": expires.timestamp(),
        }
        token = jwt.encode(
            claims,
            self._keys[self.current_kid],
            algorithm=ALGORITHM,
            headers={"kid": self.current_kid},
        )
        return token, expires

    def verify(self, ticket: str) -> TicketClaims:
        """Signature, type and expiry (on this book's clock); not yet spent-or-not."""
        try:
            kid = jwt.get_unverified_header(ticket).get("kid", "")
            key = self._keys.get(kid)
            if key is None:
                raise TicketInvalid()
            claims = jwt.decode(
                ticket,
                key,
                algorithms=[ALGORITHM],
                # Times are checked below, on this book's clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "jti", "sub", "wid", "cid"],
                },
            )
            if claims.get("typ") != TICKET_TYPE or claims.get("cred") not in ("user", "api_key"):
                raise TicketInvalid()
            parsed = TicketClaims(
                user_id=uuid.UUID(claims["sub"]),
                workspace_id=uuid.UUID(claims["wid"]),
                credential=claims["cred"],
                credential_id=uuid.UUID(claims["cid"]),
                ticket_id=str(claims["jti"])[:64],
                expires_at=float(claims["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TicketInvalid() from exc
        if parsed.expires_at <= self.now().timestamp():
            raise TicketInvalid("The ticket has expired; ask for a new one.")
        return parsed

    async def redeem(self, ticket: str) -> TicketClaims:
        """Verify and spend: the second redemption of a ticket, in any process, is refused."""
        claims = self.verify(ticket)
        remaining = claims.expires_at - self.now().timestamp()
        if self.redis is not None:
            try:
                fresh = await self.redis.set(
                    self.prefix + claims.ticket_id,
                    b"1",
                    nx=True,
                    px=max(1000, int(remaining * 1000) + 1000),
                )
            except (RedisError, OSError) as exc:
                raise TicketStoreUnavailable(str(exc)) from exc
            if not fresh:
                raise TicketInvalid(USED)
            return claims
        self._forget_expired()
        if claims.ticket_id in self._spent:
            raise TicketInvalid(USED)
        self._spent[claims.ticket_id] = claims.expires_at
        return claims

    def _forget_expired(self) -> None:
        """Spent ids only matter until their ticket expires; sweep when the record grows."""
        if len(self._spent) < 1024:
            return
        now = self.now().timestamp()
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}
