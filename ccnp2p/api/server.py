"""Serve the API with Hypercorn on the running trio loop, bound to 127.0.0.1 only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from ccnp2p.api.app import ApiContext, build_app
from ccnp2p.api.security import ADDRESS_FILE

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_api(
    ctx: ApiContext, port: int, *, task_status: TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; reports (and writes to ``<repo>/api``) the base URL."""
    ctx.port = port or _free_loopback_port()
    cfg = HyperConfig()
    cfg.bind = [f"127.0.0.1:{ctx.port}"]
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("ccnp2p.api.hypercorn")
    cfg.keep_alive_timeout = 75
    url = f"http://127.0.0.1:{ctx.port}"
    addr_file = ctx.repo.path / ADDRESS_FILE
    app = build_app(ctx)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, app, cfg)
            addr_file.write_text(url + "\n")
            log.info("API listening on %s", url)
            task_status.started(url)
    finally:
        addr_file.unlink(missing_ok=True)
