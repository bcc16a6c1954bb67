"""Strict field readers for decoding objects: a wrong type is a clear DecodeError, not a crash."""

from __future__ import annotations

from typing import Any, TypeVar

from ccnp2p.errors import DecodeError
from ccnp2p.objects.cid import Cid

T = TypeVar("T")
MAX_LIST = 1_000_000


def req(data: dict[str, Any], key: str, typ: type[T]) -> T:
    """Required field of an exact type (bool is not accepted where int is expected)."""
    if key not in data:
        raise DecodeError(f"missing field {key!r}")
    return check(data[key], typ, key)


def opt(data: dict[str, Any], key: str, typ: type[T], default: T) -> T:
    if key not in data:
        return default
    return check(data[key], typ, key)


def check(value: Any, typ: type[T], name: str) -> T:
    if typ is int and isinstance(value, bool):
        raise DecodeError(f"field {name!r} must be an integer")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return value  # type: ignore[return-value]
    if not isinstance(value, typ):
        raise DecodeError(f"field {name!r} must be {typ.__name__}, not {type(value).__name__}")
    return value


def nonneg(value: int, name: str) -> int:
    if value < 0:
        raise DecodeError(f"field {name!r} must be non-negative")
    return value


def cid_list(data: dict[str, Any], key: str) -> tuple[Cid, ...]:
    items = req(data, key, list)
    if len(items) > MAX_LIST:
        raise DecodeError(f"field {key!r} is too long")
    return tuple(check(v, Cid, key) for v in items)


def int_list(data: dict[str, Any], key: str) -> tuple[int, ...]:
    items = req(data, key, list)
    if len(items) > MAX_LIST:
        raise DecodeError(f"field {key!r} is too long")
    return tuple(nonneg(check(v, int, key), key) for v in items)


def str_map_int(data: dict[str, Any], key: str) -> dict[str, int]:
    raw = opt(data, key, dict, {})
    return {str(k): nonneg(check(v, int, f"{key}.{k}"), key) for k, v in raw.items()}
