from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rapport.companies.schemas import CompanyRead
from rapport.core.values import Address, Email, LongText, Phone, Tags, Text

STATUSES = ("new", "contacted", "qualified", "customer", "inactive")
Status = Literal["new", "contacted", "qualified", "customer", "inactive"]
MAX_MERGE = 50

# Fields a merge may take from any of the merged contacts (`fields` in the merge request).
ContactMergeField = Literal[
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "status",
    "address",
    "notes",
    "owner_id",
    "primary_company_id",
    "custom_fields",
]
CompanyMergeField = Literal[
    "name",
    "domain",
    "industry",
    "size",
    "phone",
    "address",
    "notes",
    "owner_id",
    "custom_fields",
]
DuplicateReason = Literal["email", "phone", "name"]
CompanyDuplicateReason = Literal["domain", "name"]


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactCreate(ContactFields):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": "ada@example.com",
                    "phone": "+1 (979) 236-1958",
                    "job_title": "Analyst",
                    "status": "qualified",
                    "tags": ["vip"],
                }
            ]
        },
    )

    first_name: Text | None = Field(None, min_length=1, max_length=100, examples=["Ada"])
    last_name: Text | None = Field(None, min_length=1, max_length=100, examples=["Lovelace"])
    email: Email | None = None
    phone: Phone = None
    job_title: Text | None = Field(None, min_length=1, max_length=200, examples=["Analyst"])
    status: Status = "new"
    address: Address | None = None
    notes: LongText | None = Field(None, max_length=10000)
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    owner_id: uuid.UUID | None = None
    primary_company_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _named(self) -> ContactCreate:
        if not (self.first_name or self.last_name or self.email):
            raise ValueError("a contact needs a first name, a last name or an email")
        return self


class ContactUpdate(ContactFields):
    first_name: Text | None = Field(None, min_length=1, max_length=100)
    last_name: Text | None = Field(None, min_length=1, max_length=100)
    email: Email | None = None
    phone: Phone = None
    job_title: Text | None = Field(None, min_length=1, max_length=200)
    status: Status | None = Field(None, description="null leaves the status as it is.")
    address: Address | None = None
    notes: LongText | None = Field(None, max_length=10000)
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None
    owner_id: uuid.UUID | None = None
    primary_company_id: uuid.UUID | None = None


class ContactBulkUpdate(ContactUpdate):
    id: uuid.UUID


class ContactRead(BaseModel):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    full_name: str = Field(description="First and last name, trimmed (empty when neither is set).")
    email: str | None
    phone: str | None
    phone_e164: str | None
    job_title: str | None
    status: Status
    address: dict[str, Any]
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    owner_id: uuid.UUID | None
    primary_company_id: uuid.UUID | None
    company_name: str | None = Field(description="The primary company's name.")
    merged_into_id: uuid.UUID | None
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


class ContactBulkRead(ContactRead):
    outcome: Literal["created", "updated"] = Field(
        description="`updated` when `upsert=email` found a live contact with the same email."
    )


# -- links ---------------------------------------------------------------------------------------
class LinkBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"role": "CFO", "is_primary": True}]},
    )

    role: Text | None = Field(None, max_length=100, examples=["CFO"])
    is_primary: bool | None = Field(
        None,
        description="true makes the company the contact's primary company; false on the current "
        "primary company clears it; omitted leaves the primary company as it is.",
    )


class LinkRead(BaseModel):
    contact_id: uuid.UUID
    company_id: uuid.UUID
    role: str | None
    is_primary: bool
    linked_at: datetime


class LinkDeleted(BaseModel):
    id: str = Field(description="`<contact_id>:<company_id>`")
    contact_id: uuid.UUID
    company_id: uuid.UUID
    deleted: bool = True


class LinkedCompanyRead(BaseModel):
    company_id: uuid.UUID
    role: str | None
    is_primary: bool
    linked_at: datetime
    company: CompanyRead


class LinkedContactRead(BaseModel):
    contact_id: uuid.UUID
    role: str | None
    is_primary: bool
    linked_at: datetime
    contact: ContactRead


# -- duplicates and merge ------------------------------------------------------------------------
class ContactMerge(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "winner_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7d",
                    "loser_ids": ["0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7e"],
                    "fields": {"email": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7e"},
                }
            ]
        },
    )

    winner_id: uuid.UUID
    loser_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_MERGE)
    fields: dict[ContactMergeField, uuid.UUID] = Field(
        default_factory=dict,
        description="Per field, the id of the merged contact whose value wins. Fields not named "
        "keep the winner's value, or the first loser's when the winner has none.",
    )


class CompanyMerge(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "winner_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7d",
                    "loser_ids": ["0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7e"],
                    "fields": {"domain": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7e"},
                }
            ]
        },
    )

    winner_id: uuid.UUID
    loser_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_MERGE)
    fields: dict[CompanyMergeField, uuid.UUID] = Field(
        default_factory=dict,
        description="Per field, the id of the merged company whose value wins. Fields not named "
        "keep the winner's value, or the first loser's when the winner has none.",
    )


class MergeMoved(BaseModel):
    links: int = Field(description="Contact-company links moved to the winner.")
    contacts: int = Field(0, description="Contacts whose primary company moved (companies).")
    activities: int
    tasks: int
    deals: int
    leads: int


class ContactMergeResult(BaseModel):
    winner: ContactRead
    loser_ids: list[uuid.UUID]
    moved: MergeMoved


class CompanyMergeResult(BaseModel):
    winner: CompanyRead
    loser_ids: list[uuid.UUID]
    moved: MergeMoved


class DuplicateGroup(BaseModel):
    reason: DuplicateReason
    key: str = Field(
        description="What the contacts share: the email (without +tag), the E.164 phone, or the "
        "lower-cased full name (at the same primary company).",
        examples=["ada@example.com"],
    )
    count: int = Field(description="Contacts in the group (at most 50 are listed).")
    contacts: list[ContactRead]


class CompanyDuplicateGroup(BaseModel):
    reason: CompanyDuplicateReason
    key: str = Field(examples=["acme ltd"])
    count: int = Field(description="Companies in the group (at most 50 are listed).")
    companies: list[CompanyRead]
