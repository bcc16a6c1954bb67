"""An operator's declared output size: how many bytes a calc will produce before it runs.

Placement needs the size of a result that does not exist yet: moving a step next to its parent
saves the step's *output*, which may be far smaller (a scan, a count) or larger (token ids,
embeddings) than its input. Operators declare it in their object, as a small map that is data,
never code:

``per_mille``
    output bytes per 1,000 input bytes (default 1000: as big as the input). ``tokenize`` writes
    4-byte ids per byte: 4000.
``div_param``
    the name of an integer param the size is divided by (``sift``'s ``stride``).
``max_param``
    the name of an integer param that caps the size (``slice``'s ``length``).
``bytes``
    a fixed size whatever the input (``line_count``, ``reduce``); the other keys are ignored.

Missing or malformed params fall back to the undivided, uncapped estimate: the estimate only
ranks placements, it never limits what the operator writes.
"""

from __future__ import annotations

from typing import Any, Final

from ccnp2p.errors import DecodeError

OUTPUT_KEYS: Final = {"per_mille": int, "div_param": str, "max_param": str, "bytes": int}
MAX_PER_MILLE: Final = 1_000_000_000
MAX_NAME: Final = 64


def check_output_model(model: dict[str, Any]) -> None:
    """Raise :class:`DecodeError` unless ``model`` is a valid output-size declaration."""
    for key, value in model.items():
        kind = OUTPUT_KEYS.get(key)
        if kind is None:
            raise DecodeError(f"operator: unknown output key {key!r}")
        if kind is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise DecodeError(f"operator: output {key} must be an integer")
            if not 0 <= value <= MAX_PER_MILLE:
                raise DecodeError(f"operator: output {key} out of range")
        elif not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise DecodeError(f"operator: output {key} must be a param name")


def estimate_output(model: dict[str, Any], input_bytes: int, params: dict[str, Any]) -> int:
    """Expected output bytes of a calc with ``input_bytes`` of input (see the module doc)."""
    if "bytes" in model:
        return int(model["bytes"])
    size = max(input_bytes, 0) * int(model.get("per_mille", 1000)) // 1000
    div = _positive_param(params, model.get("div_param"))
    if div is not None:
        size = -(-size // div)
    cap = _positive_param(params, model.get("max_param"))
    if cap is not None:
        size = min(size, cap)
    return size


def _positive_param(params: dict[str, Any], name: Any) -> int | None:
    if not isinstance(name, str):
        return None
    value = params.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
