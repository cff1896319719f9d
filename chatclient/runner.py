"""``run(main())``: ``asyncio.run`` for bots that ends cleanly on Ctrl-C and SIGTERM.

A signal cancels the main task, so ``async with connect(...)`` blocks close (the state
file is saved, the socket closed) and the process exits with status 130 (SIGINT) or 0
(SIGTERM, how systemd stops a service) without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any

EXIT_INTERRUPTED = 130


def run(main: Coroutine[Any, Any, Any]) -> int:
    """Run ``main`` to its end or to Ctrl-C/SIGTERM; returns an exit status (0, or 130
    after Ctrl-C). Exceptions other than the cancellation propagate."""
    received: list[int] = []

    async def supervised() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, _stop, task, received, sig)
        try:
            await task
        except asyncio.CancelledError:
            if not received:
                raise

    try:
        asyncio.run(supervised())
    except KeyboardInterrupt:  # a second Ctrl-C, or a platform without signal handlers
        return EXIT_INTERRUPTED
    if received and received[0] == signal.SIGINT:
        return EXIT_INTERRUPTED
    return 0


def _stop(task: asyncio.Future[Any], received: list[int], sig: int) -> None:
    received.append(sig)
    task.cancel()
