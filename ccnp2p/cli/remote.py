"""Talking to a running daemon over its local HTTP API (stdlib http.client, streaming)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlparse

from ccnp2p.api.security import ADDRESS_FILE, TOKEN_FILE
from ccnp2p.errors import CcnError, LocalError, NotFound, RemoteError

TIMEOUT_S = 600.0


class ApiError(CcnError):
    """The daemon answered with an error."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DaemonClient:
    """A connection to the daemon whose address is in ``<repo>/api``."""

    def __init__(self, base_url: str, token: str | None) -> None:
        url = urlparse(base_url)
        if url.hostname != "127.0.0.1" or url.port is None:
            raise LocalError(f"refusing non-loopback API address {base_url!r}")
        self.host = url.hostname
        self.port = url.port
        self.token = token

    @classmethod
    def for_repo(cls, repo: Path) -> DaemonClient | None:
        """A client if a daemon is running for ``repo`` (its address file exists and answers)."""
        addr = repo / ADDRESS_FILE
        if not addr.exists():
            return None
        token_path = repo / TOKEN_FILE
        token = token_path.read_text().strip() if token_path.exists() else None
        client = cls(addr.read_text().strip(), token)
        try:
            client.json("GET", "/api/v0/id")
        except OSError:
            return None  # stale address file: the daemon is gone
        return client

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: BinaryIO | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """Send a request; raises :class:`ApiError` for error statuses."""
        if params:
            path += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        hdrs = dict(headers or {})
        if method != "GET" and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        conn = self._conn()
        if body is not None and not isinstance(body, bytes):
            hdrs["Transfer-Encoding"] = "chunked"
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        if resp.status >= 400:
            raw = resp.read()
            try:
                info = json.loads(raw)
                message, code = info["error"], info.get("code", "error")
            except (ValueError, KeyError, TypeError):
                message, code = raw.decode(errors="replace")[:200], "error"
            if resp.status == 404:
                raise NotFound(message)
            if resp.status == 502:
                raise RemoteError(message)
            raise ApiError(resp.status, message, code)
        return resp

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return json.loads(self.request(method, path, **kwargs).read())

    @staticmethod
    def cid_path(prefix: str, cid: str) -> str:
        return f"{prefix}/{quote(cid.strip(), safe='')}"
