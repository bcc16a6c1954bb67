from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.kad_dht.pb import kademlia_pb2 as pb

from ccnp2p.dht.wire import (
    MAX_PEERS_PER_LIST,
    MAX_VALUE_BYTES,
    ConnectionType,
    Message,
    MessageType,
    Record,
    WirePeer,
    decode_message,
    encode_message,
)
from ccnp2p.errors import DecodeError

small_bytes = st.binary(max_size=40)
peers = st.builds(
    WirePeer,
    id=small_bytes,
    addrs=st.lists(small_bytes, max_size=3).map(tuple),
    connection=st.sampled_from(ConnectionType),
)
records = st.builds(
    Record, key=small_bytes, value=st.binary(max_size=200), time_received=st.text(max_size=20)
)
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    key=small_bytes,
    record=st.none() | records,
    closer_peers=st.lists(peers, max_size=4).map(tuple),
    provider_peers=st.lists(peers, max_size=4).map(tuple),
    cluster_level_raw=st.integers(-(2**31), 2**31 - 1),
)


def to_pb(m: Message) -> pb.Message:
    out = pb.Message(type=int(m.type), key=m.key, clusterLevelRaw=m.cluster_level_raw)
    if m.record is not None:
        out.record.CopyFrom(
            pb.Record(key=m.record.key, value=m.record.value, timeReceived=m.record.time_received)
        )
    for src, dst in ((m.closer_peers, out.closerPeers), (m.provider_peers, out.providerPeers)):
        for p in src:
            dst.add(id=p.id, addrs=list(p.addrs), connection=int(p.connection))
    return out


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip_and_byte_equal_to_libp2p_protobuf(message: Message) -> None:
    encoded = encode_message(message)
    assert decode_message(encoded) == message
    assert encoded == to_pb(message).SerializeToString()
    parsed = pb.Message()
    parsed.ParseFromString(encoded)
    assert parsed == to_pb(message)


def test_decodes_libp2p_extensions_by_skipping_them() -> None:
    m = pb.Message(type=pb.Message.GET_VALUE, key=b"k", senderRecord=b"env")
    m.record.CopyFrom(pb.Record(key=b"k", value=b"v", author=b"a", signature=b"s"))
    m.closerPeers.add(id=b"p", addrs=[b"\x04\x7f\x00\x00\x01"], signedRecord=b"sr")
    decoded = decode_message(m.SerializeToString())
    assert decoded.record == Record(b"k", b"v")
    assert decoded.closer_peers == (WirePeer(b"p", (b"\x04\x7f\x00\x00\x01",)),)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_decode_error(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x08", "truncated varint"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "longer than 10"),
        (b"\x12\x05ab", "past the end"),
        (b"\x0b", "wire type 3"),
        (b"\x0e", "wire type 6"),
        (b"\x00\x00", "field number 0"),
        (b"\x08\x09", "unknown message type"),
        (b"\x0a\x01x", "wrong wire type"),
        (b"\x1a\x02\x2a\x01", "past the end"),
        (b"\x1a\x03\x2a\x01\xff", "not UTF-8"),
    ],
)
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_message(data)


def test_oversized_fields_are_rejected() -> None:
    big = encode_message(
        Message(MessageType.PUT_VALUE, b"k", Record(b"k", bytes(MAX_VALUE_BYTES + 1)))
    )
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_message(big)
    many = Message(MessageType.FIND_NODE, closer_peers=(WirePeer(b"p"),) * (MAX_PEERS_PER_LIST + 1))
    with pytest.raises(DecodeError, match="more than"):
        decode_message(encode_message(many))


def test_unknown_fields_skipped_and_last_singular_wins() -> None:
    data = b"\x08\x01" + b"\x78\x05" + b"\xa5\x01abcd" + b"\xa9\x01" + bytes(8) + b"\x08\x04"
    assert decode_message(data).type is MessageType.FIND_NODE
