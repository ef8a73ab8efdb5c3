"""What can be imported and exported, resource by resource, and how a CSV cell becomes a field.

Each resource names its create schema (the one its API validates with), its service's bulk path,
its list (the same filters an export accepts), the key a `dedupe` looks at, and the error codes
that mean "this record already exists". Cells are strings; the create schema coerces them
(numbers, UUIDs) as it does for JSON, except tags and custom fields, which are split or typed here
from the workspace's definitions.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.companies.repository import COMPANY_LISTING
from rapport.companies.schemas import CompanyCreate, normalise_domain
from rapport.companies.service import CompanyService, company_read
from rapport.contacts.repository import CONTACT_LISTING
from rapport.contacts.schemas import ContactCreate
from rapport.contacts.service import ContactService, contact_read
from rapport.core.auth import Principal
from rapport.core.listing import Listing
from rapport.core.values import Address, normalise_email
from rapport.leads.repository import LEAD_LISTING
from rapport.leads.schemas import LeadCreate
from rapport.leads.service import LeadService, lead_read
from rapport.records.service import RecordService

CUSTOM = "cf."
ADDRESS = "address."
TAGS = "tags"
SPLIT = re.compile(r"[;,]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ADDRESS_PARTS = tuple(Address.model_fields)
TRUE = frozenset({"true", "yes", "y", "1", "on"})
FALSE = frozenset({"false", "no", "n", "0", "off"})
INTEGER = re.compile(r"^[+-]?\d+$")
# Columns an export writes besides the fields: read-only, ignored by an import.
READ_ONLY = ("id", "created_at", "updated_at")

# The items are dicts, or models of the resource's schema already validated (`run_batched`).
Bulk = Callable[[RecordService, list[Any], str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ResourceSpec:
    name: str  # the URL's plural: "contacts"
    record: str  # the custom fields' resource: "contact"
    schema: type[BaseModel]
    service: type[RecordService]
    read: Callable[[RowMapping], dict[str, Any]]
    listing: Listing
    bulk: Bulk
    dedupes: tuple[str, ...]
    key: str  # the field a dedupe compares
    normalise_key: Callable[[str], str | None]
    duplicate_codes: frozenset[str]  # the domain's "already exists" errors
    # Fields that reference other records or users: importable when mapped by name, never
    # mapped automatically (their ids mean nothing in another workspace).
    references: tuple[str, ...]
    extra_export: tuple[str, ...] = ()

    @property
    def table(self) -> Table:
        return self.service.repository_class.table

    @property
    def plain_fields(self) -> tuple[str, ...]:
        skip = {"custom_fields", "address", TAGS}
        return tuple(name for name in self.schema.model_fields if name not in skip)

    @property
    def has_address(self) -> bool:
        return "address" in self.schema.model_fields

    def target_fields(self) -> list[str]:
        """Every field a column may be mapped to (custom fields aside)."""
        fields = [*self.plain_fields, TAGS]
        if self.has_address:
            fields.extend(ADDRESS + part for part in ADDRESS_PARTS)
        return fields

    def auto_fields(self) -> set[str]:
        return set(self.target_fields()) - set(self.references)

    def export_columns(self, custom: Sequence[str]) -> list[str]:
        columns = ["id", *self.plain_fields]
        if self.has_address:
            columns.extend(ADDRESS + part for part in ADDRESS_PARTS)
        columns.append(TAGS)
        columns.extend(self.extra_export)
        columns.extend(CUSTOM + name for name in custom)
        columns.extend(("created_at", "updated_at"))
        return columns

    def make_service(self, session: AsyncSession, principal: Principal) -> RecordService:
        return self.service(session, principal)  # type: ignore[call-arg]


def _key_or_none(normalise: Callable[[str], str | None]) -> Callable[[str], str | None]:
    def key(raw: str) -> str | None:
        try:
            return normalise(raw)
        except ValueError:
            return None  # the create schema reports it

    return key


async def _contacts_bulk(service: RecordService, items: list[Any], dedupe: str) -> dict[str, Any]:
    upsert = "email" if dedupe == "update" else None
    return await service.bulk_create(items, atomic=False, upsert=upsert)  # type: ignore[attr-defined]


async def _companies_bulk(service: RecordService, items: list[Any], _dedupe: str) -> dict[str, Any]:
    return await service.bulk_create(items, atomic=False)  # type: ignore[attr-defined]


async def _leads_bulk(service: RecordService, items: list[Any], dedupe: str) -> dict[str, Any]:
    return await service.bulk_create(  # type: ignore[attr-defined]
        items, atomic=False, allow_duplicate=dedupe == "create"
    )


RESOURCES: dict[str, ResourceSpec] = {
    "contacts": ResourceSpec(
        name="contacts",
        record="contact",
        schema=ContactCreate,
        service=ContactService,
        read=contact_read,
        listing=CONTACT_LISTING,
        bulk=_contacts_bulk,
        dedupes=("skip", "update", "create"),
        key="email",
        normalise_key=_key_or_none(normalise_email),
        duplicate_codes=frozenset({"contact_email_taken"}),
        references=("owner_id", "primary_company_id"),
        extra_export=("company_name",),
    ),
    "companies": ResourceSpec(
        name="companies",
        record="company",
        schema=CompanyCreate,
        service=CompanyService,
        read=company_read,
        listing=COMPANY_LISTING,
        bulk=_companies_bulk,
        dedupes=("skip", "create"),
        key="domain",
        normalise_key=_key_or_none(normalise_domain),
        duplicate_codes=frozenset({"company_domain_taken"}),
        references=("owner_id",),
    ),
    "leads": ResourceSpec(
        name="leads",
        record="lead",
        schema=LeadCreate,
        service=LeadService,
        read=lead_read,
        listing=LEAD_LISTING,
        bulk=_leads_bulk,
        dedupes=("skip", "create"),
        key="email",
        normalise_key=_key_or_none(normalise_email),
        duplicate_codes=frozenset({"lead_duplicate"}),
        references=("owner_id",),
    ),
}
RESOURCE_NAMES = tuple(RESOURCES)


# -- reading cells -------------------------------------------------------------------------------
def unescape(value: str) -> str:
    """An export protects cells a spreadsheet would run as formulas with a leading quote; an import
    takes it off again, so an export imports back unchanged."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        return value[1:]
    return value


def split_list(value: str) -> list[str]:
    return [part.strip() for part in SPLIT.split(value) if part.strip()]


def custom_value(definition: Mapping[str, Any], raw: str) -> Any:
    """A cell typed for its custom field (the definition's own checks run in the service)."""
    kind = definition["type"]
    if kind == "number":
        try:
            number = int(raw) if INTEGER.match(raw) else float(raw)
        except ValueError as exc:
            raise ValueError("must be a number") from exc
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("must be a number")
        return number
    if kind == "boolean":
        lowered = raw.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise ValueError("must be true or false")
    if kind == "multi_select":
        return split_list(raw)
    return raw


@dataclass
class CellError:
    field: str
    reason: str


def build_item(
    values: Sequence[str],
    columns: Sequence[tuple[int, str]],
    definitions: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, Any], list[CellError]]:
    """One CSV record → the JSON item the bulk path takes. Empty cells are left out (the
    schema's defaults apply); `columns` are (position in the record, target field)."""
    item: dict[str, Any] = {}
    problems: list[CellError] = []
    for position, field in columns:
        raw = values[position].strip() if position < len(values) else ""
        if not raw:
            continue
        raw = unescape(raw)
        if field == TAGS:
            item[TAGS] = split_list(raw)
        elif field.startswith(ADDRESS):
            item.setdefault("address", {})[field[len(ADDRESS) :]] = raw
        elif field.startswith(CUSTOM):
            name = field[len(CUSTOM) :]
            try:
                item.setdefault("custom_fields", {})[name] = custom_value(definitions[name], raw)
            except ValueError as exc:
                problems.append(CellError(field, str(exc)))
        else:
            item[field] = raw
    return item, problems


# -- writing cells -------------------------------------------------------------------------------
def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return ";".join(cell(v) for v in value)
    text = str(value)
    if text.startswith(FORMULA_START):
        return "'" + text  # never a formula in a spreadsheet; `unescape` reverses it
    return text


def export_row(spec: ResourceSpec, data: Mapping[str, Any], custom: Sequence[str]) -> list[str]:
    """One record as the API returns it → the cells of `spec.export_columns(custom)`."""
    out = [cell(data["id"])]
    out.extend(cell(data.get(name)) for name in spec.plain_fields)
    if spec.has_address:
        address = data.get("address") or {}
        out.extend(cell(address.get(part)) for part in ADDRESS_PARTS)
    out.append(cell(data.get(TAGS)))
    out.extend(cell(data.get(name)) for name in spec.extra_export)
    values = data.get("custom_fields") or {}
    out.extend(cell(values.get(name)) for name in custom)
    out.extend((cell(data["created_at"]), cell(data["updated_at"])))
    return out
