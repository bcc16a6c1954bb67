from __future__ import annotations

import re

from ccnp2p.ops import builtin_operators
from ccnp2p.ops.base import BuiltinOperator


def test_builtins_are_named_and_distinct() -> None:
    impls = builtin_operators()
    ids = [impl.impl_id for impl in impls]
    assert len(set(ids)) == len(ids) == 11
    for impl in impls:
        assert isinstance(impl, BuiltinOperator)
        assert impl.impl_id == f"builtin:{impl.spec.name}@{impl.spec.version}"
        assert re.fullmatch(r"[a-z_]+", impl.spec.name)
        assert impl.spec.deterministic
        assert impl.spec.seek == (impl.spec.checkpoint_every > 0)
    hashes = [impl.code_hash() for impl in impls]
    assert len(set(hashes)) == len(hashes)
    assert hashes == [impl.code_hash() for impl in builtin_operators()]


def test_seekable_and_result_affinity_operators() -> None:
    by_name = {impl.spec.name: impl.spec for impl in builtin_operators()}
    assert {n for n, s in by_name.items() if s.seek} == {"forward", "train"}
    assert {n for n, s in by_name.items() if s.affinity == "result"} == {
        "init_model",
        "embed",
        "forward",
        "train",
    }
    assert not by_name["concat"].commutative
