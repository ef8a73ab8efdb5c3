"""Query plans of the statements the API really runs: capture them during a request, then ask the
database how it would execute them (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN`).

Asserting on the captured statement, not on one rebuilt in the test, proves what a user's list
request does: the SQL text, inline constants and bound values are exactly the API's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from rapport.core.db import Database

# A plan node that sorts rows: PostgreSQL `Sort` / `Incremental Sort` (not `Sort Key:` lines).
_PG_SORT_NODE = re.compile(r"^\s*(->\s+)?(Incremental )?Sort\s+\(")
# An index read in order ("Index Scan using"), or for a bitmap of matching rows ("Bitmap Index
# Scan on": the planner's choice for a few values, as a batch's ids are in a small table).
_PG_INDEX_SCAN = re.compile(
    r"(?:Index (?:Only )?Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)"
)


@dataclass
class Statement:
    sql: str
    parameters: Any


@contextmanager
def captured(database: Database, *needles: str) -> Iterator[list[Statement]]:
    """Every statement sent to the database in the block whose SQL contains all `needles`."""
    found: list[Statement] = []

    def capture(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if all(needle in sql for needle in needles):
            found.append(Statement(sql, parameters))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", capture)


@dataclass
class Plan:
    dialect: str
    lines: list[str]

    def indexes(self) -> set[str]:
        """The indexes the plan reads."""
        if self.dialect == "sqlite":
            return {
                m.group(1)
                for line in self.lines
                for m in [re.search(r"USING (?:COVERING )?INDEX (\w+)", line)]
                if m
            }
        return {m.group(1) for line in self.lines for m in [_PG_INDEX_SCAN.search(line)] if m}

    def sorts(self) -> bool:
        """Whether the plan sorts rows itself instead of reading them in index order."""
        if self.dialect == "sqlite":
            return any("USE TEMP B-TREE FOR" in line and "ORDER BY" in line for line in self.lines)
        return any(_PG_SORT_NODE.match(line) for line in self.lines)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):  # an array parameter
        return "'{" + ",".join(str(v) for v in value) + "}'"
    return "'" + str(value).replace("'", "''") + "'"


async def plan_of(database: Database, statement: Statement) -> Plan:
    """How the database would run a captured statement, with its own bound values.

    On PostgreSQL the statement is prepared and its generic plan explained: a bound value is then
    an unknown `$n`, as in the plan a reused prepared statement (asyncpg caches them) settles on.
    A plain EXPLAIN with values would fold them into constants and could match an index that the
    generic plan cannot. Sequential scans and explicit sorts are priced out for this transaction:
    tiny test tables would otherwise be read whole and sorted because that is cheaper there, while
    at a million rows only an index that yields the order avoids it. A Sort node still shows when
    no index matches the ORDER BY, so the plan tells whether one does.
    """
    async with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            result = await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters
            )
            lines = [str(row[-1]) for row in result]
            await conn.rollback()
            return Plan(database.dialect, lines)
        name = f"plan_{uuid.uuid4().hex}"
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await conn.exec_driver_sql("SET LOCAL enable_sort = off")
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql(f"PREPARE {name} AS {statement.sql}")
        try:
            values = ", ".join(_sql_literal(v) for v in statement.parameters)
            result = await conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}({values})")
            lines = [str(row[0]) for row in result]
        finally:
            await conn.exec_driver_sql(f"DEALLOCATE {name}")  # outlives the transaction
            await conn.rollback()
    return Plan(database.dialect, lines)
