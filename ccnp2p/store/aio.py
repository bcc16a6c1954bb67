"""Async access to the (blocking) blockstore.

Disk I/O runs in a worker thread in the daemon so the event loop keeps serving peers. Under a
virtual clock (tests, the simulator) worker threads are invisible to trio's autojump and would
let timeouts fire while a read is still running, so there the calls run inline: whoever runs
trio with a :class:`trio.testing.MockClock` gets inline I/O with no flag to set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
import trio.testing

from ccnp2p.objects.cid import Cid
from ccnp2p.store.blockstore import Blockstore

T = TypeVar("T")


def virtual_time() -> bool:
    """Whether this trio run uses a virtual clock (then blocking calls must run inline)."""
    return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)


async def run_blocking(
    fn: Callable[..., T], *args: object, limiter: trio.CapacityLimiter | None = None
) -> T:
    """Run a blocking call in a worker thread, or inline under a virtual clock."""
    if virtual_time():
        await trio.lowlevel.checkpoint()
        return fn(*args)
    return await trio.to_thread.run_sync(fn, *args, limiter=limiter)


class AsyncBlocks:
    """The async face of a :class:`Blockstore` (``threaded=False`` under a virtual clock)."""

    def __init__(self, blocks: Blockstore, *, threaded: bool = True) -> None:
        self.sync = blocks
        self.threaded = threaded

    async def run(self, fn: Callable[[], T]) -> T:
        if self.threaded and not virtual_time():
            return await trio.to_thread.run_sync(fn)
        await trio.lowlevel.checkpoint()
        return fn()

    def has(self, cid: Cid) -> bool:
        return self.sync.has(cid)  # a stat(); cheap enough to stay on the loop

    async def get(self, cid: Cid) -> bytes:
        return await self.run(lambda: self.sync.get(cid))

    async def put(self, cid: Cid, data: bytes, *, verify: bool = True) -> bool:
        return await self.run(lambda: self.sync.put(cid, data, verify=verify))
