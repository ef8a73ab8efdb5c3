"""Bulk writes: `{"items": [...]}` of up to 1000, atomic by default.

Atomic: every item is tried; if any fails, nothing is written and the error lists each failing
item by index. `atomic=false`: the valid ones are written and the response reports every item's
outcome.

Two runners share those rules. `run_batched` is the one the record services use: every item is
validated first and the services answer their reference and uniqueness questions for the whole
batch with one query per kind; then the items are checked in order and the valid ones written
together (one batched INSERT, one batch of events, one of search documents), inside a savepoint.
On PostgreSQL they are checked and written `WRITE_CHUNK` at a time, each chunk's COPYs sent ahead,
so the server writes a chunk while the next is checked here. Should the database
still refuse that batch (a concurrent writer took an email meanwhile), the savepoint is rolled back
and the items run again one by one through `run_bulk`, whose per-item errors are exact.
`run_bulk` tries each item in turn (in its own savepoint when `atomic=false`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core.db import plan_each_statement
from rapport.core.errors import AppError, BadRequest, ValidationFailed
from rapport.core.sql import copies, sent_ahead

MAX_ITEMS = 1000
# Items checked and written at a time by `run_batched`: small enough that the server starts on the
# first chunk early, large enough that each chunk's statements carry many rows.
WRITE_CHUNK = 250
T = TypeVar("T")
P = TypeVar("P")


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


def _item_error(exc: AppError, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the detail listed in an atomic failure, the item's result when not atomic)."""
    detail = {"index": index, "reason": f"{exc.code}: {exc.message}"}
    result = {
        "index": index,
        "success": False,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
    return detail, result


def _validation_failure(exc: ValidationError, index: int) -> tuple[list[dict[str, Any]], dict]:
    details = _validation_details(exc, index)
    result = {
        "index": index,
        "success": False,
        "error": {
            "code": "validation_error",
            "message": "The item is not valid.",
            "details": details,
        },
    }
    return details, result


def _finish(
    results: list[dict[str, Any]], failures: list[dict[str, Any]], total: int, atomic: bool
) -> dict[str, Any]:
    if atomic and failures:
        failed_items = len({f["index"] for f in failures})
        raise ValidationFailed(
            f"{failed_items} of {total} items failed; nothing was written.",
            code="bulk_failed",
            details=failures[:1000],
        )
    failed = sum(1 for r in results if not r["success"])
    return {"items": results, "succeeded": len(results) - failed, "failed": failed}


async def run_bulk(
    session: AsyncSession,
    items: Sequence[Any],
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
            details, result = _validation_failure(exc, index)
            failures.extend(details)
            results.append(result)
            continue
        try:
            if atomic:
                data = await handler(model, index)
            else:
                async with session.begin_nested():
                    data = await handler(model, index)
        except AppError as exc:
            detail, result = _item_error(exc, index)
            failures.append(detail)
            results.append(result)
            continue
        results.append({"index": index, "success": True, "data": data})
    return _finish(results, failures, len(items), atomic)


async def run_batched(
    session: AsyncSession,
    items: Sequence[Any],
    schema: type[BaseModel],
    *,
    atomic: bool,
    preload: Callable[[list[Any]], Awaitable[None]],
    prepare: Callable[[Any, int], Awaitable[P]],
    write: Callable[[list[P]], Awaitable[list[dict[str, Any] | AppError]]],
    fallback: Callable[[Any, int], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """The same contract as `run_bulk`, written in batches. An item may be a model of `schema`
    already validated (an import validates its next chunk while one is written): it is taken as
    it is.

    `preload(models)` answers the batch's lookups at once; `prepare(model, index)` checks one item
    in order, seeing the items prepared before it (raises AppError to refuse it); `write(plans)`
    writes accepted items and returns each one's data in order (or the AppError that stopped
    it). `fallback(model, index)` is the single-item path used if the database refuses the batch.

    On PostgreSQL items are prepared and written `WRITE_CHUNK` at a time, in one savepoint whose
    writes are sent ahead (`core.sql.sent_ahead`): the server writes a chunk while the next one is
    checked and made here. An atomic batch with a refused item writes nothing: what its earlier
    chunks wrote is rolled back with the savepoint.
    """
    if not items:
        raise BadRequest("Send at least one item.", code="empty_bulk")
    adapter = TypeAdapter(schema)
    results: list[dict[str, Any] | None] = [None] * len(items)
    failures: list[dict[str, Any]] = []
    valid: list[tuple[int, Any]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, adapter.validate_python(raw)))
        except ValidationError as exc:
            details, results[index] = _validation_failure(exc, index)
            failures.extend(details)
    if valid and not (atomic and failures):
        await plan_each_statement(session)  # the batch's IN-list lookups, planned with their values
        await preload([model for _, model in valid])
        try:
            async with session.begin_nested():
                async with sent_ahead(session):
                    step = WRITE_CHUNK if copies(session) else len(valid)  # nothing sent ahead
                    for start in range(0, len(valid), step):
                        await _prepare_and_write(
                            valid[start : start + step], prepare, write, results, failures, atomic
                        )
                if atomic and failures:
                    raise _Refused()  # rolls back what the chunks before the refusal wrote
        except IntegrityError:
            return await run_bulk(session, items, schema, fallback, atomic=atomic)
        except _Refused:
            pass
    failures.sort(key=lambda f: f["index"])
    if atomic and failures:
        return _finish([], failures, len(items), atomic)
    return _finish([r for r in results if r is not None], failures, len(items), atomic)


class _Refused(Exception):
    """An atomic batch met an item it refuses: its savepoint is rolled back."""


async def _prepare_and_write(
    models: list[tuple[int, Any]],
    prepare: Callable[[Any, int], Awaitable[P]],
    write: Callable[[list[P]], Awaitable[list[dict[str, Any] | AppError]]],
    results: list[dict[str, Any] | None],
    failures: list[dict[str, Any]],
    atomic: bool,
) -> None:
    """One chunk: each item checked in order, then the accepted ones written (none once an
    atomic batch has a refusal: the rest are only checked, so every refusal is reported)."""
    plans: list[tuple[int, P]] = []
    for index, model in models:
        try:
            plans.append((index, await prepare(model, index)))
        except AppError as exc:
            detail, results[index] = _item_error(exc, index)
            failures.append(detail)
    if not plans or (atomic and failures):
        return
    written = await write([plan for _, plan in plans])
    for (index, _), outcome in zip(plans, written, strict=True):
        if isinstance(outcome, AppError):
            detail, results[index] = _item_error(outcome, index)
            failures.append(detail)
        else:
            results[index] = {"index": index, "success": True, "data": outcome}
