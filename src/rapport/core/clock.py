"""The one source of "now", so tests and jobs can reason about time in one place."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
