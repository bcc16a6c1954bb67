"""Workloads, one per scenario kind; importing this package registers the shipped ones."""

from __future__ import annotations

from sim.workloads import botfarm, dht_lookups, fetch_churn, many_readers, placement, placement_dag
from sim.workloads.base import Workload, make_workload, register, workload_kinds

__all__ = [
    "Workload",
    "botfarm",
    "dht_lookups",
    "fetch_churn",
    "make_workload",
    "many_readers",
    "placement",
    "placement_dag",
    "register",
    "workload_kinds",
]
