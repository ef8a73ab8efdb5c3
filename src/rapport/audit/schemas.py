from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldChange(BaseModel):
    """One field's value before and after (`null` when it had none)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Any = Field(None, alias="from", examples=["Ada"])
    to: Any = Field(None, examples=["Ada B."])


class AuditEntryRead(BaseModel):
    """Who changed what, when, and through which credential."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c80",
                    "event_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7f",
                    "event_type": "contact.updated",
                    "resource_type": "contact",
                    "resource_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c7d",
                    "action": "updated",
                    "actor_type": "api_key",
                    "actor_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c70",
                    "credential_id": "0193a6f0-c2f3-7c4e-9b1d-2e3f4a5b6c71",
                    "changes": {"job_title": {"from": "CFO", "to": "CEO"}},
                    "details": None,
                    "occurred_at": "2026-03-02T14:30:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The domain event this entry records.")
    event_type: str = Field(examples=["contact.updated"])
    resource_type: str = Field(description="The event type's prefix.", examples=["contact"])
    resource_id: uuid.UUID | None = Field(
        description="The record concerned (null for events about no single record)."
    )
    action: str = Field(description="The event type's verb.", examples=["updated"])
    actor_type: str | None = Field(
        description="`user` (a login session) or `api_key`; null for actions of the system or "
        "of a user not yet signed in (registration).",
        examples=["user"],
    )
    actor_id: uuid.UUID | None = Field(description="The user (an API key acts for its creator).")
    credential_id: uuid.UUID | None = Field(
        description="The login session family or the API key the change was made with."
    )
    changes: dict[str, FieldChange] = Field(
        description="Field → {from, to}; nested objects (address, custom_fields) by dotted path. "
        "Secrets are shown as `[redacted]`; `updated_at` and `version` are left out."
    )
    details: dict[str, Any] | None = Field(
        description="What the event carried besides the record's state (a merge's winner_id, "
        "loser_ids and moved counts; a conversion's results), or the payload of an event that "
        "is not a record's state (links, role changes)."
    )
    occurred_at: datetime
