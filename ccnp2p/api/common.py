"""Shared pieces of the API: the context, access guard, error mapping, request helpers."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ccnp2p.api.security import refusal
from ccnp2p.errors import CcnError, LocalError, NotFound, RemoteError
from ccnp2p.net.errors import NetworkError
from ccnp2p.node import Node
from ccnp2p.objects.cid import Cid
from ccnp2p.store.repo import Repo

if TYPE_CHECKING:
    from ccnp2p.econ import SettleService

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
Routes = list[tuple[str, Handler, str]]
BODY_QUEUE = 8


@dataclass(slots=True)
class ApiContext:
    node: Node
    repo: Repo
    token: str
    port: int = 0
    settle: SettleService | None = None
    value_per_mib: int = 0  # receipts for reads served through the API (0: none)
    gateway: Callable[[Cid, Request], Awaitable[Response]] | None = None


def status_for(exc: CcnError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (RemoteError, NetworkError)):
        return 502
    if isinstance(exc, LocalError):
        return 400
    return 500


def error_response(status: int, message: str, code: str = "error") -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def guarded(ctx: ApiContext, handler: Handler, *, mutating: bool) -> Handler:
    """Apply the access rules, and turn our errors into JSON error responses."""

    async def endpoint(request: Request) -> Response:
        refused = refusal(request, port=ctx.port, token=ctx.token, mutating=mutating)
        if refused is not None:
            return error_response(refused[0], refused[1], "forbidden")
        try:
            return await handler(request)
        except CcnError as exc:
            return error_response(status_for(exc), str(exc), exc.code)
        except ValueError as exc:
            return error_response(400, str(exc), "bad-request")

    return endpoint


def cid_param(request: Request) -> Cid:
    return Cid.parse(request.path_params["cid"])


def int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LocalError(f"{name} must be an integer") from None
    if value < 0:
        raise LocalError(f"{name} must be non-negative")
    return value


class BodyReader(io.RawIOBase):
    """A blocking file object fed from the event loop (read in a worker thread)."""

    def __init__(self, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        self._receive = receive
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            try:
                self._buf = trio.from_thread.run(self._receive.receive)
            except trio.EndOfChannel:
                self._eof = True
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
