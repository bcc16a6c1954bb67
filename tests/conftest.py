from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from ccnp2p.store.repo import Repo, init_repo

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    init_repo(tmp_path / "repo")
    with Repo(tmp_path / "repo") as r:
        yield r
