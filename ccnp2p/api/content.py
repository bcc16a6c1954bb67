"""Content and compute routes: add, cat, the read gateway, stat, pins, gc, calcs, operators."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ccnp2p.api.common import (
    BODY_QUEUE,
    ApiContext,
    BodyReader,
    Routes,
    cid_param,
    error_response,
    int_param,
)
from ccnp2p.api.ranges import parse_open_range, parse_range
from ccnp2p.cli.local import stat_object
from ccnp2p.errors import CcnError, LocalError
from ccnp2p.node import ReadPlan
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import peer_id_to_str
from ccnp2p.objects.model import Calc, FileNode
from ccnp2p.store.gc import collect_garbage
from ccnp2p.store.pins import PinKind

log = logging.getLogger(__name__)


def content_routes(ctx: ApiContext) -> Routes:
    node = ctx.node
    repo = ctx.repo

    async def add(request: Request) -> Response:
        chunk_bytes = int_param(request, "chunk_bytes", repo.config.storage.chunk_bytes)
        pin = request.query_params.get("pin", "true") != "false"
        send, receive = trio.open_memory_channel[bytes](BODY_QUEUE)
        result: list[Any] = []

        async def importer() -> None:
            with receive:
                result.append(
                    await node.add(
                        io.BufferedReader(BodyReader(receive)),
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

    async def _paid(cid: Cid, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass bytes through; after a complete read, sign a receipt (if reads have a price)."""
        total = 0
        async for piece in pieces:
            total += len(piece)
            yield piece
        if ctx.value_per_mib and ctx.settle is not None and total:
            value = max(1, total * ctx.value_per_mib // (1 << 20))
            node.spawn(_pay, cid, total, value)

    async def _pay(cid: Cid, total: int, value: int) -> None:
        from ccnp2p.econ import sign_receipt

        assert ctx.settle is not None
        try:
            await ctx.settle.settle_and_deliver(sign_receipt(ctx.settle, cid, total, value))
        except CcnError as exc:
            log.warning("receipt for %s not settled: %s", cid, exc)

    async def _stream(plan: ReadPlan, offset: int, length: int | None) -> AsyncIterator[bytes]:
        pieces = node.open_reader(plan.root, offset, length, plan=plan)
        try:
            async for piece in _paid(plan.root, pieces):
                yield piece
        except CcnError as exc:
            # Headers are gone; end the body short so Content-Length tells the client.
            log.warning("read of %s failed mid-stream: %s", plan.root, exc)

    async def _live(cid: Cid, offset: int, length: int | None) -> AsyncIterator[bytes]:
        try:
            async for piece in _paid(cid, node.read(cid, offset, length)):
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
        cid = cid_param(request)
        offset = int_param(request, "offset", 0) or 0
        length = int_param(request, "length", None)
        plan = await _plan(cid)
        if plan is None:
            return StreamingResponse(
                _live(cid, offset, length), media_type="application/octet-stream"
            )
        end = plan.size if length is None else min(plan.size, offset + length)
        size = max(0, end - offset)
        headers = {
            "Content-Length": str(size),
            "X-Ccn-Size": str(plan.size),
            "X-Ccn-Providers": str(len(plan.providers)),
        }
        return StreamingResponse(
            _stream(plan, offset, size), media_type="application/octet-stream", headers=headers
        )

    async def gateway(request: Request) -> Response:
        return await _gateway(cid_param(request), request)

    async def _gateway(cid: Cid, request: Request) -> Response:
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
                "running": e.finished is None and not e.error,
                "resumed_from_step": e.resumed_from_step,
                "steps_run": e.steps_run,
                "recomputed_steps": e.recomputed_steps,
            }
            for e in node.compute.executor.history
        ]
        return JSONResponse({"executions": out})

    async def explain(request: Request) -> Response:
        cid = cid_param(request)
        placement = await node.compute.plan(cid)
        return JSONResponse(placement.explain())

    async def stat(request: Request) -> Response:
        cid = cid_param(request)
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
        cid = cid_param(request)
        direct = request.query_params.get("direct") == "true"
        if direct:
            if not node.blocks.has(cid):
                await node.get_object(cid)  # fetch the one block from providers
        else:
            # A recursive pin means holding all of it: fetch what is missing, then announce.
            # A calc is computed; the pin then keeps the calc object and its inputs' links.
            async for _ in node.read(cid):
                pass
        repo.pins.add(cid, PinKind.DIRECT if direct else PinKind.RECURSIVE)
        if not direct:
            result = await node.compute.find_result(cid)
            if result is not None:
                repo.pins.add(result)  # a pinned calc keeps its computed result too
                await node.provide(result)
            await node.provide(cid)
        return JSONResponse({"pinned": str(cid), "kind": "direct" if direct else "recursive"})

    async def pin_rm(request: Request) -> Response:
        cid = cid_param(request)
        if not repo.pins.remove(cid):
            raise LocalError(f"{cid} is not pinned")
        return JSONResponse({"unpinned": str(cid)})

    async def pin_ls(request: Request) -> Response:
        pins = [{"cid": str(p.cid), "kind": p.kind.value} for p in repo.pins.list()]
        return JSONResponse({"pins": pins})

    async def gc(request: Request) -> Response:
        result = await node.ablocks.run(lambda: collect_garbage(repo.blocks, repo.pins))
        if result.errors:
            return error_response(500, "gc aborted: " + "; ".join(result.errors[:3]), "gc")
        removed = [str(c) for c in result.removed]
        return JSONResponse({"removed": removed, "freed_bytes": result.freed_bytes})

    async def transfer_stats(request: Request) -> Response:
        st = node.transfer.statistics()
        f, srv = st.fetch, st.server
        return JSONResponse(
            {
                "fetch": {
                    "bytes_by_peer": {peer_id_to_str(p): n for p, n in f.bytes_by_peer.items()},
                    "chunks_fetched": f.chunks_fetched,
                    "chunks_local": f.chunks_local,
                    "retries": f.retries,
                    "bad_chunks": f.bad_chunks,
                    "peers_dropped": f.peers_dropped,
                },
                "server": {"bytes_sent": srv.bytes_sent, "streams_served": srv.streams_served},
                "fetches_active": st.fetches_active,
                "fetches_failed": st.fetches_failed,
            }
        )

    async def gateway_cid(cid: Cid, request: Request) -> Response:
        return await _gateway(cid, request)

    ctx.gateway = gateway_cid
    return [
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
        ("/api/v0/transfer/stats", transfer_stats, "GET"),
        ("/ccn/{cid}", gateway, "GET"),
    ]
