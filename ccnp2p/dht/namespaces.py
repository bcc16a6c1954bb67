"""Validators for ccnp2p's own DHT record namespaces.

| namespace | value | key suffix must equal |
| --- | --- | --- |
| ``/ccn/result/`` | :class:`~ccnp2p.objects.ResultRecord` | the calc CID |
| ``/ccn/exec/`` | :class:`~ccnp2p.objects.ExecutorRecord` | the calc CID |
| ``/ccn/ckpt/`` | :class:`~ccnp2p.objects.CheckpointRecord` | the calc CID |
| ``/ccn/cap/`` | :class:`~ccnp2p.objects.CapabilityRecord` | the signer's peer id |

A value is valid when it decodes as the namespace's record type, its signature verifies, and it
is about the key it is stored under. Of several valid values the highest ``seq`` wins; ties go to
the lexicographically larger encoding so every node picks the same one. Checkpoints rank by
``step`` first (a later checkpoint supersedes an earlier one), then ``seq``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.dht.records import ValidatorRegistry
from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import PublicKey, peer_id_to_str
from ccnp2p.objects.model import SignedObject, decode_object
from ccnp2p.objects.records import (
    CapabilityRecord,
    CheckpointRecord,
    ExecutorRecord,
    ResultRecord,
)

RESULT_NS: Final = "/ccn/result/"
EXEC_NS: Final = "/ccn/exec/"
CKPT_NS: Final = "/ccn/ckpt/"
CAP_NS: Final = "/ccn/cap/"


def result_key(calc: Cid) -> bytes:
    return f"{RESULT_NS}{calc}".encode()


def exec_key(calc: Cid) -> bytes:
    return f"{EXEC_NS}{calc}".encode()


def ckpt_key(calc: Cid) -> bytes:
    return f"{CKPT_NS}{calc}".encode()


def cap_key(peer_id: bytes) -> bytes:
    return f"{CAP_NS}{peer_id_to_str(peer_id)}".encode()


class RecordValidator:
    """Validates one signed record type stored under ``namespace + subject``."""

    def __init__(self, namespace: str, record_type: type[SignedObject]) -> None:
        self.namespace = namespace.encode()
        self.record_type = record_type

    def decode(self, value: bytes) -> SignedObject:
        try:
            obj = decode_object(value, self.record_type)
        except CcnError as exc:
            raise InvalidRecord(f"not a {self.record_type.TYPE} record: {exc}") from exc
        assert isinstance(obj, SignedObject)
        return obj

    def subject(self, obj: SignedObject) -> str:
        if isinstance(obj, CapabilityRecord):
            return peer_id_to_str(PublicKey.from_protobuf(obj.peer).peer_id)
        calc = getattr(obj, "calc", None)
        if not isinstance(calc, Cid):
            raise InvalidRecord("record names no calc")
        return str(calc)

    def validate(self, key: bytes, value: bytes) -> None:
        obj = self.decode(value)
        try:
            obj.verify()
        except CcnError as exc:
            raise InvalidRecord(f"{obj.TYPE} signature does not verify") from exc
        if key != self.namespace + self.subject(obj).encode():
            raise InvalidRecord(f"{obj.TYPE} record stored under the wrong key")

    def rank(self, obj: SignedObject, value: bytes) -> tuple[int, int, bytes]:
        step = obj.step if isinstance(obj, CheckpointRecord) else 0
        seq = int(getattr(obj, "seq", 0))
        return (step, seq, value)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        ranked = [(self.rank(self.decode(v), v), i) for i, v in enumerate(values)]
        return max(ranked)[1]


def register_ccn_namespaces(registry: ValidatorRegistry) -> ValidatorRegistry:
    registry.register(RESULT_NS, RecordValidator(RESULT_NS, ResultRecord))
    registry.register(EXEC_NS, RecordValidator(EXEC_NS, ExecutorRecord))
    registry.register(CKPT_NS, RecordValidator(CKPT_NS, CheckpointRecord))
    registry.register(CAP_NS, RecordValidator(CAP_NS, CapabilityRecord))
    return registry
