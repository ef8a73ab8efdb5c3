from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TicketRead(BaseModel):
    ticket: str = Field(description="Single use; pass it as `?ticket=` to `GET /api/v1/ws`.")
    expires_at: datetime
    expires_in: int = Field(description="Seconds the ticket stays valid.", examples=[30])
    url: str = Field(
        description="The stream's path with the ticket (on the API's ws:// or wss:// origin).",
        examples=["/api/v1/ws?ticket=eyJ..."],
    )
