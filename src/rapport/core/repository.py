"""A thin base for tenant repositories: every statement starts from the caller's workspace.

Rows come back as mappings (no ORM hydration on the read path); writes use INSERT/UPDATE ...
RETURNING so a create or an update is a single statement.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Delete,
    Index,
    Select,
    Table,
    Update,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement, Executable

from rapport.core.clock import utcnow
from rapport.core.db import dialect_name
from rapport.core.ids import new_id
from rapport.core.listing import Condition, Listing, ListParams, Page
from rapport.core.sql import Query, bound, copies, insert_new, rows, values_of

# (repository class, statement, include_deleted) → the statement built once
_QUERIES: dict[tuple[type, str, bool], Query] = {}
# (repository class, listing shape) → its page statement; filters make shapes a client can vary
# at will, so the least recently used go past this many.
_PAGES: OrderedDict[tuple[Any, ...], Query] = OrderedDict()
MAX_PAGE_SHAPES = 1000


def one_of(
    session: AsyncSession, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN (values)`, for a batch's lookups (a bulk write's emails, ids, domains). On
    PostgreSQL it is `column = ANY($1)` with the values as one array parameter: SQLAlchemy binds
    an IN list a parameter at a time, which for a thousand values cost a bulk write about 7 ms
    of Python (and the server sat idle meanwhile); the array is one parameter, one statement
    text."""
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def _has_expressions(values: dict[str, Any]) -> bool:
    """Whether a write sets a column to a SQL expression (not a plain value)."""
    return any(isinstance(v, ClauseElement) for v in values.values())


class TenantRepository:
    table: ClassVar[Table]
    soft_delete: ClassVar[bool] = True
    # What every statement is scoped by: each column equals the repository's attribute of the
    # same name (a user's notifications add `user_id`).
    scope_columns: ClassVar[tuple[str, ...]] = ("workspace_id",)

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # -- scoping: the only way statements are built -------------------------------------------
    def _scope(self, include_deleted: bool = False) -> list[ColumnElement[bool]]:
        return self._scope_clauses(include_deleted, bound=False)

    def _scope_clauses(self, include_deleted: bool, *, bound: bool) -> list[ColumnElement[bool]]:
        """Each `scope_columns` column equal to this repository's attribute of the same name,
        as values, or (`bound`) as named parameters for a statement built once."""
        columns = self.table.c
        clauses = [
            columns[name] == (bindparam(f"scope_{name}") if bound else getattr(self, name))
            for name in self.scope_columns
        ]
        if self.soft_delete and not include_deleted:
            clauses.append(columns.deleted_at.is_(None))
        return clauses

    def row_columns(self) -> tuple[Any, ...]:
        """What a whole row is made of (a domain may add computed columns)."""
        return (self.table,)

    def select(self, *columns: Any, include_deleted: bool = False) -> Select[Any]:
        return select(*(columns or self.row_columns())).where(*self._scope(include_deleted))

    def _by_id(self, what: str, include_deleted: bool) -> Query:
        """`get` and `exists` as statements built once per repository (see `core.sql`)."""
        table = self.table

        def build() -> Executable:
            clauses = self._scope_clauses(include_deleted, bound=True)
            clauses.append(table.c.id == bindparam("id"))
            columns = self.row_columns() if what == "get" else (table.c.id,)
            return select(*columns).where(*clauses)

        return self._prebuilt((what, include_deleted), build)

    def _scope_values(self) -> dict[str, Any]:
        return {f"scope_{name}": getattr(self, name) for name in self.scope_columns}

    def update_stmt(self, include_deleted: bool = False) -> Update:
        return update(self.table).where(*self._scope(include_deleted))

    def delete_stmt(self) -> Delete:
        return delete(self.table).where(self.table.c.workspace_id == self.workspace_id)

    # -- helpers ------------------------------------------------------------------------------
    async def get(
        self, record_id: uuid.UUID, *, include_deleted: bool = False
    ) -> RowMapping | None:
        query = self._by_id("get", include_deleted)
        return await query.first(self.session, **self._scope_values(), id=record_id)  # type: ignore[return-value]

    async def exists(self, record_id: uuid.UUID, *, include_deleted: bool = True) -> bool:
        query = self._by_id("exists", include_deleted)
        return await query.first(self.session, **self._scope_values(), id=record_id) is not None

    async def list(
        self, listing: Listing, params: ListParams, *extra: ColumnElement[bool] | Condition
    ) -> Page:
        where = [*listing.where(params), *extra]
        conditions = [c for c in where if isinstance(c, Condition)]
        if len(conditions) == len(where):
            found = await self._page_of(listing, params, conditions)
        else:
            stmt = listing.apply_page(
                self.select(include_deleted=params.include_deleted).where(*where), params
            )
            found = await rows(self.session, stmt)
        page = listing.page(found, params)
        if params.include_total:
            count = self.select(func.count().label("total"), include_deleted=params.include_deleted)
            page.total = (await rows(self.session, count.where(*where)))[0]["total"]
        return page

    async def _page_of(
        self, listing: Listing, params: ListParams, conditions: list[Condition]
    ) -> list[dict[str, Any]]:
        """A page's rows by a statement built once per shape: the listing, its sort, whether
        it pages on from a cursor, its limit, and each condition's column and operator."""
        shape = (
            id(listing),
            params.include_deleted,
            params.sort_by,
            params.sort_order,
            params.cursor is not None,
            params.limit,
            tuple(c.shape for c in conditions),
        )

        def build() -> Executable:
            clauses = self._scope_clauses(params.include_deleted, bound=True)
            clauses += [c.bound(f"where_{i}") for i, c in enumerate(conditions)]
            stmt = select(*self.row_columns()).where(*clauses)
            return listing.apply_page(stmt, params, bound=True)

        key = (type(self), *shape)
        query = _PAGES.get(key)
        if query is None:
            query = _PAGES[key] = Query(build())
            while len(_PAGES) > MAX_PAGE_SHAPES:
                _PAGES.popitem(last=False)
        else:
            _PAGES.move_to_end(key)
        values = {**self._scope_values(), **listing.page_values(params)}
        for i, condition in enumerate(conditions):
            values.update(condition.values(f"where_{i}"))
        return await query.all(self.session, **values)

    def _prebuilt(self, key: tuple[Any, ...], build: Callable[[], Executable]) -> Query:
        """A statement of this repository built once per `key` (see `core.sql`)."""
        full = (type(self), *key)
        query = _QUERIES.get(full)
        if query is None:
            query = _QUERIES[full] = Query(build())
        return query

    def _new_row(self, values: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        row = {"id": new_id(), "created_at": now, "updated_at": now, "version": 1, **values}
        row["workspace_id"] = self.workspace_id
        return row

    async def insert_unless_held(self, values: dict[str, Any], unique: Index) -> RowMapping | None:
        """A new row, unless another row already holds its values of this unique (partial)
        index: None then, and nothing written. The index answers in the INSERT itself, so a
        create needs no look-up first (the transaction goes on, unlike after a violation)."""
        row = self._new_row(values)
        table, names = self.table, tuple(row)
        dialect = dialect_name(self.session)

        def build() -> Executable:
            builder = pg_insert if dialect == "postgresql" else sqlite_insert
            return (
                builder(table)
                .values(bound(table, names))
                .on_conflict_do_nothing(
                    index_elements=[c.key for c in unique.columns],
                    index_where=unique.dialect_options[dialect]["where"],
                )
                .returning(table)
            )

        query = self._prebuilt(("insert_unless_held", unique.name, dialect, names), build)
        return await query.first(self.session, **values_of(row))  # type: ignore[return-value]

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        row = self._new_row(values)
        table = self.table
        if _has_expressions(row):
            stmt = insert(table).values(row).returning(table)
            return (await self.session.execute(stmt)).mappings().one()
        names = tuple(row)
        query = self._prebuilt(
            ("insert", names), lambda: insert(table).values(bound(table, names)).returning(table)
        )
        return await query.first(self.session, **values_of(row))  # type: ignore[return-value]

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        now = utcnow()
        prepared = [
            {
                "id": r["id"] if "id" in r else new_id(),  # a bulk write's items have theirs
                "created_at": now,
                "updated_at": now,
                "version": 1,
                **r,
                "workspace_id": self.workspace_id,
            }
            for r in rows
        ]
        await self.session.execute(insert(self.table), prepared)

    async def insert_returning(self, rows: Sequence[dict[str, Any]]) -> list[RowMapping]:
        """Many rows in one batched INSERT ... RETURNING (SQLAlchemy's insertmanyvalues), read
        back in the order given. Rows with different keys are sent as separate batches."""
        now = utcnow()
        prepared = [
            {
                "id": r["id"] if "id" in r else new_id(),  # a bulk write's items have theirs
                "created_at": now,
                "updated_at": now,
                "version": 1,
                **r,
                "workspace_id": self.workspace_id,
            }
            for r in rows
        ]
        if len(prepared) > 1 and copies(self.session) and self._copyable(prepared):
            # Every column is given or made in Python: the rows as stored are known here, so
            # they are copied in and need not be read back.
            return await insert_new(self.session, self.table, prepared)  # type: ignore[return-value]
        groups: dict[frozenset[str], list[int]] = {}
        for position, row in enumerate(prepared):
            groups.setdefault(frozenset(row), []).append(position)
        out: list[Any] = [None] * len(prepared)
        stmt = insert(self.table).returning(self.table, sort_by_parameter_order=True)
        for positions in groups.values():
            result = await self.session.execute(stmt, [prepared[p] for p in positions])
            for position, row in zip(positions, result.mappings().all(), strict=True):
                out[position] = row
        return out

    def _copyable(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Rows that share their keys, in a table whose every other column has its default made
        in Python (none left to the server, none computed)."""
        keys = rows[0].keys()
        if any(row.keys() != keys for row in rows):
            return False
        if any(c.key not in keys for c in self.table.primary_key):  # a key the server would make
            return False
        return all(
            c.key in keys
            or (
                c.server_default is None
                and c.computed is None
                and (c.default is None or c.default.is_scalar or c.default.is_callable)
            )
            for c in self.table.columns
        )

    async def update(
        self,
        record_id: uuid.UUID,
        values: dict[str, Any],
        *,
        expected_version: int | None = None,
        include_deleted: bool = False,
    ) -> RowMapping | None:
        """Apply `values`, bump version; None when the row is missing or the version moved on."""
        table = self.table
        if _has_expressions(values):
            stmt = self.update_stmt(include_deleted).where(table.c.id == record_id)
            if expected_version is not None:
                stmt = stmt.where(table.c.version == expected_version)
            stmt = stmt.values(**values, version=table.c.version + 1, updated_at=utcnow())
            stmt = stmt.returning(*self.row_columns())
            return (await self.session.execute(stmt)).mappings().first()
        names = tuple(values)
        checked = expected_version is not None

        def build() -> Executable:
            clauses = self._scope_clauses(include_deleted, bound=True)
            clauses.append(table.c.id == bindparam("where_id"))
            if checked:
                clauses.append(table.c.version == bindparam("where_version"))
            sets = {**bound(table, (*names, "updated_at")), table.c.version: table.c.version + 1}
            # The whole row, computed columns too: they may read the row as written.
            return update(table).where(*clauses).values(sets).returning(*self.row_columns())

        query = self._prebuilt(("update", names, checked, include_deleted), build)
        params = values_of({**values, "updated_at": utcnow()})
        if checked:
            params["where_version"] = expected_version
        return await query.first(  # type: ignore[return-value]
            self.session, **params, **self._scope_values(), where_id=record_id
        )

    async def erase(self, record_id: uuid.UUID) -> bool:
        stmt = self.delete_stmt().where(self.table.c.id == record_id).returning(self.table.c.id)
        return (await self.session.execute(stmt)).first() is not None
