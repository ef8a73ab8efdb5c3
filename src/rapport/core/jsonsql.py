"""JSON predicates compiled per dialect: jsonb operators on PostgreSQL, json1 on SQLite.

- `json_array_has(column, value)`: the JSON array in `column` holds the string `value`
  (tags; uses the GIN jsonb_path_ops index on PostgreSQL).
- `json_key_text / json_key_number / json_key_bool(column, key)`: a top-level key's value.
- `json_key_array_has(column, key, value)`: the array under `key` holds `value` (multi-select).

Keys are validated identifiers (custom field names) and are still passed as bound parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Numeric, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class json_array_has(FunctionElement[bool]):  # noqa: N801 - SQL function naming
    type = Boolean()
    inherit_cache = True
    name = "json_array_has"


class json_key_text(FunctionElement[str]):  # noqa: N801
    type = String()
    inherit_cache = True
    name = "json_key_text"


class json_key_number(FunctionElement[Any]):  # noqa: N801
    type = Numeric()
    inherit_cache = True
    name = "json_key_number"


class json_key_bool(FunctionElement[bool]):  # noqa: N801
    type = Boolean()
    inherit_cache = True
    name = "json_key_bool"


class json_key_array_has(FunctionElement[bool]):  # noqa: N801
    type = Boolean()
    inherit_cache = True
    name = "json_key_array_has"


def _args(element: FunctionElement[Any], compiler: Any, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


@compiles(json_array_has, "postgresql")
def _pg_array_has(element: Any, compiler: Any, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"({column} @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(json_array_has, "sqlite")
def _sqlite_array_has(element: Any, compiler: Any, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(json_key_text, "postgresql")
def _pg_key_text(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return f"({column} ->> CAST({key} AS TEXT))"


@compiles(json_key_text, "sqlite")
def _sqlite_key_text(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return f"CAST(json_extract({column}, '$.' || {key}) AS TEXT)"


@compiles(json_key_number, "postgresql")
def _pg_key_number(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return (
        f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'number' "
        f"THEN CAST({column} ->> CAST({key} AS TEXT) AS NUMERIC) END)"
    )


@compiles(json_key_number, "sqlite")
def _sqlite_key_number(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return f"json_extract({column}, '$.' || {key})"


@compiles(json_key_bool, "postgresql")
def _pg_key_bool(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return (
        f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'boolean' "
        f"THEN CAST({column} ->> CAST({key} AS TEXT) AS BOOLEAN) END)"
    )


@compiles(json_key_bool, "sqlite")
def _sqlite_key_bool(element: Any, compiler: Any, **kw: Any) -> str:
    column, key = _args(element, compiler, **kw)
    return f"json_extract({column}, '$.' || {key})"


@compiles(json_key_array_has, "postgresql")
def _pg_key_array_has(element: Any, compiler: Any, **kw: Any) -> str:
    column, key, value = _args(element, compiler, **kw)
    return f"(({column} -> CAST({key} AS TEXT)) @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(json_key_array_has, "sqlite")
def _sqlite_key_array_has(element: Any, compiler: Any, **kw: Any) -> str:
    column, key, value = _args(element, compiler, **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}, '$.' || {key}) WHERE json_each.value = {value})"
    )
