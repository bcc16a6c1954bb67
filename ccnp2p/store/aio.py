"""Async access to the (blocking) blockstore.

Disk I/O runs in a worker thread in the daemon so the event loop keeps serving peers. Under a
virtual clock (tests, the simulator) worker threads are invisible to trio's autojump and would
let timeouts fire while a read is still running, so there the calls run inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from ccnp2p.objects.cid import Cid
from ccnp2p.store.blockstore import Blockstore

T = TypeVar("T")


class AsyncBlocks:
    """The async face of a :class:`Blockstore` (``threaded=False`` under a virtual clock)."""

    def __init__(self, blocks: Blockstore, *, threaded: bool = True) -> None:
        self.sync = blocks
        self.threaded = threaded

    async def run(self, fn: Callable[[], T]) -> T:
        if self.threaded:
            return await trio.to_thread.run_sync(fn)
        await trio.lowlevel.checkpoint()
        return fn()

    def has(self, cid: Cid) -> bool:
        return self.sync.has(cid)  # a stat(); cheap enough to stay on the loop

    async def get(self, cid: Cid) -> bytes:
        return await self.run(lambda: self.sync.get(cid))

    async def put(self, cid: Cid, data: bytes, *, verify: bool = True) -> bool:
        return await self.run(lambda: self.sync.put(cid, data, verify=verify))
