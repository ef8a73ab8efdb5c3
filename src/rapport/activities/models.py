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

KINDS = ("call", "email", "meeting", "note", "sms", "other")
DIRECTIONS = ("inbound", "outbound")


class Activity(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    """A call, email, meeting, note or SMS on the timeline of the records it names."""

    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_workspace_direction", "workspace_id", "direction"),
        Index("ix_activity_workspace_author", "workspace_id", "author_id"),
        member_fk("author_id"),
        record_fk("contact_id", "contact"),
        record_fk("company_id", "company"),
        record_fk("lead_id", "lead"),
        record_fk("deal_id", "deal"),
        Index("ix_activity_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_activity_workspace_occurred", "workspace_id", "occurred_at", "created_at", "id"),
        Index(
            "ix_activity_contact_timeline",
            "workspace_id",
            "contact_id",
            "occurred_at",
            "created_at",
        ),
        Index(
            "ix_activity_company_timeline",
            "workspace_id",
            "company_id",
            "occurred_at",
            "created_at",
        ),
        Index("ix_activity_lead_timeline", "workspace_id", "lead_id", "occurred_at", "created_at"),
        Index("ix_activity_deal_timeline", "workspace_id", "deal_id", "occurred_at", "created_at"),
        Index("ix_activity_workspace_kind", "workspace_id", "kind"),
    )

    kind: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str | None] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(String(100000))
    duration_minutes: Mapped[int | None]
    occurred_at: Mapped[datetime]
    contact_id: Mapped[uuid.UUID | None]
    company_id: Mapped[uuid.UUID | None]
    lead_id: Mapped[uuid.UUID | None]
    deal_id: Mapped[uuid.UUID | None]
    author_id: Mapped[uuid.UUID | None]
