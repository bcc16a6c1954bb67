"""Checkpoints: a seekable operator's state at a step, plus the output produced up to it.

A :class:`CheckpointState` object is everything another executor needs to continue a calc from
a step and produce exactly the bytes an uninterrupted run would: the operator's snapshot (a
file), the output written so far (the complete chunks as a file tree ``prefix``, and the
incomplete last chunk as ``tail`` bytes), and the offset where the output continues. The
executor stores one every ``checkpoint_every`` steps, announces it with a signed
``/ccn/ckpt/<calc>`` record (the newest step wins), tells its live readers, and the readers copy
it (so it survives the executor) and provide it.

Each checkpoint links the one before it (``prev``), so a reader that wants to seek behind the
newest checkpoint (the only one the DHT record names) walks back at most
:data:`KEEP_CHECKPOINTS` links.

Retention: checkpoint blocks are never pinned. An executor keeps the last
:data:`KEEP_CHECKPOINTS` of each running calc in memory; older ones are superseded (the DHT
record names the newest) and garbage collection reclaims their blocks, as it does every
checkpoint once the calc's result exists.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ccnp2p.compute.live import RESULT_CHUNK_BYTES
from ccnp2p.errors import DecodeError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.fields import check, nonneg, req
from ccnp2p.objects.model import FileNode, NamedObject, register_object_type
from ccnp2p.store.files import import_stream, tree_over

if TYPE_CHECKING:
    from ccnp2p.node import Node

KEEP_CHECKPOINTS: Final = 8
MAX_STATE_BYTES: Final = 1 << 30


@register_object_type
@dataclass(frozen=True, slots=True)
class CheckpointState(NamedObject):
    TYPE: ClassVar[str] = "ccn/ckpt-state"
    calc: Cid
    step: int
    offset: int
    op_state: Cid
    prefix: Cid | None
    tail: bytes
    prev: Cid | None = None  # the previous checkpoint of the same execution (for seeking back)

    def __post_init__(self) -> None:
        if len(self.tail) >= RESULT_CHUNK_BYTES:
            raise DecodeError("checkpoint tail must be shorter than one result chunk")
        if self.offset % RESULT_CHUNK_BYTES != len(self.tail):
            raise DecodeError("checkpoint offset and tail disagree")

    def fields(self) -> dict[str, Any]:
        return {
            "calc": self.calc,
            "step": self.step,
            "offset": self.offset,
            "op_state": self.op_state,
            "prefix": self.prefix,
            "tail": self.tail,
            "prev": self.prev,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> CheckpointState:
        prefix = data.get("prefix")
        prev = data.get("prev")
        return cls(
            calc=req(data, "calc", Cid),
            step=nonneg(req(data, "step", int), "step"),
            offset=nonneg(req(data, "offset", int), "offset"),
            op_state=req(data, "op_state", Cid),
            prefix=None if prefix is None else check(prefix, Cid, "prefix"),
            tail=req(data, "tail", bytes),
            prev=None if prev is None else check(prev, Cid, "prev"),
        )

    def refs(self) -> tuple[Cid, ...]:
        # ``prev`` is deliberately not a ref: pinning a checkpoint must not pin its history.
        return (self.op_state,) if self.prefix is None else (self.op_state, self.prefix)


@dataclass(frozen=True, slots=True)
class CheckpointNote:
    """What readers hear about a checkpoint (and what failover chooses from)."""

    step: int
    offset: int
    state: Cid


async def save_checkpoint(
    node: Node,
    calc: Cid,
    step: int,
    snapshot: bytes,
    chunks: list[tuple[Cid, int]],
    tail: bytes,
    prev: Cid | None = None,
) -> tuple[CheckpointState, Cid]:
    """Store a checkpoint locally; returns it and its CID."""
    blocks = node.blocks
    op_state = await node.ablocks.run(lambda: import_stream(blocks, io.BytesIO(snapshot)).root)
    prefix = None
    if chunks:
        prefix = await node.ablocks.run(lambda: tree_over(chunks, blocks)[0])
    offset = sum(size for _, size in chunks) + len(tail)
    state = CheckpointState(calc, step, offset, op_state, prefix, bytes(tail), prev)
    data = state.encode()
    cid = Cid.for_object(data)
    await node.ablocks.put(cid, data, verify=False)
    return state, cid


async def load_checkpoint(
    node: Node, cid: Cid, hint: tuple[bytes, ...]
) -> tuple[CheckpointState, bytes, list[tuple[Cid, int]]]:
    """Fetch a checkpoint (from ``hint`` peers or providers): state, snapshot, output chunks."""
    obj = await node.get_object(cid, CheckpointState, hint)
    assert isinstance(obj, CheckpointState)
    snapshot = bytearray()
    async for piece in node.read(obj.op_state, hint=hint, lookup=not hint):
        snapshot += piece
        if len(snapshot) > MAX_STATE_BYTES:
            raise DecodeError("checkpoint state too large")
    chunks: list[tuple[Cid, int]] = []
    if obj.prefix is not None:
        await _collect_chunks(node, obj.prefix, hint, chunks)
    if sum(s for _, s in chunks) + len(obj.tail) != obj.offset:
        raise DecodeError("checkpoint prefix does not add up to its offset")
    return obj, bytes(snapshot), chunks


async def _collect_chunks(
    node: Node, root: Cid, hint: tuple[bytes, ...], out: list[tuple[Cid, int]]
) -> None:
    fnode = await node.get_object(root, FileNode, hint)
    assert isinstance(fnode, FileNode)
    if fnode.depth == 0:
        out.extend(zip(fnode.links, fnode.sizes, strict=True))
        return
    for child in fnode.links:
        await _collect_chunks(node, child, hint, out)
