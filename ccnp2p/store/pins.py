"""Pins, kept in the repo's SQLite file.

A pin keeps a block (``direct``) or a block and everything it links to (``recursive``, the
default, following file, calc and content links) from garbage collection.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ccnp2p.objects.cid import Cid


class PinKind(Enum):
    DIRECT = "direct"
    RECURSIVE = "recursive"


@dataclass(frozen=True, slots=True)
class Pin:
    cid: Cid
    kind: PinKind
    created: int


class PinSet:
    """Thread-safe pin table in ``store.sqlite`` (WAL mode, one connection under a lock)."""

    def __init__(self, db_path: Path, *, clock: Callable[[], float] = time.time) -> None:
        """``clock`` gives the (wall-clock) creation time stored with each pin."""
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pins ("
            " cid TEXT PRIMARY KEY, kind TEXT NOT NULL, created INTEGER NOT NULL)"
        )

    def add(self, cid: Cid, kind: PinKind = PinKind.RECURSIVE) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO pins(cid, kind, created) VALUES (?, ?, ?)"
                " ON CONFLICT(cid) DO UPDATE SET kind = excluded.kind",
                (str(cid), kind.value, int(self._clock())),
            )

    def remove(self, cid: Cid) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM pins WHERE cid = ?", (str(cid),))
            return cur.rowcount > 0

    def get(self, cid: Cid) -> Pin | None:
        with self._lock:
            row = self._db.execute(
                "SELECT kind, created FROM pins WHERE cid = ?", (str(cid),)
            ).fetchone()
        return None if row is None else Pin(cid, PinKind(row[0]), row[1])

    def list(self) -> list[Pin]:
        with self._lock:
            rows = self._db.execute("SELECT cid, kind, created FROM pins ORDER BY cid").fetchall()
        return [Pin(Cid.parse(c), PinKind(k), t) for c, k, t in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
