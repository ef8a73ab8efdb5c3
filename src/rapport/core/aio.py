"""Small asyncio helpers the kernel and the domains share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_all(tasks: Iterable[asyncio.Task[object] | None]) -> None:
    """Cancel background tasks and wait for each to finish; what they raise on the way out
    (their cancellation, a failure they were stopped in) is theirs and ends here."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
