"""CSV imports, their per-row errors, and CSV exports.

An import row is both what the client polls and the job's checkpoint: `byte_offset` / `line` say
where the last committed chunk ended, so a job that dies resumes there; `lock_token` /
`locked_until` keep two runners (a job and the CLI, or a job whose lease ran out) off the same file.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base, JSONType, TenantMixin, TimestampMixin


class CsvImport(TenantMixin, TimestampMixin, Base):
    __tablename__ = "csv_import"

    resource: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    phase: Mapped[str | None] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    encoding: Mapped[str] = mapped_column(String(20), default="utf-8")
    delimiter: Mapped[str] = mapped_column(String(1), default=",")
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)  # the header, as read
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ignored_columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    dedupe: Mapped[str] = mapped_column(String(10), default="skip")
    dry_run: Mapped[bool] = mapped_column(default=False)
    strict: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    byte_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    line: Mapped[int] = mapped_column(Integer, default=0)  # physical lines before byte_offset
    lock_token: Mapped[uuid.UUID | None]
    locked_until: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID]
    actor_type: Mapped[str] = mapped_column(String(20))
    credential_id: Mapped[uuid.UUID]
    role: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CsvImportError(TenantMixin, Base):
    """One reason a row was refused; a row refused for three fields has three."""

    __tablename__ = "csv_import_error"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "import_id"],
            ["csv_import.workspace_id", "csv_import.id"],
            ondelete="CASCADE",
        ),
        Index("ix_csv_import_error_import", "workspace_id", "import_id", "line", "id"),
    )

    import_id: Mapped[uuid.UUID]
    line: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(200))
    field: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    row: Mapped[list[str]] = mapped_column(JSONType, default=list)


class CsvExport(TenantMixin, TimestampMixin, Base):
    __tablename__ = "csv_export"

    resource: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    search: Mapped[str | None] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID]
    actor_type: Mapped[str] = mapped_column(String(20))
    credential_id: Mapped[uuid.UUID]
    role: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
