"""The base class of the built-in operators: a code hash that covers their helper modules.

:meth:`OperatorImpl.code_hash` hashes the class's own source. A built-in's behaviour also lives
in the modules it calls (the transformer maths, the safetensors codec, the regex engine), and a
change there must change the operator object, or nodes would keep serving cached results of the
old code under the same calc CIDs. So built-ins name those modules in ``code_modules`` and hash
their source too. Reading a module's source does not import anything new (in particular not
torch: :mod:`ccnp2p.ops.transformer` imports it only inside functions).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import ClassVar

from ccnp2p.compute.api import OperatorImpl


class BuiltinOperator(OperatorImpl):
    """An :class:`OperatorImpl` whose code hash also covers ``code_modules``."""

    code_modules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def code_hash(cls) -> bytes:
        digest = hashlib.sha256(super().code_hash())
        for name in sorted({cls.__module__, *cls.code_modules}):
            source = inspect.getsource(importlib.import_module(name))
            digest.update(name.encode() + b"\0" + hashlib.sha256(source.encode()).digest())
        return digest.digest()
