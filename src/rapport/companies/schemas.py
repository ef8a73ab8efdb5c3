from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rapport.core.values import Address, LongText, Phone, Tags, Text

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
SIZES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001+")


def normalise_domain(value: str | None) -> str | None:
    """ "https://www.Acme.com/about" → "acme.com"."""
    if value is None or not value.strip():
        return None
    host = value.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split("@")[-1].split(":", 1)[0]
    host = host.removeprefix("www.").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError("is not a domain name") from exc
    if not DOMAIN.match(host):
        raise ValueError("is not a domain name")
    return host


Domain = Annotated[
    str | None, Field(max_length=300, examples=["acme.com"]), AfterValidator(normalise_domain)
]
Size = Annotated[
    str | None, Field(None, description=f"One of {', '.join(SIZES)}", examples=["51-200"])
]


def _size(value: str | None) -> str | None:
    if value is not None and value not in SIZES:
        raise ValueError(f"must be one of: {', '.join(SIZES)}")
    return value


class CompanyFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CompanyCreate(CompanyFields):
    name: Text = Field(min_length=1, max_length=200, examples=["Acme Ltd"])
    domain: Domain = None
    industry: Text | None = Field(None, max_length=100, examples=["Manufacturing"])
    size: Annotated[str | None, AfterValidator(_size)] = Field(None, examples=["51-200"])
    phone: Phone = None
    address: Address | None = None
    notes: LongText | None = Field(None, max_length=10000)
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    owner_id: uuid.UUID | None = None


class CompanyUpdate(CompanyFields):
    name: Text | None = Field(None, min_length=1, max_length=200)
    domain: Domain = None
    industry: Text | None = Field(None, max_length=100)
    size: Annotated[str | None, AfterValidator(_size)] = None
    phone: Phone = None
    address: Address | None = None
    notes: LongText | None = Field(None, max_length=10000)
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None
    owner_id: uuid.UUID | None = None


class CompanyBulkUpdate(CompanyUpdate):
    id: uuid.UUID


class CompanyRead(BaseModel):
    id: uuid.UUID
    name: str
    domain: str | None
    industry: str | None
    size: str | None
    phone: str | None
    phone_e164: str | None
    address: dict[str, Any]
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    owner_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int
