"""Files: chunking on import, and streaming random-access reads.

Import splits a byte stream into fixed-size chunks (default 256 KiB, at most 1 MiB), stores each
as a raw block and builds a balanced tree of :class:`FileNode` objects (at most ``FILE_FANOUT``
links each) bottom-up, so memory stays bounded whatever the file size. Hashing runs on the
caller's thread while a small pool writes blocks (both release the GIL), with a bounded number of
chunks in flight.

Reads walk the tree to the chunks covering ``[offset, offset + length)`` and yield their bytes
one chunk at a time; nothing holds the whole file.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Final

from ccnp2p.errors import DecodeError, LocalError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import FILE_FANOUT, FileNode, decode_object
from ccnp2p.store.blockstore import Blockstore

DEFAULT_CHUNK_BYTES: Final = 256 * 1024
MAX_CHUNK_BYTES: Final = 1024 * 1024
MIN_CHUNK_BYTES: Final = 1024
WRITERS: Final = 2
MAX_IN_FLIGHT: Final = 8

GetBlock = Callable[[Cid], bytes]


@dataclass(frozen=True, slots=True)
class ImportResult:
    root: Cid
    size: int
    chunks: int


class TreeBuilder:
    """Builds the file tree bottom-up from (chunk CID, size) entries; pure apart from ``emit``."""

    def __init__(self, emit: Callable[[FileNode], Cid], fanout: int = FILE_FANOUT) -> None:
        self._emit = emit
        self._fanout = fanout
        self._levels: list[list[tuple[Cid, int]]] = [[]]

    def add(self, cid: Cid, size: int) -> None:
        self._push(0, cid, size)

    def _push(self, level: int, cid: Cid, size: int) -> None:
        if level == len(self._levels):
            self._levels.append([])
        entries = self._levels[level]
        entries.append((cid, size))
        if len(entries) == self._fanout:
            self._flush(level)  # a full node is final

    def _flush(self, level: int) -> None:
        entries = self._levels[level]
        node = FileNode(
            size=sum(s for _, s in entries),
            links=tuple(c for c, _ in entries),
            sizes=tuple(s for _, s in entries),
            depth=level,
        )
        self._levels[level] = []
        self._push(level + 1, self._emit(node), node.size)

    def finish(self) -> Cid:
        """Flush partial nodes upward and return the root CID."""
        if not any(self._levels):
            return self._emit(FileNode(size=0, links=(), sizes=()))
        level = 0
        while True:
            top = level == len(self._levels) - 1
            entries = self._levels[level]
            if top and level > 0 and len(entries) == 1:
                return entries[0][0]
            if entries:
                self._flush(level)
            level += 1


def tree_over(
    chunks: list[tuple[Cid, int]], store: Blockstore | None = None
) -> tuple[Cid, list[tuple[Cid, bytes]]]:
    """The file tree over already-stored chunks: its root and its encoded nodes.

    With ``store`` each node is also stored as it is built (no re-hash: we just made its CID).
    """
    nodes: list[tuple[Cid, bytes]] = []

    def emit(node: FileNode) -> Cid:
        enc = node.encode()
        cid = Cid.for_object(enc)
        nodes.append((cid, enc))
        if store is not None:
            store.put(cid, enc, verify=False)
        return cid

    builder = TreeBuilder(emit)
    for cid, size in chunks:
        builder.add(cid, size)
    return builder.finish(), nodes


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Read exactly n bytes unless EOF comes first (pipes return short reads)."""
    data = src.read(n)
    if not data or len(data) == n:
        return data or b""
    parts = [data]
    got = len(data)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def import_stream(
    store: Blockstore,
    src: BinaryIO,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Chunk ``src`` into ``store``; returns the root of the file tree. The caller pins it."""
    if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise LocalError(f"chunk size must be {MIN_CHUNK_BYTES}..{MAX_CHUNK_BYTES} bytes")

    def emit(node: FileNode) -> Cid:
        data = node.encode()
        cid = Cid.for_object(data)
        store.put(cid, data, verify=False)
        return cid

    builder = TreeBuilder(emit)
    total = 0
    chunks = 0
    pending: list[Future[bool]] = []
    with store.gc_lock.shared(), ThreadPoolExecutor(WRITERS, "ccn-put") as pool:
        try:
            while True:
                data = _read_full(src, chunk_bytes)
                if not data:
                    break
                cid = Cid.for_raw(data)
                if len(pending) >= MAX_IN_FLIGHT:
                    pending.pop(0).result()
                pending.append(pool.submit(store.put, cid, data, verify=False))
                builder.add(cid, len(data))
                total += len(data)
                chunks += 1
                if progress is not None:
                    progress(len(data))
            for fut in pending:
                fut.result()
        finally:
            for fut in pending:
                fut.cancel()
        root = builder.finish()
    return ImportResult(root=root, size=total, chunks=chunks)


def load_file_node(get_block: GetBlock, cid: Cid) -> FileNode:
    obj = decode_object(get_block(cid))
    if not isinstance(obj, FileNode):
        raise DecodeError(f"{cid} is a {obj.TYPE}, not a file")
    return obj


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """A chunk of a file: where it starts in the file and which part of it a read wants."""

    cid: Cid
    file_offset: int
    size: int
    start: int  # first wanted byte within the chunk
    end: int  # one past the last wanted byte within the chunk


class FileReader:
    """Random-access reader over a file tree (or a single raw chunk) through ``get_block``."""

    def __init__(self, get_block: GetBlock, root: Cid) -> None:
        self._get = get_block
        self.root = root
        if root.is_raw:
            self._node: FileNode | None = None
            self.size = len(get_block(root))
        else:
            self._node = load_file_node(get_block, root)
            self.size = self._node.size

    def chunk_refs(self, offset: int = 0, length: int | None = None) -> Iterator[ChunkRef]:
        """The chunks covering the byte range, in order (walks only the needed subtrees)."""
        if offset < 0 or (length is not None and length < 0):
            raise LocalError("offset and length must be non-negative")
        end = self.size if length is None else min(self.size, offset + length)
        if offset >= end:
            return
        if self._node is None:
            yield ChunkRef(self.root, 0, self.size, offset, end)
            return
        yield from self._walk(self._node, 0, offset, end)

    def _walk(self, node: FileNode, base: int, start: int, end: int) -> Iterator[ChunkRef]:
        bounds = list(itertools.accumulate(node.sizes, initial=0))
        first = max(0, bisect.bisect_right(bounds, start - base) - 1)
        for i in range(first, len(node.links)):
            lo = base + bounds[i]
            hi = base + bounds[i + 1]
            if lo >= end:
                break
            if hi <= start:
                continue
            if node.depth == 0:
                yield ChunkRef(node.links[i], lo, hi - lo, max(start, lo) - lo, min(end, hi) - lo)
            else:
                child = load_file_node(self._get, node.links[i])
                if child.size != hi - lo or child.depth != node.depth - 1:
                    raise DecodeError(f"file node {node.links[i]} does not match its parent")
                yield from self._walk(child, lo, start, end)

    def iter_range(self, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Yield the bytes of the range, one (partial) chunk at a time."""
        for ref in self.chunk_refs(offset, length):
            data = self._get(ref.cid)
            if len(data) != ref.size:
                raise DecodeError(f"chunk {ref.cid} has the wrong size")
            yield data if ref.start == 0 and ref.end == ref.size else data[ref.start : ref.end]

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        return b"".join(self.iter_range(offset, length))
