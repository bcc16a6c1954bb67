"""Errors raised by the Network seam.

Transport failures are neither the local node's fault nor proof that a peer misbehaved: a link
went down, a peer crashed, or a stream was reset. They get their own branch of
:class:`~ccnp2p.errors.CcnError` so protocol code can catch exactly "the network failed" and turn
it into a failed request, without ever seeing a py-libp2p exception type.
"""

from __future__ import annotations

from ccnp2p.errors import CcnError, DecodeError


class NetworkError(CcnError):
    """The transport could not do what was asked (dial, open, send, receive)."""

    code = "network"


class DialFailed(NetworkError):
    """No connection to the peer could be established (no address, dead, partitioned...)."""

    code = "dial-failed"


class ProtocolNotSupported(NetworkError):
    """The remote peer has no handler for the requested protocol id."""

    code = "protocol-not-supported"


class StreamClosed(NetworkError):
    """The stream can no longer be used in the requested direction (closed locally or reset)."""

    code = "stream-closed"


class StreamReset(StreamClosed):
    """The stream was aborted (by either end, a crash or a partition); buffered data is lost."""

    code = "stream-reset"


class TruncatedFrame(DecodeError):
    """The stream ended in the middle of a length-prefixed frame."""

    code = "truncated-frame"
