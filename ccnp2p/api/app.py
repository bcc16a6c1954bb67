"""The daemon's HTTP app: routes of the local API (``/api/v0/...``) and the read gateways.

JSON in and out, except content: ``add`` takes the raw bytes as the request body and ``cat`` /
the gateway stream raw bytes. Errors are ``{"error": message, "code": code}`` with a status that
says whose fault it is (4xx: the request, 502: a peer, 500: us). Every route passes the access
guard of :mod:`ccnp2p.api.security`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from ccnp2p.api.common import ApiContext, guarded
from ccnp2p.api.content import content_routes
from ccnp2p.api.econ import econ_routes
from ccnp2p.api.network import network_routes

__all__ = ["ApiContext", "build_app"]


def build_app(ctx: ApiContext) -> Starlette:
    table = [*network_routes(ctx), *content_routes(ctx), *econ_routes(ctx)]
    routes = [
        Route(path, guarded(ctx, fn, mutating=method != "GET"), methods=[method])
        for path, fn, method in table
    ]
    return Starlette(routes=routes)
