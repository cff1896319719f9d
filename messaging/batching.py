"""Per-socket database work grouped into one database-thread hop (connects, closes).

A call that finds its batcher idle goes to the database thread at once, alone; calls
made while a batch is there wait and go together in the next one (at most `MAX`). One
socket opening alone costs one hop, as before; a storm of them costs one hop, one
transaction and a few queries per batch instead of per socket.
"""

import asyncio
import weakref
from collections.abc import Callable

from . import dbthread


class Batcher:
    """`await batcher(item)` runs `fn(items)` on the database thread for a batch of items
    and returns this item's result (`fn` returns one per item, in order; an exception in
    its place is raised to that caller, one raised by `fn` to every caller of the batch)."""

    MAX = 100

    def __init__(self, fn: Callable[[list], list]) -> None:
        self.run = dbthread.database_call(fn)
        self.loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def __call__(self, item):
        loop = asyncio.get_running_loop()
        state = self.loops.get(loop)
        if state is None:
            state = self.loops[loop] = _LoopState()
        future = loop.create_future()
        state.pending.append((item, future))
        if state.task is None or state.task.done():
            state.task = loop.create_task(self._drain(state))
        return await future

    async def _drain(self, state: "_LoopState") -> None:
        while state.pending:
            batch, state.pending = state.pending[: self.MAX], state.pending[self.MAX :]
            try:
                results = await self.run([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class _LoopState:
    def __init__(self) -> None:
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.task: asyncio.Task | None = None  # a reference, so the drain is not collected
