"""Canonical DAG-CBOR encoding on top of cbor2.

Theory of operation: the data model is None, bool, int, float (always 64-bit), str, bytes, list,
dict with str keys, and :class:`Cid` (CBOR tag 42 over ``0x00 + binary CID``). Encoding first
normalises the value (map keys sorted length-first then bytewise, as DAG-CBOR requires), then lets
cbor2 write definite-length items with minimal integer heads. Decoding parses with cbor2 and then
re-encodes: input whose re-encoding differs is non-canonical and rejected, so one object has
exactly one byte form and one CID.
"""

from __future__ import annotations

import math
from typing import Any, Final

import cbor2

from ccnp2p.errors import DecodeError, InvalidCid
from ccnp2p.objects.cid import Cid

CID_TAG: Final = 42
MAX_DEPTH: Final = 64
MAX_OBJECT_BYTES: Final = 4 * 1024 * 1024


def _sort_key(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8")
    return (len(raw), raw)


def _normalise(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise DecodeError("object nests too deep")
    if value is None or isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:
            raise DecodeError("integer out of CBOR range")
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise DecodeError("NaN and infinities are not allowed in DAG-CBOR")
        return value
    if isinstance(value, Cid):
        return cbor2.CBORTag(CID_TAG, b"\x00" + bytes(value))
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_normalise(v, depth + 1) for v in value]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise DecodeError("DAG-CBOR map keys must be strings")
        return {k: _normalise(value[k], depth + 1) for k in sorted(value, key=_sort_key)}
    raise DecodeError(f"type {type(value).__name__} cannot be encoded as DAG-CBOR")


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Floats are always written as 64-bit IEEE 754."""
    normalised = _normalise(value)
    # canonical=False keeps our key order and writes every float as float64 (0xfb).
    return cbor2.dumps(normalised, canonical=False)


def _tag_hook(tag: cbor2.CBORTag, _immutable: bool) -> Any:
    # cbor2 >= 6 calls tag_hook(tag, immutable).
    if tag.tag != CID_TAG:
        raise DecodeError(f"unsupported CBOR tag {tag.tag}")
    raw = tag.value
    if not isinstance(raw, bytes) or not raw.startswith(b"\x00"):
        raise DecodeError("tag 42 must wrap 0x00 + binary CID")
    try:
        return Cid.from_bytes(raw[1:])
    except InvalidCid as exc:
        raise DecodeError(f"bad CID link: {exc}") from exc


def decode(data: bytes) -> Any:
    """Decode canonical DAG-CBOR; raises :class:`DecodeError` on anything else."""
    if len(data) > MAX_OBJECT_BYTES:
        raise DecodeError("object too large")
    try:
        value = cbor2.loads(
            data,
            tag_hook=_tag_hook,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=MAX_DEPTH,
        )
    except DecodeError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise DecodeError(f"invalid CBOR: {exc}") from exc
    try:
        again = encode(value)
    except DecodeError as exc:
        raise DecodeError(f"not DAG-CBOR: {exc}") from exc
    if again != data:
        raise DecodeError("non-canonical DAG-CBOR encoding")
    return value
