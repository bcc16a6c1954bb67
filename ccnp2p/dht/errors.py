"""DHT-specific errors, branches of the shared :mod:`ccnp2p.errors` hierarchy.

They live here rather than in ``ccnp2p/errors.py`` so the DHT can evolve its failure modes without
touching the shared module; each still carries a stable ``code`` for the wire and the HTTP API.
"""

from __future__ import annotations

from ccnp2p.errors import LocalError, RemoteError


class InvalidRecord(RemoteError):
    """A DHT record failed its namespace's validator (bad signature, bad shape, wrong key)."""

    code = "invalid-record"


class UnknownNamespace(InvalidRecord):
    """A record key belongs to no registered namespace, so nothing can vouch for it."""

    code = "unknown-namespace"


class LookupFailed(LocalError):
    """A DHT query ended without reaching any peer (empty routing table, all peers down)."""

    code = "lookup-failed"
