from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Index,
    String,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import (
    Base,
    RecordMixin,
    SoftDeleteMixin,
    TenantMixin,
    UserFacingMixin,
    member_fk,
    record_fk,
)

# Deals without an expected close date sort after every dated one. Not 9999-12-31: that is
# date.max, which asyncpg sends as PostgreSQL's 'infinity', so a cursor carrying it would compare
# greater than the inline '9999-12-31' below and page over undated deals forever.
FAR_DATE = date(9999, 12, 30)


def close_date_sort_key(expected_close_date: ColumnElement[Any]) -> ColumnElement[date]:
    """`coalesce(expected_close_date, '9999-12-30')`, exactly as index ix_deal_sort_close holds it.

    The constant is inline SQL (a bound parameter never matches an index expression), in the text
    a DATE is stored as on SQLite; PostgreSQL reads it as a date because the column is one."""
    return func.coalesce(expected_close_date, literal_column(f"'{FAR_DATE.isoformat()}'", Date))


class Pipeline(RecordMixin, SoftDeleteMixin, Base):
    __tablename__ = "pipeline"
    __table_args__ = (Index("ix_pipeline_workspace_position", "workspace_id", "position", "id"),)

    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)


class Stage(RecordMixin, Base):
    __tablename__ = "stage"
    __table_args__ = (
        record_fk("pipeline_id", "pipeline"),
        UniqueConstraint("workspace_id", "pipeline_id", "name"),
        Index("ix_stage_pipeline_position", "workspace_id", "pipeline_id", "position"),
    )

    pipeline_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    probability: Mapped[int] = mapped_column(default=0)  # percent, 0..100
    is_won: Mapped[bool] = mapped_column(default=False)
    is_lost: Mapped[bool] = mapped_column(default=False)


class Deal(RecordMixin, SoftDeleteMixin, UserFacingMixin, Base):
    __tablename__ = "deal"
    __table_args__ = (
        Index("ix_deal_workspace_currency", "workspace_id", "currency"),
        Index("ix_deal_sort_amount", "workspace_id", text("coalesce(amount, 0)"), "id"),
        member_fk("owner_id"),
        record_fk("pipeline_id", "pipeline"),
        record_fk("stage_id", "stage"),
        record_fk("contact_id", "contact"),
        record_fk("company_id", "company"),
        Index("ix_deal_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_deal_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_deal_workspace_stage", "workspace_id", "stage_id"),
        Index("ix_deal_workspace_pipeline", "workspace_id", "pipeline_id", "status"),
        Index("ix_deal_workspace_status", "workspace_id", "status"),
        Index("ix_deal_workspace_owner", "workspace_id", "owner_id"),
        Index("ix_deal_workspace_contact", "workspace_id", "contact_id"),
        Index("ix_deal_workspace_company", "workspace_id", "company_id"),
        Index("ix_deal_workspace_amount", "workspace_id", "amount", "id"),
        Index("ix_deal_workspace_close", "workspace_id", "expected_close_date", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int | None] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str | None] = mapped_column(String(3))
    pipeline_id: Mapped[uuid.UUID]
    stage_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | won | lost
    expected_close_date: Mapped[date | None]
    contact_id: Mapped[uuid.UUID | None]
    company_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None]
    won_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(String(10000))


class DealStageChange(TenantMixin, Base):
    """Stage history: every move of a deal, by whom and when."""

    __tablename__ = "deal_stage_change"
    __table_args__ = (
        record_fk("deal_id", "deal"),
        Index("ix_deal_stage_change_deal", "workspace_id", "deal_id", "changed_at"),
    )

    deal_id: Mapped[uuid.UUID]
    from_stage_id: Mapped[uuid.UUID | None]
    to_stage_id: Mapped[uuid.UUID]
    changed_at: Mapped[datetime]
    changed_by: Mapped[uuid.UUID | None]


# The close-date sort's index holds the listing's own expression (migration 0004).
_deal = Deal.__table__
Index(
    "ix_deal_sort_close",
    _deal.c.workspace_id,
    close_date_sort_key(_deal.c.expected_close_date),
    _deal.c.id,
)
