"""Pure ASGI middlewares of the contract: request context, body limits, unit of work.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request cost to a few function calls.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.core.db import Database, UnitOfWork
from rapport.core.dberrors import is_unavailable
from rapport.core.envelope import error_response, request_id_var
from rapport.core.ids import new_hex_id
from rapport.core.observability import LATENCY, REQUESTS, log
from rapport.core.routing import route_templates

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HTTP_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"})
UNMETERED = frozenset({"/health", "/ready", "/metrics"})
# Paths whose route reads its own body as a stream (large file uploads): the body middleware
# neither buffers nor bounds them; the route enforces its own limit. Its module adds the path.
STREAMED_PATHS: set[str] = set()


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class Activity:
    """Whether this process is serving HTTP requests: background work that another process
    could do as well (the outbox relay) leaves it to an idle one."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last = -1e9  # when the last request began or ended (monotonic)

    def busy(self, within: float) -> bool:
        """A request is in flight, or one began or ended less than `within` seconds ago."""
        return self.in_flight > 0 or time.monotonic() - self.last < within


class RequestContextMiddleware:
    """Request id (echoed or made), structured access log, metrics, and a last-resort 500."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: bool = True,
        access_log: bool = True,
        activity: Activity | None = None,
    ) -> None:
        self.app = app
        self.activity = activity or Activity()
        self.metrics = metrics
        self.access_log = access_log
        self.templates: dict[object, str] | None = None  # endpoint → full path, made on first use
        self.meters: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        request_id = incoming if incoming and REQUEST_ID_PATTERN.match(incoming) else new_hex_id()
        token = request_id_var.set(request_id)  # logs carry it (observability.add_request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode()
        status = 500
        started = False
        begin = time.perf_counter()
        activity = self.activity
        activity.in_flight += 1
        activity.last = time.monotonic()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", path=scope.get("path"))
            if not started:
                response = error_response(
                    500, "internal_error", "Something went wrong on our side; it has been logged."
                )
                await response(scope, receive, send_with_id)
        finally:
            activity.in_flight -= 1
            activity.last = time.monotonic()
            elapsed = time.perf_counter() - begin
            if self.templates is None:
                self.templates = route_templates(scope["app"])
            template = self.templates.get(scope.get("endpoint"), "unmatched")
            method = scope.get("method", "")
            if self.metrics and scope.get("path") not in UNMETERED:
                # A client may send any method token: the label set stays bounded.
                label = method if method in HTTP_METHODS else "other"
                key = (label, template, status)
                meters = self.meters.get(key)
                if meters is None:  # labels() takes a lock and builds its key on every call
                    meters = self.meters[key] = (
                        REQUESTS.labels(label, template, str(status)),
                        LATENCY.labels(label, template),
                    )
                meters[0].inc()
                meters[1].observe(elapsed)
            if status >= 500 or self.access_log:
                emit = log.error if status >= 500 else log.info
                emit(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            request_id_var.reset(token)


class BodyMiddleware:
    """Reads a request body once, bounded by `max_bytes` (413 past it), and replays it.

    The buffered body is also what the idempotency check fingerprints.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in READ_METHODS
            or scope["path"] in STREAMED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "bad_request", "Content-Length is not a number.")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        scope.setdefault("state", {})["body"] = body
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"The request body is larger than {self.max_bytes} bytes."
        )
        await response(scope, receive, send)


def commit_error(exc: Exception) -> tuple[int, str, str]:
    """What a failed commit means for the client; never the database's own text."""
    if isinstance(exc, IntegrityError):
        return 409, "conflict", "The change conflicts with existing data."
    if is_unavailable(exc):
        return 503, "database_unavailable", "The database is unavailable; try again shortly."
    raise exc


class UnitOfWorkMiddleware:
    """One unit of work per request: the session opens on first use.

    For writes the response is held back until the transaction has committed, so a client never
    sees a success for a change that did not persist; 4xx and 5xx responses roll back.
    """

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        write = scope["method"] not in READ_METHODS
        uow = UnitOfWork(self.db, write=write)
        scope.setdefault("state", {})["uow"] = uow
        try:
            if not write:
                await self.app(scope, receive, send)
                return
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            try:
                await self.app(scope, receive, hold)
            except Exception:
                await uow.rollback()
                raise
            start = held[0] if held else None
            status = start["status"] if start else 500
            if 200 <= status < 400:
                claim = scope["state"].get("idempotency")
                if claim is not None and start is not None and status < 300:
                    body = b"".join(m.get("body", b"") for m in held[1:])
                    headers = start.get("headers", [])

                    async def keep_response(session: AsyncSession) -> None:
                        await claim.complete(session, status, headers, body)

                    uow.before_commit.append(keep_response)
                try:
                    await uow.commit()
                    uow.committed = True
                except Exception as exc:  # noqa: BLE001 - mapped or re-raised in commit_error
                    await uow.rollback()
                    code, err, message = commit_error(exc)
                    await error_response(code, err, message)(scope, receive, send)
                    return
            else:
                await uow.rollback()
            for message in held:
                await send(message)
        finally:
            await uow.close()
