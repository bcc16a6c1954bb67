"""Economy routes: ledger, index, share, claims, receipts, names and the name gateway."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ccnp2p.api.common import ApiContext, Routes, cid_param, int_param
from ccnp2p.econ import SettleService, index_cid, ledger_report, share_cid, sign_receipt
from ccnp2p.econ.claims import publish_claim
from ccnp2p.econ.names import publish_name, resolve_name
from ccnp2p.errors import LocalError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import peer_id_from_str, peer_id_to_str


def econ_routes(ctx: ApiContext) -> Routes:
    node = ctx.node

    def svc() -> SettleService:
        if ctx.settle is None:
            raise LocalError("settlement is not running on this node")
        return ctx.settle

    async def ledger(request: Request) -> Response:
        return JSONResponse(ledger_report(svc()))

    async def index(request: Request) -> Response:
        rec = await index_cid(svc(), cid_param(request))
        return JSONResponse(
            {"index": str(rec.cid), "target": str(rec.target), "two_way": rec.two_way}
        )

    async def share(request: Request) -> Response:
        to = peer_id_from_str(request.query_params.get("to", ""))
        prev_text = request.query_params.get("prev")
        prev = Cid.parse(prev_text) if prev_text else None
        shared = await share_cid(svc(), cid_param(request), to, prev=prev)
        return JSONResponse(
            {
                "share": str(shared.record.cid),
                "to": peer_id_to_str(to),
                "delivered": shared.delivered,
            }
        )

    async def claim(request: Request) -> Response:
        terms_text = request.query_params.get("terms", "{}")
        try:
            terms = json.loads(terms_text)
            if not isinstance(terms, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in terms.values()
            ):
                raise ValueError("terms must map roles to integer basis points")
        except ValueError as exc:
            raise LocalError(f"bad terms: {exc}") from None
        name = request.query_params.get("name", "")
        won = await publish_claim(node, cid_param(request), name, terms)
        mine = won.owner == node.identity.public.to_protobuf()
        return JSONResponse({"claim": str(won.cid), "owner_is_me": mine, "terms": won.terms})

    async def receipt(request: Request) -> Response:
        target = cid_param(request)
        bytes_read = int_param(request, "bytes", 0) or 0
        value = int_param(request, "value", None)
        if value is None:
            raise LocalError("value is required")
        res = await svc().settle_and_deliver(sign_receipt(svc(), target, bytes_read, value))
        payouts = [
            {"party": peer_id_to_str(p.party), "role": p.role, "amount": p.amount}
            for p in res.statement.payouts
        ]
        return JSONResponse({"receipt": str(res.statement.receipt), "payouts": payouts})

    async def name_publish(request: Request) -> Response:
        name = request.query_params.get("name", "")
        cid = Cid.parse(request.query_params.get("cid", ""))
        rec = await publish_name(node, name, cid)
        owner = peer_id_to_str(node.peer_id)
        return JSONResponse({"name": f"{owner}/{rec.name}", "cid": str(rec.target), "seq": rec.seq})

    async def name_resolve(request: Request) -> Response:
        owner, _, name = request.query_params.get("name", "").partition("/")
        cid = await resolve_name(node, owner, name)
        return JSONResponse({"cid": str(cid)})

    async def name_gateway(request: Request) -> Response:
        cid = await resolve_name(node, request.path_params["owner"], request.path_params["name"])
        assert ctx.gateway is not None
        return await ctx.gateway(cid, request)

    return [
        ("/api/v0/ledger", ledger, "GET"),
        ("/api/v0/index/{cid}", index, "POST"),
        ("/api/v0/share/{cid}", share, "POST"),
        ("/api/v0/claim/{cid}", claim, "POST"),
        ("/api/v0/receipt/{cid}", receipt, "POST"),
        ("/api/v0/name/publish", name_publish, "POST"),
        ("/api/v0/name/resolve", name_resolve, "GET"),
        ("/ccn-name/{owner}/{name}", name_gateway, "GET"),
    ]
