from __future__ import annotations

import uuid
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
)

LIVE = text("deleted_at IS NULL")


class Company(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    __tablename__ = "company"
    __table_args__ = (
        Index("ix_company_workspace_size", "workspace_id", "size"),
        member_fk("owner_id"),
        Index(
            "uq_company_live_domain",
            "workspace_id",
            "domain",
            unique=True,
            sqlite_where=text("deleted_at IS NULL AND domain IS NOT NULL"),
            postgresql_where=text("deleted_at IS NULL AND domain IS NOT NULL"),
        ),
        Index("ix_company_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_company_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_company_workspace_name", "workspace_id", "name", "id"),
        Index("ix_company_workspace_industry", "workspace_id", "industry"),
        Index("ix_company_workspace_owner", "workspace_id", "owner_id"),
        Index("ix_company_workspace_phone", "workspace_id", "phone_e164"),
    )

    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))  # normalised: lower case, no scheme/www
    industry: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(50))  # as typed
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    notes: Mapped[str | None] = mapped_column(String(10000))
    owner_id: Mapped[uuid.UUID | None]
    merged_into_id: Mapped[uuid.UUID | None]
