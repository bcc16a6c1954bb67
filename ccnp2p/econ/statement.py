"""Settlement statements and the evidence they are computed from.

A :class:`Statement` is the settler's signed claim "under rules v1, with this trust weight, this
receipt pays these parties these amounts, computed from these objects". The objects (calcs,
operators, result records, content claims, index and share records) are the :class:`Evidence`;
the statement lists their CIDs so that anyone holding them reaches the same numbers with
:func:`ccnp2p.econ.settle.settle`. A statement that does not recompute is rejected, whoever
signed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ccnp2p.econ.rules import MAX_EVIDENCE, Payout, Role, SettlementError
from ccnp2p.errors import CcnError, DecodeError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.fields import check, cid_list, nonneg, req
from ccnp2p.objects.model import (
    Calc,
    Content,
    NamedObject,
    Operator,
    SignedObject,
    decode_object,
    register_object_type,
)
from ccnp2p.objects.records import IndexRecord, Receipt, ResultRecord, ShareRecord

MAX_PAYOUTS = 4096
_ROLES = frozenset(r.value for r in Role)


def _payouts(data: dict[str, Any]) -> tuple[Payout, ...]:
    items = req(data, "payouts", list)
    if len(items) > MAX_PAYOUTS:
        raise DecodeError("statement: too many payouts")
    out = []
    for item in items:
        m = check(item, dict, "payouts")
        role = req(m, "role", str)
        if role not in _ROLES or set(m) != {"party", "role", "amount"}:
            raise DecodeError("statement: bad payout")
        out.append(Payout(req(m, "party", bytes), role, nonneg(req(m, "amount", int), "amount")))
    return tuple(out)


@register_object_type
@dataclass(frozen=True, slots=True)
class Statement(SignedObject):
    """The settlement of one receipt, signed by the peer that computed it.

    Attributes:
        settler: the signer's key (libp2p protobuf).
        receipt: CID of the settled :class:`~ccnp2p.objects.Receipt`.
        value: the receipt's value (the payouts sum to it).
        trust_ppm: the settler's trust weight for the consumer, parts per million.
        rules: the rules version the numbers follow.
        evidence: CIDs of the objects the settlement was computed from, sorted.
        payouts: positive amounts per (party, role), sorted.
    """

    TYPE: ClassVar[str] = "ccn/settlement"
    SIGNER_FIELD: ClassVar[str] = "settler"
    settler: bytes
    receipt: Cid
    value: int
    trust_ppm: int
    rules: int
    evidence: tuple[Cid, ...]
    payouts: tuple[Payout, ...]
    created: int = 0
    sig: bytes = field(default=b"", compare=False)

    def fields(self) -> dict[str, Any]:
        return {
            "settler": self.settler,
            "receipt": self.receipt,
            "value": self.value,
            "trust_ppm": self.trust_ppm,
            "rules": self.rules,
            "evidence": list(self.evidence),
            "payouts": [p.to_data() for p in self.payouts],
            "created": self.created,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Statement:
        return cls(
            settler=req(data, "settler", bytes),
            receipt=req(data, "receipt", Cid),
            value=nonneg(req(data, "value", int), "value"),
            trust_ppm=nonneg(req(data, "trust_ppm", int), "trust_ppm"),
            rules=req(data, "rules", int),
            evidence=cid_list(data, "evidence"),
            payouts=_payouts(data),
            created=nonneg(req(data, "created", int), "created"),
            sig=req(data, "sig", bytes),
        )

    def refs(self) -> tuple[Cid, ...]:
        return (self.receipt, *self.evidence)

    def same_numbers(self, other: Statement) -> bool:
        """Whether two statements settle the same receipt identically (signers may differ)."""
        return (self.receipt, self.value, self.trust_ppm, self.rules, self.evidence,
                self.payouts) == (other.receipt, other.value, other.trust_ppm, other.rules,
                                  other.evidence, other.payouts)  # fmt: skip

    def __hash__(self) -> int:
        return hash(self.encode())


_EVIDENCE_TYPES = (Calc, Operator, ResultRecord, Content, IndexRecord, ShareRecord)


class Evidence:
    """Decoded, signature-checked objects a settlement may use, indexed for the walk.

    Objects of other types are refused (they could only pad the statement). Where several
    objects answer the same question, the choice is deterministic: the result record with the
    highest ``(seq, encoding)`` (as the DHT selects), the content claim with the earliest
    ``created`` then the smallest CID.
    """

    __slots__ = ("calcs", "claims", "index", "objects", "operators", "results", "shares")

    def __init__(self, objects: Iterable[NamedObject]) -> None:
        self.objects: dict[Cid, NamedObject] = {}
        self.calcs: dict[Cid, Calc] = {}
        self.operators: dict[Cid, Operator] = {}
        self.results: dict[Cid, ResultRecord] = {}
        self.claims: dict[Cid, Content] = {}
        self.index: dict[Cid, list[IndexRecord]] = {}
        self.shares: dict[Cid, ShareRecord] = {}
        for obj in objects:
            self._add(obj)
        if len(self.objects) > MAX_EVIDENCE:
            raise SettlementError(f"more than {MAX_EVIDENCE} evidence objects")

    @classmethod
    def from_encoded(cls, blobs: Iterable[bytes]) -> Evidence:
        """Decode evidence received from a peer (raises :class:`SettlementError`)."""
        objs = []
        for blob in blobs:
            try:
                objs.append(decode_object(blob))
            except CcnError as exc:
                raise SettlementError(f"undecodable evidence: {exc}") from exc
        return cls(objs)

    def _add(self, obj: NamedObject) -> None:
        if not isinstance(obj, _EVIDENCE_TYPES):
            raise SettlementError(f"{obj.TYPE} is not settlement evidence")
        if isinstance(obj, SignedObject):
            try:
                obj.verify()
            except CcnError as exc:
                raise SettlementError(f"evidence {obj.TYPE} does not verify") from exc
        cid = obj.cid
        self.objects[cid] = obj
        if isinstance(obj, Calc):
            self.calcs[cid] = obj
        elif isinstance(obj, Operator):
            self.operators[cid] = obj
        elif isinstance(obj, ResultRecord):
            old = self.results.get(obj.calc)
            if old is None or (old.seq, old.encode()) < (obj.seq, obj.encode()):
                self.results[obj.calc] = obj
        elif isinstance(obj, Content):
            held = self.claims.get(obj.target)
            if held is None or (held.created, bytes(held.cid)) > (obj.created, bytes(cid)):
                self.claims[obj.target] = obj
        elif isinstance(obj, IndexRecord):
            self.index.setdefault(obj.target, []).append(obj)
        else:
            self.shares[cid] = obj

    def cids(self) -> tuple[Cid, ...]:
        """All evidence CIDs, sorted by their binary form (the statement's ``evidence``)."""
        return tuple(sorted(self.objects, key=bytes))

    def encoded(self) -> list[bytes]:
        """Every object's encoding, in :meth:`cids` order (to ship alongside a statement)."""
        return [self.objects[c].encode() for c in self.cids()]


def check_receipt(receipt: Receipt) -> None:
    """Raise :class:`SettlementError` unless the receipt's signature verifies."""
    try:
        receipt.verify()
    except CcnError as exc:
        raise SettlementError("receipt signature does not verify") from exc
