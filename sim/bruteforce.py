"""Small calc DAGs and the exhaustive search for the placement that moves the fewest bytes.

A :class:`Dag` is a tree of ``sift`` calcs (:mod:`sim.ops`) over stored files: ``calcs[0]`` is
the root, read by ``reader``; every other calc is read by exactly one parent; each file is read by
one calc and is stored on ``holders``. An *assignment* puts each calc on a node. Its cost, in
bytes moved:

* a file read by a calc on a node that does not hold it: the file's size;
* a calc whose parent runs on another node: its output size;
* the root on another node than the reader: its output size.

:func:`best_assignment` enumerates all ``nodes ** len(calcs)`` assignments (vectorised with
numpy) and returns the cheapest; :func:`cost` prices one assignment, e.g. the one the network
actually executed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from sim.ops import SIFT_MAX_INPUTS, sift_output_bytes

MAX_ASSIGNMENTS: Final = 4_000_000
CHUNK_ROWS: Final = 250_000


@dataclass(frozen=True, slots=True)
class DagCalc:
    files: tuple[int, ...]  # indices into Dag.file_sizes
    children: tuple[int, ...]  # indices into Dag.calcs (always greater than this calc's)
    stride: int


@dataclass(frozen=True, slots=True)
class Dag:
    file_sizes: tuple[int, ...]
    file_holders: tuple[frozenset[int], ...]
    calcs: tuple[DagCalc, ...]
    reader: int

    def output_sizes(self) -> list[int]:
        """Output bytes of every calc (children first: they have the higher indices)."""
        out = [0] * len(self.calcs)
        for i in range(len(self.calcs) - 1, -1, -1):
            c = self.calcs[i]
            total = sum(self.file_sizes[f] for f in c.files) + sum(out[ch] for ch in c.children)
            out[i] = sift_output_bytes(total, c.stride)
        return out

    def depth(self) -> int:
        def walk(i: int) -> int:
            return 1 + max((walk(ch) for ch in self.calcs[i].children), default=0)

        return walk(0)


def cost(dag: Dag, assign: Sequence[int]) -> int:
    """Bytes moved when calc ``i`` runs on node ``assign[i]``."""
    return int(costs(dag, np.asarray([list(assign)], dtype=np.int64))[0])


def costs(dag: Dag, assigns: np.ndarray) -> np.ndarray:
    """:func:`cost` of every row of ``assigns`` (shape: assignments x calcs)."""
    out_sizes = dag.output_sizes()
    total = np.where(assigns[:, 0] != dag.reader, out_sizes[0], 0).astype(np.int64)
    for i, c in enumerate(dag.calcs):
        here = assigns[:, i]
        for f in c.files:
            held = np.isin(here, sorted(dag.file_holders[f]))
            total += np.where(held, 0, dag.file_sizes[f])
        for ch in c.children:
            total += np.where(assigns[:, ch] != here, out_sizes[ch], 0)
    return total


def best_assignment(dag: Dag, nodes: int) -> tuple[int, tuple[int, ...]]:
    """The cheapest assignment of the calcs to nodes ``0..nodes-1``, by enumerating them all."""
    n = len(dag.calcs)
    count = nodes**n
    if count > MAX_ASSIGNMENTS:
        raise ValueError(f"{count} assignments: too many to enumerate")
    best_cost = -1
    best_row: tuple[int, ...] = ()
    for start in range(0, count, CHUNK_ROWS):
        idx = np.arange(start, min(start + CHUNK_ROWS, count), dtype=np.int64)
        assigns = np.stack(np.unravel_index(idx, (nodes,) * n), axis=1)
        c = costs(dag, assigns)
        j = int(np.argmin(c))
        if best_cost < 0 or int(c[j]) < best_cost:
            best_cost, best_row = int(c[j]), tuple(int(x) for x in assigns[j])
    return best_cost, best_row


def random_dag(
    rng: random.Random,
    nodes: int,
    *,
    file_sizes: Sequence[int],
    strides: Sequence[int],
    min_calcs: int = 3,
    max_calcs: int = 6,
    max_holders: int = 2,
) -> Dag:
    """A random tree of 3-6 calcs, 2-3 levels deep, over files held by 1-2 nodes.

    The reader is a node that holds no file (so every placement moves something).
    """
    n = rng.randint(min_calcs, max_calcs)
    levels = rng.randint(2, 3)
    if n > 1 + (SIFT_MAX_INPUTS - 1):  # a 2-level tree this big leaves no room for files
        levels = 3
    depth = [1]
    children: list[list[int]] = [[]]
    for i in range(1, n):
        if i < levels:  # first a chain, so the tree is exactly ``levels`` deep
            parent = i - 1
        else:
            room = [
                j for j in range(i) if depth[j] < levels and len(children[j]) < SIFT_MAX_INPUTS - 1
            ]
            parent = rng.choice(room)
        children[parent].append(i)
        children.append([])
        depth.append(depth[parent] + 1)
    reader = rng.randrange(nodes)
    others = [i for i in range(nodes) if i != reader]
    sizes: list[int] = []
    holders: list[frozenset[int]] = []
    calcs = []
    for i in range(n):
        slots = SIFT_MAX_INPUTS - len(children[i])
        want = rng.randint(1, 2) if not children[i] else rng.randint(0, 1)
        files = []
        for _ in range(min(want, slots)):
            files.append(len(sizes))
            sizes.append(rng.choice(list(file_sizes)))
            holders.append(frozenset(rng.sample(others, rng.randint(1, max_holders))))
        calcs.append(DagCalc(tuple(files), tuple(children[i]), rng.choice(list(strides))))
    return Dag(tuple(sizes), tuple(holders), tuple(calcs), reader)
