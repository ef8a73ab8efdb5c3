from __future__ import annotations

from sqlalchemy import Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base, RecordMixin, SoftDeleteMixin


class Tag(RecordMixin, SoftDeleteMixin, Base):
    __tablename__ = "tag"
    __table_args__ = (
        # Names are unique per workspace among live tags, whatever their case.
        Index(
            "uq_tag_live_name",
            "workspace_id",
            func.lower(text("name")),
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_tag_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_tag_workspace_updated", "workspace_id", "updated_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str | None] = mapped_column(String(7))
    description: Mapped[str | None] = mapped_column(String(1000))
