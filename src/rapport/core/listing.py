"""Lists: keyset cursor pagination, allow-listed filters and sorts, and literal-safe search.

A resource declares one `Listing` (what may be filtered, sorted and searched); its router takes
`listing.params` as a dependency. Unknown filter or sort fields are a 422 and never reach SQL; every
value is a bound parameter. Cursors encode the last row's sort value and id, so pages stay exact
when rows are inserted between requests and ties are broken by id.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import operator
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Literal

import orjson
from fastapi import Query, Request
from sqlalchemy import ColumnElement, Select, bindparam, func, or_, tuple_
from sqlalchemy.sql.elements import KeyedColumnElement

from rapport.core.errors import ValidationFailed
from rapport.core.jsonsql import json_array_has

Op = Literal["eq", "in", "gt", "gte", "lt", "lte"]
EQUALITY: frozenset[str] = frozenset({"eq", "in"})
RANGE: frozenset[str] = frozenset({"eq", "in", "gt", "gte", "lt", "lte"})
RESERVED = frozenset(
    {"limit", "cursor", "sort_by", "sort_order", "search", "include_total", "include_deleted"}
)
MAX_VALUE_LENGTH = 500
MAX_FILTERS = 50
CUSTOM_PREFIX = "cf."
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # INTEGER columns' range on every backend
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class BigInt(int):
    """Marks a filter or sort on a BIGINT column (money in minor units): 64-bit bounds."""


SORT_KEY = "_sort_key"
MAX_ANY_OF = 100
ME = "me"


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError("must be true or false")


def _parse_int(raw: str) -> int:
    value = int(raw)
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError("is out of range")
    return value


def _parse_bigint(raw: str) -> int:
    value = int(raw)
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise ValueError("is out of range")
    return value


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _parse_datetime(raw: str) -> datetime:
    if len(raw) == 10:
        parsed = datetime.combine(date.fromisoformat(raw), datetime.min.time())
    else:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


PARSERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: _parse_int,
    BigInt: _parse_bigint,
    bool: _parse_bool,
    uuid.UUID: uuid.UUID,
    datetime: _parse_datetime,
    date: date.fromisoformat,
}


@dataclass(frozen=True, eq=False)
class Condition:
    """`column op value` (op: eq, gt, gte, lt, lte, or in with a list): a listing condition
    whose SQL does not depend on its values, so a listing made only of such conditions is
    built and compiled once per shape (`TenantRepository.list`). It stands for its SQL
    expression wherever SQLAlchemy takes one (`.where(condition)`)."""

    column: ColumnElement[Any]
    op: str
    value: Any

    @property
    def shape(self) -> tuple[int, str, int]:
        # By identity: a cached statement holds its columns, so an id in a cached shape is never
        # reused by another column while that entry lives.
        return (id(self.column), self.op, len(self.value) if self.op == "in" else 1)

    def values(self, name: str) -> dict[str, Any]:
        """The values of `bound(name)`'s parameters."""
        if self.op == "in":
            return {f"{name}_{i}": v for i, v in enumerate(self.value)}
        return {name: self.value}

    def bound(self, name: str) -> ColumnElement[bool]:
        """The condition with its values as named parameters, for a statement built once."""
        kind = self.column.type
        if self.op == "in":
            return self.column.in_(
                [bindparam(f"{name}_{i}", type_=kind) for i in range(len(self.value))]
            )
        return _OPERATORS[self.op](self.column, bindparam(name, type_=kind))

    def __clause_element__(self) -> ColumnElement[bool]:
        if self.op == "in":
            return self.column.in_(self.value)
        return _OPERATORS[self.op](self.column, self.value)


_OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass(frozen=True)
class Filter:
    """A filterable field: its column, value type and the operators it accepts."""

    column: ColumnElement[Any]
    type: type = str
    ops: frozenset[str] = EQUALITY
    choices: tuple[str, ...] | None = None
    description: str = ""
    # A custom predicate (op, values) → clause, for fields that are not plain columns (tags).
    builder: Callable[[str, list[Any]], ColumnElement[bool]] | None = None

    def parse(self, raw: str, *, user_id: uuid.UUID | None) -> Any:
        if len(raw) > MAX_VALUE_LENGTH:
            raise ValueError(f"is longer than {MAX_VALUE_LENGTH} characters")
        if has_control_characters(raw):
            raise ValueError("contains control characters")
        if self.type is uuid.UUID and raw == ME:
            if user_id is None:
                raise ValueError("'me' needs a user credential")
            return user_id
        if self.choices is not None and raw not in self.choices:
            raise ValueError(f"must be one of: {', '.join(self.choices)}")
        try:
            return PARSERS[self.type](raw)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"is not a valid {self.type.__name__}") from exc

    def clause(self, op: str, value: Any) -> ColumnElement[bool] | Condition:
        if self.builder is not None:
            return self.builder(op, value if op == "in" else [value])
        return Condition(self.column, op, value)


def tag_filter(column: ColumnElement[Any]) -> Filter:
    """`tag=vip` (or `tag=vip,emea`: any of them) on a JSON array of tags."""

    def build(_op: str, values: list[Any]) -> ColumnElement[bool]:
        return or_(*(json_array_has(column, v) for v in values))

    return Filter(column, str, EQUALITY, builder=build, description="Has this tag.")


@dataclass(frozen=True)
class Sort:
    """A sortable field. The expression must be non-null (wrap nullable columns in coalesce)."""

    expression: ColumnElement[Any]
    type: type = str


@dataclass
class ListParams:
    limit: int
    sort_by: str
    sort_order: Literal["asc", "desc"]
    cursor: tuple[Any, uuid.UUID] | None = None
    search: str | None = None
    include_total: bool = False
    include_deleted: bool = False
    filters: list[ColumnElement[bool] | Condition] = field(default_factory=list)
    # `cf.<name>[op]=value` filters, resolved against the custom field definitions by the service.
    custom_filters: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Page:
    rows: Sequence[Any]
    next_cursor: str | None
    has_more: bool
    limit: int
    total: int | None = None

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "limit": self.limit,
        }
        if self.total is not None:
            meta["total"] = self.total
        return meta


def escape_like(term: str) -> str:
    """`%` and `_` in a search are literal characters, not wildcards."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID | date):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def encode_cursor(sort_by: str, order: str, value: Any, row_id: uuid.UUID) -> str:
    raw = orjson.dumps([sort_by, order, _encode_value(value), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_error() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid for this list.",
        code="invalid_cursor",
        details=[{"field": "query.cursor", "reason": "not a cursor issued for this sort"}],
    )


class Listing:
    """What a list endpoint may filter, sort and search."""

    def __init__(
        self,
        *,
        id_column: KeyedColumnElement[Any],
        filters: dict[str, Filter],
        sorts: dict[str, Sort],
        default_sort: str,
        default_order: Literal["asc", "desc"] = "desc",
        search: Sequence[ColumnElement[Any]] = (),
        soft_delete: bool = True,
        custom_fields: bool = False,
        search_builder: Callable[[str], ColumnElement[bool]] | None = None,
    ) -> None:
        assert default_sort in sorts
        # Without soft delete, include_deleted means nothing: it is then an unknown parameter (422).
        self.reserved = RESERVED if soft_delete else RESERVED - {"include_deleted"}
        self.custom_fields = custom_fields
        self.search_builder = search_builder
        self.id_column = id_column
        self.filters = filters
        self.sorts = sorts
        self.default_sort = default_sort
        self.default_order = default_order
        self.search_columns = tuple(search)
        self.params = self._dependency()

    # -- documentation -------------------------------------------------------------------------
    def openapi_parameters(self) -> list[dict[str, Any]]:
        """The filters as OpenAPI query parameters (the routes merge them via openapi_extra)."""
        out: list[dict[str, Any]] = []
        for name, spec in self.filters.items():
            schema: dict[str, Any] = {"type": "string"}
            if spec.type in (int, BigInt):
                schema = {"type": "integer"}
            elif spec.type is bool:
                schema = {"type": "boolean"}
            elif spec.type is datetime:
                schema = {"type": "string", "format": "date-time"}
            elif spec.type is date:
                schema = {"type": "string", "format": "date"}
            elif spec.type is uuid.UUID:
                schema = {"type": "string", "format": "uuid"}
            if spec.choices:
                schema["enum"] = list(spec.choices)
            if "eq" in spec.ops:
                many = "" if spec.type is bool else " Comma-separated values match any of them."
                desc = spec.description or f"Filter by {name}."
                out.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": desc + many,
                        "schema": {"type": "string"} if many else schema,
                    }
                )
            for op in ("gt", "gte", "lt", "lte"):
                if op in spec.ops:
                    out.append(
                        {
                            "name": f"{name}[{op}]",
                            "in": "query",
                            "required": False,
                            "description": f"{name} {op}",
                            "schema": schema,
                        }
                    )
        return out

    # -- request parsing ---------------------------------------------------------------------
    def _dependency(self) -> Callable[..., Any]:
        listing = self
        sort_names = tuple(self.sorts)
        sort_type = Literal[sort_names]  # type: ignore[valid-type]

        async def list_params(
            request: Request,
            limit: int = Query(50, ge=1, le=200, description="Page size (1..200)."),
            cursor: str | None = Query(
                None, max_length=1000, description="Opaque cursor from meta.next_cursor."
            ),
            sort_by: sort_type = Query(listing.default_sort),  # type: ignore[valid-type]
            sort_order: Literal["asc", "desc"] = Query(listing.default_order),
            search: str | None = Query(None, max_length=200, description="Case-insensitive text."),
            include_total: bool = Query(False, description="Also count all matching rows."),
            include_deleted: bool = Query(False, description="Admins: include soft-deleted rows."),
        ) -> ListParams:
            if search and has_control_characters(search):
                raise ValidationFailed(
                    "The search text contains control characters.",
                    details=[{"field": "query.search", "reason": "contains control characters"}],
                )
            principal = getattr(request.state, "principal", None)
            user_id = getattr(principal, "user_id", None)
            params = ListParams(
                limit=limit,
                sort_by=sort_by,
                sort_order=sort_order,
                search=search.strip() or None if search else None,
                include_total=include_total,
                include_deleted=include_deleted,
            )
            items = request.query_params.multi_items()
            if listing.custom_fields:
                params.custom_filters = listing.split_custom_filters(items)
                items = [(k, v) for k, v in items if not k.startswith(CUSTOM_PREFIX)]
            params.filters = listing.parse_filters(items, user_id)
            if cursor:
                params.cursor = listing.decode_cursor(cursor, sort_by, sort_order)
            return params

        # Postponed annotations would leave the per-listing Literal as an unresolvable name.
        list_params.__annotations__["sort_by"] = sort_type
        if "include_deleted" not in self.reserved:
            signature = inspect.signature(list_params)
            list_params.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[p for p in signature.parameters.values() if p.name != "include_deleted"]
            )
        return list_params

    @staticmethod
    def split_custom_filters(items: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
        found = []
        for key, raw in items:
            if not key.startswith(CUSTOM_PREFIX):
                continue
            name, op = key[len(CUSTOM_PREFIX) :], "eq"
            if name.endswith("]") and "[" in name:
                name, _, rest = name.partition("[")
                op = rest[:-1]
            found.append((name, op, raw))
        if len(found) > MAX_FILTERS:
            raise ValidationFailed(
                f"At most {MAX_FILTERS} filters per request.", code="invalid_filter"
            )
        return found

    def parse_filters(
        self, items: Sequence[tuple[str, str]], user_id: uuid.UUID | None
    ) -> list[ColumnElement[bool] | Condition]:
        clauses: list[ColumnElement[bool] | Condition] = []
        errors: list[dict[str, Any]] = []
        if sum(1 for key, _ in items if key not in self.reserved) > MAX_FILTERS:
            raise ValidationFailed(
                f"At most {MAX_FILTERS} filters per request.",
                code="invalid_filter",
                details=[{"field": "query", "reason": f"more than {MAX_FILTERS} filters"}],
            )
        for key, raw in items:
            if key in self.reserved:
                continue
            name, op = key, "eq"
            if key.endswith("]") and "[" in key:
                name, _, rest = key.partition("[")
                op = rest[:-1]
            spec = self.filters.get(name)
            if spec is None:
                errors.append({"field": f"query.{key[:100]}", "reason": "unknown filter field"})
                continue
            if op not in spec.ops or op == "in":
                errors.append({"field": f"query.{key[:100]}", "reason": "unsupported operator"})
                continue
            values = raw.split(",") if op == "eq" and spec.type is not bool else [raw]
            if len(values) > MAX_ANY_OF:
                errors.append({"field": f"query.{key}", "reason": f"at most {MAX_ANY_OF} values"})
                continue
            try:
                parsed = [spec.parse(v.strip(), user_id=user_id) for v in values]
            except ValueError as exc:
                errors.append({"field": f"query.{key}", "reason": str(exc)})
                continue
            if len(parsed) > 1:
                clauses.append(spec.clause("in", parsed))
            else:
                clauses.append(spec.clause(op, parsed[0]))
        if errors:
            raise ValidationFailed(
                "Unknown or invalid filter.", code="invalid_filter", details=errors
            )
        return clauses

    def decode_cursor(self, cursor: str, sort_by: str, order: str) -> tuple[Any, uuid.UUID]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            c_sort, c_order, value, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
            if c_sort != sort_by or c_order != order:
                raise _cursor_error()
            sort = self.sorts[sort_by]
            if value is None or not isinstance(row_id, str):
                raise ValueError
            if isinstance(value, str) and has_control_characters(value):
                raise ValueError
            if sort.type is not str or not isinstance(value, str):
                value = PARSERS[sort.type](str(value))
            return value, uuid.UUID(row_id)
        except ValidationFailed:
            raise
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
            binascii.Error,
            orjson.JSONDecodeError,
        ) as exc:
            raise _cursor_error() from exc

    # -- statement building --------------------------------------------------------------------
    def search_clause(self, term: str) -> ColumnElement[bool]:
        if self.search_builder is not None:
            return self.search_builder(term)
        pattern = f"%{escape_like(term.lower())}%"
        return or_(*(func.lower(col).like(pattern, escape="\\") for col in self.search_columns))

    def where(self, params: ListParams) -> list[ColumnElement[bool] | Condition]:
        clauses = list(params.filters)
        if params.search and (self.search_columns or self.search_builder):
            clauses.append(self.search_clause(params.search))
        return clauses

    def apply_page(
        self, stmt: Select[Any], params: ListParams, *, bound: bool = False
    ) -> Select[Any]:
        """Order, cursor and limit; `bound`: as named parameters (`page_values`), for a
        statement built once per shape."""
        sort = self.sorts[params.sort_by].expression
        keys = tuple_(sort, self.id_column)
        if params.cursor is not None:
            value, row_id = params.cursor
            if bound:
                value = bindparam("cursor_value", type_=sort.type)
                row_id = bindparam("cursor_id", type_=self.id_column.type)
            after = (
                keys > tuple_(value, row_id)
                if params.sort_order == "asc"
                else keys < tuple_(value, row_id)
            )
            stmt = stmt.where(after)
        if params.sort_order == "asc":
            stmt = stmt.order_by(sort.asc(), self.id_column.asc())
        else:
            stmt = stmt.order_by(sort.desc(), self.id_column.desc())
        # The limit stays in the SQL even when bound: a prepared statement's generic plan,
        # not knowing it, may sort every matching row instead of reading an index in order.
        return stmt.add_columns(sort.label(SORT_KEY)).limit(params.limit + 1)

    def page_values(self, params: ListParams) -> dict[str, Any]:
        """The values of a bound `apply_page`'s parameters."""
        values: dict[str, Any] = {}
        if params.cursor is not None:
            values["cursor_value"], values["cursor_id"] = params.cursor
        return values

    def page(self, rows: Sequence[Any], params: ListParams) -> Page:
        """Cut the limit+1 rows fetched by an `apply_page` statement down to one page."""
        has_more = len(rows) > params.limit
        rows = rows[: params.limit]
        next_cursor = None
        if has_more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(
                params.sort_by, params.sort_order, last[SORT_KEY], last["id"]
            )
        return Page(rows=rows, next_cursor=next_cursor, has_more=has_more, limit=params.limit)
