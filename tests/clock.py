"""A controllable clock for background work: retries, backoff and schedules without sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from rapport.core.clock import utcnow


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or utcnow()

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current
