from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rapport.activities.schemas import MultilineText, UTCTimestamp
from rapport.core.values import Tags, Text

Status = Literal["open", "in_progress", "done", "cancelled"]
Priority = Literal["low", "normal", "high", "urgent"]
RELATED = ("contact_id", "company_id", "lead_id", "deal_id")
RELATED_RULE = f"a task relates to one record at most: one of {', '.join(RELATED)}"


class TaskFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TaskCreate(TaskFields):
    title: Text = Field(min_length=1, max_length=500, examples=["Send the proposal"])
    description: MultilineText | None = Field(None, max_length=10000)
    due_at: UTCTimestamp | None = None
    status: Status = "open"
    priority: Priority = "normal"
    assignee_id: uuid.UUID | None = Field(None, description="A member of the workspace.")
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_related_record(self) -> TaskCreate:
        if sum(getattr(self, name) is not None for name in RELATED) > 1:
            raise ValueError(RELATED_RULE)
        return self


class TaskUpdate(TaskFields):
    title: Text | None = Field(None, min_length=1, max_length=500)
    description: MultilineText | None = Field(None, max_length=10000)
    due_at: UTCTimestamp | None = None
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None


class TaskBulkUpdate(TaskUpdate):
    id: uuid.UUID


class TaskRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str | None
    due_at: datetime | None
    status: str
    priority: str
    assignee_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    company_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    completed_at: datetime | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int
