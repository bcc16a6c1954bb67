"""The kad-dht wire message: a strict, bounded, hand-rolled protobuf codec.

Schema: ``protocols/ccn-kad.proto`` (the libp2p kad-dht ``Message``). Hand-rolled because it is
small, because it lets every field be bounded *while* parsing (a generated parser would allocate
whatever a peer claims), and because decoding errors must surface as one clear
:class:`~ccnp2p.errors.DecodeError`, never as an exception from deep inside a library.

Encoding is proto3 canonical (fields in number order, default scalars omitted), so our bytes equal
what libp2p's generated classes produce. Decoding follows protobuf rules: unknown fields of wire
types 0, 1, 2 and 5 are skipped (that is how py-libp2p's ``senderRecord``, ``author`` or
``signedRecord`` extensions pass through us), a repeated occurrence of a singular field wins over
the earlier one, wire types 3, 4 (groups), 6 and 7 are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from ccnp2p.errors import DecodeError

MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_KEY_BYTES: Final = 1024
MAX_VALUE_BYTES: Final = 64 * 1024
MAX_PEER_ID_BYTES: Final = 128
MAX_ADDR_BYTES: Final = 1024
MAX_ADDRS_PER_PEER: Final = 32
MAX_PEERS_PER_LIST: Final = 100
MAX_TIME_RECEIVED_BYTES: Final = 64

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class MessageType(IntEnum):
    """``Message.MessageType`` from the kad-dht spec."""

    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(IntEnum):
    """``Message.ConnectionType``: the sender's view of its link to the peer listed."""

    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


@dataclass(frozen=True, slots=True)
class WirePeer:
    """``Message.Peer``: a peer id and its binary multiaddrs."""

    id: bytes
    addrs: tuple[bytes, ...] = ()
    connection: ConnectionType = ConnectionType.NOT_CONNECTED


@dataclass(frozen=True, slots=True)
class Record:
    """``Record``: a key/value pair; ``time_received`` is an RFC 3339 string, informational."""

    key: bytes
    value: bytes
    time_received: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """``Message``: one request or response of the protocol."""

    type: MessageType
    key: bytes = b""
    record: Record | None = None
    closer_peers: tuple[WirePeer, ...] = ()
    provider_peers: tuple[WirePeer, ...] = ()
    cluster_level_raw: int = 0


# --------------------------------------------------------------------------- encoding


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 are sent as 10-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value) if value else b""


def _field_bytes(number: int, value: bytes, *, always: bool = False) -> bytes:
    if not value and not always:
        return b""
    return _varint(number << 3 | _LEN) + _varint(len(value)) + value


def _encode_peer(peer: WirePeer) -> bytes:
    out = [_field_bytes(1, peer.id)]
    out.extend(_field_bytes(2, addr, always=True) for addr in peer.addrs)
    out.append(_field_varint(3, int(peer.connection)))
    return b"".join(out)


def _encode_record(record: Record) -> bytes:
    return (
        _field_bytes(1, record.key)
        + _field_bytes(2, record.value)
        + _field_bytes(5, record.time_received.encode())
    )


def encode_message(message: Message) -> bytes:
    """Serialize ``message`` (proto3 canonical: byte-equal to libp2p's generated code)."""
    out = [_field_varint(1, int(message.type)), _field_bytes(2, message.key)]
    if message.record is not None:
        out.append(_field_bytes(3, _encode_record(message.record), always=True))
    out.extend(_field_bytes(8, _encode_peer(p), always=True) for p in message.closer_peers)
    out.extend(_field_bytes(9, _encode_peer(p), always=True) for p in message.provider_peers)
    out.append(_field_varint(10, message.cluster_level_raw))
    return b"".join(out)


# --------------------------------------------------------------------------- decoding


class _Reader:
    """Walks ``(field number, wire type, value)`` triples over a buffer, bounded and strict."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._end = len(data)

    def varint(self) -> int:
        result = 0
        for shift in range(0, 70, 7):
            if self._pos >= self._end:
                raise DecodeError("truncated varint")
            byte = self._data[self._pos]
            self._pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result & ((1 << 64) - 1)
        raise DecodeError("varint longer than 10 bytes")

    def fields(self) -> list[tuple[int, int, int | memoryview]]:
        out: list[tuple[int, int, int | memoryview]] = []
        while self._pos < self._end:
            tag = self.varint()
            number, wire_type = tag >> 3, tag & 7
            if number == 0 or number > (1 << 29) - 1:
                raise DecodeError(f"invalid field number {number}")
            out.append((number, wire_type, self._value(wire_type)))
        return out

    def _value(self, wire_type: int) -> int | memoryview:
        if wire_type == _VARINT:
            return self.varint()
        if wire_type in (_I64, _I32, _LEN):
            size = {_I64: 8, _I32: 4}.get(wire_type) or self.varint()
            if size > self._end - self._pos:
                raise DecodeError("field runs past the end of the message")
            chunk = self._data[self._pos : self._pos + size]
            self._pos += size
            return chunk
        raise DecodeError(f"unsupported protobuf wire type {wire_type}")


def _expect_bytes(value: int | memoryview, what: str, limit: int) -> bytes:
    if isinstance(value, int):
        raise DecodeError(f"{what}: expected a length-delimited field")
    if len(value) > limit:
        raise DecodeError(f"{what}: {len(value)} bytes exceeds the limit of {limit}")
    return bytes(value)


def _expect_int(value: int | memoryview, what: str) -> int:
    if not isinstance(value, int):
        raise DecodeError(f"{what}: expected a varint field")
    return value


def _decode_peer(data: memoryview) -> WirePeer:
    peer_id = b""
    addrs: list[bytes] = []
    connection = ConnectionType.NOT_CONNECTED
    for number, wire_type, value in _Reader(data).fields():
        if number == 1 and wire_type == _LEN:
            peer_id = _expect_bytes(value, "Peer.id", MAX_PEER_ID_BYTES)
        elif number == 2 and wire_type == _LEN:
            if len(addrs) >= MAX_ADDRS_PER_PEER:
                raise DecodeError(f"Peer.addrs: more than {MAX_ADDRS_PER_PEER} addresses")
            addrs.append(_expect_bytes(value, "Peer.addrs", MAX_ADDR_BYTES))
        elif number == 3 and wire_type == _VARINT:
            raw = _expect_int(value, "Peer.connection")
            connection = ConnectionType(raw) if raw <= 3 else ConnectionType.NOT_CONNECTED
        elif number in (1, 2, 3):
            raise DecodeError(f"Peer field {number}: wrong wire type {wire_type}")
    return WirePeer(peer_id, tuple(addrs), connection)


def _decode_record(data: memoryview) -> Record:
    key = value = b""
    time_received = ""
    for number, wire_type, field in _Reader(data).fields():
        if number in (1, 2, 5) and wire_type != _LEN:
            raise DecodeError(f"Record field {number}: wrong wire type {wire_type}")
        if number == 1:
            key = _expect_bytes(field, "Record.key", MAX_KEY_BYTES)
        elif number == 2:
            value = _expect_bytes(field, "Record.value", MAX_VALUE_BYTES)
        elif number == 5:
            raw = _expect_bytes(field, "Record.timeReceived", MAX_TIME_RECEIVED_BYTES)
            try:
                time_received = raw.decode()
            except UnicodeDecodeError as exc:
                raise DecodeError("Record.timeReceived is not UTF-8") from exc
    return Record(key, value, time_received)


_WIRE_TYPES: Final = {1: _VARINT, 2: _LEN, 3: _LEN, 8: _LEN, 9: _LEN, 10: _VARINT}


def decode_message(data: bytes | memoryview) -> Message:
    """Parse one ``Message``; any malformed or oversized input raises :class:`DecodeError`."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    msg_type = 0
    key = b""
    record: Record | None = None
    closer: list[WirePeer] = []
    providers: list[WirePeer] = []
    cluster_level = 0
    for number, wire_type, value in _Reader(data).fields():
        expected = _WIRE_TYPES.get(number)
        if expected is None:
            continue  # unknown field: skipped, as protobuf requires
        if wire_type != expected:
            raise DecodeError(f"Message field {number}: wrong wire type {wire_type}")
        if number == 1:
            msg_type = _expect_int(value, "Message.type")
        elif number == 2:
            key = _expect_bytes(value, "Message.key", MAX_KEY_BYTES)
        elif number == 3:
            record = _decode_record(_as_view(value))
        elif number in (8, 9):
            peers = closer if number == 8 else providers
            if len(peers) >= MAX_PEERS_PER_LIST:
                raise DecodeError(f"more than {MAX_PEERS_PER_LIST} peers in field {number}")
            peers.append(_decode_peer(_as_view(value)))
        else:
            raw = _expect_int(value, "Message.clusterLevelRaw") & 0xFFFFFFFF
            cluster_level = raw - (1 << 32) if raw >= 1 << 31 else raw  # int32
    if msg_type > max(MessageType):
        raise DecodeError(f"unknown message type {msg_type}")
    return Message(
        MessageType(msg_type), key, record, tuple(closer), tuple(providers), cluster_level
    )


def _as_view(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise DecodeError("expected a length-delimited field")
    return value
