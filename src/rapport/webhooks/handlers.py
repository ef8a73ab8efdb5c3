"""What the webhooks module registers with the kernel: the relay subscriber and the job kind.

Imported by `rapport.webhooks.router`, so building the app registers them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from rapport.core import jobs, outbox
from rapport.core.outbox import DomainEvent, RelayContext
from rapport.webhooks.delivery import DELIVER, RETRY_SCHEDULE, fan_out, give_up, run_delivery


@outbox.subscriber("webhooks", "*")
async def deliveries_for_events(ctx: RelayContext, events: list[DomainEvent]) -> None:
    await fan_out(ctx, events)


async def delivery_died(ctx: jobs.JobContext, error: str) -> None:
    assert ctx.workspace_id is not None
    await give_up(ctx.db, ctx.workspace_id, uuid.UUID(ctx.payload["delivery_id"]), error, ctx.now())


@jobs.handler(DELIVER, schedule=RETRY_SCHEDULE, lease=timedelta(minutes=2), on_dead=delivery_died)
async def deliver(ctx: jobs.JobContext) -> None:
    """One attempt of one delivery; a failure raises so the runner retries on the schedule."""
    assert ctx.workspace_id is not None
    await run_delivery(
        ctx.db,
        ctx.services,
        ctx.workspace_id,
        uuid.UUID(ctx.payload["delivery_id"]),
        now=ctx.now,
        retry_in=None if ctx.final else RETRY_SCHEDULE[ctx.attempt - 1],
    )
