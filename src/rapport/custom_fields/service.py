"""Custom fields: admins define them per resource; every record write validates its values here,
and `cf.<name>` list filters are resolved here against the definitions."""

from __future__ import annotations

import math
import uuid
from datetime import date
from typing import Any

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, or_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.errors import PreconditionFailed, ValidationFailed
from rapport.core.jsonsql import json_key_array_has, json_key_bool, json_key_number, json_key_text
from rapport.core.listing import ListParams, Page, has_control_characters
from rapport.core.values import normalise_email
from rapport.custom_fields.errors import (
    CustomFieldNameTaken,
    CustomFieldNotFound,
    InvalidCustomFields,
)
from rapport.custom_fields.repository import CUSTOM_FIELD_LISTING, CustomFieldRepository
from rapport.custom_fields.schemas import CustomFieldCreate, CustomFieldUpdate

FIELDS = (
    "id",
    "resource",
    "name",
    "label",
    "type",
    "options",
    "required",
    "description",
    "position",
    "created_at",
    "updated_at",
    "version",
)
MAX_TEXT = 10000
URL = TypeAdapter(AnyHttpUrl)
RANGE_TYPES = {"number", "date"}


def definition_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


def _coerce(definition: RowMapping, value: Any) -> Any:
    """One value, checked against its definition; raises ValueError with the reason."""
    kind = definition["type"]
    if kind == "text":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"must be text of at most {MAX_TEXT} characters")
        if has_control_characters(value.replace("\n", "").replace("\t", "").replace("\r", "")):
            raise ValueError("contains control characters")
        return value
    if kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError("must be a number")
        if abs(value) > 1e15:
            raise ValueError("is out of range")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError("must be a date (YYYY-MM-DD)")
        return date.fromisoformat(value).isoformat()
    if kind == "select":
        if value not in definition["options"]:
            raise ValueError(f"must be one of: {', '.join(definition['options'])}")
        return value
    if kind == "multi_select":
        if not isinstance(value, list) or any(v not in definition["options"] for v in value):
            raise ValueError(f"must be a list of: {', '.join(definition['options'])}")
        return list(dict.fromkeys(value))
    if kind == "url":
        if not isinstance(value, str) or len(value) > 2048:
            raise ValueError("must be an http(s) URL")
        try:
            URL.validate_python(value)
        except ValidationError as exc:
            raise ValueError("must be an http(s) URL") from exc
        return value
    if kind == "email":
        if not isinstance(value, str):
            raise ValueError("must be an email address")
        return normalise_email(value)
    raise ValueError("has an unknown type")


class CustomFieldValidator:
    """Checks a record's custom_fields against its resource's definitions."""

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID, resource: str) -> None:
        self.repo = CustomFieldRepository(session, workspace_id)
        self.resource = resource
        self._definitions: dict[str, RowMapping] | None = None

    async def definitions(self) -> dict[str, RowMapping]:
        if self._definitions is None:
            rows = await self.repo.for_resource(self.resource)
            self._definitions = {row["name"]: row for row in rows}
        return self._definitions

    async def validate(
        self,
        incoming: dict[str, Any] | None,
        current: dict[str, Any] | None = None,
        *,
        field: str = "body.custom_fields",
    ) -> dict[str, Any]:
        """The merged values to store. A null value removes a key; required keys must stay."""
        definitions = await self.definitions()
        merged = dict(current or {})
        errors: list[dict[str, Any]] = []
        for key, value in (incoming or {}).items():
            definition = definitions.get(key)
            if definition is None:
                errors.append({"field": f"{field}.{key}"[:200], "reason": "no such custom field"})
                continue
            if value is None:
                merged.pop(key, None)
                continue
            try:
                merged[key] = _coerce(definition, value)
            except ValueError as exc:
                errors.append({"field": f"{field}.{key}", "reason": str(exc)})
        for name, definition in definitions.items():
            if definition["required"] and merged.get(name) is None:
                errors.append({"field": f"{field}.{name}", "reason": "is required"})
        if errors:
            raise InvalidCustomFields(details=errors)
        return merged

    async def filters(
        self, column: ColumnElement[Any], raw: list[tuple[str, str, str]]
    ) -> list[ColumnElement[bool]]:
        """`cf.<name>[op]=value` → clauses, typed by the definitions (422 for unknown names)."""
        if not raw:
            return []
        definitions = await self.definitions()
        clauses: list[ColumnElement[bool]] = []
        errors: list[dict[str, Any]] = []
        for name, op, value in raw:
            field = f"query.cf.{name}"[:100]
            definition = definitions.get(name)
            if definition is None:
                errors.append({"field": field, "reason": "no such custom field"})
                continue
            kind = definition["type"]
            allowed = {"eq"} | ({"gt", "gte", "lt", "lte"} if kind in RANGE_TYPES else set())
            if op not in allowed:
                errors.append({"field": field, "reason": "unsupported operator"})
                continue
            if has_control_characters(value) or len(value) > 500:
                errors.append({"field": field, "reason": "is not a valid value"})
                continue
            try:
                clauses.append(self._clause(column, definition, op, value))
            except ValueError as exc:
                errors.append({"field": field, "reason": str(exc)})
        if errors:
            raise ValidationFailed(
                "Unknown or invalid filter.", code="invalid_filter", details=errors
            )
        return clauses

    @staticmethod
    def _clause(column: ColumnElement[Any], definition: RowMapping, op: str, raw: str) -> Any:
        name, kind = definition["name"], definition["type"]
        values = raw.split(",") if op == "eq" and kind != "boolean" else [raw]
        if kind == "multi_select":
            return or_(*(json_key_array_has(column, name, v) for v in values))
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise ValueError("must be true or false")
            return json_key_bool(column, name) == (raw == "true")
        if kind == "number":
            try:
                numbers = [float(v) for v in values]
            except ValueError as exc:
                raise ValueError("must be a number") from exc
            expr: Any = json_key_number(column, name)
        else:
            if kind == "date":
                try:
                    values = [date.fromisoformat(v).isoformat() for v in values]
                except ValueError as exc:
                    raise ValueError("must be a date (YYYY-MM-DD)") from exc
            numbers = values  # type: ignore[assignment]
            expr = json_key_text(column, name)
        if op == "eq":
            return expr.in_(numbers) if len(numbers) > 1 else expr == numbers[0]
        return {
            "gt": expr > numbers[0],
            "gte": expr >= numbers[0],
            "lt": expr < numbers[0],
            "lte": expr <= numbers[0],
        }[op]


class CustomFieldService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.repo = CustomFieldRepository(session, principal.workspace_id)

    async def _event(self, verb: str, row: RowMapping) -> None:
        await events.record(
            self.session,
            workspace_id=self.principal.workspace_id,
            type=f"custom_field.{verb}",
            data=definition_read(row),
            principal=self.principal,
            resource_id=row["id"],
        )

    async def list(self, params: ListParams) -> Page:
        return await self.repo.list(CUSTOM_FIELD_LISTING, params)

    async def get(self, field_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(field_id)
        if row is None:
            raise CustomFieldNotFound()
        return row

    async def create(self, body: CustomFieldCreate) -> RowMapping:
        if await self.repo.by_name(body.resource, body.name) is not None:
            raise CustomFieldNameTaken()
        row = await self.repo.insert(body.model_dump())
        await self._event("created", row)
        return row

    async def update(
        self, field_id: uuid.UUID, body: CustomFieldUpdate, expected: int | None
    ) -> RowMapping:
        current = await self.get(field_id)
        changes = {
            k: v
            for k, v in body.model_dump(exclude_unset=True).items()
            if v is not None or k == "description"
        }
        if "options" in changes:
            if current["type"] not in ("select", "multi_select"):
                raise ValidationFailed(
                    "Only select and multi_select fields take options.",
                    details=[{"field": "body.options", "reason": "not allowed"}],
                )
            if not changes["options"] or len(set(changes["options"])) != len(changes["options"]):
                raise ValidationFailed(
                    "Options must be distinct and not empty.",
                    details=[{"field": "body.options", "reason": "invalid"}],
                )
        if not changes:
            return current
        row = await self.repo.update(field_id, changes, expected_version=expected)
        if row is None:
            raise PreconditionFailed()
        await self._event("updated", row)
        return row

    async def delete(self, field_id: uuid.UUID) -> None:
        """Removes the definition; stored values stay on records but are no longer validated
        or filterable (a new definition with the same name picks them up again)."""
        row = await self.get(field_id)
        await self.repo.erase(field_id)
        await self._event("deleted", row)
