"""ccnp2p network simulator: real Nodes over simulated links, under virtual time.

Run ``python -m sim run SCENARIO``; see ``sim/README.md``.
"""

from __future__ import annotations
