from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.compute.api import ParamError
from ccnp2p.ops.regex import MAX_DFA_STATES, Regex

# Patterns built from the supported syntax over a tiny alphabet, so Python's re (a backtracking
# engine) stays fast on the short lines used here and serves as the reference.
atoms = st.sampled_from(["a", "b", ".", "[ab]", "[^a]", r"\d", "[a-c]", r"\.", "é"])


def _quantify(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(inner, st.sampled_from(["", "*", "+", "?", "{2}", "{1,3}", "{0,}"])).map(
        lambda t: t[0] + t[1] if len(t[0]) == 1 or t[0].startswith(("[", "\\", "(")) else t[0]
    )


patterns = st.recursive(
    _quantify(atoms),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map("".join),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + "|".join(xs) + ")"),
        _quantify(inner.map(lambda p: "(?:" + p + ")")),
    ),
    max_leaves=6,
).flatmap(lambda p: st.sampled_from([p, "^" + p, p + "$", "^" + p + "$"]))
lines = st.lists(st.sampled_from(["a", "b", "c", "1", ".", "é", "x"]), max_size=12).map("".join)


@given(patterns, lines)
def test_search_agrees_with_python_re(pattern: str, line: str) -> None:
    # A non-ASCII character is one atom here (its UTF-8 bytes), so group it for bytes-re.
    reference = pattern.replace("é", "(?:é)").encode()
    expected = re.search(reference, line.encode(), flags=re.DOTALL) is not None
    assert Regex(pattern).search(line.encode()) == expected


@pytest.mark.parametrize(
    "pattern",
    ["", "(", ")", "a**", "*a", "a{3,2}", "a{999}", r"\b", r"\1", "[a", "[z-a]", "x" * 300],
)
def test_unsupported_or_malformed_patterns(pattern: str) -> None:
    if pattern == "":
        assert Regex(pattern).search(b"anything")
        return
    with pytest.raises(ParamError):
        Regex(pattern)


def test_expansion_is_bounded() -> None:
    with pytest.raises(ParamError):
        Regex("((a{255}){255}){255}")


def test_cache_overflow_stays_correct() -> None:
    rx = Regex("a.{12}b")  # a DFA with thousands of states
    line = bytes(range(256)) * 40 + b"a" + b"x" * 12 + b"b"
    start = time.monotonic()
    assert rx.search(line)
    assert not rx.search(line[:-1])
    assert len(rx._sets) <= MAX_DFA_STATES
    assert time.monotonic() - start < 30
