"""Error responses each route documents in OpenAPI (`responses=errors(401, 404)`)."""

from __future__ import annotations

from typing import Any

from rapport.core.envelope import ErrorEnvelope

DESCRIPTIONS = {
    400: "Bad request (malformed JSON, bad header)",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated but not allowed",
    404: "Not found (also for other workspaces' ids)",
    409: "Conflict (uniqueness, state, idempotency key reuse)",
    412: "If-Match does not match the current ETag",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Rate limited (see Retry-After)",
}
COMMON = (401, 403, 422, 429)


def errors(*codes: int, common: bool = True) -> dict[int | str, dict[str, Any]]:
    wanted = sorted(set(codes) | (set(COMMON) if common else set()))
    return {code: {"model": ErrorEnvelope, "description": DESCRIPTIONS[code]} for code in wanted}
