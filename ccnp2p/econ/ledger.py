"""The per-daemon ledger: receipts issued and received, statements, credits owed, links known.

One SQLite file (``ledger.sqlite`` in the repo dir), WAL mode, one connection under a lock so
the API thread and the trio thread can both read it. The receipt CID is the primary key of a
settlement: recording the same receipt twice is a no-op that reports ``False``, which is how a
receipt delivered twice (or by two settlers) is counted once.

Credits are the integer payouts of accepted statements. ``refund`` lines are kept for the
record but are not credits: they are value nobody is owed.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ccnp2p.econ.rules import Role
from ccnp2p.econ.statement import Statement
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import PublicKey, peer_id_to_str
from ccnp2p.objects.model import NamedObject, decode_object
from ccnp2p.objects.records import IndexRecord, Receipt, ShareRecord

_T = TypeVar("_T", bound=NamedObject)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS receipts (cid BLOB PRIMARY KEY, consumer BLOB NOT NULL,"
    " target TEXT NOT NULL, value INTEGER NOT NULL, issued INTEGER NOT NULL, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS statements (receipt BLOB PRIMARY KEY, settler BLOB NOT NULL,"
    " data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credits (receipt BLOB NOT NULL, party BLOB NOT NULL,"
    " role TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (receipt, party, role))",
    "CREATE TABLE IF NOT EXISTS shares (cid BLOB PRIMARY KEY, target TEXT NOT NULL,"
    " recipient BLOB NOT NULL, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS inclusions (cid BLOB PRIMARY KEY, target TEXT NOT NULL,"
    " indexer BLOB NOT NULL, data BLOB NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Counts for ``ccnp2p ledger``."""

    receipts_issued: int
    receipts_received: int
    statements: int
    credits_total: int


class Ledger:
    """Receipts, statements and credits in a SQLite file.

    Args:
        path: the database file (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for stmt in _SCHEMA:
            self._db.execute(stmt)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- settlements ---------------------------------------------------------------------------

    def record_settlement(self, receipt: Receipt, statement: Statement, *, issued: bool) -> bool:
        """Store a verified receipt with its statement and credits; False if already known."""
        rcid = bytes(receipt.cid)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?)",
                    (rcid, receipt.consumer, str(receipt.target), receipt.value, int(issued),
                     receipt.encode()),
                )  # fmt: skip
                if cur.rowcount == 0:
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "INSERT INTO statements VALUES (?, ?, ?)",
                    (rcid, statement.settler, statement.encode()),
                )
                self._db.executemany(
                    "INSERT INTO credits VALUES (?, ?, ?, ?)",
                    [(rcid, p.party, p.role, p.amount) for p in statement.payouts],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def has_receipt(self, receipt: Cid) -> bool:
        return self._one("SELECT 1 FROM receipts WHERE cid = ?", (bytes(receipt),)) is not None

    def statement_for(self, receipt: Cid) -> Statement | None:
        row = self._one("SELECT data FROM statements WHERE receipt = ?", (bytes(receipt),))
        return None if row is None else _decode(row[0], Statement)

    def statements(self) -> list[Statement]:
        """Every accepted statement, oldest first (the trust graph's receipt edges)."""
        return [_decode(r[0], Statement) for r in self._all("SELECT data FROM statements")]

    def receipts(self, *, issued: bool | None = None) -> list[Receipt]:
        sql = "SELECT data FROM receipts"
        args: tuple[object, ...] = ()
        if issued is not None:
            sql, args = sql + " WHERE issued = ?", (int(issued),)
        return [_decode(r[0], Receipt) for r in self._all(sql + " ORDER BY rowid", args)]

    def balances(self) -> dict[bytes, int]:
        """Credits owed per party (binary peer id) over all statements, refunds excluded."""
        rows = self._all(
            "SELECT party, SUM(amount) FROM credits WHERE role != ? GROUP BY party ORDER BY party",
            (Role.REFUND.value,),
        )
        return {bytes(party): int(total) for party, total in rows}

    def stats(self) -> LedgerStats:
        def count(sql: str) -> int:
            row = self._one(sql, ())
            return int(row[0] or 0) if row else 0

        return LedgerStats(
            receipts_issued=count("SELECT COUNT(*) FROM receipts WHERE issued = 1"),
            receipts_received=count("SELECT COUNT(*) FROM receipts WHERE issued = 0"),
            statements=count("SELECT COUNT(*) FROM statements"),
            credits_total=count("SELECT SUM(amount) FROM credits WHERE role != 'refund'"),
        )

    # -- links known here ----------------------------------------------------------------------

    def add_share(self, share: ShareRecord) -> None:
        """Remember a share link (ours, or one addressed to us that a receipt may cite)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO shares VALUES (?, ?, ?, ?)",
                (bytes(share.cid), str(share.target), share.to, share.encode()),
            )

    def shares_to(self, target: Cid, recipient: bytes) -> list[ShareRecord]:
        """Share links for ``target`` addressed to ``recipient`` (peer id), oldest first."""
        rows = self._all(
            "SELECT data FROM shares WHERE target = ? AND recipient = ? ORDER BY rowid",
            (str(target), recipient),
        )
        return [_decode(r[0], ShareRecord) for r in rows]

    def share(self, cid: Cid) -> ShareRecord | None:
        row = self._one("SELECT data FROM shares WHERE cid = ?", (bytes(cid),))
        return None if row is None else _decode(row[0], ShareRecord)

    def add_inclusion(self, record: IndexRecord) -> None:
        """Remember an index record; a countersigned copy replaces the one-way one."""
        with self._lock:
            self._db.execute(
                "DELETE FROM inclusions WHERE target = ? AND indexer = ?",
                (str(record.target), record.indexer),
            )
            self._db.execute(
                "INSERT INTO inclusions VALUES (?, ?, ?, ?)",
                (bytes(record.cid), str(record.target), record.indexer, record.encode()),
            )

    def inclusions(self, target: Cid | None = None) -> list[IndexRecord]:
        sql = "SELECT data FROM inclusions"
        args: tuple[object, ...] = ()
        if target is not None:
            sql, args = sql + " WHERE target = ?", (str(target),)
        return [_decode(r[0], IndexRecord) for r in self._all(sql + " ORDER BY rowid", args)]

    # -- helpers -------------------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()


def _decode(data: bytes, typ: type[_T]) -> _T:
    obj = decode_object(bytes(data), typ)
    assert isinstance(obj, typ)
    return obj


def consumer_peer_str(receipt: Receipt) -> str:
    return peer_id_to_str(PublicKey.from_protobuf(receipt.consumer).peer_id)
