"""The error hierarchy: one root, a few meaningful branches.

Every error a user or a peer can provoke is a :class:`CcnError`. Errors caused by what a remote
peer sent are :class:`RemoteError` subclasses: the node turns them into a dropped message or a
closed stream, never into a crash. Errors about local state (a missing block, a full disk) are
:class:`LocalError` subclasses. Each carries a short stable ``code`` usable on the wire and in
the HTTP API.
"""

from __future__ import annotations


class CcnError(Exception):
    """Root of every ccnp2p error."""

    code = "error"


class LocalError(CcnError):
    """Something about this node's own state or the caller's request is wrong."""

    code = "local"


class RemoteError(CcnError):
    """A peer sent something invalid; the node drops it and carries on."""

    code = "remote"


class DecodeError(RemoteError):
    """Bytes are not a valid (canonical) encoding of what was expected."""

    code = "decode"


class InvalidCid(DecodeError):
    """A CID string or binary CID is malformed or uses an unsupported codec/hash."""

    code = "invalid-cid"


class HashMismatch(RemoteError):
    """Bytes do not hash to the CID they were presented under."""

    code = "hash-mismatch"


class SignatureError(RemoteError):
    """A signed object or record fails verification."""

    code = "bad-signature"


class FrameTooLarge(RemoteError):
    """A length-prefixed frame exceeds the negotiated maximum."""

    code = "frame-too-large"


class ProtocolError(RemoteError):
    """A peer broke a protocol's rules (wrong message order, credit overrun...)."""

    code = "protocol"


class NotFound(LocalError):
    """A block, object or record is not available."""

    code = "not-found"

    def __init__(self, what: str, cid: object | None = None) -> None:
        super().__init__(what)
        self.cid = cid


class CorruptBlock(LocalError):
    """A block on disk no longer matches its CID; it is quarantined, never served."""

    code = "corrupt-block"


class QuotaExceeded(LocalError):
    """The blockstore would grow beyond its configured size quota."""

    code = "quota-exceeded"


class StorageError(LocalError):
    """The disk refused a write (full, read-only, permissions)."""

    code = "storage"


class RepoError(LocalError):
    """The repo dir is missing, not initialised, or its config is invalid."""

    code = "repo"


class UnknownOperator(LocalError):
    """An operator is not installed here or its code hash does not match."""

    code = "unknown-operator"
