"""Strict readers for calc params, and small stream helpers shared by the built-in operators.

Params are part of a calc's CID, so two spellings of the same computation would be two CIDs that
never share a cached result. The helpers here therefore reject anything an operator does not
understand (unknown keys, wrong types, out-of-range values) instead of ignoring or coercing it:
``{"invert": 0}`` is an error, not ``False``. Every error is a :class:`ParamError`.

The stream helpers exist because every operator needs the same two things: to read an input in
bounded pieces, and to write output in pieces large enough to be cheap but small enough that
backpressure (``await out.write``) takes effect often.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from ccnp2p.compute.api import OutputStream, ParamError

READ_BYTES: Final = 64 * 1024
"""How much an operator asks of an input at a time."""

WRITE_BYTES: Final = 64 * 1024
"""Output is flushed in pieces of about this size."""


def check_keys(params: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Reject keys an operator does not know, so a typo never silently changes nothing."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ParamError(f"unknown params: {', '.join(unknown)}")


def get_int(
    params: Mapping[str, Any],
    key: str,
    *,
    default: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    """An integer param within ``[lo, hi]``; required when ``default`` is None."""
    value = params.get(key, default)
    if value is None:
        raise ParamError(f"param {key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"param {key!r} must be an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(f"param {key!r} must be in [{lo}, {hi}], not {value}")
    return value


def get_float(
    params: Mapping[str, Any],
    key: str,
    *,
    default: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> float:
    """A finite number param (int or float in DAG-CBOR) within ``[lo, hi]``."""
    value = params.get(key, default)
    if value is None:
        raise ParamError(f"param {key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"param {key!r} must be a number")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ParamError(f"param {key!r} must be finite")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise ParamError(f"param {key!r} must be in [{lo}, {hi}], not {number}")
    return number


def get_bool(params: Mapping[str, Any], key: str, *, default: bool) -> bool:
    """A boolean param; integers are not accepted as booleans."""
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ParamError(f"param {key!r} must be a boolean")
    return value


def get_choice(
    params: Mapping[str, Any], key: str, choices: Collection[str], *, default: str | None = None
) -> str:
    """A string param from a fixed whitelist (never evaluated)."""
    value = params.get(key, default)
    if value is None:
        raise ParamError(f"param {key!r} is required")
    if not isinstance(value, str) or value not in choices:
        raise ParamError(f"param {key!r} must be one of {sorted(choices)}, not {value!r}")
    return value


def get_str(
    params: Mapping[str, Any], key: str, *, max_bytes: int, default: str | None = None
) -> str:
    """A non-empty string param of at most ``max_bytes`` UTF-8 bytes."""
    value = params.get(key, default)
    if value is None:
        raise ParamError(f"param {key!r} is required")
    if not isinstance(value, str) or not value:
        raise ParamError(f"param {key!r} must be a non-empty string")
    if len(value.encode("utf-8")) > max_bytes:
        raise ParamError(f"param {key!r} is longer than {max_bytes} bytes")
    return value


async def write_pieces(out: OutputStream, data: bytes, piece_bytes: int = WRITE_BYTES) -> None:
    """Write a large result in pieces, so credit is asked for (and granted) as it goes."""
    view = memoryview(data)
    for start in range(0, len(view), piece_bytes):
        await out.write(bytes(view[start : start + piece_bytes]))


class BufferedOutput:
    """Coalesces small writes into pieces of about :data:`WRITE_BYTES`.

    Operators that emit many small records (a line, a row) would otherwise pay a credit round
    trip per record; operators that emit big blocks would otherwise hold them whole. ``write``
    flushes as soon as the buffer is full, so backpressure still applies every piece.
    """

    def __init__(self, out: OutputStream, piece_bytes: int = WRITE_BYTES) -> None:
        self._out = out
        self._piece = piece_bytes
        self._buf = bytearray()

    async def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= self._piece:
            piece = bytes(self._buf[: self._piece])
            del self._buf[: self._piece]
            await self._out.write(piece)

    async def flush(self) -> None:
        """Write whatever is buffered (call before reporting a step and at the end)."""
        if self._buf:
            piece = bytes(self._buf)
            self._buf.clear()
            await self._out.write(piece)
