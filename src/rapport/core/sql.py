"""Hot statements built once and, on PostgreSQL, run straight on the driver.

SQLAlchemy's Session spends about 0.5–0.7 ms of CPU on each statement it runs (building the
statement, its cache key, the execution context and the result), several times what asyncpg
spends. For the statements every request makes (a record by id, an existence check, the insert
or update of one record, its event and its search document), a `Query` is built once with named
parameters and compiled once per dialect:

- on PostgreSQL it runs on the driver connection its unit of work lends (`LeanSource`):
  - a read unit of work (autocommit, so each statement is its own transaction anyway) lends the
    session's connection when it already holds one, else one from SQLAlchemy's own pool;
  - a write unit of work lends the session's connection, inside the request's transaction
    (begun first if SQLAlchemy has not sent its BEGIN yet), so the statement commits or rolls
    back with everything else the request wrote;
  applying the same bind and result processors SQLAlchemy would, so rows are the same values
  either way (the engine's `before_cursor_execute` listeners are called too);
- anywhere else (SQLite, a session without a unit of work) it runs through the session, where the
  prebuilt statement still saves its construction and cache key.

Rows come back as plain dicts (what `RowMapping` offers the services: `row["x"]`, `row.get`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BindParameter, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable

from rapport.core.dberrors import driver_error

LEAN = "rapport_lean"  # session.info key: the `LeanSource` a session's queries may use


class LeanSource(Protocol):
    """Who lends the driver connection: the request's unit of work."""

    db: Any  # the Database: its dialect and engine events
    ahead_depth: int  # open `sent_ahead` blocks

    def lean_driver(self) -> AbstractAsyncContextManager[Any]: ...

    async def send_ahead(self, statement: Callable[[], Awaitable[Any]]) -> None: ...

    async def settle(self, *, quiet: bool = False) -> None: ...


@dataclass(frozen=True)
class _Result:
    """How a statement's rows become dicts: column keys in order, and the result processors
    SQLAlchemy would apply (by column index)."""

    keys: tuple[str, ...]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, columns: Iterable[Any], dialect: Dialect) -> _Result:
        columns = list(columns)
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        return cls(
            keys=tuple(c.key for c in columns),
            processors=tuple((i, p) for i, p in enumerate(processors) if p is not None),
        )

    def row(self, record: Any) -> dict[str, Any]:
        row = list(record)
        for index, process in self.processors:
            row[index] = process(row[index])
        return dict(zip(self.keys, row, strict=True))


async def _on_driver(
    source: LeanSource, sql: str, args: Any, method: str, copy: CopyPlan | None = None
) -> Any:
    """Run one statement on the driver connection `source` lends (`method`: fetchrow, fetch,
    execute, executemany, or copy with `copy`'s table and columns); the engine's own statement
    hooks still see what runs (tests, tracing), and the driver's errors come out as SQLAlchemy
    would raise them."""
    await source.settle()  # a COPY sent ahead comes first
    _announce(source, sql, args, method)
    return await _run(source, sql, args, method, copy)


def _announce(source: LeanSource, sql: str, args: Any, method: str) -> None:
    many = method in ("executemany", "copy")
    listeners = source.db.engine.sync_engine.dispatch.before_cursor_execute
    for listener in listeners or ():
        listener(None, None, sql, args if many else tuple(args), None, many)


async def _run(
    source: LeanSource, sql: str, args: Any, method: str, copy: CopyPlan | None = None
) -> Any:
    many = method in ("executemany", "copy")
    try:
        async with source.lean_driver() as driver:
            if copy is not None:
                return await driver.copy_records_to_table(
                    copy.table, records=args, columns=copy.columns
                )
            if many:
                return await driver.executemany(sql, args)
            return await getattr(driver, method)(sql, *args)
    except Exception as exc:
        raise driver_error(sql, args if many else tuple(args), exc) from exc


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # bind names in positional order
    defaults: dict[str, Any]  # values bound in the statement itself
    generated: tuple[tuple[str, Callable[[], Any]], ...]  # column defaults made in Python
    bind: tuple[Callable[[Any], Any] | None, ...]
    result: _Result

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self.defaults, **params}
        for name, make in self.generated:
            if name not in values:
                values[name] = make()
        return [
            value if process is None else process(value)
            for value, process in zip((values[n] for n in self.names), self.bind, strict=True)
        ]


def _default_maker(default: Any, column: Any) -> Callable[[], Any]:
    """What SQLAlchemy computes before a write for a column left out of it (its Python-side
    `default` in an INSERT, `onupdate` in an UPDATE): a value, or a function of no arguments."""
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        return lambda: default.arg(None)  # wrapped to take an execution context it ignores
    raise ValueError(f"a Query cannot compute the default of {column}")


class Query:
    """A statement (SELECT, or INSERT/UPDATE/DELETE with or without RETURNING) built once with
    `bindparam()`s; `first()`, `all()` and `run()` execute it with their values."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt: Any = stmt
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            sql, names = compiled.string, tuple(compiled.positiontup or ())
            if compiled.literal_execute_params:
                # Values rendered into the SQL (a constant the index expression holds): they
                # are the statement's own, so they are rendered once, here.
                if any(b.value is None for b in compiled.literal_execute_params):
                    raise ValueError("a Query renders only constant values inline")
                expanded = compiled._process_parameters_for_postcompile(
                    compiled.construct_params(_check=False)
                )
                sql, names = expanded.statement, tuple(expanded.positiontup or ())
            binds = [compiled.binds[name] for name in names]
            if any(b.expanding or b.literal_execute for b in binds):
                raise ValueError("a Query takes plain parameters (no IN lists)")
            plan = _Plan(
                sql=sql,
                names=names,
                defaults={
                    n: b.value for n, b in zip(names, binds, strict=True) if b.value is not None
                },
                generated=(
                    *((c.key, _default_maker(c.default, c)) for c in compiled.insert_prefetch),
                    *((c.key, _default_maker(c.onupdate, c)) for c in compiled.update_prefetch),
                ),
                bind=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
                result=_Result.of(self.stmt.exported_columns, dialect),
            )
            self._plans[dialect.name] = plan
        return plan

    async def _driver(
        self, session: AsyncSession, params: Mapping[str, Any], method: str
    ) -> tuple[_Plan, Any] | None:
        """Run on the lent driver connection (`method`: fetchrow, fetch or execute); None when
        this session lends none (the caller goes through the session)."""
        source: LeanSource | None = session.info.get(LEAN)
        if source is None:
            return None
        plan = self._plan(source.db.engine.dialect)
        return plan, await _on_driver(source, plan.sql, plan.args(params), method)

    async def first(self, session: AsyncSession, **params: Any) -> dict[str, Any] | None:
        """The first row for these parameter values, or None."""
        ran = await self._driver(session, params, "fetchrow")
        if ran is None:
            row = (await session.execute(self.stmt, params)).mappings().first()
            return dict(row) if row is not None else None
        plan, record = ran
        return None if record is None else plan.result.row(record)

    async def all(self, session: AsyncSession, **params: Any) -> list[dict[str, Any]]:
        """Every row for these parameter values."""
        ran = await self._driver(session, params, "fetch")
        if ran is None:
            return [dict(r) for r in (await session.execute(self.stmt, params)).mappings()]
        plan, records = ran
        return [plan.result.row(record) for record in records]

    async def run(self, session: AsyncSession, **params: Any) -> None:
        """Execute it for its effect alone (a write without RETURNING)."""
        if await self._driver(session, params, "execute") is None:
            await session.execute(self.stmt, params)

    async def run_many(self, session: AsyncSession, params: list[dict[str, Any]]) -> None:
        """Execute it once per parameter set, for effect alone (a bulk write's events and
        search documents): on the driver, one prepared statement with every set sent at once."""
        source: LeanSource | None = session.info.get(LEAN)
        if source is None:
            await session.execute(self.stmt, params)
            return
        plan = self._plan(source.db.engine.dialect)
        await _on_driver(source, plan.sql, [plan.args(p) for p in params], "executemany")


@dataclass(frozen=True)
class CopyPlan:
    """How rows with these keys are copied into a table: every column given or with a default
    made in Python (an id, a time, an empty list), each value bound as SQLAlchemy would bind it,
    except the JSON columns given already encoded (`serialized`)."""

    table: str
    columns: tuple[str, ...]
    given: tuple[str, ...]
    generated: tuple[tuple[str, Callable[[], Any]], ...]
    null: tuple[str, ...]  # left out, no default anywhere: stored as NULL
    bind: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, processor), where any

    @classmethod
    def of(
        cls, table: Table, keys: tuple[str, ...], dialect: Dialect, serialized: tuple[str, ...] = ()
    ) -> CopyPlan:
        unknown = set(keys) - set(table.c.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column {sorted(unknown)}")
        if not set(serialized) <= set(keys):
            raise ValueError(
                f"JSON text for columns not given: {sorted(set(serialized) - set(keys))}"
            )
        generated = tuple(
            (c.key, _default_maker(c.default, c))
            for c in table.columns
            if c.key not in keys and c.default is not None
        )
        columns = (*keys, *(name for name, _ in generated))
        return cls(
            table=table.name,
            columns=columns,
            given=keys,
            generated=generated,
            null=tuple(
                c.key
                for c in table.columns
                if c.key not in columns and c.server_default is None and c.computed is None
            ),
            bind=tuple(
                (i, process)
                for i, n in enumerate(columns)
                if n not in serialized
                and (process := table.c[n].type.dialect_impl(dialect).bind_processor(dialect))
            ),
        )

    def full_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row as it will be stored: the values given, the defaults made here, the NULLs
        (columns the server fills are not known here)."""
        values = {name: row[name] for name in self.given}
        for name, make in self.generated:
            values[name] = make()
        for name in self.null:
            values[name] = None
        return values

    def record(self, values: Mapping[str, Any]) -> list[Any]:
        """A full row's values as the COPY sends them."""
        record = [values[n] for n in self.columns]
        for index, process in self.bind:
            record[index] = process(record[index])
        return record

    def direct(self, row: Mapping[str, Any]) -> list[Any]:
        """`record(full_row(row))` without the row in between (what is not read back)."""
        record = [row[n] for n in self.given]
        for _, make in self.generated:
            record.append(make())
        for index, process in self.bind:
            record[index] = process(record[index])
        return record

    @property
    def sql(self) -> str:  # what the statement hooks are shown
        return f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN (FORMAT binary)"


_COPY_PLANS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], CopyPlan] = {}


def copies(session: AsyncSession) -> bool:
    """Whether `insert_new` copies on this session (PostgreSQL, on the lent driver connection)."""
    source: LeanSource | None = session.info.get(LEAN)
    return source is not None and source.db.engine.dialect.name == "postgresql"


async def insert_new(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: bool = True,
    serialized: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """New rows, all with the same keys, written for their effect: on PostgreSQL one COPY on the
    lent driver connection (a bulk write's records, events and search documents: a fraction of a
    batched INSERT's cost on both sides), elsewhere one batched INSERT. A row that breaks a
    constraint fails the whole COPY, as it would the INSERT. Returns the rows as stored (the
    defaults made in Python filled in) when copied; the rows given otherwise; nothing unless
    `returning`. `serialized`: JSON columns whose values are given as JSON text already (only
    where `copies(session)`: SQLAlchemy's INSERT encodes values itself)."""
    if not rows:
        return []
    if not copies(session):
        if serialized:
            raise ValueError("JSON text is copied as it is only on PostgreSQL")
        await session.execute(insert(table), [dict(r) for r in rows])
        return [dict(r) for r in rows] if returning else []
    source: LeanSource = session.info[LEAN]
    dialect = source.db.engine.dialect
    keys = tuple(rows[0])
    plan = _COPY_PLANS.get((dialect.name, table.name, keys, serialized))
    if plan is None:
        plan = CopyPlan.of(table, keys, dialect, serialized)
        _COPY_PLANS[(dialect.name, table.name, keys, serialized)] = plan
    if returning:
        stored = [plan.full_row(row) for row in rows]
        records = [plan.record(v) for v in stored]
    else:
        stored, records = [], [plan.direct(row) for row in rows]
    if not source.ahead_depth:
        await _on_driver(source, plan.sql, records, "copy", plan)
        return stored
    await source.settle()  # the COPY before it, written while these rows were made
    _announce(source, plan.sql, records, "copy")
    await source.send_ahead(lambda: _run(source, plan.sql, records, "copy", plan))
    return stored


@asynccontextmanager
async def sent_ahead(session: AsyncSession) -> AsyncIterator[None]:
    """A block whose `insert_new` COPYs (PostgreSQL) are sent ahead: each returns once its rows
    are on the wire, so the Python work that follows (the next table's rows, the response)
    runs while the server writes them. The next statement waits for it, and the block waits for
    the last one. A COPY's error (a duplicate) is raised by the next statement or the block's
    end, so a block holds only work that fails as a whole (a bulk write's savepoint)."""
    source: LeanSource | None = session.info.get(LEAN)
    if source is None or not copies(session):
        yield
        return
    source.ahead_depth += 1
    try:
        yield
    except BaseException:
        await source.settle(quiet=True)
        raise
    else:
        await source.settle()
    finally:
        source.ahead_depth -= 1


def bound(table: Table, names: Iterable[str]) -> dict[Any, BindParameter[Any]]:
    """The VALUES/SET of a write built once: each column bound to a parameter `v_<name>` of
    the column's type (an INSERT's or UPDATE's own bind names are reserved, hence the prefix)."""
    return {table.c[n]: bindparam(f"v_{n}", type_=table.c[n].type) for n in names}


def values_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values as the parameters of a statement built with `bound`."""
    return {f"v_{name}": value for name, value in row.items()}


async def rows(session: AsyncSession, stmt: Any) -> list[dict[str, Any]]:
    """Every row of a SELECT built per request (a listing: its filters, sorts and cursor vary),
    on the lent driver connection when there is one (see the module's notes).

    The statement is compiled once per shape, in the engine's own compiled cache (SQLAlchemy's
    cache key leaves the values out), and its values are bound the way SQLAlchemy binds them,
    IN lists and inline values included; only the execution context and the result objects are
    left out, which are most of what a Session spends on a statement."""
    source: LeanSource | None = session.info.get(LEAN)
    if source is None:
        return [dict(r) for r in (await session.execute(stmt)).mappings()]
    engine = source.db.engine
    dialect = engine.dialect
    compiled, extracted, collected, _ = stmt._compile_w_cache(
        dialect=dialect,
        compiled_cache=engine.sync_engine._compiled_cache,
        column_keys=[],
        for_executemany=False,
        schema_translate_map=None,
    )
    shape: _Shape | None = compiled.__dict__.get(_SHAPE)
    if shape is None:
        shape = compiled.__dict__[_SHAPE] = _Shape.of(stmt, compiled, dialect)
    params = compiled.construct_params(
        extracted_parameters=extracted, escape_names=False, _collected_params=collected
    )
    sql, names, processors = compiled.string, compiled.positiontup or (), shape.bind
    if compiled.literal_execute_params or compiled.post_compile_params:
        expanded = compiled._process_parameters_for_postcompile(params)
        sql, names = expanded.statement, expanded.positiontup or ()
        processors = {**processors, **expanded.processors}
        params = expanded.parameters
    args = [processors[n](params[n]) if n in processors else params[n] for n in names]
    records = await _on_driver(source, sql, args, "fetch")
    return [shape.result.row(record) for record in records]


_SHAPE = "_rapport_shape"  # where a compiled statement keeps its `_Shape`


@dataclass(frozen=True)
class _Shape:
    """What `rows()` needs of a compiled SELECT beyond SQLAlchemy's own: bind processors by
    name, and how its rows become dicts."""

    bind: dict[str, Callable[[Any], Any]]
    result: _Result

    @classmethod
    def of(cls, stmt: Any, compiled: Any, dialect: Dialect) -> _Shape:
        return cls(
            bind=dict(compiled._bind_processors),
            result=_Result.of(stmt.selected_columns, dialect),
        )
