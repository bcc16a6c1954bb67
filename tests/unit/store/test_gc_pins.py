from __future__ import annotations

import io
import os

from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Calc
from ccnp2p.store.files import FileReader, import_stream
from ccnp2p.store.gc import collect_garbage
from ccnp2p.store.pins import PinKind
from ccnp2p.store.repo import Repo


def _put(repo: Repo, data: bytes) -> Cid:
    return import_stream(repo.blocks, io.BytesIO(data), chunk_bytes=4096).root


def test_gc_removes_only_unpinned(repo: Repo) -> None:
    kept = _put(repo, os.urandom(20_000))
    dropped = _put(repo, os.urandom(20_000))
    repo.pins.add(kept)
    kept_blocks = {kept} | {r.cid for r in FileReader(repo.blocks.get, kept).chunk_refs()}
    result = collect_garbage(repo.blocks, repo.pins)
    assert set(repo.blocks) == kept_blocks
    assert dropped in result.removed
    assert FileReader(repo.blocks.get, kept).size == 20_000


def test_direct_pin_keeps_only_the_root(repo: Repo) -> None:
    root = _put(repo, os.urandom(10_000))
    repo.pins.add(root, PinKind.DIRECT)
    collect_garbage(repo.blocks, repo.pins)
    assert set(repo.blocks) == {root}


def test_recursive_pin_follows_calc_links(repo: Repo) -> None:
    data = _put(repo, b"x" * 5000)
    op_bytes = dagcbor.encode({"not": "an operator"})
    op = Cid.for_object(op_bytes)
    repo.blocks.put(op, op_bytes)
    calc = Calc(op=op, inputs=(data,))
    repo.blocks.put(calc.cid, calc.encode())
    repo.pins.add(calc.cid)
    collect_garbage(repo.blocks, repo.pins)
    assert repo.blocks.has(op) and repo.blocks.has(data)


def test_pins_persist(repo: Repo) -> None:
    root = _put(repo, b"abc")
    repo.pins.add(root)
    assert repo.pins.get(root) is not None
    assert repo.pins.remove(root)
    assert not repo.pins.remove(root)
    assert repo.pins.list() == []


def test_gc_with_unreadable_pin_removes_nothing(repo: Repo) -> None:
    a = _put(repo, os.urandom(9000))
    b = _put(repo, os.urandom(9000))
    repo.pins.add(a)
    path = next((repo.path / "blocks").rglob(str(a)))
    path.write_bytes(b"garbage")
    before = set(repo.blocks)
    result = collect_garbage(repo.blocks, repo.pins)
    assert result.errors
    assert b in set(repo.blocks) and set(repo.blocks) <= before
