"""Passwords (argon2id), JWT access tokens signed with a rotating key ring, opaque secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from rapport.core.clock import utcnow
from rapport.core.config import Settings

JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "rpk_"


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_cost_kib,
                ),
            )
        )
        # Verifying against a real hash for unknown users keeps login timing uniform.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify(self, password: str, hashed: str | None) -> bool:
        if hashed is None:
            self._hash.verify(password, self._dummy)
            return False
        return self._hash.verify(password, hashed)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    jti: str
    expires_at: int = 0  # unix seconds


class TokenError(Exception):
    """The token is malformed, expired, or not signed by any key we know."""


class KeyRing:
    """Signs with the current secret; verifies with the current and the previous ones.

    The `kid` header names the key, so rotating RAPPORT_SECRET_KEY (moving the old value to
    RAPPORT_PREVIOUS_SECRET_KEYS) keeps issued tokens valid until they expire.
    """

    def __init__(
        self, current: str, previous: list[str], access_minutes: int, cache_size: int = 10_000
    ) -> None:
        self.current_kid = self._kid(current)
        self._keys = {self._kid(secret): secret for secret in [*previous, current]}
        self.access_ttl = timedelta(minutes=access_minutes)
        # Verified tokens, so a client's next request skips parsing and HMAC (PyJWT costs tens
        # of microseconds a token). Expiry is still checked on every use.
        self._verified: dict[str, AccessClaims] = {}
        self._cache_size = cache_size

    @staticmethod
    def _kid(secret: str) -> str:
        return sha256_hex("rapport-jwt:" + secret)[:16]

    def issue_access(
        self, *, user_id: uuid.UUID, workspace_id: uuid.UUID, role: str, session_id: uuid.UUID
    ) -> str:
        now = utcnow()
        claims = {
            "sub": str(user_id),
            "wid": str(workspace_id),
            "role": role,
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims,
            self._keys[self.current_kid],
            algorithm=JWT_ALGORITHM,
            headers={"kid": self.current_kid},
        )

    def decode_access(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at > time.time():  # the clock PyJWT checks `exp` against
                return claims
            del self._verified[token]
            raise TokenError("Signature has expired")
        claims = self._decode(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            secret = self._keys.get(header.get("kid", ""))
            if secret is None:
                raise TokenError("unknown signing key")
            payload: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp", "iat", "sub", "wid", "sid", "jti"]},
            )
            return AccessClaims(
                user_id=uuid.UUID(payload["sub"]),
                workspace_id=uuid.UUID(payload["wid"]),
                role=str(payload.get("role", "")),
                session_id=uuid.UUID(payload["sid"]),
                jti=str(payload["jti"]),
                expires_at=int(payload["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TokenError(str(exc)) from exc


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
