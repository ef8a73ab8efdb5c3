from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rapport.core.values import Text

Resource = Literal["contacts", "companies", "leads"]
Dedupe = Literal["skip", "update", "create"]
Encoding = Literal["utf-8", "cp1252", "latin-1"]
ImportStatus = Literal["queued", "running", "completed", "failed"]
ImportPhase = Literal["counting", "validating", "importing"]
ExportStatus = Literal["queued", "running", "completed", "failed"]
MAX_MAPPING = 500


class ImportOptions(BaseModel):
    """The form fields sent with the file (multipart/form-data)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resource: Resource = Field(description="What the rows are.")
    mapping: dict[str, str] | None = Field(
        None,
        max_length=MAX_MAPPING,
        description="JSON object: CSV column → field (`email`, `address.city`, `tags`, "
        "`cf.<name>`). Omitted: columns named like a field are used, others ignored.",
        examples=[{"E-mail": "email", "Given name": "first_name", "Labels": "tags"}],
    )
    dedupe: Dedupe = Field(
        "skip",
        description="A row whose email (companies: domain) a live record has: skip it, update that "
        "record (contacts), or try to create it anyway (refused where the key is unique).",
    )
    dry_run: bool = Field(False, description="Check every row and report; write nothing.")
    strict: bool = Field(False, description="Import nothing if any row is refused.")
    delimiter: Literal[",", ";", "\t", "|"] = ","
    encoding: Encoding = "utf-8"


IMPORT_FORM_SCHEMA = {
    "type": "object",
    "required": ["file", "resource"],
    "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The CSV file."},
        "resource": {"type": "string", "enum": ["contacts", "companies", "leads"]},
        "mapping": {
            "type": "string",
            "description": "JSON object: CSV column → field (`email`, `address.city`, `tags`, "
            "`cf.<name>`). Omitted: columns named like a field are used, others ignored.",
            "example": '{"E-mail": "email", "Labels": "tags"}',
        },
        "dedupe": {"type": "string", "enum": ["skip", "update", "create"], "default": "skip"},
        "dry_run": {"type": "boolean", "default": False},
        "strict": {"type": "boolean", "default": False},
        "delimiter": {"type": "string", "enum": [",", ";", "\t", "|"], "default": ","},
        "encoding": {"type": "string", "enum": ["utf-8", "cp1252", "latin-1"], "default": "utf-8"},
    },
}


class ImportRead(BaseModel):
    id: uuid.UUID
    resource: Resource
    status: ImportStatus
    phase: ImportPhase | None = Field(
        description="While running: counting rows, validating (dry run, strict), or importing."
    )
    filename: str
    size_bytes: int
    encoding: Encoding
    delimiter: str
    mapping: dict[str, str] = Field(description="CSV column → field, as used.")
    ignored_columns: list[str]
    dedupe: Dedupe
    dry_run: bool
    strict: bool
    total: int | None = Field(description="Rows in the file (null until counted).")
    processed: int = Field(description="Rows handled so far (in the current phase).")
    created: int
    updated: int
    skipped: int
    errors: int = Field(description="Rows refused; reasons in errors.csv.")
    failure_reason: str | None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExportCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "resource": "contacts",
                    "filters": {
                        "status": "customer",
                        "tag": "vip",
                        "created_at[gte]": "2026-01-01",
                    },
                }
            ]
        },
    )

    resource: Resource
    filters: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="The list endpoint's filters, as its query parameters would carry them "
        "(`status`, `tag`, `owner_id` (or `me`), `created_at[gte]`, `cf.<name>`...).",
    )
    search: Text | None = Field(None, max_length=200, description="As the list's `search`.")


class ExportRead(BaseModel):
    id: uuid.UUID
    resource: Resource
    status: ExportStatus
    filters: dict[str, str]
    search: str | None
    rows: int = Field(description="Rows written so far.")
    size_bytes: int
    failure_reason: str | None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
