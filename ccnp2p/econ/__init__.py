"""Economics: roles, receipts, settlement, ledger, trust and names (issue 7).

The pure core is :func:`ccnp2p.econ.settle.settle` (receipt + evidence + trust weight ->
payouts); :class:`~ccnp2p.econ.gather.Gatherer` fetches the evidence through a Node;
:class:`~ccnp2p.econ.service.SettleService` serves ``/ccn/settle/1.0.0`` and keeps the
:class:`~ccnp2p.econ.ledger.Ledger`. Spec: ``protocols/ccn-settle.md``.
"""

from __future__ import annotations

from ccnp2p.econ.actions import Shared, index_cid, ledger_report, share_cid, sign_receipt
from ccnp2p.econ.claims import find_claim, publish_claim, register_econ_namespaces
from ccnp2p.econ.gather import Gatherer
from ccnp2p.econ.ledger import Ledger
from ccnp2p.econ.names import NameRecord, publish_name, register_name_namespace, resolve_name
from ccnp2p.econ.rules import Payout, Role, SettlementError
from ccnp2p.econ.service import SettleResult, SettleService
from ccnp2p.econ.settle import make_statement, settle, verify_statement
from ccnp2p.econ.statement import Evidence, Statement
from ccnp2p.econ.trust import TrustScores, compute_trust

__all__ = [
    "Evidence",
    "Gatherer",
    "Ledger",
    "NameRecord",
    "Payout",
    "Role",
    "SettleResult",
    "SettleService",
    "SettlementError",
    "Shared",
    "Statement",
    "TrustScores",
    "compute_trust",
    "find_claim",
    "index_cid",
    "ledger_report",
    "make_statement",
    "publish_claim",
    "publish_name",
    "register_econ_namespaces",
    "register_name_namespace",
    "resolve_name",
    "settle",
    "share_cid",
    "sign_receipt",
    "verify_statement",
]
