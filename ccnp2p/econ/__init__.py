"""Economics: roles, receipts, settlement, ledger, trust and names (issue 7)."""

from __future__ import annotations
