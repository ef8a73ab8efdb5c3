from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class NotificationRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID = Field(description="The recipient: always the caller.")
    type: str = Field(
        examples=["task.assigned"],
        description="task.assigned, contact.assigned, lead.assigned, deal.assigned, "
        "lead.converted, task.due, webhook_endpoint.disabled",
    )
    title: str = Field(examples=["Task assigned to you: Send the proposal"])
    body: str | None = Field(None, examples=["Due 2026-12-01T09:00:00Z, priority high"])
    resource_type: str | None = Field(None, examples=["task"])
    resource_id: uuid.UUID | None = None
    data: dict[str, Any] = Field(
        default_factory=dict, examples=[{"name": "Send the proposal", "event_type": "task.created"}]
    )
    status: Literal["unread", "read"]
    read_at: datetime | None = None
    created_at: datetime


class UnreadCount(BaseModel):
    unread: int = Field(examples=[3])


class ReadAllResult(BaseModel):
    marked_read: int = Field(examples=[3], description="How many were unread until now.")
    read_at: datetime
