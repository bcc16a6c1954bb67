"""Settlement rules v1: roles, split constants, and the exact integer apportionment.

Settlement first computes every party's share of a receipt's value as an exact rational number
(:class:`fractions.Fraction`, never a float), then turns those shares into integer units with
one largest-remainder pass over the whole statement. Rounding once, at the end, keeps rounding
error below one unit per line and makes the lines sum to the receipt's value exactly; doing it
per DAG level would let errors compound and depend on evaluation order.

The constants here are part of the rules version: a statement names the version it was computed
under, and changing any number below means a new :data:`RULES_VERSION`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from ccnp2p.errors import RemoteError
from ccnp2p.objects.keys import peer_id_to_str

RULES_VERSION: Final = 1
BASIS_POINTS: Final = 10_000
TRUST_ONE_PPM: Final = 1_000_000  # full trust: the whole value is settled

# Defaults when the read target's owner set no term (basis points of the trusted value).
DEFAULT_SHARERS_BP: Final = 1_000
DEFAULT_INDEXERS_BP: Final = 500
# Basis points of a calc node's value (after owner and author) to the executor that computed it.
EXECUTOR_BP: Final = 2_000
ONE_WAY_WEIGHT: Final = 1
TWO_WAY_WEIGHT: Final = 2

MAX_SHARE_HOPS: Final = 8
MAX_INDEXERS: Final = 8
MAX_DAG_NODES: Final = 512
MAX_DAG_DEPTH: Final = 32
MAX_EVIDENCE: Final = 1024


class SettlementError(RemoteError):
    """A receipt or statement cannot be settled: bad signature, broken chain, missing evidence."""

    code = "settlement"


class Role(enum.Enum):
    """Why a party is paid. The value is the wire name (``role`` in a statement's payouts)."""

    OWNER = "owner"  # owner of a raw input (or a calc) through a content claim
    AUTHOR = "author"  # author of an operator used by a calc
    EXECUTOR = "executor"  # peer that computed a calc (from its result record)
    INDEXER = "indexer"  # signer of an index record of the target
    SHARER = "sharer"  # a link in the share chain that led the consumer to the target
    REFUND = "refund"  # value not owed to anyone (untrusted part, unclaimed inputs): the consumer


@dataclass(frozen=True, slots=True, order=True)
class Payout:
    """``amount`` units owed to ``party`` (binary peer id) in ``role``."""

    party: bytes
    role: str
    amount: int

    @property
    def party_str(self) -> str:
        return peer_id_to_str(self.party)

    def to_data(self) -> dict[str, object]:
        return {"party": self.party, "role": self.role, "amount": self.amount}


LineKey = tuple[bytes, Role]


def add_line(lines: dict[LineKey, Fraction], party: bytes, role: Role, amount: Fraction) -> None:
    """Accumulate ``amount`` on the ``(party, role)`` line (zero amounts make no line)."""
    if amount:
        key = (party, role)
        lines[key] = lines.get(key, Fraction(0)) + amount


def apportion(total: int, lines: Mapping[LineKey, Fraction]) -> tuple[Payout, ...]:
    """Integer payouts summing to exactly ``total`` (largest remainder method).

    Each line gets the floor of its exact amount; the units left over (fewer than the number of
    lines) go one each to the lines with the largest fractional parts. Ties are broken by
    ``(party bytes, role name)`` ascending, so every peer rounds the same way.

    Args:
        total: the receipt's value; the exact line amounts must add up to it.
        lines: exact rational amount per ``(party, role)``.

    Returns:
        Positive payouts sorted by ``(party, role)``.
    """
    exact_sum = sum(lines.values(), Fraction(0))
    if exact_sum != total:
        raise AssertionError(f"lines add up to {exact_sum}, not {total}")  # a bug in the rules
    floors = {key: amount.numerator // amount.denominator for key, amount in lines.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(lines, key=lambda k: (-(lines[k] - floors[k]), k[0], k[1].value))
    for key in by_remainder[:left]:
        floors[key] += 1
    payouts = [Payout(party, role.value, n) for (party, role), n in floors.items() if n > 0]
    return tuple(sorted(payouts))


def bp(value: int) -> Fraction:
    """Basis points as an exact fraction (clamped to 0..10,000)."""
    return Fraction(min(max(value, 0), BASIS_POINTS), BASIS_POINTS)


def split_by_weight(
    lines: dict[LineKey, Fraction], amount: Fraction, parties: list[tuple[bytes, int]], role: Role
) -> None:
    """Split ``amount`` among ``(party, weight)`` in proportion to the (positive) weights."""
    total = sum(w for _, w in parties)
    for party, weight in parties:
        add_line(lines, party, role, amount * weight / total)
