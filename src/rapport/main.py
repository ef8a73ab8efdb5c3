"""create_app(): settings → database → security → middlewares → exception handlers → routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from rapport import __version__
from rapport.api import include_api
from rapport.core.auth import PrincipalCache, oauth2_scheme
from rapport.core.background import Background
from rapport.core.config import Settings, get_settings
from rapport.core.db import Database
from rapport.core.dberrors import is_unavailable
from rapport.core.envelope import EnvelopeResponse, error_response
from rapport.core.errors import AppError
from rapport.core.http import (
    Activity,
    BodyMiddleware,
    RequestContextMiddleware,
    UnitOfWorkMiddleware,
)
from rapport.core.idempotency import IdempotencyMiddleware, IdempotencyStore
from rapport.core.observability import configure_logging, log
from rapport.core.ratelimit import RateLimiter, RateLimitMiddleware
from rapport.core.routing import document_security, include, install_route_index
from rapport.core.security import KeyRing, PasswordHasher
from rapport.identity.authenticator import IdentityAuthenticator
from rapport.identity.service import Security
from rapport.ops.router import router as ops_router
from rapport.realtime import install as install_realtime

HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("not_authenticated", "Missing or invalid credentials."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "No resource at this path."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
}

INVALID_VALUE = "A value is out of range or of the wrong type."
INTERNAL = "Something went wrong on our side; it has been logged."

DESCRIPTION = """
Rapport is a self-hostable CRM API. Every response is an envelope
`{"success", "data", "error", "meta"}`; lists page with opaque cursors; writes accept
`Idempotency-Key`; single records carry an `ETag` that `If-Match` checks.

Authenticate with `Authorization: Bearer <token>`: an access token from `POST /api/v1/auth/login`,
or an API key. The **Authorize** button uses the OAuth2 password form at `/api/v1/auth/token`.
"""


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> EnvelopeResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> EnvelopeResponse:
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        details = [
            {"field": _field(err.get("loc", ())), "reason": str(err.get("msg", ""))[:300]}
            for err in errors[:50]
        ]
        return error_response(422, "validation_error", "The request is not valid.", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> EnvelopeResponse:
        code, message = HTTP_CODES.get(exc.status_code, ("http_error", "The request failed."))
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            code, message = "malformed_json", "The body could not be read as JSON."
        elif exc.status_code == 400 and isinstance(exc.detail, str):
            message = exc.detail
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(PydanticValidationError)
    async def model_error(_: Request, exc: PydanticValidationError) -> EnvelopeResponse:
        # A model built inside a route (not from the request itself) still describes bad input.
        details = [
            {"field": _field(err.get("loc", ())), "reason": str(err.get("msg", ""))[:300]}
            for err in exc.errors()[:50]
        ]
        return error_response(422, "validation_error", "The request is not valid.", details)

    @app.exception_handler(StatementError)
    async def bind_error(_: Request, exc: StatementError) -> EnvelopeResponse:
        # A value a column type could not convert (e.g. a datetime past year 9999 once in UTC).
        if isinstance(exc.orig, OverflowError | ValueError | TypeError):
            return error_response(422, "invalid_value", INVALID_VALUE)
        log.error("statement_error", error_type=type(exc.orig).__name__)
        return error_response(500, "internal_error", INTERNAL)

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> EnvelopeResponse:
        # Never the database's own text: it can reveal schema and data.
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if isinstance(exc, IntegrityError) or sqlstate.startswith("23"):
            return error_response(409, "conflict", "The change conflicts with existing data.")
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            # SQLSTATE class 22, data exceptions: out of range, NUL in text, bad encoding...
            return error_response(422, "invalid_value", INVALID_VALUE)
        if is_unavailable(exc):  # lost connection, shutting down, cannot connect now
            return error_response(
                503, "database_unavailable", "The database is unavailable; try again shortly."
            )
        log.error("database_error", error_type=type(exc.orig).__name__)
        return error_response(500, "internal_error", INTERNAL)

    @app.exception_handler(PoolTimeoutError)
    async def pool_timeout(_: Request, __: PoolTimeoutError) -> EnvelopeResponse:
        return error_response(503, "database_busy", "The database is busy; try again shortly.")

    @app.exception_handler(OSError)
    async def os_error(_: Request, __: OSError) -> EnvelopeResponse:
        return error_response(
            503, "service_unavailable", "A service the API depends on is unreachable."
        )


def operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    db = db or Database(settings)
    keyring = KeyRing(
        settings.resolved_secret_key(), settings.previous_secret_keys, settings.access_token_minutes
    )
    limiter = RateLimiter(settings)
    activity = Activity()  # requests in flight: the relay leaves batches to idle processes
    background = Background(settings, db, activity=activity)
    security = Security(
        settings=settings,
        keyring=keyring,
        hasher=PasswordHasher(settings),
        cache=PrincipalCache(settings.auth_cache_seconds),
        limiter=limiter,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            from rapport.migrations.runner import upgrade

            await upgrade(db.url)
        if settings.background:
            await background.start()
        await realtime.start()
        gc.collect()
        gc.freeze()  # start-up objects leave the collector's working set: shorter GC pauses
        yield
        await realtime.stop()
        if settings.background:
            await background.stop()
        await db.dispose()

    middleware = [
        Middleware(
            RequestContextMiddleware,
            metrics=settings.metrics_enabled,
            access_log=settings.access_log,
            activity=activity,
        ),
        Middleware(RateLimitMiddleware, limiter=limiter, keyring=keyring),
        Middleware(BodyMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(IdempotencyMiddleware, store=IdempotencyStore(db, settings)),
        Middleware(UnitOfWorkMiddleware, db=db),
    ]
    if settings.cors_origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "If-Match",
                    "X-Request-ID",
                ],
                expose_headers=[
                    "ETag",
                    "X-Request-ID",
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                    "Retry-After",
                    "Idempotent-Replayed",
                ],
            ),
        )

    app = FastAPI(
        title="Rapport API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        lifespan=lifespan,
        middleware=middleware,
        generate_unique_id_function=operation_id,
        swagger_ui_parameters={"persistAuthorization": True},
        # FastAPI's own OpenTelemetry hooks look up the global providers on every request; the
        # API reports through its Prometheus metrics and structured logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.limiter = limiter
    app.state.background = background
    app.state.activity = activity
    app.state.security = security
    app.state.authenticator = IdentityAuthenticator(db, security)
    realtime = install_realtime(app)
    install_exception_handlers(app)
    include(app.router, ops_router)
    include_api(app.router)
    document_security(app, oauth2_scheme)
    install_route_index(app)
    return app
