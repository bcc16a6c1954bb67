"""``/ccn/settle/1.0.0`` messages and the one-request client.

Every exchange is one request frame and one answer frame (uvarint-framed DAG-CBOR maps, at most
:data:`MAX_FRAME_BYTES`), then both sides close. Requests:

=================  =============================================  ==========================
``kind``           request fields                                 answer (besides ``ok``)
=================  =============================================  ==========================
``settle``         ``receipt``, ``statement``, ``evidence``       ``new`` (bool)
``share``          ``share`` (a share record addressed to us)     --
``countersign``    ``index`` (a one-way index record)             ``index`` (countersigned)
``index-query``    ``target`` (CID)                               ``records`` (index records)
=================  =============================================  ==========================

A refusal is ``{ok: false, error: <code>, reason: <text>}``. The full spec is
``protocols/ccn-settle.md``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from ccnp2p.errors import CcnError, DecodeError, ProtocolError, RemoteError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects import dagcbor

if TYPE_CHECKING:
    from ccnp2p.node import Node

_T = TypeVar("_T")

PROTOCOL_ID: Final = "/ccn/settle/1.0.0"
MAX_FRAME_BYTES: Final = 1 << 20
REQUEST_TIMEOUT_S: Final = 30.0
MAX_INBOUND: Final = 32
MAX_RECORDS_PER_ANSWER: Final = 8


class Kind(enum.Enum):
    SETTLE = "settle"
    SHARE = "share"
    COUNTERSIGN = "countersign"
    INDEX_QUERY = "index-query"


class Refused(RemoteError):
    """The peer answered ``ok: false``; ``code`` carries its error code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code


def decode_map(frame: bytes) -> dict[str, Any]:
    value = dagcbor.decode(frame)
    if not isinstance(value, dict):
        raise DecodeError("message must be a map")
    return value


def request_kind(msg: dict[str, Any]) -> Kind:
    try:
        return Kind(msg.get("kind"))
    except ValueError as exc:
        raise ProtocolError(f"unknown request kind {str(msg.get('kind'))[:40]!r}") from exc


def refusal(exc: CcnError) -> dict[str, Any]:
    return {"ok": False, "error": exc.code, "reason": str(exc)[:200]}


def field_of(msg: dict[str, Any], key: str, typ: type[_T]) -> _T:
    value = msg.get(key)
    if not isinstance(value, typ):
        raise ProtocolError(f"field {key!r} must be {typ.__name__}")
    return value


async def request(node: Node, peer: bytes, msg: dict[str, Any]) -> dict[str, Any]:
    """Send one request to ``peer`` and return its ``ok`` answer.

    A peer we know no address for is looked up in the DHT first.

    Raises:
        Refused: the peer refused (``ok: false``).
        RemoteError / NetworkError: the peer answered garbage or could not be reached.
        trio.TooSlowError: no answer within :data:`REQUEST_TIMEOUT_S`.
    """
    network = node.network
    with trio.fail_after(REQUEST_TIMEOUT_S):
        if peer not in network.connected_peers() and not network.peer_addrs(peer):
            info = await node.dht.find_peer(peer)
            if info is not None:
                network.add_peer_addrs(peer, info.addrs)
        stream = await network.open_stream(peer, PROTOCOL_ID)
        framed = FramedStream(stream, MAX_FRAME_BYTES)
        try:
            await framed.send_msg(dagcbor.encode(msg))
            frame = await framed.receive_msg()
            if frame is None:
                raise ProtocolError("peer closed without answering")
            answer = decode_map(frame)
            await framed.close()
        except BaseException:
            with trio.CancelScope(shield=True):
                await stream.reset()
            raise
    if answer.get("ok") is not True:
        raise Refused(str(answer.get("error", "refused"))[:40], str(answer.get("reason", ""))[:200])
    return answer
