from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.errors import DecodeError, SignatureError
from ccnp2p.objects import (
    Calc,
    CapabilityRecord,
    CheckpointRecord,
    Cid,
    Content,
    ExecutorRecord,
    FileNode,
    Identity,
    IndexRecord,
    Operator,
    PublicKey,
    Receipt,
    ResultRecord,
    ShareRecord,
    SignedObject,
    dagcbor,
    decode_object,
)

ALICE = Identity.from_seed_int(1)
BOB = Identity.from_seed_int(2)
A = ALICE.public.to_protobuf()
C1 = Cid.for_raw(b"one")
C2 = Cid.for_object(dagcbor.encode({"x": 1}))


def signed_examples() -> list[SignedObject]:
    return [
        Content(owner=A, name="corpus", target=C1, terms={"owner": 7000}, created=5),
        Operator(name="concat", version="1", impl="builtin:concat", code_hash=b"h" * 32, author=A),
        Operator(
            name="sift",
            version="1",
            impl="sim:sift",
            code_hash=b"h" * 32,
            author=A,
            output={"div_param": "stride", "per_mille": 1000},
        ),
        ResultRecord(calc=C2, result=C1, executor=A, seq=3),
        CheckpointRecord(calc=C2, step=10, offset=100, state=C2, executor=A, seq=1),
        ExecutorRecord(calc=C2, executor=A, lease_until=99),
        CapabilityRecord(peer=A, ops=(C2,), hardware={"cpu": 2}, gpu="", addrs=("/ip4/1.2.3.4",)),
        IndexRecord(indexer=A, target=C1, owner=BOB.public.to_protobuf(), created=1),
        ShareRecord(sharer=A, target=C1, to=BOB.peer_id, prev=None, created=2),
        Receipt(consumer=A, target=C1, bytes_read=10, value=1000, created=3, nonce=7),
    ]


@pytest.mark.parametrize("obj", signed_examples(), ids=lambda o: o.TYPE)
def test_signed_round_trip_and_verify(obj: SignedObject) -> None:
    signed = obj.signed_by(ALICE)
    signed.verify()
    again = decode_object(signed.encode())
    assert again == signed
    assert again.cid == signed.cid
    assert isinstance(again, SignedObject)
    again.verify()


def _tamper(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, bytes):
        return value[:-1] + bytes([value[-1] ^ 1]) if value else b"\x01"
    if isinstance(value, Cid):
        return Cid.for_raw(value.digest)
    if isinstance(value, tuple):
        return (*value, C1)
    if isinstance(value, dict):
        return {**value, "zz": 1}
    if value is None:
        return C1
    raise AssertionError(type(value))


@pytest.mark.parametrize("obj", signed_examples(), ids=lambda o: o.TYPE)
def test_any_tampered_field_fails_verification(obj: SignedObject) -> None:
    signed = obj.signed_by(ALICE)
    for f in dataclasses.fields(signed):  # type: ignore[arg-type]
        if f.name in ("sig", "owner_sig"):
            continue
        try:
            tampered = dataclasses.replace(signed, **{f.name: _tamper(getattr(signed, f.name))})  # type: ignore[type-var]
        except DecodeError:
            continue  # the tampered value is not even constructible
        with pytest.raises((SignatureError, DecodeError)):
            tampered.verify()


def test_wrong_signer_is_rejected() -> None:
    rec = ResultRecord(calc=C2, result=C1, executor=A)
    with pytest.raises(ValueError):
        rec.signed_by(BOB)
    forged = dataclasses.replace(rec, sig=BOB.sign(rec.signed_bytes()))
    with pytest.raises(SignatureError):
        forged.verify()


def test_signature_domain_separates_types() -> None:
    # Same field values cannot make a signature valid for another type.
    rec = ResultRecord(calc=C2, result=C1, executor=A).signed_by(ALICE)
    assert rec.signed_bytes().startswith(b"ccn-sig/v1\x00ccn/result\x00")


def test_index_two_way() -> None:
    idx = IndexRecord(indexer=A, target=C1, owner=BOB.public.to_protobuf()).signed_by(ALICE)
    assert not idx.two_way
    both = idx.countersigned_by(BOB)
    both.verify()
    assert both.two_way
    bad = dataclasses.replace(both, owner_sig=ALICE.sign(b"x"))
    with pytest.raises(SignatureError):
        bad.verify()
    assert decode_object(both.encode()) == both


def test_peer_id_from_key() -> None:
    assert PublicKey.from_peer_id(ALICE.peer_id) == ALICE.public
    assert ALICE.peer_id_str.startswith("12D3KooW")


def test_file_node_invariants() -> None:
    with pytest.raises(DecodeError):
        FileNode(size=3, links=(C1,), sizes=(2,))
    with pytest.raises(DecodeError):
        FileNode(size=1, links=(C2,), sizes=(1,), depth=0)  # depth 0 links must be raw
    with pytest.raises(DecodeError):
        FileNode(size=1, links=(C1,), sizes=(1,), depth=1)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "ccn/calc", "v": 1, "op": C2, "inputs": [C1]},  # missing params
        {"type": "ccn/calc", "v": 1, "op": "notacid", "inputs": [], "params": {}},
        {"type": "ccn/calc", "v": 2, "op": C2, "inputs": [], "params": {}},
        {"type": "ccn/nope", "v": 1},
        {"type": "ccn/calc", "v": 1, "op": C2, "inputs": [], "params": {}, "extra": 1},
        {"type": "ccn/file", "v": 1, "size": True, "depth": 0, "links": [], "sizes": []},
        {"type": "ccn/file", "v": 1, "size": -1, "depth": 0, "links": [], "sizes": []},
        [1, 2],
    ],
)
def test_bad_objects_give_decode_error(data: Any) -> None:
    with pytest.raises(DecodeError):
        decode_object(dagcbor.encode(data))


@given(st.binary(max_size=200))
def test_decode_object_never_crashes(data: bytes) -> None:
    try:
        decode_object(data)
    except DecodeError:
        pass


def test_calc_cid_is_deterministic() -> None:
    a = Calc(op=C2, inputs=(C1,), params={"n": 3, "mode": "x"})
    b = Calc(op=C2, inputs=(C1,), params={"mode": "x", "n": 3})
    assert a.cid == b.cid
    assert Calc(op=C2, inputs=(C1, C2)).cid != Calc(op=C2, inputs=(C2, C1)).cid
