"""Wire messages: round trips, and malformed or hostile input from a peer in both directions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.errors import DecodeError
from ccnp2p.net.base import Stream
from ccnp2p.net.framing import FramedStream, encode_uvarint
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.transfer import TransferFailed, WindowConfig
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.service import read_all
from tests.transfer.conftest import make_data, open_cluster, put_file

CID = Cid.for_raw(b"x")

ALL = [
    m.Get(CID, 0, None, 1 << 20),
    m.Get(CID, 5, 10, 0),
    m.Want((CID, CID), 3),
    m.Credit(1),
    m.Seek(2, 100, None),
    m.Bye(),
    m.Info(0, None),
    m.Info(1, 1234),
    m.Chunk(1, CID, 0, b"x"),
    m.Chunk(0, CID, None, b""),
    m.DontHave(CID),
    m.Done(7),
    m.Abort("not-found", "nope"),
]


@pytest.mark.parametrize("msg", ALL, ids=lambda x: type(x).__name__)
def test_round_trip(msg: m.Message) -> None:
    assert m.decode(m.encode(msg)) == msg


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"t": "nope"},
        {"t": "credit"},
        {"t": "credit", "n": -1},
        {"t": "credit", "n": "1"},
        {"t": "credit", "n": 1, "x": 0},
        {"t": "credit", "n": True},
        {"t": "get", "root": b"x", "off": 0, "len": None, "credit": 0},
        {"t": "want", "cids": [], "credit": 0},
        {"t": "want", "cids": [CID] * 257, "credit": 0},
        {"t": "chunk", "seq": 0, "cid": CID, "off": None, "data": b"x" * (1024 * 1024 + 1)},
        {"t": "abort", "code": "x" * 100, "reason": ""},
    ],
)
def test_malformed_messages_are_decode_errors(value: object) -> None:
    with pytest.raises(DecodeError):
        m.decode(dagcbor.encode(value))


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    try:
        m.decode(data)
    except DecodeError:
        pass


async def _raw_exchange(stream: Stream, frames: list[bytes]) -> list[m.Message]:
    """Send raw bytes, then collect the decoded answers until EOF or reset."""
    for frame in frames:
        await stream.send_all(frame)
    framed = FramedStream(stream, m.MAX_FRAME_BYTES)
    out: list[m.Message] = []
    try:
        while (payload := await framed.receive_msg()) is not None:
            out.append(m.decode(payload))
    except Exception:
        pass
    return out


def frame(payload: bytes) -> bytes:
    return encode_uvarint(len(payload)) + payload


@pytest.mark.parametrize(
    "frames",
    [
        [frame(b"\xff\xff")],  # not CBOR
        [encode_uvarint(100 * 1024 * 1024)],  # oversized frame announced
        [b"\xff" * 12],  # overlong varint
        [frame(m.encode(m.Credit(5)))],  # wrong first message
        [frame(m.encode(m.Get(CID, 0, None, 1 << 20))), frame(m.encode(m.Credit(1 << 50)))],
        [frame(m.encode(m.Want((CID,), 0))), frame(m.encode(m.Seek(1, 0, None)))],
        [frame(m.encode(m.Want((CID,) * 256, 0)))] * 5,  # too many outstanding wants
    ],
)
async def test_sender_answers_malformed_requests_with_abort_and_keeps_serving(
    clock: trio.testing.MockClock, tmp_path: Path, frames: list[bytes]
) -> None:
    data = make_data(300_000)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        root = put_file(alice.store, data)
        stream = await bob.host.open_stream(alice.peer_id, m.PROTOCOL_ID)
        with trio.fail_after(100):
            answers = await _raw_exchange(stream, frames)
        aborts = [a for a in answers if isinstance(a, m.Abort)]
        assert aborts and aborts[-1].code in {"bad-request", "flow-control", "not-found"}
        # The node is fine: a well-behaved fetch still works.
        assert await read_all(bob.service.fetch(root, [alice.peer_id])) == data


def hostile_sender(frames: list[bytes]) -> Callable[[Stream], Awaitable[None]]:
    async def handle(stream: Stream) -> None:
        framed = FramedStream(stream, m.MAX_FRAME_BYTES)
        await framed.receive_msg()
        for f in frames:
            await stream.send_all(f)
        await trio.sleep(1)
        await stream.close()

    return handle


CHUNK = make_data(1000)
CHUNK_CID = Cid.for_raw(CHUNK)


@pytest.mark.parametrize(
    "frames",
    [
        [frame(b"\x00\x01garbage")],
        [encode_uvarint(50 * 1024 * 1024)],
        [frame(m.encode(m.Info(0, 1000))), frame(m.encode(m.Chunk(0, CHUNK_CID, 0, b"y" * 1000)))],
        [frame(m.encode(m.Chunk(0, CHUNK_CID, 500, CHUNK)))],  # not where the range starts
        [frame(m.encode(m.Chunk(0, CHUNK_CID, 0, CHUNK)))] * 40,  # far beyond its credit
        [frame(m.encode(m.Want((CHUNK_CID,), 1)))],  # a request, from a sender
        [frame(m.encode(m.Info(0, 1000)))],  # then EOF without DONE
    ],
)
async def test_reader_drops_a_hostile_sender_cleanly(
    clock: trio.testing.MockClock, tmp_path: Path, frames: list[bytes]
) -> None:
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        alice.host.set_handler(m.PROTOCOL_ID, hostile_sender(frames))
        window = WindowConfig(initial_bytes=16_000, min_bytes=16_000, max_bytes=16_000)
        async with bob.service.open_range(alice.peer_id, CHUNK_CID, window=window) as reader:
            with pytest.raises(TransferFailed):
                await reader.read_all()
        # Want mode: either a clean failure or the right bytes (a valid chunk is a valid chunk).
        try:
            got = await read_all(bob.service.fetch(CHUNK_CID, [alice.peer_id]))
        except TransferFailed:
            return
        assert got == CHUNK
