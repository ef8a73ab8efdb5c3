"""Liveness, readiness and Prometheus metrics: public, for orchestrators and scrapers."""

from __future__ import annotations

from fastapi import Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.responses import Response

from rapport import __version__
from rapport.core.envelope import Envelope, EnvelopeResponse, ErrorEnvelope, error_response, ok
from rapport.core.observability import REGISTRY
from rapport.core.routing import PUBLIC, ContractRouter

router = ContractRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    database: str
    redis: str | None = None


@router.get(
    "/health",
    name="ops-health",
    summary="Liveness: the process answers",
    response_model=Envelope[Health],
    openapi_extra=PUBLIC,
)
async def health() -> EnvelopeResponse:
    return ok({"status": "ok", "version": __version__})


@router.get(
    "/ready",
    name="ops-ready",
    summary="Readiness: the database (and Redis, if configured) answer",
    response_model=Envelope[Readiness],
    openapi_extra=PUBLIC,
    responses={503: {"model": ErrorEnvelope, "description": "A dependency is down"}},
)
async def ready(request: Request) -> EnvelopeResponse:
    state = request.app.state
    try:
        await state.db.ping()
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return error_response(503, "database_unavailable", "The database is not reachable.")
    redis = None
    if state.settings.redis_url:
        redis = "ok" if await state.limiter.check_storage() else "unavailable"
        if redis != "ok":
            return error_response(503, "redis_unavailable", "Redis is not reachable.")
    return ok({"status": "ok", "database": "ok", "redis": redis})


@router.get(
    "/metrics",
    name="ops-metrics",
    summary="Prometheus metrics (text exposition format)",
    openapi_extra=PUBLIC,
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics"}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
