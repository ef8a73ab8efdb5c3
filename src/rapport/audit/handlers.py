"""The audit subscriber of the outbox relay: every committed event, in order, into the audit log.

It runs in the relay's transaction (its entries commit with the events' dispatch, exactly once) and
does two statements per batch, three on PostgreSQL (see `service.record`). The relay's own batches
are fresh (no entry of theirs can exist yet): on PostgreSQL their entries are copied in.
"""

from __future__ import annotations

from rapport.audit import service
from rapport.core import outbox
from rapport.core.outbox import DomainEvent, RelayContext


@outbox.subscriber("audit", "*")
async def audit_events(ctx: RelayContext, events: list[DomainEvent]) -> None:
    await service.record(ctx.session, events, fresh=ctx.fresh)
