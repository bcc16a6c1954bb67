"""A reference validator: signed, sequence-numbered DAG-CBOR records.

The real record types (capability, result, checkpoint) come from their own modules and register
themselves under ``/ccn/cap/``, ``/ccn/result/``, ``/ccn/ckpt/``. This module ships the shape
they are expected to follow, used by the tests and usable for experiments:

* the value is DAG-CBOR ``{"data": bytes, "seq": int, "signer": peer id, "sig": bytes}``;
* ``sig`` is the signer's ed25519 signature over DAG-CBOR ``{"data", "key", "seq"}``, so a
  record cannot be replayed under another key;
* a record under ``<namespace><signer peer id text>`` may only be signed by that peer (set
  ``owner_in_key=False`` for namespaces where any signer may publish);
* of several valid records the highest ``seq`` wins; equal ``seq`` ties break on the larger
  encoding so every node picks the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.errors import DecodeError, SignatureError
from ccnp2p.objects import dagcbor
from ccnp2p.objects.keys import Identity, PublicKey, peer_id_to_str

TEST_NAMESPACE = "/test/"


def _signed_part(key: bytes, seq: int, data: bytes) -> bytes:
    return dagcbor.encode({"data": data, "key": key, "seq": seq})


def make_signed_record(identity: Identity, key: bytes, seq: int, data: bytes) -> bytes:
    """Encode and sign a record for ``key`` (the publisher side of :class:`SignedSeqValidator`)."""
    sig = identity.sign(_signed_part(key, seq, data))
    return dagcbor.encode({"data": data, "seq": seq, "signer": identity.peer_id, "sig": sig})


def owner_key(namespace: str, identity_or_peer: Identity | bytes) -> bytes:
    """The key a peer publishes its own record under: ``<namespace><peer id text>``."""
    peer_id = (
        identity_or_peer.peer_id if isinstance(identity_or_peer, Identity) else identity_or_peer
    )
    return namespace.encode() + peer_id_to_str(peer_id).encode()


class SignedSeqValidator:
    """Validates :func:`make_signed_record` records; selects the highest ``seq``."""

    def __init__(self, namespace: str = TEST_NAMESPACE, *, owner_in_key: bool = True) -> None:
        self.namespace = namespace
        self.owner_in_key = owner_in_key

    def validate(self, key: bytes, value: bytes) -> None:
        fields = self._decode(value)
        signer: bytes = fields["signer"]
        try:
            public = PublicKey.from_peer_id(signer)
            public.verify(fields["sig"], _signed_part(key, fields["seq"], fields["data"]))
        except (DecodeError, SignatureError) as exc:
            raise InvalidRecord(f"record signature does not verify: {exc}") from exc
        if self.owner_in_key and key != owner_key(self.namespace, signer):
            raise InvalidRecord("record is not signed by the peer its key names")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        ranked = [(self._decode(v)["seq"], v, i) for i, v in enumerate(values)]
        return max(ranked)[2]

    @staticmethod
    def _decode(value: bytes) -> dict[str, Any]:
        try:
            fields = dagcbor.decode(value)
        except DecodeError as exc:
            raise InvalidRecord(f"record is not DAG-CBOR: {exc}") from exc
        if not isinstance(fields, dict) or set(fields) != {"data", "seq", "signer", "sig"}:
            raise InvalidRecord("record must have exactly data, seq, signer, sig")
        if not isinstance(fields["seq"], int) or fields["seq"] < 0:
            raise InvalidRecord("seq must be a non-negative integer")
        if not all(isinstance(fields[f], bytes) for f in ("data", "signer", "sig")):
            raise InvalidRecord("data, signer and sig must be bytes")
        return fields
