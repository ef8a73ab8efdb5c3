from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rapport.core.values import Currency, Email, LongText, MinorUnits, Phone, Tags, Text

STATUS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
MAX_STATUSES = 50
RESERVED_STATUS_NAMES = frozenset({"all"})  # `status=all` lists every status


def _blank_to_none(value: str | None) -> str | None:
    return value if value else None


def _status_name(value: str) -> str:
    if not STATUS_NAME.match(value):
        raise ValueError("is 1 to 30 lower-case letters, digits or underscores, starting a letter")
    if value in RESERVED_STATUS_NAMES:
        raise ValueError("'all' is reserved (status=all lists every status)")
    return value


OptText = Annotated[Text | None, AfterValidator(_blank_to_none)]
OptLongText = Annotated[LongText | None, AfterValidator(_blank_to_none)]
StatusName = Annotated[str, AfterValidator(_status_name)]
Status = Annotated[
    str | None,
    Field(
        max_length=30,
        description="One of the workspace's lead statuses (GET /leads/statuses).",
        examples=["qualified"],
    ),
]


class LeadFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LeadCreate(LeadFields):
    """At least one of first_name, last_name, email, phone or company_name is required. `value`
    needs a `currency`; `budget_min` may not exceed `budget_max`."""

    first_name: OptText = Field(None, max_length=100, examples=["Ada"])
    last_name: OptText = Field(None, max_length=100, examples=["Lovelace"])
    email: Email | None = None
    phone: Phone = None
    company_name: OptText = Field(None, max_length=200, examples=["Analytical Engines Ltd"])
    status: Status = Field(None, description="Default: new. Never 'converted' (use /convert).")
    source: OptText = Field(None, max_length=100, examples=["website"])
    value: MinorUnits | None = None
    currency: Currency | None = None
    budget_min: MinorUnits | None = Field(None, examples=[30000000])
    budget_max: MinorUnits | None = Field(None, examples=[45000000])
    notes: OptLongText = Field(None, max_length=10000)
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    owner_id: uuid.UUID | None = None


class LeadUpdate(LeadFields):
    first_name: OptText = Field(None, max_length=100)
    last_name: OptText = Field(None, max_length=100)
    email: Email | None = None
    phone: Phone = None
    company_name: OptText = Field(None, max_length=200)
    status: Status = Field(
        None, description="Moves along the workspace's transitions; each move is on the timeline."
    )
    source: OptText = Field(None, max_length=100)
    value: MinorUnits | None = None
    currency: Currency | None = None
    budget_min: MinorUnits | None = None
    budget_max: MinorUnits | None = None
    notes: OptLongText = Field(None, max_length=10000)
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None
    owner_id: uuid.UUID | None = None


class LeadBulkUpdate(LeadUpdate):
    id: uuid.UUID


class LeadRead(BaseModel):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    full_name: str | None
    email: str | None
    phone: str | None
    phone_e164: str | None
    company_name: str | None
    status: str
    source: str | None
    value: int | None
    currency: str | None
    budget_min: int | None
    budget_max: int | None
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    owner_id: uuid.UUID | None
    activity_count: int = Field(description="Activities on the lead's timeline (read-only).")
    converted_at: datetime | None
    converted_contact_id: uuid.UUID | None
    converted_company_id: uuid.UUID | None
    converted_deal_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


# -- statuses -----------------------------------------------------------------------------------
class LeadStatuses(BaseModel):
    statuses: list[str] = Field(
        examples=[["new", "contacted", "qualified", "negotiation", "converted", "closed", "lost"]]
    )
    transitions: dict[str, list[str]] = Field(
        description="For each status, the statuses a lead may move to by PATCH. Nothing moves "
        "into 'converted' except POST /leads/{id}/convert, and 'converted' moves nowhere.",
        examples=[{"lost": ["contacted", "new"]}],
    )


class LeadStatusesUpdate(LeadFields):
    """Replaces the lists. Statuses must include 'new' and 'converted'. Transitions not given for
    a status take the default rule (any other status; 'lost' and 'closed' only back to 'contacted'
    or 'new'); omitting `transitions` resets them all to the default rule."""

    statuses: list[StatusName] = Field(min_length=2, max_length=MAX_STATUSES)
    transitions: dict[StatusName, list[StatusName]] | None = None


# -- conversion ---------------------------------------------------------------------------------
class LeadConvertDeal(LeadFields):
    name: Text | None = Field(
        None, min_length=1, max_length=200, description='Default: "<company or full name> deal".'
    )
    amount: MinorUnits | None = Field(None, description="Default: the lead's value.")
    currency: Currency | None = Field(None, description="Default: the lead's currency.")
    pipeline_id: uuid.UUID | None = Field(None, description="Default: the default pipeline.")
    stage_id: uuid.UUID | None = Field(None, description="Default: the pipeline's first stage.")


class LeadConvert(LeadFields):
    contact_id: uuid.UUID | None = Field(
        None, description="Link this existing contact instead of creating one."
    )
    company_id: uuid.UUID | None = Field(
        None, description="Link this existing company instead of creating or matching one."
    )
    create_company: bool = Field(
        True,
        description="Without company_id: link the company with the lead's company_name (or its "
        "email's domain), or create one from company_name. false: no company.",
    )
    deal: LeadConvertDeal | None = Field(
        default_factory=LeadConvertDeal, description="null: convert without a deal."
    )


class LeadConversion(BaseModel):
    lead: LeadRead
    contact_id: uuid.UUID
    contact_created: bool
    company_id: uuid.UUID | None
    company_created: bool
    deal_id: uuid.UUID | None
