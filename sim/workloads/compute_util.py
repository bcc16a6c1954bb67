"""Helpers shared by the compute scenarios: publishing inputs, reading calcs, counting what moved.

Byte accounting. "Data bytes moved" by one calc read is what the placement decides:

* input bytes fetched over ``/ccn/transfer`` by the executors (summed from every node's
  :meth:`TransferService.statistics`, so it is measured, not predicted), plus
* output bytes streamed from an executor to another node over ``/ccn/compute`` (the result to
  the reader, an intermediate result to the next step's executor).

"Wire bytes" is everything the simulated links carried meanwhile (DHT lookups, records,
contracts included), from the memory network's counters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import trio

from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from ccnp2p.sched.placement import PlacementPolicy
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class Published:
    """A file added on its holders: its root, every block of its tree, and who holds it."""

    root: Cid
    size: int
    blocks: frozenset[Cid]
    holders: frozenset[int]


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    ok: bool
    nbytes: int
    first_byte_s: float  # since the read started; -1 if no byte came
    last_byte_s: float
    error: str = ""


async def publish(world: World, holders: Iterable[int], data: bytes, chunk_bytes: int) -> Published:
    """Add ``data`` on every holder (imported, pinned, announced)."""
    root: Cid | None = None
    blocks: set[Cid] = set()
    chosen = sorted(holders)
    for i in chosen:
        sn = world.nodes[i]
        assert sn.node is not None
        before = set(sn.blocks)
        result = await sn.node.add_bytes(data, chunk_bytes=chunk_bytes)
        blocks |= set(sn.blocks) - before
        root = result.root
        sn.pinned.append(root)
        world.record("publish", i, nbytes=len(data), detail=str(root))
    assert root is not None
    return Published(root, len(data), frozenset(blocks | {root}), frozenset(chosen))


def evict(world: World, pub: Published) -> int:
    """Drop cached copies of ``pub`` from every node that is not one of its holders.

    Executors cache the inputs they fetch; an experiment that compares placements round by
    round evicts them so that one round's cache does not make the next one's moves free.
    """
    dropped = 0
    for sn in world.nodes:
        if sn.index in pub.holders:
            continue
        for cid in pub.blocks:
            if sn.blocks.has(cid):
                dropped += sn.blocks.delete(cid)
    return dropped


def set_policy(world: World, policy: PlacementPolicy) -> None:
    for sn in world.nodes:
        if sn.node is not None:
            sn.node.compute.placer.policy = policy


def fetched_bytes(world: World) -> int:
    """Bytes every node has fetched over ``/ccn/transfer`` so far (current incarnations)."""
    total = 0
    for sn in world.nodes:
        if sn.node is not None:
            total += sum(sn.node.transfer.statistics().fetch.bytes_by_peer.values())
    return total


def wire_bytes(world: World) -> int:
    return world.hub.statistics().bytes_sent


def executors_of(world: World, calc: Cid) -> list[int]:
    """Indices of the nodes that executed ``calc`` (from their executors' history)."""
    return [
        sn.index
        for sn in world.nodes
        if sn.node is not None and any(h.calc == calc for h in sn.node.compute.executor.history)
    ]


async def read_calc(sn: SimNode, cid: Cid, timeout_s: float) -> ReadOutcome:
    """Read ``cid`` to the end on ``sn``; times are virtual seconds since the read began."""
    node = sn.node
    assert node is not None
    t0 = trio.current_time()
    first = -1.0
    got = 0
    error = ""
    with trio.move_on_after(timeout_s) as scope:
        try:
            async for piece in node.read(cid):
                if first < 0 and piece:
                    first = trio.current_time() - t0
                got += len(piece)
        except (CcnError, trio.TooSlowError) as exc:  # an outcome to report, not a crash
            error = f"{type(exc).__name__}: {exc}"[:120]
    if scope.cancelled_caught:
        error = "timeout"
    return ReadOutcome(not error, got, first, trio.current_time() - t0, error)


async def run_on(
    world: World, sn: SimNode, fn: Callable[[], Awaitable[None]], timeout_s: float
) -> bool:
    """Run ``fn`` inside ``sn``'s incarnation (it dies with the node) and wait for it."""
    done = trio.Event()

    async def wrapped() -> None:
        try:
            await fn()
        finally:
            done.set()

    if not world.spawn(sn, wrapped):
        return False
    with trio.move_on_after(timeout_s):
        await done.wait()
    return done.is_set()
