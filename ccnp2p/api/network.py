"""Network routes: identity, peers, connect, and the DHT."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ccnp2p.api.common import ApiContext, Routes, cid_param, int_param
from ccnp2p.errors import LocalError, NotFound
from ccnp2p.node import parse_peer_multiaddr
from ccnp2p.objects.keys import peer_id_to_str


def network_routes(ctx: ApiContext) -> Routes:
    node = ctx.node

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

    async def dht_provide(request: Request) -> Response:
        cid = cid_param(request)
        if not node.blocks.has(cid):
            raise NotFound(f"{cid} is not in the local store", cid)
        return JSONResponse({"cid": str(cid), "stored_on": await node.dht.provide(cid)})

    async def dht_findprovs(request: Request) -> Response:
        cid = cid_param(request)
        limit = int_param(request, "limit", 20) or 20
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

    return [
        ("/api/v0/id", ident, "GET"),
        ("/api/v0/peers", peers, "GET"),
        ("/api/v0/connect", connect, "POST"),
        ("/api/v0/dht/provide/{cid}", dht_provide, "POST"),
        ("/api/v0/dht/findprovs/{cid}", dht_findprovs, "GET"),
        ("/api/v0/dht/put", dht_put, "POST"),
        ("/api/v0/dht/get", dht_get, "GET"),
    ]
