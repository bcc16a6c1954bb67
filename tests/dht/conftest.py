from __future__ import annotations

from ccnp2p.objects.keys import Identity


def peer(n: int) -> bytes:
    """Deterministic peer id number ``n``."""
    return Identity.from_seed_int(n + 1).peer_id
