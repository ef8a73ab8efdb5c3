from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import (
    Base,
    JSONType,
    RecordMixin,
    SoftDeleteMixin,
    UserFacingMixin,
    member_fk,
    record_fk,
)


class Contact(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    __tablename__ = "contact"
    __table_args__ = (
        Index(
            "ix_contact_sort_last_name",
            "workspace_id",
            text("coalesce(lower(last_name), '')"),
            "id",
        ),
        Index(
            "ix_contact_sort_first_name",
            "workspace_id",
            text("coalesce(lower(first_name), '')"),
            "id",
        ),
        member_fk("owner_id"),
        record_fk("primary_company_id", "company"),
        # Email is unique per workspace among live contacts, whatever its case (stored lower).
        Index(
            "uq_contact_live_email",
            "workspace_id",
            "email",
            unique=True,
            sqlite_where=text("deleted_at IS NULL AND email IS NOT NULL"),
            postgresql_where=text("deleted_at IS NULL AND email IS NOT NULL"),
        ),
        Index("ix_contact_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_contact_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_contact_workspace_last_name", "workspace_id", "last_name", "id"),
        Index("ix_contact_workspace_status", "workspace_id", "status"),
        Index("ix_contact_workspace_owner", "workspace_id", "owner_id"),
        Index("ix_contact_workspace_company", "workspace_id", "primary_company_id"),
        Index("ix_contact_workspace_phone", "workspace_id", "phone_e164"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))  # as typed
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    job_title: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), default="new")
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    notes: Mapped[str | None] = mapped_column(String(10000))
    owner_id: Mapped[uuid.UUID | None]
    primary_company_id: Mapped[uuid.UUID | None]
    merged_into_id: Mapped[uuid.UUID | None]
    last_activity_at: Mapped[datetime | None]


# Email is unique among a workspace's live contacts: a create lets this index find the holder.
LIVE_EMAIL = next(i for i in Contact.__table__.indexes if i.name == "uq_contact_live_email")


class ContactCompany(Base):
    """A contact works with a company in a role; many-to-many, readable from both sides."""

    __tablename__ = "contact_company"
    __table_args__ = (
        record_fk("contact_id", "contact"),
        record_fk("company_id", "company"),
        Index("ix_contact_company_company", "workspace_id", "company_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[str | None] = mapped_column(String(100))
    is_primary: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
