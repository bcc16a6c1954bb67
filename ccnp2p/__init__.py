"""ccnp2p: a peer-to-peer node for a computable content network.

A CID names either stored bytes or a deterministic computation. This package holds the node:
objects (pure), store (disk), net (the libp2p seam), dht, transfer, compute, sched, econ, the
daemon's API and the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"
