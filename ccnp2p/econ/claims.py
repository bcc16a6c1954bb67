"""Content claims in the DHT: ``/ccn/content/<target cid>`` -> the owner's signed ``Content``.

Settlement pays the owner of a raw input, so a settler must be able to find who owns a CID. The
owner signs a :class:`~ccnp2p.objects.Content` object (target, name, revenue terms) and puts it
under the target's key. The earliest ``created`` claim wins (ties: the smaller encoding), so a
later claimant cannot displace the first one by publishing more often. ``created`` is the
claimant's own statement, so a squatter can backdate a claim; see the known weaknesses in
``protocols/ccn-settle.md`` (two-way index records and trust are the mitigations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.dht.records import ValidatorRegistry
from ccnp2p.econ.names import register_name_namespace
from ccnp2p.errors import CcnError, NotFound
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Content, decode_object

if TYPE_CHECKING:
    from ccnp2p.node import Node

CLAIM_NS: Final = "/ccn/content/"


def claim_key(target: Cid) -> bytes:
    return f"{CLAIM_NS}{target}".encode()


class ClaimValidator:
    """DHT validator for ``/ccn/content/``: a verified claim about the key's CID; earliest wins."""

    def validate(self, key: bytes, value: bytes) -> None:
        claim = self._decode(value)
        try:
            claim.verify()
        except CcnError as exc:
            raise InvalidRecord("content claim signature does not verify") from exc
        if key != claim_key(claim.target):
            raise InvalidRecord("content claim stored under another CID's key")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        ranked = [(self._decode(v).created, v, i) for i, v in enumerate(values)]
        return min(ranked)[2]

    @staticmethod
    def _decode(value: bytes) -> Content:
        try:
            claim = decode_object(value, Content)
        except CcnError as exc:
            raise InvalidRecord(f"not a content claim: {exc}") from exc
        assert isinstance(claim, Content)
        return claim


def register_econ_namespaces(registry: ValidatorRegistry) -> ValidatorRegistry:
    """Register ``/ccn/content/`` and ``/ccn/name/`` (call from ``default_validators``)."""
    registry.register(CLAIM_NS, ClaimValidator())
    return register_name_namespace(registry)


async def publish_claim(
    node: Node, target: Cid, name: str = "", terms: Mapping[str, int] | None = None
) -> Content:
    """Claim ownership of ``target`` with revenue ``terms`` (basis points per role).

    Recognised terms: ``sharers`` and ``indexers`` (the read's distribution pools when
    ``target`` is what was read) and ``owner`` (the claimant's cut of a claimed calc's value).
    The claim is also stored as a block so it can be shipped as evidence.

    Returns the claim that now wins for ``target`` (an earlier claim by someone else wins).
    """
    claim = Content(
        owner=node.identity.public.to_protobuf(),
        name=name,
        target=target,
        terms=dict(terms or {}),
        created=int(node.wall_time()),
    ).signed_by(node.identity)
    await node.ablocks.put(claim.cid, claim.encode(), verify=False)
    await node.dht.put_value(claim_key(target), claim.encode())
    return await find_claim(node, target) or claim


async def find_claim(node: Node, target: Cid) -> Content | None:
    """The winning claim on ``target`` (validated by the DHT), or None."""
    try:
        value = await node.dht.get_value(claim_key(target))
    except NotFound:
        return None
    claim = decode_object(value, Content)
    assert isinstance(claim, Content)
    return claim
