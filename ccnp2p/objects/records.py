"""Signed records: DHT values (result, checkpoint, capability, executor) and econ objects
(index, share, receipt).

Each record names its signer's key, carries a ``seq`` where newer versions supersede older ones,
and is signed over its domain-separated canonical encoding. They are named objects too, so any of
them can be stored and linked by CID. Verification is explicit: ``decode_object`` parses,
``verify()`` checks signatures; DHT validators do both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ccnp2p.errors import DecodeError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.fields import check, cid_list, nonneg, opt, req, str_map_int
from ccnp2p.objects.keys import Identity, PublicKey
from ccnp2p.objects.model import SignedObject, register_object_type
from ccnp2p.objects.signing import signing_bytes

MAX_ADDRS = 16
MAX_OPS = 4096


def _opt_cid(data: dict[str, Any], key: str) -> Cid | None:
    value = data.get(key)
    if value is None:
        return None
    return check(value, Cid, key)


@register_object_type
@dataclass(frozen=True, slots=True)
class ResultRecord(SignedObject):
    """``calc`` evaluates to ``result``, says ``executor`` (DHT key ``/ccn/result/<calc>``)."""

    TYPE: ClassVar[str] = "ccn/result"
    SIGNER_FIELD: ClassVar[str] = "executor"
    calc: Cid
    result: Cid
    executor: bytes
    seq: int = 0
    sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "calc": self.calc,
            "result": self.result,
            "executor": self.executor,
            "seq": self.seq,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> ResultRecord:
        return cls(
            calc=req(data, "calc", Cid),
            result=req(data, "result", Cid),
            executor=req(data, "executor", bytes),
            seq=nonneg(req(data, "seq", int), "seq"),
            sig=req(data, "sig", bytes),
        )

    def refs(self) -> tuple[Cid, ...]:
        return (self.result,)


@register_object_type
@dataclass(frozen=True, slots=True)
class CheckpointRecord(SignedObject):
    """State of ``calc`` after ``step`` steps (output ``offset`` bytes), stored as ``state``."""

    TYPE: ClassVar[str] = "ccn/ckpt"
    SIGNER_FIELD: ClassVar[str] = "executor"
    calc: Cid
    step: int
    offset: int
    state: Cid
    executor: bytes
    seq: int = 0
    sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "calc": self.calc,
            "step": self.step,
            "offset": self.offset,
            "state": self.state,
            "executor": self.executor,
            "seq": self.seq,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> CheckpointRecord:
        return cls(
            calc=req(data, "calc", Cid),
            step=nonneg(req(data, "step", int), "step"),
            offset=nonneg(req(data, "offset", int), "offset"),
            state=req(data, "state", Cid),
            executor=req(data, "executor", bytes),
            seq=nonneg(req(data, "seq", int), "seq"),
            sig=req(data, "sig", bytes),
        )

    def refs(self) -> tuple[Cid, ...]:
        return (self.state,)


@register_object_type
@dataclass(frozen=True, slots=True)
class ExecutorRecord(SignedObject):
    """``executor`` is computing ``calc`` until ``lease_until`` (unix seconds); subscribe to it."""

    TYPE: ClassVar[str] = "ccn/executor"
    SIGNER_FIELD: ClassVar[str] = "executor"
    calc: Cid
    executor: bytes
    lease_until: int
    seq: int = 0
    sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "calc": self.calc,
            "executor": self.executor,
            "lease_until": self.lease_until,
            "seq": self.seq,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> ExecutorRecord:
        return cls(
            calc=req(data, "calc", Cid),
            executor=req(data, "executor", bytes),
            lease_until=nonneg(req(data, "lease_until", int), "lease_until"),
            seq=nonneg(req(data, "seq", int), "seq"),
            sig=req(data, "sig", bytes),
        )


@register_object_type
@dataclass(frozen=True, slots=True)
class CapabilityRecord(SignedObject):
    """What a peer can run and on what hardware (DHT key ``/ccn/cap/<peer id>``).

    ``hardware`` holds integer facts: ``cpu`` (cores), ``memory`` (bytes), ``gpu_memory`` (bytes,
    0 without a GPU); ``gpu`` names the GPU kind (empty without one). ``bandwidth`` is measured
    bytes per second, ``load`` is per mille of capacity in use, ``price`` in settlement units per
    CPU-second.
    """

    TYPE: ClassVar[str] = "ccn/cap"
    SIGNER_FIELD: ClassVar[str] = "peer"
    peer: bytes
    ops: tuple[Cid, ...]
    hardware: dict[str, int] = field(default_factory=dict)
    gpu: str = ""
    bandwidth: int = 0
    load: int = 0
    price: int = 0
    addrs: tuple[str, ...] = ()
    seq: int = 0
    sig: bytes = b""

    def __post_init__(self) -> None:
        if len(self.ops) > MAX_OPS or len(self.addrs) > MAX_ADDRS:
            raise DecodeError("capability record too large")

    def fields(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "ops": list(self.ops),
            "hardware": dict(self.hardware),
            "gpu": self.gpu,
            "bandwidth": self.bandwidth,
            "load": self.load,
            "price": self.price,
            "addrs": list(self.addrs),
            "seq": self.seq,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> CapabilityRecord:
        addrs = req(data, "addrs", list)
        return cls(
            peer=req(data, "peer", bytes),
            ops=cid_list(data, "ops"),
            hardware=str_map_int(data, "hardware"),
            gpu=req(data, "gpu", str),
            bandwidth=nonneg(req(data, "bandwidth", int), "bandwidth"),
            load=nonneg(req(data, "load", int), "load"),
            price=nonneg(req(data, "price", int), "price"),
            addrs=tuple(check(a, str, "addrs") for a in addrs),
            seq=nonneg(req(data, "seq", int), "seq"),
            sig=req(data, "sig", bytes),
        )


@register_object_type
@dataclass(frozen=True, slots=True)
class IndexRecord(SignedObject):
    """An indexer includes ``target`` in its index.

    One-way when only the indexer signed; two-way when the content ``owner`` countersigned
    (``owner_sig`` over the indexer-signed payload plus the indexer's signature).
    """

    TYPE: ClassVar[str] = "ccn/index"
    SIGNER_FIELD: ClassVar[str] = "indexer"
    indexer: bytes
    target: Cid
    owner: bytes
    created: int = 0
    sig: bytes = b""
    owner_sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "indexer": self.indexer,
            "target": self.target,
            "owner": self.owner,
            "created": self.created,
        }

    def to_data(self) -> dict[str, Any]:
        data = SignedObject.to_data(self)
        data["owner_sig"] = self.owner_sig
        return data

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> IndexRecord:
        return cls(
            indexer=req(data, "indexer", bytes),
            target=req(data, "target", Cid),
            owner=req(data, "owner", bytes),
            created=nonneg(req(data, "created", int), "created"),
            sig=req(data, "sig", bytes),
            owner_sig=opt(data, "owner_sig", bytes, b""),
        )

    def _countersign_bytes(self) -> bytes:
        return signing_bytes(self.TYPE + "/owner", {**self.fields(), "sig": self.sig})

    def countersigned_by(self, owner: Identity) -> IndexRecord:
        if owner.public.to_protobuf() != self.owner:
            raise ValueError("identity is not the content owner")
        return dataclasses.replace(self, owner_sig=owner.sign(self._countersign_bytes()))

    @property
    def two_way(self) -> bool:
        return bool(self.owner_sig)

    def verify(self) -> None:
        SignedObject.verify(self)
        if self.owner_sig:
            PublicKey.from_protobuf(self.owner).verify(self.owner_sig, self._countersign_bytes())


@register_object_type
@dataclass(frozen=True, slots=True)
class ShareRecord(SignedObject):
    """``sharer`` passed ``target`` on to peer ``to``, continuing share ``prev`` (if any)."""

    TYPE: ClassVar[str] = "ccn/share"
    SIGNER_FIELD: ClassVar[str] = "sharer"
    sharer: bytes
    target: Cid
    to: bytes
    prev: Cid | None = None
    created: int = 0
    sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "sharer": self.sharer,
            "target": self.target,
            "to": self.to,
            "prev": self.prev,
            "created": self.created,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> ShareRecord:
        return cls(
            sharer=req(data, "sharer", bytes),
            target=req(data, "target", Cid),
            to=req(data, "to", bytes),
            prev=_opt_cid(data, "prev"),
            created=nonneg(req(data, "created", int), "created"),
            sig=req(data, "sig", bytes),
        )


@register_object_type
@dataclass(frozen=True, slots=True)
class Receipt(SignedObject):
    """A consumer's signed statement that it read ``bytes_read`` bytes of ``target``."""

    TYPE: ClassVar[str] = "ccn/receipt"
    SIGNER_FIELD: ClassVar[str] = "consumer"
    consumer: bytes
    target: Cid
    bytes_read: int
    value: int
    share: Cid | None = None
    created: int = 0
    nonce: int = 0
    sig: bytes = b""

    def fields(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "target": self.target,
            "bytes_read": self.bytes_read,
            "value": self.value,
            "share": self.share,
            "created": self.created,
            "nonce": self.nonce,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Receipt:
        return cls(
            consumer=req(data, "consumer", bytes),
            target=req(data, "target", Cid),
            bytes_read=nonneg(req(data, "bytes_read", int), "bytes_read"),
            value=nonneg(req(data, "value", int), "value"),
            share=_opt_cid(data, "share"),
            created=nonneg(req(data, "created", int), "created"),
            nonce=nonneg(req(data, "nonce", int), "nonce"),
            sig=req(data, "sig", bytes),
        )
