from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import (
    Base,
    RecordMixin,
    SoftDeleteMixin,
    UserFacingMixin,
    member_fk,
    record_fk,
)

STATUSES = ("open", "in_progress", "done", "cancelled")
PRIORITIES = ("low", "normal", "high", "urgent")


class Task(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_workspace_priority", "workspace_id", "priority"),
        member_fk("assignee_id"),
        record_fk("contact_id", "contact"),
        record_fk("company_id", "company"),
        record_fk("lead_id", "lead"),
        record_fk("deal_id", "deal"),
        Index("ix_task_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_task_workspace_due", "workspace_id", "due_at", "id"),
        Index("ix_task_workspace_assignee", "workspace_id", "assignee_id", "status", "due_at"),
        Index("ix_task_workspace_status", "workspace_id", "status", "due_at"),
        Index("ix_task_contact", "workspace_id", "contact_id"),
        Index("ix_task_company", "workspace_id", "company_id"),
        Index("ix_task_lead", "workspace_id", "lead_id"),
        Index("ix_task_deal", "workspace_id", "deal_id"),
        # Migration 0004 also indexes (workspace_id, <sort expression>, id) for the due_at and
        # priority sorts (ix_task_sort_due, ix_task_sort_priority) in raw SQL: autogenerate cannot
        # compare them on PostgreSQL (a CASE comes back pretty-printed over several lines, a
        # timestamptz constant in the session's time zone), so they are not declared here.
    )

    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(10000))
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    assignee_id: Mapped[uuid.UUID | None]
    contact_id: Mapped[uuid.UUID | None]
    company_id: Mapped[uuid.UUID | None]
    lead_id: Mapped[uuid.UUID | None]
    deal_id: Mapped[uuid.UUID | None]
    completed_at: Mapped[datetime | None]
