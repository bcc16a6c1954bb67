"""Wire messages of ``/ccn/transfer/1.0.0`` (spec: ``protocols/ccn-transfer.md``).

Every message is one DAG-CBOR map in one uvarint-length-prefixed frame; the ``t`` key names the
type. Decoding is strict: unknown types, missing or extra keys, wrong value types and values out
of range all raise :class:`~ccnp2p.errors.DecodeError`, which the driver turns into an ABORT and
a closed stream. Nothing a peer sends can raise anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ccnp2p.errors import DecodeError
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.store.files import MAX_CHUNK_BYTES

PROTOCOL_ID: Final = "/ccn/transfer/1.0.0"
MAX_FRAME_BYTES: Final = MAX_CHUNK_BYTES + 4096  # one maximal chunk plus its envelope
MAX_WANT_CIDS: Final = 256  # CIDs in one WANT message
MAX_OUTSTANDING_WANTS: Final = 1024  # CIDs wanted and not yet answered, per stream
MAX_OFFSET: Final = 1 << 62
MAX_REASON_CHARS: Final = 256
MAX_CODE_CHARS: Final = 64


class AbortCode(StrEnum):
    """Why a transfer was aborted (the ``code`` of an ABORT message)."""

    NOT_FOUND = "not-found"  # the sender has no such root / block
    BAD_REQUEST = "bad-request"  # a malformed, out-of-order or unsupported message
    FLOW_CONTROL = "flow-control"  # credit overrun or an invalid grant
    BAD_CHUNK = "bad-chunk"  # a chunk did not match its CID (sent by the reader)
    PRODUCER_FAILED = "producer-failed"  # the live stream's producer failed
    OVERLOADED = "overloaded"  # the sender refuses more transfers now
    CANCELLED = "cancelled"  # the reader no longer wants the data
    INTERNAL = "internal"  # the sender failed locally (disk error...)


@dataclass(frozen=True, slots=True)
class Get:
    """Reader: stream bytes ``[offset, offset + length)`` of ``root`` (``None``: to the end)."""

    root: Cid
    offset: int
    length: int | None
    credit: int


@dataclass(frozen=True, slots=True)
class Want:
    """Reader: send these blocks, in this order (opens a want-mode stream, or adds to one)."""

    cids: tuple[Cid, ...]
    credit: int


@dataclass(frozen=True, slots=True)
class Credit:
    """Reader: the sender may send ``nbytes`` more chunk data bytes."""

    nbytes: int


@dataclass(frozen=True, slots=True)
class Seek:
    """Reader: abandon the current range; stream ``[offset, offset + length)`` as range ``seq``."""

    seq: int
    offset: int
    length: int | None


@dataclass(frozen=True, slots=True)
class Bye:
    """Reader: no more requests; the sender answers DONE and closes."""


@dataclass(frozen=True, slots=True)
class Info:
    """Sender: range ``seq`` starts; ``size`` is the total size (``None``: live, not known yet)."""

    seq: int
    size: int | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """Sender: one whole chunk. ``offset`` is its place in the file (``None`` in want mode)."""

    seq: int
    cid: Cid
    offset: int | None
    data: bytes


@dataclass(frozen=True, slots=True)
class DontHave:
    """Sender (want mode): this block is not here; ask someone else."""

    cid: Cid


@dataclass(frozen=True, slots=True)
class Done:
    """Sender: range ``seq`` is complete (or, after BYE, the stream is finished)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Abort:
    """Either side: the transfer failed; ``code`` is an :class:`AbortCode` value."""

    code: str
    reason: str


Message = Get | Want | Credit | Seek | Bye | Info | Chunk | DontHave | Done | Abort


def encode(msg: Message) -> bytes:
    """Encode one message as canonical DAG-CBOR (the frame payload)."""
    return dagcbor.encode(_to_map(msg))


def _to_map(msg: Message) -> dict[str, Any]:
    match msg:
        case Get(root, offset, length, credit):
            return {"t": "get", "root": root, "off": offset, "len": length, "credit": credit}
        case Want(cids, credit):
            return {"t": "want", "cids": list(cids), "credit": credit}
        case Credit(nbytes):
            return {"t": "credit", "n": nbytes}
        case Seek(seq, offset, length):
            return {"t": "seek", "seq": seq, "off": offset, "len": length}
        case Bye():
            return {"t": "bye"}
        case Info(seq, size):
            return {"t": "info", "seq": seq, "size": size}
        case Chunk(seq, cid, offset, data):
            return {"t": "chunk", "seq": seq, "cid": cid, "off": offset, "data": data}
        case DontHave(cid):
            return {"t": "donthave", "cid": cid}
        case Done(seq):
            return {"t": "done", "seq": seq}
        case Abort(code, reason):
            return {"t": "abort", "code": code, "reason": reason}
    raise TypeError(f"not a transfer message: {msg!r}")


_KEYS: Final = {
    "get": {"t", "root", "off", "len", "credit"},
    "want": {"t", "cids", "credit"},
    "credit": {"t", "n"},
    "seek": {"t", "seq", "off", "len"},
    "bye": {"t"},
    "info": {"t", "seq", "size"},
    "chunk": {"t", "seq", "cid", "off", "data"},
    "donthave": {"t", "cid"},
    "done": {"t", "seq"},
    "abort": {"t", "code", "reason"},
}


def decode(payload: bytes) -> Message:
    """Decode one frame payload.

    Raises:
        DecodeError: anything but a valid message (the peer is misbehaving).
    """
    value = dagcbor.decode(payload)
    if not isinstance(value, dict):
        raise DecodeError("transfer message must be a map")
    kind = value.get("t")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise DecodeError(f"unknown transfer message type {kind!r}")
    if set(value) != _KEYS[kind]:
        raise DecodeError(f"{kind}: unexpected keys {sorted(value)}")
    return _from_map(kind, value)


def _from_map(kind: str, m: dict[str, Any]) -> Message:
    match kind:
        case "get":
            return Get(_cid(m["root"]), _uint(m["off"]), _opt_uint(m["len"]), _uint(m["credit"]))
        case "want":
            return Want(_cids(m["cids"]), _uint(m["credit"]))
        case "credit":
            return Credit(_uint(m["n"]))
        case "seek":
            return Seek(_uint(m["seq"]), _uint(m["off"]), _opt_uint(m["len"]))
        case "bye":
            return Bye()
        case "info":
            return Info(_uint(m["seq"]), _opt_uint(m["size"]))
        case "chunk":
            data = m["data"]
            if not isinstance(data, bytes) or len(data) > MAX_CHUNK_BYTES:
                raise DecodeError("chunk: data must be bytes of at most 1 MiB")
            return Chunk(_uint(m["seq"]), _cid(m["cid"]), _opt_uint(m["off"]), data)
        case "donthave":
            return DontHave(_cid(m["cid"]))
        case "done":
            return Done(_uint(m["seq"]))
        case _:  # "abort"
            return Abort(_text(m["code"], MAX_CODE_CHARS), _text(m["reason"], MAX_REASON_CHARS))


def _uint(value: Any) -> int:
    if type(value) is not int or not 0 <= value < MAX_OFFSET:
        raise DecodeError(f"expected a non-negative integer, got {value!r:.40}")
    return value


def _opt_uint(value: Any) -> int | None:
    return None if value is None else _uint(value)


def _cid(value: Any) -> Cid:
    if not isinstance(value, Cid):
        raise DecodeError("expected a CID link")
    return value


def _cids(value: Any) -> tuple[Cid, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_WANT_CIDS:
        raise DecodeError(f"want: 1..{MAX_WANT_CIDS} CIDs required")
    return tuple(_cid(v) for v in value)


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise DecodeError("expected a short string")
    return value
