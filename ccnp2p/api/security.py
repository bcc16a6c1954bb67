"""Who may call the local API.

The API listens on 127.0.0.1 only, but a web page in the user's browser can still send requests
there. So: the Host header must name the loopback API (defeats DNS rebinding), a request that
carries a foreign ``Origin`` is refused (a page of another site), and every call that changes
state needs the bearer token stored in the repo dir, readable by the owner only. The read
gateway (``GET /ccn/...``) needs no token, like a kubo gateway.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request

TOKEN_FILE = "api.token"
ADDRESS_FILE = "api"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def load_or_create_token(repo: Path) -> str:
    path = repo / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return token


def allowed_hosts(port: int) -> set[str]:
    return {f"{h}:{port}" for h in LOOPBACK_HOSTS}


def refusal(request: Request, *, port: int, token: str, mutating: bool) -> tuple[int, str] | None:
    """None if the request may proceed, else (HTTP status, reason)."""
    host = request.headers.get("host", "")
    if host not in allowed_hosts(port):
        return 403, f"host {host!r} is not this API"
    origin = request.headers.get("origin")
    if origin is not None and origin not in {f"http://{h}" for h in allowed_hosts(port)}:
        return 403, f"requests from origin {origin!r} are refused"
    if mutating:
        auth = request.headers.get("authorization", "")
        given = auth.removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given, token):
            return 401, "missing or wrong API token (see api.token in the repo dir)"
    return None
