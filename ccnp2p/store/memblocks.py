"""In-memory blockstore with the on-disk store's contract, for simulations of thousands of nodes.

:class:`MemBlocks` offers the methods a :class:`~ccnp2p.node.Node` and the file importer use
(``has``/``get``/``put``/``delete``/``size_of``/``used_bytes``/iteration and ``gc_lock``) with the
same behaviour as :class:`~ccnp2p.store.blockstore.Blockstore`: blocks are verified against their
CID on the way in (unless the caller hashed them itself) and on the way out, an oversized block is
refused, the quota is enforced, and a block that no longer matches its CID (a simulated bit flip
via :meth:`corrupt`) is quarantined and reported as :class:`CorruptBlock`, never served.

Nothing touches the disk, so a simulated node costs only the bytes it stores. A "restart" of a
simulated node keeps its MemBlocks object, as a restarted daemon keeps its repo directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ccnp2p.errors import CorruptBlock, HashMismatch, NotFound, QuotaExceeded, StorageError
from ccnp2p.objects.cid import Cid
from ccnp2p.store.blockstore import MAX_BLOCK_BYTES
from ccnp2p.store.rwlock import RWLock


class MemBlocks:
    """Blocks in a dict, with a size quota (``max_bytes``, 0 = unlimited). Thread-safe."""

    def __init__(self, *, max_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.gc_lock = RWLock()
        self._lock = threading.Lock()
        self._blocks: dict[Cid, bytes] = {}
        self._quarantine: dict[Cid, bytes] = {}
        self._used = 0

    # -- queries -------------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return self._used

    def has(self, cid: Cid) -> bool:
        return cid in self._blocks

    def size_of(self, cid: Cid) -> int:
        try:
            return len(self._blocks[cid])
        except KeyError:
            raise NotFound(f"block {cid} not found", cid) from None

    def __iter__(self) -> Iterator[Cid]:
        with self._lock:
            cids = list(self._blocks)
        return iter(cids)

    def __len__(self) -> int:
        return len(self._blocks)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, cid: Cid) -> bytes:
        """Return the block's bytes, verified against ``cid``."""
        try:
            data = self._blocks[cid]
        except KeyError:
            raise NotFound(f"block {cid} not found", cid) from None
        try:
            cid.verify(data)
        except HashMismatch:
            with self._lock:
                if self._blocks.get(cid) is data:
                    del self._blocks[cid]
                    self._used -= len(data)
                    self._quarantine[cid] = data
            raise CorruptBlock(f"block {cid} is corrupt in memory; moved to quarantine") from None
        return data

    @property
    def quarantined(self) -> list[Cid]:
        return list(self._quarantine)

    # -- writes --------------------------------------------------------------------------------

    def put(self, cid: Cid, data: bytes | bytearray | memoryview, *, verify: bool = True) -> bool:
        """Store ``data`` under ``cid``; returns False if it was already there.

        ``verify=False`` is only for callers that hashed ``data`` themselves to make ``cid``.
        """
        if len(data) > MAX_BLOCK_BYTES:
            raise StorageError(f"block of {len(data)} bytes exceeds {MAX_BLOCK_BYTES}")
        if verify:
            cid.verify(data)
        with self._lock:
            if cid in self._blocks:
                return False
            if self.max_bytes and self._used + len(data) > self.max_bytes:
                raise QuotaExceeded(
                    f"storing {len(data)} bytes would exceed the quota of {self.max_bytes} bytes"
                )
            self._blocks[cid] = bytes(data)
            self._used += len(data)
        return True

    def delete(self, cid: Cid) -> int:
        """Remove a block; returns the bytes freed (0 if it was absent)."""
        with self._lock:
            data = self._blocks.pop(cid, None)
            if data is None:
                return 0
            self._used -= len(data)
            return len(data)

    def corrupt(self, cid: Cid, data: bytes) -> None:
        """Replace a block's bytes behind the store's back (fault injection in tests and sims)."""
        with self._lock:
            old = self._blocks[cid]
            self._blocks[cid] = data
            self._used += len(data) - len(old)
