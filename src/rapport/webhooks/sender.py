"""Sending one webhook request: Standard Webhooks headers, the SSRF-guarded HTTP client, and an
outcome that is always returned, never raised (a receiver's failure is data for the log).

One `httpx.AsyncClient` per process, created on first use and kept in the background's shared
`services`, so connections to a receiver are reused across deliveries.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from rapport import __version__
from rapport.core.clock import utcnow
from rapport.core.config import Settings
from rapport.webhooks.ssrf import (
    GuardedTransport,
    TargetRefused,
    parse_url,
    refusal_of,
    scheme_problem,
)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_RESPONSE_BYTES = 2048
MAX_ERROR_CHARS = 1000
USER_AGENT = f"Rapport-Webhooks/{__version__}"
SERVICE_KEY = "webhooks.sender"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the Standard Webhooks secret format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def clean_text(value: str, limit: int) -> str:
    """Text safe to store on every backend (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "")[:limit]


def signature_header(secrets_: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """One `v1,<base64>` signature per secret, space-separated (the spec's form for rotation)."""
    return " ".join(
        Webhook(s).sign(msg_id=msg_id, timestamp=timestamp, data=body) for s in secrets_
    )


@dataclass
class AttemptResult:
    url: str
    request_headers: dict[str, str]
    response_status: int | None
    response_body: str | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class WebhookSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.webhooks_timeout_seconds
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(
                allow_private=settings.webhooks_allow_private,
                resolve_timeout=self.timeout,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            ),
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a redirect could lead anywhere: it is a failure, not a hop
            trust_env=False,  # no proxy from the environment: it would bypass the address checks
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def headers(self, msg_id: str, body: str, signing_secrets: list[str]) -> dict[str, str]:
        # The signature timestamp is the real time of sending, whatever clock schedules retries:
        # receivers compare it with their own clock to refuse replays.
        timestamp = utcnow()
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "accept-encoding": "identity",  # the logged response body stays readable
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature_header(signing_secrets, msg_id, timestamp, body),
        }

    async def send(
        self, url: str, msg_id: str, body: str, signing_secrets: list[str]
    ) -> AttemptResult:
        """POST the body; any 2xx is a success, anything else (or no answer) a failure."""
        headers = self.headers(msg_id, body, signing_secrets)
        try:
            parts = parse_url(url)
            problem = scheme_problem(parts, self.settings)
            if problem is not None:
                raise problem
        except TargetRefused as refused:
            return AttemptResult(url, headers, None, None, 0, f"{refused.code}: {refused.reason}")
        started = time.perf_counter()
        status: int | None = None
        snippet: str | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream(
                    "POST", url, content=body.encode(), headers=headers
                ) as response:
                    status = response.status_code
                    snippet = await _read_limited(response)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"timeout: no complete answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            refused = refusal_of(exc)
            if refused is not None:
                error = f"{refused.code}: {refused.reason}"
            elif isinstance(exc, httpx.TimeoutException):
                error = f"timeout: {type(exc).__name__}"
            else:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = int((time.perf_counter() - started) * 1000)
        return AttemptResult(
            url=url,
            request_headers=headers,
            response_status=status,
            response_body=snippet,
            latency_ms=latency,
            error=clean_text(error, MAX_ERROR_CHARS) if error else None,
        )


async def _read_limited(response: httpx.Response) -> str:
    """At most MAX_RESPONSE_BYTES of the body; the rest is never read (a receiver cannot make
    us download a large answer)."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept.extend(chunk)
        if len(kept) >= MAX_RESPONSE_BYTES:
            break
    return clean_text(
        bytes(kept[:MAX_RESPONSE_BYTES]).decode("utf-8", "ignore"), MAX_RESPONSE_BYTES
    )


def sender(services: dict[str, Any]) -> WebhookSender:
    """The process's sender, made on first use from the settings in `services`."""
    found = services.get(SERVICE_KEY)
    if found is None:
        found = services[SERVICE_KEY] = WebhookSender(services["settings"])
    return found
