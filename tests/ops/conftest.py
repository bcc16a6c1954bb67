from __future__ import annotations

import pytest
import trio

from ccnp2p.compute.local import run_local
from ccnp2p.ops import InitModel, Tokenize
from tests.ops.helpers import MODEL, TEXT, VOCAB


@pytest.fixture(scope="session")
def weights() -> bytes:
    return trio.run(run_local, InitModel(), [], MODEL)


@pytest.fixture(scope="session")
def tokens() -> bytes:
    return trio.run(run_local, Tokenize(), [TEXT], {"vocab": VOCAB})
