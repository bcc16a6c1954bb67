"""The pure settlement core: documented shares, exact sums, determinism, tampering."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.econ.rules import Payout, Role, SettlementError, apportion
from ccnp2p.econ.settle import make_statement, settle, verify_statement
from ccnp2p.econ.statement import Evidence
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.objects.model import Calc, NamedObject
from ccnp2p.objects.records import Receipt
from tests.econ.world import build_world, claim, key, operator, result

WORLD = build_world()


def by_name(payouts: tuple[Payout, ...]) -> dict[tuple[str, str], int]:
    names = {ident.peer_id: name for name, ident in WORLD.who.items()}
    return {(names[p.party], p.role): p.amount for p in payouts}


def test_every_role_gets_its_documented_share() -> None:
    """The worked example of protocols/ccn-settle.md, to the unit."""
    payouts = settle(WORLD.receipt(1_000_000), WORLD.evidence())
    assert by_name(payouts) == {
        ("alice", "owner"): 157_200,
        ("bob", "owner"): 218_333,
        ("erin", "owner"): 42_000,
        ("carol", "author"): 82_481,
        ("dave", "author"): 39_900,
        ("exec1", "executor"): 39_300,
        ("exec2", "executor"): 109_166,
        ("exec3", "executor"): 151_620,
        ("idx1", "indexer"): 40_000,
        ("idx2", "indexer"): 20_000,
        ("sharer1", "sharer"): 33_333,
        ("sharer2", "sharer"): 66_667,
    }
    assert sum(p.amount for p in payouts) == 1_000_000


def test_trust_weight_refunds_the_untrusted_part() -> None:
    payouts = settle(WORLD.receipt(1_000_000), WORLD.evidence(), trust_ppm=250_000)
    got = by_name(payouts)
    assert got[("consumer", "refund")] == 750_000
    assert got[("idx1", "indexer")] == 10_000
    assert sum(p.amount for p in payouts) == 1_000_000


def test_no_share_chain_no_index_leaves_the_pools_in_the_dag() -> None:
    objs = [o for o in WORLD.objects if o.TYPE not in ("ccn/index", "ccn/share")]
    payouts = settle(WORLD.receipt(1_000_000, share=False), Evidence(objs))
    roles = {p.role for p in payouts}
    assert roles == {"owner", "author", "executor"}
    assert sum(p.amount for p in payouts) == 1_000_000


def test_statement_recomputes_on_another_peer() -> None:
    receipt = WORLD.receipt(123_457)
    statement = make_statement(receipt, WORLD.evidence(), WORLD.who["consumer"])
    # Another peer only has the bytes: decode everything afresh and recompute.
    other = Evidence.from_encoded(WORLD.evidence().encoded())
    verify_statement(statement, receipt, other)
    again = make_statement(receipt, other, WORLD.who["exec2"])
    assert again.same_numbers(statement)


def test_tampered_receipt_is_rejected() -> None:
    receipt = WORLD.receipt(1_000)
    statement = make_statement(receipt, WORLD.evidence(), WORLD.who["consumer"])
    forged = dataclasses.replace(receipt, value=1_000_000)  # signature no longer matches
    with pytest.raises(SettlementError):
        verify_statement(statement, forged, WORLD.evidence())
    with pytest.raises(SettlementError):
        make_statement(forged, WORLD.evidence(), WORLD.who["consumer"])


def test_tampered_statement_is_rejected() -> None:
    receipt = WORLD.receipt(1_000)
    good = make_statement(receipt, WORLD.evidence(), WORLD.who["consumer"])
    moved = list(good.payouts)
    moved[0] = dataclasses.replace(moved[0], amount=moved[0].amount + 1)
    moved[1] = dataclasses.replace(moved[1], amount=moved[1].amount - 1)
    unsigned = dataclasses.replace(good, payouts=tuple(moved))
    with pytest.raises(SettlementError, match="signature"):
        verify_statement(unsigned, receipt, WORLD.evidence())
    resigned = unsigned.signed_by(WORLD.who["consumer"])  # validly signed, wrong numbers
    with pytest.raises(SettlementError, match="recompute"):
        verify_statement(resigned, receipt, WORLD.evidence())
    inflated = dataclasses.replace(good, trust_ppm=2_000_000).signed_by(WORLD.who["consumer"])
    with pytest.raises(SettlementError):
        verify_statement(inflated, receipt, WORLD.evidence())


def test_broken_share_chain_is_rejected() -> None:
    c = WORLD.who["consumer"]
    bad = Receipt(consumer=key(c), target=WORLD.d3, bytes_read=1, value=10,
                  share=Cid.for_object(b"nope")).signed_by(c)  # fmt: skip
    with pytest.raises(SettlementError, match="share link"):
        settle(bad, WORLD.evidence())
    other = WORLD.who["bob"]
    stolen = Receipt(consumer=key(other), target=WORLD.d3, bytes_read=1, value=10,
                     share=WORLD.share).signed_by(other)  # fmt: skip
    with pytest.raises(SettlementError, match="broken"):
        settle(stolen, WORLD.evidence())


def test_missing_operator_is_an_error() -> None:
    objs = [o for o in WORLD.objects if o.TYPE != "ccn/operator"]
    with pytest.raises(SettlementError, match="operator"):
        settle(WORLD.receipt(10), Evidence(objs))


def test_apportion_breaks_ties_by_party_then_role() -> None:
    third = Fraction(1, 3)
    lines = {(b"b", Role.OWNER): third, (b"a", Role.OWNER): third, (b"c", Role.OWNER): third}
    assert apportion(1, lines) == (Payout(b"a", "owner", 1),)
    assert [p.amount for p in apportion(2, {k: 2 * v for k, v in lines.items()})] == [1, 1]


# -- random DAG shapes -----------------------------------------------------------------------

PEOPLE = [Identity.from_seed_int(9000 + i) for i in range(6)]


@st.composite
def dags(draw: st.DrawFn) -> tuple[Receipt, Evidence]:
    objs: list[NamedObject] = []
    nodes = [Cid.for_object(bytes([i])) for i in range(draw(st.integers(1, 4)))]
    for leaf in nodes:
        if draw(st.booleans()):
            objs.append(claim(draw(st.sampled_from(PEOPLE)), leaf))
    for i in range(draw(st.integers(0, 6))):
        author = draw(st.sampled_from(PEOPLE))
        op = operator(author, f"op{i}", draw(st.integers(0, 10_000)))
        ins = draw(st.lists(st.sampled_from(nodes), min_size=0, max_size=4))
        calc = Calc(op=op.cid, inputs=tuple(ins), params={"i": i})
        objs += [op, calc]
        if draw(st.booleans()):
            objs.append(result(draw(st.sampled_from(PEOPLE)), calc.cid))
        if draw(st.booleans()):
            terms = {"owner": draw(st.integers(0, 5000)), "sharers": draw(st.integers(0, 2500)),
                     "indexers": draw(st.integers(0, 2500))}  # fmt: skip
            objs.append(claim(draw(st.sampled_from(PEOPLE)), calc.cid, terms))
        nodes.append(calc.cid)
    consumer = draw(st.sampled_from(PEOPLE))
    value = draw(st.integers(0, 10**15))
    receipt = Receipt(consumer=key(consumer), target=nodes[-1], bytes_read=1, value=value,
                      nonce=draw(st.integers(0, 9))).signed_by(consumer)  # fmt: skip
    return receipt, Evidence(objs)


@given(dags(), st.integers(0, 1_000_000))
def test_payouts_sum_exactly_to_the_value(case: tuple[Receipt, Evidence], trust: int) -> None:
    receipt, evidence = case
    payouts = settle(receipt, evidence, trust_ppm=trust)
    assert sum(p.amount for p in payouts) == receipt.value
    assert all(p.amount > 0 for p in payouts)
    assert list(payouts) == sorted(payouts)
    assert settle(receipt, Evidence.from_encoded(evidence.encoded()), trust_ppm=trust) == payouts
