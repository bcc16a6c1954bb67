"""The pure settlement core: receipt + evidence + trust weight -> integer payouts.

Theory of operation (rules v1, specified with a worked example in ``protocols/ccn-settle.md``):

1. *Trust.* Of the receipt's value ``V``, the part ``V * (1 - trust)`` is not owed to anyone and
   goes back to the consumer as ``refund``; the trusted part ``W = V * trust`` is distributed.
2. *Distribution.* The content claim on the read target (if any) sets ``terms["sharers"]`` and
   ``terms["indexers"]`` (defaults 10 % and 5 %). Those fractions of ``W`` go to the share chain
   (halving weights, the sharer nearest the consumer weighs most) and to the target's indexers
   (two-way inclusions weigh 2, one-way 1). A pool with nobody in it stays in the DAG.
3. *The DAG.* The rest flows into the target and down the calc DAG. At a calc, in this order:
   the calc's claim owner takes ``terms["owner"]`` (default 0), the operator's author takes
   ``author_share``, the executor named by the calc's result record takes 20 %; what remains is
   split equally between the calc's inputs (each occurrence counts). At a leaf (anything that is
   not a calc) the owner of the content claim takes everything; an unclaimed leaf is refunded.
4. *Rounding.* Every line is an exact fraction until one largest-remainder pass
   (:func:`ccnp2p.econ.rules.apportion`) turns them into integers summing to ``V`` exactly.

Each node's shares are computed once per settlement (memoised by CID), so a DAG that reuses a
sub-computation costs its size, not its number of paths. Nothing here does I/O: callers gather
the evidence first (:mod:`ccnp2p.econ.gather`) or receive it with a statement.
"""

from __future__ import annotations

from fractions import Fraction

from ccnp2p.econ.rules import (
    DEFAULT_INDEXERS_BP,
    DEFAULT_SHARERS_BP,
    EXECUTOR_BP,
    MAX_DAG_DEPTH,
    MAX_DAG_NODES,
    MAX_INDEXERS,
    MAX_SHARE_HOPS,
    ONE_WAY_WEIGHT,
    RULES_VERSION,
    TRUST_ONE_PPM,
    TWO_WAY_WEIGHT,
    LineKey,
    Payout,
    Role,
    SettlementError,
    add_line,
    apportion,
    bp,
    split_by_weight,
)
from ccnp2p.econ.statement import Evidence, Statement, check_receipt
from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity, PublicKey
from ccnp2p.objects.model import Content
from ccnp2p.objects.records import Receipt

Shares = dict[LineKey, Fraction]  # fractions of one unit of a node's value


def peer_of(key: bytes) -> bytes:
    """The binary peer id of a protobuf-encoded key (raises :class:`SettlementError`)."""
    try:
        return PublicKey.from_protobuf(key).peer_id
    except CcnError as exc:
        raise SettlementError("not an ed25519 key") from exc


class _Walk:
    """One settlement's walk of the calc DAG, memoised per CID."""

    def __init__(self, evidence: Evidence, consumer: bytes) -> None:
        self.evidence = evidence
        self.consumer = consumer
        self.memo: dict[Cid, Shares] = {}

    def shares(self, cid: Cid, depth: int = 0) -> Shares:
        known = self.memo.get(cid)
        if known is not None:
            return known
        if depth > MAX_DAG_DEPTH or len(self.memo) >= MAX_DAG_NODES:
            raise SettlementError("calc DAG too deep or too large to settle")
        calc = self.evidence.calcs.get(cid)
        claim = self.evidence.claims.get(cid)
        out: Shares = {}
        if calc is None:
            party, role = (
                (peer_of(claim.owner), Role.OWNER) if claim else (self.consumer, Role.REFUND)
            )
            add_line(out, party, role, Fraction(1))
        else:
            self._calc_shares(out, cid, calc.op, calc.inputs, claim, depth)
        self.memo[cid] = out
        return out

    def _calc_shares(
        self,
        out: Shares,
        cid: Cid,
        op_cid: Cid,
        inputs: tuple[Cid, ...],
        claim: Content | None,
        depth: int,
    ) -> None:
        op = self.evidence.operators.get(op_cid)
        if op is None:
            raise SettlementError(f"evidence lacks operator {op_cid} of calc {cid}")
        rest = Fraction(1)
        if claim is not None:
            cut = rest * bp(claim.terms.get("owner", 0))
            add_line(out, peer_of(claim.owner), Role.OWNER, cut)
            rest -= cut
        author = peer_of(op.author)
        cut = rest * bp(op.author_share)
        add_line(out, author, Role.AUTHOR, cut)
        rest -= cut
        result = self.evidence.results.get(cid)
        if result is not None:
            cut = rest * bp(EXECUTOR_BP)
            add_line(out, peer_of(result.executor), Role.EXECUTOR, cut)
            rest -= cut
        if not inputs:
            add_line(out, author, Role.AUTHOR, rest)  # a generator: its author made the bytes
            return
        each = rest / len(inputs)
        for inp in inputs:
            for (party, role), frac in self.shares(inp, depth + 1).items():
                add_line(out, party, role, frac * each)


def share_chain(receipt: Receipt, evidence: Evidence) -> list[bytes]:
    """Sharer peer ids from the consumer backwards (nearest first), at most 8 hops.

    Each link must be about the receipt's target and be addressed to the peer after it in the
    chain (the last one to the consumer); otherwise the receipt is rejected.
    """
    out: list[bytes] = []
    to = peer_of(receipt.consumer)
    link = receipt.share
    while link is not None and len(out) < MAX_SHARE_HOPS:
        rec = evidence.shares.get(link)
        if rec is None:
            raise SettlementError(f"evidence lacks share link {link}")
        if rec.target != receipt.target or rec.to != to:
            raise SettlementError("share chain is broken (wrong target or recipient)")
        to = peer_of(rec.sharer)
        out.append(to)
        link = rec.prev
    return out


def indexer_weights(
    target: Cid, claim: Content | None, evidence: Evidence
) -> list[tuple[bytes, int]]:
    """``(indexer peer id, weight)`` for the target's index records, at most 8, heaviest first.

    An inclusion counts as two-way only if it was countersigned by the owner of the target's
    content claim (``IndexRecord.verify`` already checked the countersignature itself).
    """
    best: dict[bytes, int] = {}
    for rec in evidence.index.get(target, []):
        two_way = rec.two_way and claim is not None and rec.owner == claim.owner
        weight = TWO_WAY_WEIGHT if two_way else ONE_WAY_WEIGHT
        peer = peer_of(rec.indexer)
        best[peer] = max(best.get(peer, 0), weight)
    ranked = sorted(best.items(), key=lambda pw: (-pw[1], pw[0]))
    return ranked[:MAX_INDEXERS]


def settle(
    receipt: Receipt, evidence: Evidence, *, trust_ppm: int = TRUST_ONE_PPM
) -> tuple[Payout, ...]:
    """Payouts for ``receipt`` (sorted, positive, summing exactly to ``receipt.value``).

    Args:
        receipt: the consumer's receipt (its signature is the caller's business; see
            :func:`verify_statement`).
        evidence: the objects behind the read (see :class:`~ccnp2p.econ.statement.Evidence`).
        trust_ppm: the consumer's trust weight, 0..1,000,000.

    Raises:
        SettlementError: the evidence is incomplete or inconsistent, or trust is out of range.
    """
    if not 0 <= trust_ppm <= TRUST_ONE_PPM:
        raise SettlementError("trust weight out of range")
    consumer = peer_of(receipt.consumer)
    lines: dict[LineKey, Fraction] = {}
    trusted = Fraction(receipt.value * trust_ppm, TRUST_ONE_PPM)
    add_line(lines, consumer, Role.REFUND, receipt.value - trusted)
    claim = evidence.claims.get(receipt.target)
    terms = claim.terms if claim is not None else {}
    rest = trusted
    chain = share_chain(receipt, evidence)
    if chain:
        pool = trusted * bp(terms.get("sharers", DEFAULT_SHARERS_BP))
        weights = [(peer, 1 << (len(chain) - 1 - i)) for i, peer in enumerate(chain)]
        split_by_weight(lines, pool, weights, Role.SHARER)
        rest -= pool
    indexers = indexer_weights(receipt.target, claim, evidence)
    if indexers:
        pool = trusted * bp(terms.get("indexers", DEFAULT_INDEXERS_BP))
        split_by_weight(lines, pool, indexers, Role.INDEXER)
        rest -= pool
    for (party, role), frac in _Walk(evidence, consumer).shares(receipt.target).items():
        add_line(lines, party, role, rest * frac)
    return apportion(receipt.value, lines)


def make_statement(
    receipt: Receipt,
    evidence: Evidence,
    settler: Identity,
    *,
    trust_ppm: int = TRUST_ONE_PPM,
    created: int = 0,
) -> Statement:
    """Settle ``receipt`` and sign the statement as ``settler``."""
    check_receipt(receipt)
    payouts = settle(receipt, evidence, trust_ppm=trust_ppm)
    return Statement(
        settler=settler.public.to_protobuf(),
        receipt=receipt.cid,
        value=receipt.value,
        trust_ppm=trust_ppm,
        rules=RULES_VERSION,
        evidence=evidence.cids(),
        payouts=payouts,
        created=created,
    ).signed_by(settler)


def verify_statement(statement: Statement, receipt: Receipt, evidence: Evidence) -> None:
    """Accept a statement only if it is signed, about ``receipt``, and recomputes exactly.

    Raises:
        SettlementError: a bad signature (statement or receipt), a mismatch with the receipt or
            the evidence, or payouts that differ from :func:`settle`'s.
    """
    try:
        statement.verify()
    except CcnError as exc:
        raise SettlementError("statement signature does not verify") from exc
    check_receipt(receipt)
    if statement.receipt != receipt.cid or statement.value != receipt.value:
        raise SettlementError("statement is not about this receipt")
    if statement.rules != RULES_VERSION:
        raise SettlementError(f"unsupported settlement rules {statement.rules}")
    if statement.evidence != evidence.cids():
        raise SettlementError("statement evidence differs from the objects supplied")
    if settle(receipt, evidence, trust_ppm=statement.trust_ppm) != statement.payouts:
        raise SettlementError("statement payouts do not recompute")
