"""Errors of the transfer protocol, on the network branch of :class:`~ccnp2p.errors.CcnError`.

A failed transfer is neither a local bug nor always the remote's fault (a provider may simply
have crashed), so :class:`TransferFailed` derives from :class:`~ccnp2p.net.errors.NetworkError`;
peers that break the protocol raise :class:`~ccnp2p.errors.ProtocolError` subclasses
(:class:`~ccnp2p.transfer.window.FlowControlError`) inside the driver and are dropped.
"""

from __future__ import annotations

from ccnp2p.net.errors import NetworkError


class TransferFailed(NetworkError):
    """No provider could deliver the requested bytes (all failed, lacked them or misbehaved)."""

    code = "transfer-failed"


class TransferAborted(TransferFailed):
    """The remote ended the transfer with an ABORT message.

    Attributes:
        abort_code: the wire code (an :class:`~ccnp2p.transfer.messages.AbortCode` value).
    """

    code = "transfer-aborted"

    def __init__(self, abort_code: str, reason: str) -> None:
        super().__init__(f"peer aborted the transfer: {abort_code}: {reason}")
        self.abort_code = abort_code


class LiveStreamFailed(TransferFailed):
    """The producer of a live stream failed; the bytes after its last chunk will never exist."""

    code = "live-stream-failed"
