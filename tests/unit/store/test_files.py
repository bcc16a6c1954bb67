from __future__ import annotations

import io
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import FileNode, decode_object
from ccnp2p.store.files import FileReader, TreeBuilder, import_stream
from ccnp2p.store.repo import Repo

CHUNK = 256 * 1024


def put(repo: Repo, data: bytes, chunk: int = CHUNK) -> Cid:
    res = import_stream(repo.blocks, io.BytesIO(data), chunk_bytes=chunk)
    assert res.size == len(data)
    return res.root


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK + 17])
def test_round_trip_sizes(repo: Repo, size: int) -> None:
    data = random.Random(size).randbytes(size)
    root = put(repo, data)
    reader = FileReader(repo.blocks.get, root)
    assert reader.size == size
    assert reader.read() == data
    chunks = list(reader.chunk_refs())
    assert len(chunks) == (size + CHUNK - 1) // CHUNK
    assert all(c.cid.verify(repo.blocks.get(c.cid)) is None for c in chunks)


def test_same_bytes_same_cid(repo: Repo) -> None:
    data = os.urandom(3 * CHUNK)
    assert put(repo, data) == put(repo, data)
    assert put(repo, data, chunk=CHUNK // 2) != put(repo, data)


def test_100_mib_streams_without_holding_it(repo: Repo) -> None:
    size = 100 * 1024 * 1024
    rng = random.Random(7)
    block = rng.randbytes(1024 * 1024)

    class Gen(io.RawIOBase):
        def __init__(self) -> None:
            self.pos = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            n = min(len(b), size - self.pos)
            off = self.pos % len(block)
            n = min(n, len(block) - off)
            b[:n] = block[off : off + n]
            self.pos += n
            return n

    res = import_stream(repo.blocks, io.BufferedReader(Gen()), chunk_bytes=CHUNK)
    assert res.size == size and res.chunks == 400
    reader = FileReader(repo.blocks.get, res.root)
    total = 0
    for i, piece in enumerate(reader.iter_range()):
        assert piece == block[(i % 4) * CHUNK : (i % 4 + 1) * CHUNK]
        total += len(piece)
    assert total == size


def test_short_reads_do_not_change_chunking(repo: Repo) -> None:
    data = os.urandom(5 * 4096 + 3)

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.src = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return self.src.read(min(n, 1000))

    a = import_stream(repo.blocks, Trickle(), chunk_bytes=4096).root  # type: ignore[arg-type]
    assert a == put(repo, data, chunk=4096)


@given(st.integers(0, 50_000), st.integers(0, 60_000), st.integers(1, 60_000))
def test_random_access(offset: int, length: int, seed: int) -> None:
    store: dict[Cid, bytes] = {}

    class Mem:
        def put(self, cid: Cid, data: bytes, verify: bool = True) -> bool:
            store[cid] = bytes(data)
            return True

    data = random.Random(seed).randbytes(50_000)
    builder = TreeBuilder(lambda n: _emit(store, n), fanout=3)
    for i in range(0, len(data), 1024):
        piece = data[i : i + 1024]
        cid = Cid.for_raw(piece)
        store[cid] = piece
        builder.add(cid, len(piece))
    root = builder.finish()
    reader = FileReader(store.__getitem__, root)
    assert reader.read(offset, length) == data[offset : offset + length]


def _emit(store: dict[Cid, bytes], node: FileNode) -> Cid:
    enc = node.encode()
    cid = Cid.for_object(enc)
    store[cid] = enc
    return cid


def test_tree_is_balanced_and_bounded() -> None:
    store: dict[Cid, bytes] = {}
    builder = TreeBuilder(lambda n: _emit(store, n), fanout=4)
    for i in range(17):
        builder.add(Cid.for_raw(bytes([i])), 1)
    root = decode_object(store[builder.finish()])
    assert isinstance(root, FileNode)
    assert root.depth == 2 and root.size == 17
    for cid in root.links:
        child = decode_object(store[cid])
        assert isinstance(child, FileNode) and child.depth == 1
