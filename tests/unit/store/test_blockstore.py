from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ccnp2p.errors import CorruptBlock, HashMismatch, NotFound, QuotaExceeded
from ccnp2p.objects.cid import Cid
from ccnp2p.store.blockstore import Blockstore


def test_put_get_has_delete(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path)
    cid = Cid.for_raw(b"data")
    assert bs.put(cid, b"data") is True
    assert bs.put(cid, b"data") is False
    assert bs.has(cid)
    assert bs.get(cid) == b"data"
    assert bs.used_bytes == 4
    assert list(bs) == [cid]
    assert bs.delete(cid) == 4
    assert not bs.has(cid)
    with pytest.raises(NotFound):
        bs.get(cid)


def test_put_verifies_against_cid(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path)
    with pytest.raises(HashMismatch):
        bs.put(Cid.for_raw(b"a"), b"b")
    assert not bs.has(Cid.for_raw(b"a"))


def test_corrupt_block_is_detected_and_quarantined(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path)
    cid = Cid.for_raw(b"precious")
    bs.put(cid, b"precious")
    path = next((tmp_path / "blocks").rglob(str(cid)))
    path.write_bytes(b"bitrot!!")
    with pytest.raises(CorruptBlock):
        bs.get(cid)
    assert not bs.has(cid)  # never served again
    assert (tmp_path / "quarantine" / str(cid)).exists()
    bs.put(cid, b"precious")  # a good copy can be stored again
    assert bs.get(cid) == b"precious"


def test_quota(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path, max_bytes=10)
    bs.put(Cid.for_raw(b"12345"), b"12345")
    with pytest.raises(QuotaExceeded):
        bs.put(Cid.for_raw(b"678901"), b"678901")
    assert bs.used_bytes == 5
    reopened = Blockstore(tmp_path, max_bytes=10)
    assert reopened.used_bytes == 5


def test_crash_leftovers_are_invisible_and_cleaned(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path)
    # A crash between writing the temp file and renaming it leaves only a temp file.
    (tmp_path / "tmp" / "123-1-1").write_bytes(b"half a blo")
    assert list(bs) == []
    Blockstore(tmp_path)
    assert os.listdir(tmp_path / "tmp") == []


def test_concurrent_puts_from_threads(tmp_path: Path) -> None:
    bs = Blockstore(tmp_path, durable=False)
    blobs = [bytes([i]) * (1000 + i) for i in range(64)]

    def work(k: int) -> None:
        for b in blobs[k::4] + blobs:  # overlapping writers of the same CIDs
            bs.put(Cid.for_raw(b), b)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(bs, key=str) == sorted((Cid.for_raw(b) for b in blobs), key=str)
    assert bs.used_bytes == sum(len(b) for b in blobs)
    for b in blobs:
        assert bs.get(Cid.for_raw(b)) == b


def test_disk_full_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from ccnp2p.errors import StorageError

    bs = Blockstore(tmp_path)
    real_write = os.write

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError, match="disk full"):
        bs.put(Cid.for_raw(b"x"), b"x")
    monkeypatch.setattr(os, "write", real_write)
    assert not bs.has(Cid.for_raw(b"x"))
    assert bs.used_bytes == 0
    assert os.listdir(tmp_path / "tmp") == []
