"""A small regular-expression matcher whose running time is linear in the input.

Why not :mod:`re`: a calc's params come from anyone on the network, and a backtracking engine
turns a pattern like ``(a|aa)*c`` into minutes of CPU on a short line. This matcher compiles the
pattern to a Thompson NFA and runs it as a lazily built DFA (Thompson 1968, RE2's approach): each
input byte costs one table lookup, plus at most one NFA-set computation (bounded by the NFA size)
the first time a (state, byte) pair is seen. The DFA cache is bounded; when full it is dropped
and rebuilt, which costs time but never memory.

Supported syntax (bytes semantics, ASCII classes): literals (non-ASCII characters match their
UTF-8 bytes), ``.``, ``[...]`` and ``[^...]`` with ranges, ``\\d \\w \\s \\D \\W \\S \\n \\t \\r
\\xHH`` and escaped punctuation, groups ``(...)`` and ``(?:...)``, alternation ``|``, quantifiers
``* + ? {m} {m,} {m,n}`` (bounds up to :data:`MAX_REPEAT`), anchors ``^`` and ``$`` for the start
and end of the line. Backreferences, lookaround and flags are refused with a :class:`ParamError`.
Only "does the line contain a match" is answered; there are no match positions or groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ccnp2p.compute.api import ParamError

MAX_PATTERN_CHARS: Final = 256
MAX_REPEAT: Final = 255
MAX_NFA_STATES: Final = 10_000
MAX_DFA_STATES: Final = 2_000

_ALL: Final = frozenset(range(256))
_DIGIT: Final = frozenset(range(48, 58))
_WORD: Final = _DIGIT | frozenset(range(65, 91)) | frozenset(range(97, 123)) | {95}
_SPACE: Final = frozenset(b" \t\n\r\f\v")
_CLASSES: Final = {
    "d": _DIGIT,
    "w": _WORD,
    "s": _SPACE,
    "D": _ALL - _DIGIT,
    "W": _ALL - _WORD,
    "S": _ALL - _SPACE,
}
_CONTROL: Final = {"n": 10, "t": 9, "r": 13, "f": 12, "v": 11}


@dataclass(frozen=True, slots=True)
class _Set:
    members: frozenset[int]


@dataclass(frozen=True, slots=True)
class _Cat:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class _Rep:
    body: Node
    lo: int
    hi: int | None


@dataclass(frozen=True, slots=True)
class _Anchor:
    end: bool  # False: ^ (start of line), True: $ (end of line)


Node = _Set | _Cat | _Alt | _Rep | _Anchor

# NFA state kinds
_MATCH, _SET, _SPLIT, _BOL, _EOL = range(5)


class _Parser:
    """Recursive descent over the pattern text, producing the AST above."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0

    def error(self, why: str) -> ParamError:
        return ParamError(f"bad regex at {self.pos}: {why}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def parse(self) -> Node:
        node = self.alternation()
        if self.pos != len(self.text):
            raise self.error("unbalanced ')'")
        return node

    def alternation(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return _Cat(tuple(items))

    def quantified(self, node: Node) -> Node:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.take()
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        elif char == "{":
            lo, hi = self.bounds()
        else:
            return node
        if isinstance(node, _Anchor):
            raise self.error("an anchor cannot be repeated")
        if self.peek() in ("*", "+", "?", "{"):
            raise self.error("multiple repeat")
        return _Rep(node, lo, hi)

    def number(self) -> int:
        start = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.take()
        if start == self.pos or self.pos - start > 3:
            raise self.error("expected a repeat count")
        return int(self.text[start : self.pos])

    def bounds(self) -> tuple[int, int | None]:
        self.take()
        lo = self.number()
        hi: int | None = lo
        if self.peek() == ",":
            self.take()
            hi = None if self.peek() == "}" else self.number()
        if self.take() != "}":
            raise self.error("expected '}'")
        if lo > MAX_REPEAT or (hi is not None and not lo <= hi <= MAX_REPEAT):
            raise self.error(f"repeat bounds must satisfy 0 <= m <= n <= {MAX_REPEAT}")
        return lo, hi

    def atom(self) -> Node:
        char = self.take()
        if char == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise self.error("lookaround and flags are not supported")
            node = self.alternation()
            if self.take() != ")":
                raise self.error("missing ')'")
            return node
        if char == "[":
            return _Set(self.char_class())
        if char == ".":
            return _Set(_ALL - {10})
        if char in ("^", "$"):
            return _Anchor(end=char == "$")
        if char == "\\":
            return _Set(self.escape())
        if char in ("*", "+", "?", "{"):
            raise self.error("nothing to repeat")
        encoded = char.encode("utf-8")
        return _Cat(tuple(_Set(frozenset([b])) for b in encoded))

    def escape(self) -> frozenset[int]:
        char = self.take()
        if char in _CLASSES:
            return _CLASSES[char]
        if char in _CONTROL:
            return frozenset([_CONTROL[char]])
        if char == "x":
            digits = self.text[self.pos : self.pos + 2]
            if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise self.error(r"\x needs two hex digits")
            self.pos += 2
            return frozenset([int(digits, 16)])
        if char and char.isascii() and not char.isalnum():
            return frozenset([ord(char)])
        raise self.error(f"unsupported escape \\{char}")

    def class_item(self) -> frozenset[int]:
        char = self.take()
        if char == "":
            raise self.error("missing ']'")
        if char == "\\":
            return self.escape()
        if not char.isascii():
            raise self.error("non-ASCII characters are not supported in classes")
        if self.peek() == "-" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] != "]":
            self.take()
            end = self.class_item()
            if len(end) != 1 or min(end) < ord(char):
                raise self.error("bad class range")
            return frozenset(range(ord(char), min(end) + 1))
        return frozenset([ord(char)])

    def char_class(self) -> frozenset[int]:
        negate = self.peek() == "^"
        if negate:
            self.take()
        members: set[int] = set()
        first = True
        while first or self.peek() != "]":
            members |= self.class_item()
            first = False
        self.take()
        return _ALL - members if negate else frozenset(members)


class Regex:
    """A compiled pattern; :meth:`search` tells whether a line contains a match."""

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ParamError(f"regex longer than {MAX_PATTERN_CHARS} characters")
        self._kind: list[int] = [_MATCH]
        self._set: list[frozenset[int]] = [frozenset()]
        self._out: list[list[int]] = [[]]
        self._start = self._compile(_Parser(pattern).parse(), 0)
        self._reset()

    # -- NFA construction: compile(node, next) returns the entry state, building backwards --

    def _add(self, kind: int, out: list[int], members: frozenset[int] = frozenset()) -> int:
        if len(self._kind) >= MAX_NFA_STATES:
            raise ParamError("regex too large once its repeats are expanded")
        self._kind.append(kind)
        self._set.append(members)
        self._out.append(out)
        return len(self._kind) - 1

    def _compile(self, node: Node, nxt: int) -> int:
        match node:
            case _Set(members):
                return self._add(_SET, [nxt], members)
            case _Cat(items):
                for child in reversed(items):
                    nxt = self._compile(child, nxt)
                return nxt
            case _Alt(branches):
                return self._add(_SPLIT, [self._compile(b, nxt) for b in branches])
            case _Anchor(end):
                return self._add(_EOL if end else _BOL, [nxt])
            case _Rep(body, lo, hi):
                return self._compile_repeat(body, lo, hi, nxt)

    def _compile_repeat(self, body: Node, lo: int, hi: int | None, nxt: int) -> int:
        if hi is None:  # body{lo,}: a loop, preceded by lo copies
            cur = self._add(_SPLIT, [])
            self._out[cur] = [self._compile(body, cur), nxt]
        else:  # body{lo,hi}: (hi - lo) nested optional copies after lo mandatory ones
            cur = nxt
            for _ in range(hi - lo):
                cur = self._add(_SPLIT, [self._compile(body, cur), nxt])
        for _ in range(lo):
            cur = self._compile(body, cur)
        return cur

    def _closure(self, seeds: list[int], at_start: bool, at_end: bool) -> frozenset[int]:
        """States reachable without consuming a byte; keeps byte, match and ``$`` states."""
        seen: set[int] = set()
        kept: set[int] = set()
        stack = list(seeds)
        while stack:
            state = stack.pop()
            if state in seen:
                continue
            seen.add(state)
            kind = self._kind[state]
            if kind in (_SET, _MATCH) or (kind == _EOL and not at_end):
                kept.add(state)
            if kind == _SPLIT or (kind == _BOL and at_start) or (kind == _EOL and at_end):
                stack.extend(self._out[state])
        return frozenset(kept)

    # -- lazy DFA --

    def _reset(self) -> None:
        self._sets: list[frozenset[int]] = []
        self._ids: dict[frozenset[int], int] = {}
        self._trans: list[list[int]] = []
        self._matched: list[bool] = []
        self._end_matched: list[bool] = []
        self._restart = self._closure([self._start], False, False)
        self._initial = self._intern(self._closure([self._start], True, False))

    def _intern(self, states: frozenset[int]) -> int:
        found = self._ids.get(states)
        if found is not None:
            return found
        ident = len(self._sets)
        self._sets.append(states)
        self._ids[states] = ident
        self._trans.append([-1] * 256)
        self._matched.append(0 in states)
        eols = [o for s in states if self._kind[s] == _EOL for o in self._out[s]]
        self._end_matched.append(0 in states or 0 in self._closure(eols, False, True))
        return ident

    def _step(self, ident: int, byte: int) -> int:
        states = self._sets[ident]
        moved = [self._out[s][0] for s in states if self._kind[s] == _SET and byte in self._set[s]]
        target = self._closure(moved, False, False) | self._restart
        if len(self._sets) >= MAX_DFA_STATES:
            self._reset()
            return self._intern(target)
        nxt = self._intern(target)
        self._trans[ident][byte] = nxt
        return nxt

    def search(self, line: bytes) -> bool:
        """True if some substring of ``line`` (which holds no newline) matches."""
        if not line:
            return 0 in self._closure([self._start], True, True)
        state = self._initial
        for byte in line:
            if self._matched[state]:
                return True
            nxt = self._trans[state][byte]
            state = nxt if nxt >= 0 else self._step(state, byte)
        return self._end_matched[state]
