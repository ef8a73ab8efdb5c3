"""Rate limits with the `limits` library: in memory by default, in Redis when configured (so the
limits hold across replicas). Every metered response carries X-RateLimit-Limit/-Remaining/-Reset;
a 429 also carries Retry-After.

Who is counted: API keys by key, users by user id (the JWT's signature is verified here, and the
verified claims are reused by authentication), anyone else by IP. The auth routes are counted per IP
with their own, lower limit; login also counts attempts per account (see the identity service).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.core.config import Settings
from rapport.core.envelope import error_response
from rapport.core.http import UNMETERED, header
from rapport.core.observability import log
from rapport.core.security import API_KEY_PREFIX, KeyRing, TokenError, bearer_token, sha256_hex

AUTH_PATHS = frozenset(
    {"/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/refresh"}
)
UNLIMITED_PREFIXES = ("/docs", "/redoc", "/api/openapi.json")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix seconds, exact

    @property
    def reset(self) -> int:
        return math.ceil(self.reset_at)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.default = parse(settings.rate_limit_default)
        self.auth = parse(settings.rate_limit_auth)
        self.login_account = parse(settings.rate_limit_login_account)
        self.fallback_mode = settings.rate_limit_redis_fallback
        self.memory = MemoryStorage()
        self.storage: Storage = self.memory
        self.uses_redis = bool(settings.redis_url)
        if self.uses_redis:
            uri = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self.storage = RedisStorage(
                uri,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=f"{settings.redis_key_prefix}limits",
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
        self._primary = FixedWindowRateLimiter(self.storage)
        self._fallback = FixedWindowRateLimiter(self.memory)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Decision | None:
        """Count one request; None means "not limited" (disabled, or Redis down in open mode)."""
        if not self.enabled:
            return None
        try:
            return await self._hit(self._primary, item, identifiers)
        except StorageError as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc), mode=self.fallback_mode)
            if self.fallback_mode == "memory":
                return await self._hit(self._fallback, item, identifiers)
            if self.fallback_mode == "closed":
                return Decision(False, item.amount, 0, time.time() + 1)
            return None

    @staticmethod
    async def _hit(
        limiter: FixedWindowRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
    ) -> Decision:
        allowed = await limiter.hit(item, *identifiers)
        stats = await limiter.get_window_stats(item, *identifiers)
        return Decision(allowed, item.amount, stats.remaining, stats.reset_time)

    async def check_storage(self) -> bool:
        try:
            return bool(await self.storage.check())
        except StorageError:
            return False

    async def reset(self) -> None:
        await self.memory.reset()


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, keyring: KeyRing) -> None:
        self.app = app
        self.limiter = limiter
        self.keyring = keyring

    def _identify(self, scope: Scope) -> tuple[RateLimitItem, str]:
        path = scope["path"]
        if path in AUTH_PATHS:
            return self.limiter.auth, f"auth:ip:{client_ip(scope)}"
        token = bearer_token(header(scope, b"authorization"))
        if token:
            if token.startswith(API_KEY_PREFIX):
                return self.limiter.default, f"key:{sha256_hex(token)[:32]}"
            try:
                claims = self.keyring.decode_access(token)
            except TokenError:
                pass
            else:
                scope.setdefault("state", {})["claims"] = claims
                return self.limiter.default, f"user:{claims.user_id}"
        return self.limiter.default, f"ip:{client_ip(scope)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in UNMETERED
            or scope["path"].startswith(UNLIMITED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        item, identity = self._identify(scope)
        decision = await self.limiter.hit(item, identity)
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = decision.headers()
        if not decision.allowed:
            response = error_response(
                429,
                "rate_limited",
                f"Rate limit of {item} exceeded; retry in {decision.retry_after} s.",
            )
            response.raw_headers.extend(extra)
            await response(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)
