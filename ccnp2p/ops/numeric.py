"""Numeric operators over row streams (numpy): elementwise ``map`` and axis-0 ``reduce``.

Inputs are raw little-endian row streams (see :mod:`ccnp2p.ops.tensors`), not safetensors
blobs: a stream can be processed block by block as it arrives, and any calc that outputs rows
(``embed``, ``forward``, ``tokenize``, another ``map``) can feed these directly. Params say how
to read them: ``dtype`` (``"F32"`` default, ``"F64"``, ``"I32"``, ``"I64"``) and ``width``
(elements per row, default 1).

Determinism: blocks are cut at fixed row counts whatever the input's chunking
(:func:`~ccnp2p.ops.tensors.iter_rows`), and accumulation happens in a fixed order, so the
output bytes depend only on the input bytes and params. Functions come from a fixed table,
selected by name; params are never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final

import numpy as np

from ccnp2p.compute.api import (
    InputStream,
    OperatorSpec,
    OutputStream,
    ParamError,
    RunContext,
)
from ccnp2p.errors import DecodeError
from ccnp2p.ops.base import BuiltinOperator
from ccnp2p.ops.params import check_keys, get_choice, get_float, get_int
from ccnp2p.ops.tensors import DTYPES, iter_rows, rows_to_bytes

Array = np.ndarray[Any, Any]

STREAM_DTYPES: Final = ("F32", "F64", "I32", "I64")
MAX_WIDTH: Final = 1 << 20

# name -> (scalar param names, function of (x, scalars))
MAP_FUNCTIONS: Final[dict[str, tuple[tuple[str, ...], Callable[[Array, list[Any]], Array]]]] = {
    "add": (("a",), lambda x, s: x + s[0]),
    "mul": (("a",), lambda x, s: x * s[0]),
    "scale": (("a", "b"), lambda x, s: x * s[0] + s[1]),
    "clip": (("lo", "hi"), lambda x, s: np.clip(x, s[0], s[1])),
    "relu": ((), lambda x, s: np.maximum(x, x.dtype.type(0))),
    "square": ((), lambda x, s: x * x),
    "abs": ((), lambda x, s: np.abs(x)),
    "neg": ((), lambda x, s: -x),
}
"""Whitelisted elementwise functions: ``scale`` is ``a * x + b``; ``clip`` needs ``lo <= hi``.
Integer streams wrap on overflow (two's complement), as numpy does."""

REDUCTIONS: Final = ("sum", "mean", "min", "max", "count")

# Helper modules whose source is part of these operators' code hash (see ops/base.py).
_CODE_MODULES: Final = ("ccnp2p.ops.params", "ccnp2p.ops.tensors")


def _stream_format(params: dict[str, Any]) -> tuple[str, int]:
    dtype = get_choice(params, "dtype", STREAM_DTYPES, default="F32")
    return dtype, get_int(params, "width", default=1, lo=1, hi=MAX_WIDTH)


def _scalar(params: dict[str, Any], key: str, dtype: str) -> Any:
    """A scalar argument converted to the stream's dtype (integers must fit it exactly)."""
    np_type = DTYPES[dtype].type
    if dtype.startswith("I"):
        info = np.iinfo(DTYPES[dtype])
        return np_type(get_int(params, key, lo=int(info.min), hi=int(info.max)))
    return np_type(get_float(params, key))


class Map(BuiltinOperator):
    """Applies one whitelisted function to every element; output has the input's format.

    Params: ``fn`` (a :data:`MAP_FUNCTIONS` name), its scalars (``a``, ``b``, ``lo``, ``hi``:
    numbers, integers for integer streams), ``dtype``, ``width``.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(name="map", version="1")
    impl_id: ClassVar[str] = "builtin:map@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        self._function(params)

    @staticmethod
    def _function(params: dict[str, Any]) -> tuple[str, int, Callable[[Array], Array]]:
        fn = get_choice(params, "fn", MAP_FUNCTIONS)
        names, function = MAP_FUNCTIONS[fn]
        check_keys(params, ("fn", "dtype", "width", *names))
        dtype, width = _stream_format(params)
        scalars = [_scalar(params, name, dtype) for name in names]
        if fn == "clip" and scalars[0] > scalars[1]:
            raise ParamError("clip needs lo <= hi")
        return dtype, width, lambda x: function(x, scalars)

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        dtype, width, function = self._function(params)
        with np.errstate(all="ignore"):  # overflow to inf / wraparound are defined results
            async for block in iter_rows(inputs[0], dtype, width):
                await out.write(rows_to_bytes(function(block), dtype))


class Reduce(BuiltinOperator):
    """Reduces the rows along axis 0 to one row, written when the input ends.

    Params: ``op`` (``sum``, ``mean``, ``min``, ``max``, ``count``), ``dtype``, ``width``.
    Output formats: ``sum`` is ``F64`` for float streams and ``I64`` (wrapping) for integer
    ones; ``mean`` is ``F64`` (NaN for an empty stream); ``min``/``max`` keep the input dtype
    (an empty stream is a decode error: there is no neutral value); ``count`` is a single
    ``I64`` (the number of rows). Float sums accumulate in float64, one block at a time.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="reduce",
        version="1",
        output={"bytes": 64},  # one row
    )
    impl_id: ClassVar[str] = "builtin:reduce@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("op", "dtype", "width"))
        get_choice(params, "op", REDUCTIONS)
        _stream_format(params)

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        op = get_choice(params, "op", REDUCTIONS)
        dtype, width = _stream_format(params)
        wide = np.dtype("<f8") if dtype.startswith("F") else np.dtype("<i8")
        total = np.zeros(width, dtype=wide)
        extreme: Array | None = None
        rows = 0
        with np.errstate(all="ignore"):
            async for block in iter_rows(inputs[0], dtype, width):
                rows += len(block)
                if op in ("sum", "mean"):
                    total += block.sum(axis=0, dtype=wide)
                elif op in ("min", "max"):
                    part = block.min(axis=0) if op == "min" else block.max(axis=0)
                    pick = np.minimum if op == "min" else np.maximum
                    extreme = part if extreme is None else pick(extreme, part)
            await out.write(self._result(op, dtype, total, extreme, rows))

    @staticmethod
    def _result(op: str, dtype: str, total: Array, extreme: Array | None, rows: int) -> bytes:
        if op == "count":
            return rows_to_bytes(np.array([rows]), "I64")
        if op == "sum":
            return total.astype(total.dtype.newbyteorder("<")).tobytes()
        if op == "mean":
            mean = total / rows if rows else np.full(total.shape, np.nan)
            return rows_to_bytes(mean, "F64")
        if extreme is None:
            raise DecodeError(f"{op} of an empty stream")
        return rows_to_bytes(extreme, dtype)
