"""On-disk blockstore: one file per block, verified on the way in and on the way out.

Theory of operation. A block lives at ``blocks/<shard>/<cid>``, written atomically: the bytes go
to a unique temp file, are fsynced (when ``durable``), then renamed into place. A rename is
atomic, so a crash leaves either no block or a complete one; a block whose bytes were lost anyway
(a lying disk, a crash before the data hit the platter with ``durable=False``) is caught on read:
every read re-hashes the bytes, and a mismatch moves the file to ``quarantine/`` and raises
:class:`CorruptBlock`. The store never serves bytes that do not match their CID.

Concurrency: safe from many threads of one process. Writers of the same CID race harmlessly (the
bytes are identical). Garbage collection takes the exclusive side of :attr:`gc_lock`; imports
hold the shared side so GC cannot remove blocks of an import that is not pinned yet.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ccnp2p.errors import CorruptBlock, HashMismatch, NotFound, QuotaExceeded, StorageError
from ccnp2p.objects.cid import Cid
from ccnp2p.store.rwlock import RWLock

log = logging.getLogger(__name__)

MAX_BLOCK_BYTES: Final = 4 * 1024 * 1024


class Blockstore:
    """Blocks on disk under ``root``, with a size quota (``max_bytes``, 0 = unlimited)."""

    def __init__(self, root: Path, *, max_bytes: int = 0, durable: bool = True) -> None:
        self.root = root
        self.blocks_dir = root / "blocks"
        self.tmp_dir = root / "tmp"
        self.quarantine_dir = root / "quarantine"
        for d in (self.blocks_dir, self.tmp_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.durable = durable
        self.gc_lock = RWLock()
        self._lock = threading.Lock()
        self._tmp_seq = 0
        self._writing: dict[Cid, threading.Event] = {}
        self._clean_tmp()
        self._used = self._scan_used()

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, cid: Cid) -> Path:
        name = str(cid)
        return self.blocks_dir / name[-3:-1] / name

    def _clean_tmp(self) -> None:
        # Leftovers of a crash mid-write: never renamed, so never visible as blocks.
        for entry in os.scandir(self.tmp_dir):
            try:
                os.unlink(entry.path)
            except OSError:
                log.warning("could not remove stale temp file %s", entry.path)

    def _scan_used(self) -> int:
        total = 0
        for shard in os.scandir(self.blocks_dir):
            if shard.is_dir():
                for entry in os.scandir(shard.path):
                    total += entry.stat().st_size
        return total

    # -- queries -------------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return self._used

    def has(self, cid: Cid) -> bool:
        return self._path(cid).exists()

    def size_of(self, cid: Cid) -> int:
        try:
            return self._path(cid).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"block {cid} not found", cid) from None

    def __iter__(self) -> Iterator[Cid]:
        for shard in os.scandir(self.blocks_dir):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                try:
                    yield Cid.parse(entry.name)
                except Exception:
                    log.warning("ignoring stray file %s in blockstore", entry.path)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, cid: Cid) -> bytes:
        """Return the block's bytes, verified against ``cid``."""
        path = self._path(cid)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BLOCK_BYTES + 1)
        except FileNotFoundError:
            raise NotFound(f"block {cid} not found", cid) from None
        except OSError as exc:
            raise StorageError(f"cannot read block {cid}: {exc}") from exc
        try:
            if len(data) > MAX_BLOCK_BYTES:
                raise HashMismatch("block too large")
            cid.verify(data)
        except HashMismatch:
            self._quarantine(cid, path)
            raise CorruptBlock(f"block {cid} is corrupt on disk; moved to quarantine") from None
        return data

    def _quarantine(self, cid: Cid, path: Path) -> None:
        try:
            size = path.stat().st_size
            os.replace(path, self.quarantine_dir / str(cid))
            with self._lock:
                self._used -= size
        except OSError:
            log.exception("could not quarantine corrupt block %s", cid)

    # -- writes --------------------------------------------------------------------------------

    def put(self, cid: Cid, data: bytes | bytearray | memoryview, *, verify: bool = True) -> bool:
        """Store ``data`` under ``cid``; returns False if it was already there.

        ``verify=False`` is only for callers that hashed ``data`` themselves to make ``cid``.
        """
        if len(data) > MAX_BLOCK_BYTES:
            raise StorageError(f"block of {len(data)} bytes exceeds {MAX_BLOCK_BYTES}")
        if verify:
            cid.verify(data)
        path = self._path(cid)
        if path.exists():
            return False
        with self._lock:
            other = self._writing.get(cid)
            if other is None:
                if path.exists():
                    return False
                if self.max_bytes and self._used + len(data) > self.max_bytes:
                    raise QuotaExceeded(
                        f"storing {len(data)} bytes would exceed the quota of "
                        f"{self.max_bytes} bytes"
                    )
                self._used += len(data)
                self._tmp_seq += 1
                tmp = self.tmp_dir / f"{os.getpid()}-{threading.get_ident()}-{self._tmp_seq}"
                done = self._writing[cid] = threading.Event()
        if other is not None:
            # Another thread is writing the same bytes: wait until they are visible.
            other.wait()
            if path.exists():
                return False
            return self.put(cid, data, verify=False)  # that writer failed; try ourselves
        try:
            self._write_atomic(tmp, path, data)
        except BaseException:
            with self._lock:
                self._used -= len(data)
            raise
        finally:
            with self._lock:
                del self._writing[cid]
            done.set()
        return True

    def _write_atomic(self, tmp: Path, path: Path, data: bytes | bytearray | memoryview) -> None:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.rename(tmp, path)
            except FileNotFoundError:
                path.parent.mkdir(exist_ok=True)
                os.rename(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if exc.errno == errno.ENOSPC:
                raise StorageError("disk full: block not stored (nothing was lost)") from exc
            raise StorageError(f"cannot write block: {exc}") from exc

    def delete(self, cid: Cid) -> int:
        """Remove a block; returns the bytes freed (0 if it was absent)."""
        path = self._path(cid)
        try:
            size = path.stat().st_size
            os.unlink(path)
        except FileNotFoundError:
            return 0
        with self._lock:
            self._used -= size
        return size
