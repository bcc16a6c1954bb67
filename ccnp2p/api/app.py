"""Routes of the local API (``/api/v0/...``) and the read gateway (``/ccn/<cid>``).

JSON in and out, except content: ``add`` takes the raw bytes as the request body and ``cat`` /
the gateway stream raw bytes. Errors are ``{"error": message, "code": code}`` with a status that
says whose fault it is (4xx: the request, 502: a peer, 500: us).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ccnp2p.api.security import refusal
from ccnp2p.cli.local import stat_object
from ccnp2p.errors import CcnError, LocalError, NotFound, RemoteError
from ccnp2p.net.errors import NetworkError
from ccnp2p.node import Node, ReadPlan, parse_peer_multiaddr
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import peer_id_to_str
from ccnp2p.objects.model import Calc, FileNode
from ccnp2p.store.gc import collect_garbage
from ccnp2p.store.pins import PinKind
from ccnp2p.store.repo import Repo

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
BODY_QUEUE = 8


@dataclass(slots=True)
class ApiContext:
    node: Node
    repo: Repo
    token: str
    port: int = 0


def _status_for(exc: CcnError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (RemoteError, NetworkError)):
        return 502
    if isinstance(exc, LocalError):
        return 400
    return 500


def _error(status: int, message: str, code: str = "error") -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def guarded(ctx: ApiContext, handler: Handler, *, mutating: bool) -> Handler:
    """Apply the access rules, and turn our errors into JSON error responses."""

    async def endpoint(request: Request) -> Response:
        refused = refusal(request, port=ctx.port, token=ctx.token, mutating=mutating)
        if refused is not None:
            return _error(refused[0], refused[1], "forbidden")
        try:
            return await handler(request)
        except CcnError as exc:
            return _error(_status_for(exc), str(exc), exc.code)
        except ValueError as exc:
            return _error(400, str(exc), "bad-request")

    return endpoint


def _cid(request: Request) -> Cid:
    return Cid.parse(request.path_params["cid"])


def _int_param(request: Request, name: str, default: int | None) -> int | None:
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


class _BodyReader(io.RawIOBase):
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


def build_app(ctx: ApiContext) -> Starlette:
    node = ctx.node
    repo = ctx.repo

    async def ident(request: Request) -> Response:
        addrs = node.network.listen_addrs()
        pid = peer_id_to_str(node.peer_id)
        return JSONResponse(
            {"id": pid, "addresses": [f"{a}/p2p/{pid}" for a in addrs], "agent": "ccnp2p/0.1.0"}
        )

    async def peers(request: Request) -> Response:
        out = []
        for p in node.network.connected_peers():
            out.append({"id": peer_id_to_str(p), "addrs": node.network.peer_addrs(p)})
        return JSONResponse({"peers": out, "dht_table_size": len(node.dht.table)})

    async def add(request: Request) -> Response:
        chunk_bytes = _int_param(request, "chunk_bytes", repo.config.storage.chunk_bytes)
        pin = request.query_params.get("pin", "true") != "false"
        send, receive = trio.open_memory_channel[bytes](BODY_QUEUE)
        result: list[Any] = []

        async def importer() -> None:
            with receive:
                result.append(
                    await node.add(
                        io.BufferedReader(_BodyReader(receive)),
                        chunk_bytes=chunk_bytes or 0,
                        pin=pin,
                    )
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(importer)
            async with send:
                async for piece in request.stream():
                    if piece:
                        await send.send(piece)
        res = result[0]
        return JSONResponse({"cid": str(res.root), "size": res.size, "chunks": res.chunks})

    async def _stream(plan: ReadPlan, offset: int, length: int | None) -> AsyncIterator[bytes]:
        try:
            async for piece in node.open_reader(plan.root, offset, length, plan=plan):
                yield piece
        except CcnError as exc:
            # Headers are gone; end the body short so Content-Length tells the client.
            log.warning("read of %s failed mid-stream: %s", plan.root, exc)

    async def _live(cid: Cid, offset: int, length: int | None) -> AsyncIterator[bytes]:
        try:
            async for piece in node.read(cid, offset, length):
                yield piece
        except CcnError as exc:
            # No Content-Length on a live calc: abort so the client sees a broken transfer.
            log.warning("computing %s failed mid-stream: %s", cid, exc)
            raise

    async def _plan(cid: Cid) -> ReadPlan | None:
        """A file plan for ``cid`` (a calc with a known result reads that); None: compute live."""
        obj = await node.kind_of(cid)
        if isinstance(obj, Calc):
            result = await node.compute.find_result(cid)
            if result is None:
                return None
            return await node.plan_read(result)
        return await node.plan_read(cid)

    async def cat(request: Request) -> Response:
        cid = _cid(request)
        offset = _int_param(request, "offset", 0) or 0
        length = _int_param(request, "length", None)
        plan = await _plan(cid)
        if plan is None:
            return StreamingResponse(
                _live(cid, offset, length), media_type="application/octet-stream"
            )
        end = plan.size if length is None else min(plan.size, offset + length)
        size = max(0, end - offset)
        headers = {"Content-Length": str(size), "X-Ccn-Size": str(plan.size)}
        return StreamingResponse(
            _stream(plan, offset, size), media_type="application/octet-stream", headers=headers
        )

    async def gateway(request: Request) -> Response:
        cid = _cid(request)
        plan = await _plan(cid)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "public, max-age=29030400, immutable"}
        headers["ETag"] = f'"{cid}"'
        if plan is None:
            return _gateway_live(cid, request.headers.get("range"), headers)
        rng = parse_range(request.headers.get("range"), plan.size)
        if rng is None:
            headers["Content-Length"] = str(plan.size)
            return StreamingResponse(
                _stream(plan, 0, None), media_type="application/octet-stream", headers=headers
            )
        if rng == (-1, -1):
            headers["Content-Range"] = f"bytes */{plan.size}"
            return Response(status_code=416, headers=headers)
        start, stop = rng
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{plan.size}"
        headers["Content-Length"] = str(stop - start)
        return StreamingResponse(
            _stream(plan, start, stop - start),
            status_code=206,
            media_type="application/octet-stream",
            headers=headers,
        )

    def _gateway_live(cid: Cid, range_header: str | None, headers: dict[str, str]) -> Response:
        """A calc being computed: its size is unknown, so only ``start-end`` ranges are exact."""
        rng = parse_open_range(range_header)
        if rng is None:
            return StreamingResponse(
                _live(cid, 0, None), media_type="application/octet-stream", headers=headers
            )
        start, stop = rng
        if stop is None:
            return StreamingResponse(
                _live(cid, start, None), media_type="application/octet-stream", headers=headers
            )
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/*"
        return StreamingResponse(
            _live(cid, start, stop - start),
            status_code=206,
            media_type="application/octet-stream",
            headers=headers,
        )

    async def calc(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            op = str(body["op"])
            inputs = [Cid.parse(str(c)) for c in body["inputs"]]
            params = body.get("params", {})
        except (ValueError, KeyError, TypeError) as exc:
            raise LocalError(f"calc needs JSON {{op, inputs, params}}: {exc}") from exc
        if not isinstance(params, dict):
            raise LocalError("params must be a JSON object")
        cid = await node.calc(op, inputs, params)
        return JSONResponse({"cid": str(cid)})

    async def ops(request: Request) -> Response:
        out = [
            {
                "cid": str(op.cid),
                "name": op.name,
                "version": op.version,
                "impl": op.impl,
                "affinity": op.affinity,
                "stream": op.stream,
                "seek": op.seek,
                "deterministic": op.deterministic,
                "resources": op.resources,
            }
            for op in node.compute.registry.operators()
        ]
        return JSONResponse({"operators": sorted(out, key=lambda o: str(o["name"]))})

    async def executions(request: Request) -> Response:
        out = [
            {
                "calc": str(e.calc),
                "op": e.op,
                "output_bytes": e.output_bytes,
                "result": str(e.result) if e.result else None,
                "error": e.error,
                "seconds": round(e.finished - e.started, 3) if e.finished is not None else None,
            }
            for e in node.compute.executor.history
        ]
        return JSONResponse({"executions": out})

    async def explain(request: Request) -> Response:
        cid = _cid(request)
        placement = await node.compute.plan(cid)
        return JSONResponse(placement.explain())

    async def stat(request: Request) -> Response:
        cid = _cid(request)
        if not node.blocks.has(cid):
            obj = await node.kind_of(cid)  # fetch the root object from providers
            if isinstance(obj, FileNode):
                await node.plan_read(cid)  # and the file tree
        info = await node.ablocks.run(lambda: stat_object(repo, cid))
        obj = await node.kind_of(cid)
        if isinstance(obj, Calc):
            result = await node.compute.find_result(cid)
            info.update(
                op=str(obj.op),
                inputs=[str(c) for c in obj.inputs],
                params=obj.params,
                result=str(result) if result else None,
            )
        return JSONResponse(info)

    async def pin_add(request: Request) -> Response:
        cid = _cid(request)
        direct = request.query_params.get("direct") == "true"
        if not node.blocks.has(cid):
            raise NotFound(f"cannot pin {cid}: not in the local store (get it first)", cid)
        repo.pins.add(cid, PinKind.DIRECT if direct else PinKind.RECURSIVE)
        return JSONResponse({"pinned": str(cid), "kind": "direct" if direct else "recursive"})

    async def pin_rm(request: Request) -> Response:
        cid = _cid(request)
        if not repo.pins.remove(cid):
            raise LocalError(f"{cid} is not pinned")
        return JSONResponse({"unpinned": str(cid)})

    async def pin_ls(request: Request) -> Response:
        pins = [{"cid": str(p.cid), "kind": p.kind.value} for p in repo.pins.list()]
        return JSONResponse({"pins": pins})

    async def gc(request: Request) -> Response:
        result = await node.ablocks.run(lambda: collect_garbage(repo.blocks, repo.pins))
        if result.errors:
            return _error(500, "gc aborted: " + "; ".join(result.errors[:3]), "gc")
        removed = [str(c) for c in result.removed]
        return JSONResponse({"removed": removed, "freed_bytes": result.freed_bytes})

    async def dht_provide(request: Request) -> Response:
        cid = _cid(request)
        if not node.blocks.has(cid):
            raise NotFound(f"{cid} is not in the local store", cid)
        return JSONResponse({"cid": str(cid), "stored_on": await node.dht.provide(cid)})

    async def dht_findprovs(request: Request) -> Response:
        cid = _cid(request)
        limit = _int_param(request, "limit", 20) or 20
        found = await node.find_providers(cid, limit)
        return JSONResponse(
            {
                "providers": [
                    {"id": peer_id_to_str(p.peer_id), "addrs": list(p.addrs)} for p in found
                ]
            }
        )

    async def dht_put(request: Request) -> Response:
        body = await request.body()
        key, seq = await node.publish_user_record(body)
        return JSONResponse({"key": key.decode(), "seq": seq})

    async def dht_get(request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not key:
            raise LocalError("key is required")
        data = await node.get_user_record(key.encode())
        return Response(data, media_type="application/octet-stream")

    async def connect(request: Request) -> Response:
        addr = request.query_params.get("addr", "")
        info = parse_peer_multiaddr(addr)
        await node.bootstrap([info])
        return JSONResponse({"connected": peer_id_to_str(info.peer_id)})

    r: list[tuple[str, Handler, str]] = [
        ("/api/v0/id", ident, "GET"),
        ("/api/v0/peers", peers, "GET"),
        ("/api/v0/connect", connect, "POST"),
        ("/api/v0/add", add, "POST"),
        ("/api/v0/cat/{cid}", cat, "GET"),
        ("/api/v0/stat/{cid}", stat, "GET"),
        ("/api/v0/pin/add/{cid}", pin_add, "POST"),
        ("/api/v0/pin/rm/{cid}", pin_rm, "POST"),
        ("/api/v0/pin/ls", pin_ls, "GET"),
        ("/api/v0/gc", gc, "POST"),
        ("/api/v0/calc", calc, "POST"),
        ("/api/v0/ops", ops, "GET"),
        ("/api/v0/executions", executions, "GET"),
        ("/api/v0/explain/{cid}", explain, "GET"),
        ("/api/v0/dht/provide/{cid}", dht_provide, "POST"),
        ("/api/v0/dht/findprovs/{cid}", dht_findprovs, "GET"),
        ("/api/v0/dht/put", dht_put, "POST"),
        ("/api/v0/dht/get", dht_get, "GET"),
        ("/ccn/{cid}", gateway, "GET"),
    ]
    routes = [
        Route(path, guarded(ctx, fn, mutating=method != "GET"), methods=[method])
        for path, fn, method in r
    ]
    return Starlette(routes=routes)


def parse_open_range(header: str | None) -> tuple[int, int | None] | None:
    """A ``bytes=start-[end]`` range when the total size is not known yet."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _sep, last = header.removeprefix("bytes=").strip().partition("-")
    try:
        start = int(first)
        stop = int(last) + 1 if last else None
    except ValueError:
        return None
    if start < 0 or (stop is not None and stop <= start):
        return None
    return (start, stop)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range: None for the whole body, (-1, -1) if unsatisfiable.

    Returns (start, stop) with stop exclusive. Multiple ranges are answered with the whole body
    (allowed by RFC 9110).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header.removeprefix("bytes=").strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return (-1, -1)
            return (max(0, size - suffix), size)
        start = int(first)
        stop = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or stop <= start:
        return (-1, -1)
    return (start, stop)
