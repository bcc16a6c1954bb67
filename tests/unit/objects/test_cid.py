from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multihash

from ccnp2p.errors import HashMismatch, InvalidCid
from ccnp2p.objects.cid import DAG_CBOR, RAW, Cid, decode_uvarint, encode_uvarint


@given(st.binary(max_size=4096))
def test_raw_cid_matches_independent_multiformats(data: bytes) -> None:
    ours = Cid.for_raw(data)
    ref = CID("base32", 1, "raw", multihash.digest(data, "sha2-256"))
    assert str(ours) == str(ref)
    assert bytes(ours) == bytes(ref)


def test_known_vector() -> None:
    # `echo -n hello | ipfs add --cid-version 1 --raw-leaves` gives this CID.
    assert str(Cid.for_raw(b"hello")) == (
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    )


def test_parse_round_trip_and_other_bases() -> None:
    cid = Cid.for_object(b"\xa0")
    assert cid.codec == DAG_CBOR
    assert Cid.parse(str(cid)) == cid
    b58 = str(CID.decode(str(cid)).encode("base58btc"))
    assert Cid.parse(b58) == cid


@pytest.mark.parametrize(
    "text", ["", "hello", "Qmaozz", "bafy", "z" + "1" * 300, "bafkreibm6jg3ux5qumhcn2b3flc3ty"]
)
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidCid):
        Cid.parse(text)


def test_unsupported_hash_is_rejected() -> None:
    blake = bytes([0x01, RAW, 0xB2, 0x20, 0x20]) + b"\x00" * 32
    with pytest.raises(InvalidCid):
        Cid.from_bytes(blake)


def test_verify() -> None:
    cid = Cid.for_raw(b"abc")
    cid.verify(b"abc")
    with pytest.raises(HashMismatch):
        cid.verify(b"abd")
    assert cid.digest == hashlib.sha256(b"abc").digest()


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_uvarint_round_trip(n: int) -> None:
    enc = encode_uvarint(n)
    assert decode_uvarint(enc) == (n, len(enc))
