"""Request and response shapes of /webhooks, and how rows read as the API returns them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import RowMapping

from rapport.webhooks.sender import SECRET_PREFIX

# `*`, or `<resource>.<verb>` where either part may be `*`: "contact.*", "*.created"...
PART = r"(?:\*|[a-z][a-z0-9_]{0,49})"
EVENT_PATTERN = re.compile(rf"^(?:\*|{PART}\.{PART})$")
MAX_PATTERNS = 100
MAX_EXPIRE_SECONDS = 7 * 24 * 3600

EVENTS_DESCRIPTION = "Event type patterns: `*` (everything), `contact.*`, `lead.converted`..."


def _check_patterns(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("give at least one pattern (`*` for every event)")
    if len(value) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} patterns")
    seen: list[str] = []
    for raw in value:
        pattern = raw.strip()
        if not EVENT_PATTERN.match(pattern):
            raise ValueError(
                f"{raw[:60]!r} is not an event pattern like `*`, `contact.*` or `lead.converted`"
            )
        if pattern not in seen:
            seen.append(pattern)
    return seen


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(
        max_length=2048,
        description="Where deliveries are POSTed: a public https URL.",
        examples=["https://example.com/hooks/rapport"],
    )
    description: str | None = Field(None, max_length=500, examples=["Sync to our data warehouse"])
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        description=EVENTS_DESCRIPTION,
        examples=[["contact.*", "lead.converted"]],
    )
    enabled: bool = True
    disabled_reason: str | None = Field(None, max_length=500)

    @field_validator("events")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str] | None:
        return _check_patterns(value)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str | None = Field(None, max_length=2048)
    description: str | None = Field(None, max_length=500)
    events: list[str] | None = Field(None, description=EVENTS_DESCRIPTION)
    enabled: bool | None = Field(
        None, description="true re-enables an endpoint (clears the reason)."
    )
    disabled_reason: str | None = Field(
        None, max_length=500, description="Why it is disabled (only with `enabled: false`)."
    )

    @field_validator("events")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        return _check_patterns(value)


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expire_previous_in_seconds: int = Field(
        24 * 3600,
        ge=0,
        le=MAX_EXPIRE_SECONDS,
        description="How long deliveries stay signed with the old secret too (0: not at all).",
    )


class WebhookEndpointRead(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    secret_hint: str = Field(description="The secret's first characters, to tell secrets apart.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookEndpointWithSecret(WebhookEndpointRead):
    secret: str = Field(
        description="The signing secret, shown only now (on create and rotation).",
        examples=[SECRET_PREFIX + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8aYZ3kO2mAc="],
    )


class WebhookAttemptRead(BaseModel):
    id: uuid.UUID
    attempt: int
    trigger: Literal["scheduled", "redeliver", "test"]
    url: str
    request_headers: dict[str, str]
    response_status: int | None
    response_body: str | None = Field(description="At most the first 2 KB.")
    latency_ms: int | None
    error: str | None
    created_at: datetime


class WebhookDeliveryRead(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryDetail(WebhookDeliveryRead):
    request_body: str = Field(description="The exact JSON body sent (signatures cover it).")
    attempts: list[WebhookAttemptRead] = Field(description="The latest 100 attempts, oldest first.")


# -- rows as the API returns them -------------------------------------------------------------
ENDPOINT_FIELDS = (
    "id",
    "url",
    "description",
    "events",
    "enabled",
    "disabled_reason",
    "disabled_at",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
    "version",
)


def secret_hint(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def endpoint_read(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    """Never the secrets: this is also what `webhook_endpoint.*` events carry."""
    out = {f: row[f] for f in ENDPOINT_FIELDS}
    out["secret_hint"] = secret_hint(row["secret"])
    return out


DELIVERY_FIELDS = (
    "id",
    "endpoint_id",
    "event_id",
    "event_type",
    "status",
    "next_attempt_at",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "created_at",
    "updated_at",
)
ATTEMPT_FIELDS = (
    "id",
    "attempt",
    "trigger",
    "url",
    "request_headers",
    "response_status",
    "response_body",
    "latency_ms",
    "error",
    "created_at",
)


def delivery_read(row: RowMapping) -> dict[str, Any]:
    out = {f: row[f] for f in DELIVERY_FIELDS}
    out["attempt_count"] = row["attempts"]
    return out


def delivery_detail(row: RowMapping, attempt_rows: list[RowMapping]) -> dict[str, Any]:
    return {
        **delivery_read(row),
        "request_body": row["payload"],
        "attempts": [{f: a[f] for f in ATTEMPT_FIELDS} for a in attempt_rows],
    }
