from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from rapport.core.values import LongText, Tags, Text

Kind = Literal["call", "email", "meeting", "note", "sms", "other"]
Direction = Literal["inbound", "outbound"]
LINKS = ("contact_id", "company_id", "lead_id", "deal_id")


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc


MultilineText = LongText
UTCTimestamp = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    Field(description="ISO 8601 with a timezone.", examples=["2026-03-02T14:30:00Z"]),
]


class ActivityFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActivityCreate(ActivityFields):
    kind: Kind = Field(examples=["call"])
    direction: Direction | None = Field(None, examples=["outbound"])
    subject: Text | None = Field(None, max_length=500, examples=["Intro call"])
    body: MultilineText | None = Field(None, max_length=100000, examples=["Discussed pricing."])
    duration_minutes: int | None = Field(None, ge=0, le=10000, examples=[15])
    occurred_at: UTCTimestamp | None = Field(None, description="When it happened; default now.")
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = Field(None, description="A member; defaults to the caller.")
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_a_record(self) -> ActivityCreate:
        if all(getattr(self, name) is None for name in LINKS):
            raise ValueError(f"an activity names at least one of: {', '.join(LINKS)}")
        return self


class ActivityUpdate(ActivityFields):
    kind: Kind | None = None
    direction: Direction | None = None
    subject: Text | None = Field(None, max_length=500)
    body: MultilineText | None = Field(None, max_length=100000)
    duration_minutes: int | None = Field(None, ge=0, le=10000)
    occurred_at: UTCTimestamp | None = None
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = None
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None


class ActivityBulkUpdate(ActivityUpdate):
    id: uuid.UUID


class ActivityRead(BaseModel):
    id: uuid.UUID
    kind: str
    direction: str | None
    subject: str | None
    body: str | None
    duration_minutes: int | None
    occurred_at: datetime
    contact_id: uuid.UUID | None
    company_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    author_id: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int
