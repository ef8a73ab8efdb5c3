from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base


class SearchDocument(Base):
    """One row per searchable record: the text `/search` and list `search` match against.

    Kept in step by the record services on every create, update, merge, delete and erase.
    PostgreSQL indexes `content` with pg_trgm (GIN); SQLite mirrors it into an FTS5 trigram table
    (`search_fts`, created by the migration), so substring search stays fast at a million rows.
    """

    __tablename__ = "search_document"
    __table_args__ = (Index("ix_search_document_rank", "workspace_id", "resource", "updated_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(String(20), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    subtitle: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)  # lower-cased text: names, emails, phones, company
    is_deleted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]
