from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import (
    Base,
    RecordMixin,
    SoftDeleteMixin,
    UserFacingMixin,
    member_fk,
    record_fk,
)


class Lead(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    __tablename__ = "lead"
    __table_args__ = (
        Index("ix_lead_workspace_source", "workspace_id", "source"),
        Index("ix_lead_workspace_budget_min", "workspace_id", "budget_min"),
        Index("ix_lead_workspace_budget_max", "workspace_id", "budget_max"),
        Index("ix_lead_sort_last_name", "workspace_id", text("coalesce(last_name, '')"), "id"),
        Index("ix_lead_sort_value", "workspace_id", text("coalesce(value, 0)"), "id"),
        member_fk("owner_id"),
        record_fk("converted_contact_id", "contact"),
        record_fk("converted_company_id", "company"),
        record_fk("converted_deal_id", "deal"),
        Index("ix_lead_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_lead_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_lead_workspace_status", "workspace_id", "status", "created_at"),
        Index("ix_lead_workspace_owner", "workspace_id", "owner_id"),
        Index(
            "ix_lead_workspace_email",
            "workspace_id",
            "email",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_lead_workspace_phone",
            "workspace_id",
            "phone_e164",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_lead_workspace_value", "workspace_id", "value", "id"),
        # Deleting a contact, company or deal checks these foreign keys: without an index each
        # check reads every lead of the table.
        Index("ix_lead_converted_contact", "workspace_id", "converted_contact_id"),
        Index("ix_lead_converted_company", "workspace_id", "converted_company_id"),
        Index("ix_lead_converted_deal", "workspace_id", "converted_deal_id"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    company_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), default="new")
    source: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[int | None] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str | None] = mapped_column(String(3))
    budget_min: Mapped[int | None] = mapped_column(BigInteger)
    budget_max: Mapped[int | None] = mapped_column(BigInteger)
    notes: Mapped[str | None] = mapped_column(String(10000))
    owner_id: Mapped[uuid.UUID | None]
    activity_count: Mapped[int] = mapped_column(default=0)
    converted_at: Mapped[datetime | None]
    converted_contact_id: Mapped[uuid.UUID | None]
    converted_company_id: Mapped[uuid.UUID | None]
    converted_deal_id: Mapped[uuid.UUID | None]
