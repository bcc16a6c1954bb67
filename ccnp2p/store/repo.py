"""The repo dir: identity, config, blocks and pins, owned by one process at a time.

Layout::

    $CCNP2P_REPO (default ~/.ccnp2p)
      config.toml     settings (see :mod:`ccnp2p.store.config`)
      identity.key    32-byte ed25519 seed, mode 0600
      blocks/ tmp/ quarantine/
      store.sqlite    pins (and later records and the ledger)
      repo.lock       flock held by the process using the repo (a daemon or an offline command)
      api             the running daemon's API address (written by the daemon)
      api.token       the API token for mutating calls, mode 0600
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ccnp2p.errors import RepoError
from ccnp2p.objects.keys import Identity
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.config import Config
from ccnp2p.store.pins import PinSet


def default_repo_path() -> Path:
    env = os.environ.get("CCNP2P_REPO")
    return Path(env).expanduser() if env else Path.home() / ".ccnp2p"


def init_repo(path: Path, config: Config | None = None) -> Identity:
    """Create a repo (idempotent for an existing one); returns its identity."""
    path.mkdir(parents=True, exist_ok=True)
    cfg_path = path / "config.toml"
    if not cfg_path.exists():
        (config or Config()).save(cfg_path)
    return Identity.load_or_create(path / "identity.key")


def is_initialised(path: Path) -> bool:
    return (path / "config.toml").exists() and (path / "identity.key").exists()


class Repo:
    """An open repo. Use as a context manager; holds the repo lock while open."""

    def __init__(self, path: Path, *, lock: bool = True) -> None:
        if not is_initialised(path):
            raise RepoError(f"no ccnp2p repo at {path}: run `ccnp2p init`")
        self.path = path
        self._lock_fd: int | None = None
        if lock:
            self._lock_fd = os.open(path / "repo.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise RepoError(
                    f"repo {path} is in use by another process (a running daemon?)"
                ) from None
        self.config = Config.load(path / "config.toml")
        self.identity = Identity.load_or_create(path / "identity.key")
        self.blocks = Blockstore(
            path, max_bytes=self.config.storage.max_bytes, durable=self.config.storage.durable
        )
        self.pins = PinSet(path / "store.sqlite")

    def close(self) -> None:
        self.pins.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Repo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
