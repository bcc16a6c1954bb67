"""Operators the compute scenarios install on simulated nodes (besides, or instead of, built-ins).

``sift`` is a source-affinity operator with a chosen output/input ratio: it streams its inputs
one after the other and keeps every ``stride``-th byte, so ``stride = 1`` copies (output as big
as the input) and ``stride = 1024`` reduces (a scan that reports a little). It reads every input
byte, so whatever placement does not save is really moved over the simulated links. ``tag`` is
ignored: it only makes distinct calcs over the same inputs (one per policy or per reader round).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from ccnp2p.compute.api import (
    InputStream,
    OperatorImpl,
    OperatorSpec,
    OutputStream,
    ParamError,
    RunContext,
)
from ccnp2p.compute.registry import OperatorRegistry

SIFT_MAX_INPUTS: Final = 4
SIFT_READ_BYTES: Final = 65536
MAX_STRIDE: Final = 1 << 30


class Sift(OperatorImpl):
    """Every ``stride``-th byte of the concatenated inputs (source affinity, streaming)."""

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="sift",
        version="1",
        affinity="source",
        min_inputs=1,
        max_inputs=SIFT_MAX_INPUTS,
        output={"div_param": "stride"},
    )
    impl_id: ClassVar[str] = "sim:sift@1"

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        unknown = set(params) - {"stride", "tag"}
        if unknown:
            raise ParamError(f"sift: unknown params {sorted(unknown)}")
        stride = params.get("stride", 1)
        if not isinstance(stride, int) or isinstance(stride, bool) or not 1 <= stride <= MAX_STRIDE:
            raise ParamError(f"sift: stride must be an integer in 1..{MAX_STRIDE}")

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        stride = int(params.get("stride", 1))
        pos = 0  # offset in the concatenated input
        for stream in inputs:
            while piece := await stream.read(SIFT_READ_BYTES):
                first = (-pos) % stride  # index in ``piece`` of the next kept byte
                kept = piece[first::stride]
                pos += len(piece)
                if kept:
                    await out.write(kept)


def sift_output_bytes(input_bytes: int, stride: int) -> int:
    """How many bytes ``sift`` writes for ``input_bytes`` bytes of (concatenated) input."""
    return -(-input_bytes // stride)


def sim_registry() -> OperatorRegistry:
    """The operators of the compute scenarios: ``sift`` only (few operator announcements)."""
    return OperatorRegistry([Sift()])
