from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.errors import DecodeError
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid

cids = st.binary(max_size=16).map(Cid.for_raw)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | cids
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip_is_byte_identical(value: Any) -> None:
    data = dagcbor.encode(value)
    decoded = dagcbor.decode(data)
    assert dagcbor.encode(decoded) == data


@given(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63), min_size=2, max_size=8))
def test_key_order_does_not_matter(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert dagcbor.encode(d) == dagcbor.encode(reversed_d)


def test_keys_sorted_length_first() -> None:
    data = dagcbor.encode({"bb": 1, "a": 2, "c": 3})
    assert list(cbor2.loads(data)) == ["a", "c", "bb"]


def test_floats_are_64_bit() -> None:
    assert dagcbor.encode(1.5) == bytes.fromhex("fb3ff8000000000000")


def test_cid_link_uses_tag_42() -> None:
    cid = Cid.for_raw(b"x")
    data = dagcbor.encode(cid)
    assert data[:2] == bytes.fromhex("d82a")
    assert dagcbor.decode(data) == cid


@pytest.mark.parametrize(
    "hex_input",
    [
        "a2616201616102",  # keys out of order
        "1817",  # non-minimal integer head
        "f93e00",  # half-precision float
        "5f4101ff",  # indefinite-length bytes
        "a1010203",  # integer map key
        "c11a514b67b0",  # tag 1 (datetime)
        "d82a4101",  # tag 42 without the 0x00 prefix
        "",  # empty
        "ff",  # break without start
        "a2616101616102",  # duplicate keys
        "fb7ff8000000000000",  # NaN
    ],
)
def test_rejects_non_canonical_or_foreign(hex_input: str) -> None:
    with pytest.raises(DecodeError):
        dagcbor.decode(bytes.fromhex(hex_input))


@given(st.binary(max_size=64))
def test_garbage_never_crashes(data: bytes) -> None:
    try:
        dagcbor.decode(data)
    except DecodeError:
        pass


def test_too_deep_is_rejected() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(DecodeError):
        dagcbor.encode(deep)
    with pytest.raises(DecodeError):
        dagcbor.decode(b"\x81" * 100 + b"\x80")
