"""Built-in operator implementations.

Importing this package is cheap: numpy yes, torch never (the ML operators import it inside
the methods that compute). :func:`builtin_operators` lists one instance of each, to be
installed on every node; their ``impl_id`` is ``builtin:<name>@<version>``.
"""

from __future__ import annotations

from ccnp2p.compute.api import OperatorImpl
from ccnp2p.ops.ml import Embed, Forward, InitModel, Tokenize
from ccnp2p.ops.numeric import Map, Reduce
from ccnp2p.ops.text import Concat, Grep, LineCount, Slice
from ccnp2p.ops.train import Train

__all__ = [
    "Concat",
    "Embed",
    "Forward",
    "Grep",
    "InitModel",
    "LineCount",
    "Map",
    "Reduce",
    "Slice",
    "Tokenize",
    "Train",
    "builtin_operators",
]


def builtin_operators() -> list[OperatorImpl]:
    """One instance of every built-in operator, in a stable order."""
    classes: list[type[OperatorImpl]] = [
        Concat,
        Slice,
        Grep,
        LineCount,
        Map,
        Reduce,
        Tokenize,
        InitModel,
        Embed,
        Forward,
        Train,
    ]
    return [cls() for cls in classes]
