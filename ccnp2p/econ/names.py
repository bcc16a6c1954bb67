"""Mutable names: ``/ccn/name/<owner peer id>/<name>`` -> CID, like IPNS.

A CID never changes; a name lets an owner point readers at the latest version. The owner signs a
:class:`NameRecord` with a ``seq`` and publishes it in the DHT under a key that contains its own
peer id, so only the owner can publish a valid record there (the validator checks that the
signer is the peer the key names). Of several valid records the highest ``seq`` wins; equal
``seq`` ties go to the larger encoding so every node converges on the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.dht.records import ValidatorRegistry
from ccnp2p.errors import CcnError, DecodeError, LocalError, NotFound
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.fields import nonneg, req
from ccnp2p.objects.keys import PublicKey, peer_id_from_str, peer_id_to_str
from ccnp2p.objects.model import SignedObject, decode_object, register_object_type

if TYPE_CHECKING:
    from ccnp2p.node import Node

NAME_NS: Final = "/ccn/name/"
MAX_NAME_CHARS: Final = 128


def check_name(name: str) -> str:
    """A name is 1..128 printable characters without ``/`` (it is one key segment)."""
    if not 0 < len(name) <= MAX_NAME_CHARS or "/" in name or not name.isprintable():
        raise DecodeError(f"bad name {name[:40]!r}: 1..128 printable characters, no '/'")
    return name


def name_key(owner_peer_id: bytes, name: str) -> bytes:
    """The DHT key ``/ccn/name/<owner peer id text>/<name>``."""
    return f"{NAME_NS}{peer_id_to_str(owner_peer_id)}/{check_name(name)}".encode()


@register_object_type
@dataclass(frozen=True, slots=True)
class NameRecord(SignedObject):
    """``owner``'s name ``name`` points at ``target`` (version ``seq``)."""

    TYPE: ClassVar[str] = "ccn/name"
    SIGNER_FIELD: ClassVar[str] = "owner"
    owner: bytes
    name: str
    target: Cid
    seq: int
    sig: bytes = b""

    def __post_init__(self) -> None:
        PublicKey.from_protobuf(self.owner)
        check_name(self.name)

    def fields(self) -> dict[str, Any]:
        return {"owner": self.owner, "name": self.name, "target": self.target, "seq": self.seq}

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> NameRecord:
        return cls(
            owner=req(data, "owner", bytes),
            name=req(data, "name", str),
            target=req(data, "target", Cid),
            seq=nonneg(req(data, "seq", int), "seq"),
            sig=req(data, "sig", bytes),
        )

    @property
    def key(self) -> bytes:
        return name_key(PublicKey.from_protobuf(self.owner).peer_id, self.name)


class NameValidator:
    """DHT validator for ``/ccn/name/``: signed by the owner in the key; highest seq wins."""

    def validate(self, key: bytes, value: bytes) -> None:
        rec = self._decode(value)
        try:
            rec.verify()
        except CcnError as exc:
            raise InvalidRecord("name record signature does not verify") from exc
        if key != rec.key:
            raise InvalidRecord("name record is not signed by the owner its key names")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        ranked = [(self._decode(v).seq, v, i) for i, v in enumerate(values)]
        return max(ranked)[2]

    @staticmethod
    def _decode(value: bytes) -> NameRecord:
        try:
            rec = decode_object(value, NameRecord)
        except CcnError as exc:
            raise InvalidRecord(f"not a name record: {exc}") from exc
        assert isinstance(rec, NameRecord)
        return rec


def register_name_namespace(registry: ValidatorRegistry) -> ValidatorRegistry:
    """Route ``/ccn/name/`` keys to :class:`NameValidator` (call from ``default_validators``)."""
    registry.register(NAME_NS, NameValidator())
    return registry


async def current_name(node: Node, owner_peer_id: bytes, name: str) -> NameRecord | None:
    """The best valid record for the name, or None if nobody has published it."""
    try:
        value = await node.dht.get_value(name_key(owner_peer_id, name))
    except NotFound:
        return None
    rec = decode_object(value, NameRecord)  # the DHT validated it already
    assert isinstance(rec, NameRecord)
    return rec


async def publish_name(node: Node, name: str, cid: Cid) -> NameRecord:
    """Point this node's ``name`` at ``cid`` with a seq one above the newest one seen.

    Returns the published record. Raises :class:`DecodeError` for an invalid name.
    """
    current = await current_name(node, node.peer_id, name)
    seq = current.seq + 1 if current is not None else 1
    rec = NameRecord(
        owner=node.identity.public.to_protobuf(), name=name, target=cid, seq=seq
    ).signed_by(node.identity)
    await node.dht.put_value(rec.key, rec.encode())
    return rec


async def resolve_name(node: Node, owner_peer_id_text: str, name: str) -> Cid:
    """The CID ``owner``'s ``name`` points at now.

    Raises:
        NotFound: no valid record for the name.
        LocalError: ``owner_peer_id_text`` is not a peer id.
    """
    try:
        owner = peer_id_from_str(owner_peer_id_text)
        PublicKey.from_peer_id(owner)
    except DecodeError as exc:
        raise LocalError(f"not an ed25519 peer id: {owner_peer_id_text[:60]!r}") from exc
    rec = await current_name(node, owner, name)
    if rec is None:
        raise NotFound(f"no record for name {name!r} of {owner_peer_id_text}")
    return rec.target
