"""Hot statements built once and, on PostgreSQL reads, run straight on the driver.

SQLAlchemy's Session spends about 0.5–0.7 ms of CPU on each statement it runs (building the
statement, its cache key, the execution context and the result), several times what asyncpg
spends. For the statements every read request makes (a record by id, an existence check), a
`Query` is built once with named parameters and compiled once per dialect:

- in a read unit of work on PostgreSQL (autocommit, so each statement is its own transaction
  anyway) it runs on an asyncpg connection from SQLAlchemy's own pool (the session's, if the
  request already holds one), applying the
  same bind and result processors SQLAlchemy would, so rows are the same values either way
  (the engine's `before_cursor_execute` listeners are called too);
- anywhere else (writes, which must stay inside the request's transaction; SQLite) it runs
  through the session, where the prebuilt statement still saves its construction and cache key.

Rows come back as plain dicts (what `RowMapping` offers the services: `row["x"]`, `row.get`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from rapport.core.dberrors import driver_error

LEAN = "rapport_lean"  # session.info key: the `LeanSource` a read session's queries may use


class LeanSource(Protocol):
    """Who lends the driver connection: the request's read unit of work."""

    db: Any  # the Database: its dialect and engine events

    def lean_driver(self) -> AbstractAsyncContextManager[Any]: ...


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # bind names in positional order
    defaults: dict[str, Any]  # values bound in the statement itself
    bind: tuple[Callable[[Any], Any] | None, ...]
    keys: tuple[str, ...]  # result column keys, in order
    result: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, processor)


class Query:
    """A SELECT built once with `bindparam()`s; `first()` runs it with their values."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())
            binds = [compiled.binds[name] for name in names]
            if any(b.expanding for b in binds):
                raise ValueError("a Query cannot take expanding (IN list) parameters")
            columns = list(self.stmt.selected_columns)
            processors = [
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ]
            plan = _Plan(
                sql=compiled.string,
                names=names,
                defaults={b.key: b.value for b in binds if b.value is not None},
                bind=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
                keys=tuple(c.key for c in columns),
                result=tuple((i, p) for i, p in enumerate(processors) if p is not None),
            )
            self._plans[dialect.name] = plan
        return plan

    async def first(self, session: AsyncSession, **params: Any) -> dict[str, Any] | None:
        """The first row for these parameter values, or None."""
        source: LeanSource | None = session.info.get(LEAN)
        if source is None:
            row = (await session.execute(self.stmt, params)).mappings().first()
            return dict(row) if row is not None else None
        engine = source.db.engine
        plan = self._plan(engine.dialect)
        values = {**plan.defaults, **params}
        args = [
            value if process is None else process(value)
            for value, process in zip((values[n] for n in plan.names), plan.bind, strict=True)
        ]
        listeners = engine.sync_engine.dispatch.before_cursor_execute
        if listeners:  # the engine's own statement hooks still see what runs (tests, tracing)
            for listener in listeners:
                listener(None, None, plan.sql, tuple(args), None, False)
        try:
            async with source.lean_driver() as driver:
                record = await driver.fetchrow(plan.sql, *args)
        except Exception as exc:  # the driver's own errors, as SQLAlchemy would raise them
            raise driver_error(plan.sql, tuple(args), exc) from exc
        if record is None:
            return None
        row = list(record)
        for index, process in plan.result:
            row[index] = process(row[index])
        return dict(zip(plan.keys, row, strict=True))
