"""Bulk writes: `{"items": [...]}` of up to 1000, atomic by default.

Atomic: every item is tried; if any fails, nothing is written and the error lists each failing
item by index. `atomic=false`: each item runs in its own savepoint, so the valid ones are written
and the response reports every item's outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.errors import AppError, BadRequest, ValidationFailed

MAX_ITEMS = 1000
T = TypeVar("T")


class BulkRequest(BaseModel):
    items: list[dict[str, Any]] = Field(
        max_length=MAX_ITEMS, description=f"1 to {MAX_ITEMS} items, each as for a single write."
    )


class BulkItemError(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class BulkItemResult(BaseModel, Generic[T]):
    index: int
    success: bool
    data: T | None = None
    error: BulkItemError | None = None


class BulkResult(BaseModel, Generic[T]):
    items: list[BulkItemResult[T]]
    succeeded: int
    failed: int


def _validation_details(exc: ValidationError, index: int) -> list[dict[str, Any]]:
    return [
        {
            "index": index,
            "field": "body.items." + ".".join(str(p) for p in (index, *err["loc"])),
            "reason": str(err["msg"])[:300],
        }
        for err in exc.errors()[:20]
    ]


async def run_bulk(
    session: AsyncSession,
    items: Sequence[dict[str, Any]],
    schema: type[BaseModel],
    handler: Callable[[Any, int], Awaitable[dict[str, Any]]],
    *,
    atomic: bool,
) -> dict[str, Any]:
    """Validate each item with `schema`, apply `handler(model, index)`; returns the result body."""
    if not items:
        raise BadRequest("Send at least one item.", code="empty_bulk")
    adapter = TypeAdapter(schema)
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            model = adapter.validate_python(raw)
        except ValidationError as exc:
            details = _validation_details(exc, index)
            failures.extend(details)
            results.append(
                {
                    "index": index,
                    "success": False,
                    "error": {
                        "code": "validation_error",
                        "message": "The item is not valid.",
                        "details": details,
                    },
                }
            )
            continue
        try:
            if atomic:
                data = await handler(model, index)
            else:
                async with session.begin_nested():
                    data = await handler(model, index)
        except AppError as exc:
            detail = {"index": index, "reason": f"{exc.code}: {exc.message}"}
            failures.append(detail)
            results.append(
                {
                    "index": index,
                    "success": False,
                    "error": {"code": exc.code, "message": exc.message, "details": exc.details},
                }
            )
            continue
        results.append({"index": index, "success": True, "data": data})
    if atomic and failures:
        failed_items = len({f["index"] for f in failures})
        raise ValidationFailed(
            f"{failed_items} of {len(items)} items failed; nothing was written.",
            code="bulk_failed",
            details=failures[:1000],
        )
    failed = sum(1 for r in results if not r["success"])
    return {"items": results, "succeeded": len(results) - failed, "failed": failed}
