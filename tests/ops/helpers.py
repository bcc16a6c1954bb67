"""Operator test drivers (chunky inputs, recorded pieces and step offsets) and a tiny model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from ccnp2p.compute.api import InputTooLarge, OperatorImpl, Resume
from ccnp2p.compute.local import BytesInput, CollectOutput, RecordingContext

MODEL: dict[str, int] = {
    "seed": 7,
    "vocab": 300,
    "d_model": 32,
    "n_layers": 2,
    "n_heads": 4,
    "d_ff": 64,
    "max_len": 128,
}
VOCAB = ["the ", "and ", "ing", " of", "tion", "er"]
TEXT = (
    b"the network computes the function of the data and the data of the function; "
    b"reading a calc runs the operator, and the result is stored like any other object. "
) * 5


class ChunkyInput(BytesInput):
    """Returns short reads of a fixed cycle of sizes, like a network stream would."""

    SIZES = (1, 3, 700, 5, 4096, 13)

    def __init__(self, data: bytes) -> None:
        super().__init__(data, known_size=False)
        self._turn = 0

    async def read(self, max_bytes: int = 262144) -> bytes:
        size = self.SIZES[self._turn % len(self.SIZES)]
        self._turn += 1
        return await super().read(min(max_bytes, size))

    async def read_exactly(self, n: int) -> bytes:
        parts = []
        while n > 0 and (part := await self.read(n)):
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    async def read_all(self, limit: int) -> bytes:
        parts = []
        total = 0
        while part := await self.read(65536):
            total += len(part)
            if total > limit:
                raise InputTooLarge(f"input larger than {limit} bytes")
            parts.append(part)
        return b"".join(parts)


class OffsetContext(RecordingContext):
    """Also records how many output bytes were written when each step was reported."""

    def __init__(
        self, out: CollectOutput, resume: Resume | None = None, snapshot_at: Sequence[int] = ()
    ) -> None:
        super().__init__(resume, snapshot_at)
        self._collected = out
        self.offsets: dict[int, int] = {}

    async def step_done(self, step: int, state: Callable[[], bytes]) -> None:
        self.offsets[step] = sum(len(p) for p in self._collected.parts)
        await super().step_done(step, state)


@dataclass
class Run:
    output: bytes
    pieces: list[bytes]
    ctx: OffsetContext


async def run_op(
    impl: OperatorImpl,
    inputs: Sequence[bytes],
    params: dict[str, Any] | None = None,
    *,
    chunky: bool = False,
    resume: Resume | None = None,
    snapshot_at: Sequence[int] = (),
) -> Run:
    """Run ``impl`` like :func:`run_local`, keeping pieces, step offsets and snapshots."""
    params = params or {}
    impl.check_params(params, len(inputs))
    out = CollectOutput()
    ctx = OffsetContext(out, resume, snapshot_at)
    streams = [ChunkyInput(d) if chunky else BytesInput(d) for d in inputs]
    await impl.run(list(streams), params, out, ctx)
    await trio.lowlevel.checkpoint()
    return Run(out.getvalue(), out.parts, ctx)
