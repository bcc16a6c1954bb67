"""Distribution summaries with stable rounding (summaries must be byte-identical per seed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIGITS = 6


def rounded(x: float) -> float:
    return round(float(x), DIGITS)


def distribution(values: Sequence[float]) -> dict[str, float | int]:
    """count, mean, min, p50, p90, p99, max of ``values`` (count only when empty)."""
    if not values:
        return {"count": 0}
    arr = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "count": int(arr.size),
        "mean": rounded(arr.mean()),
        "min": rounded(arr.min()),
        "p50": rounded(p50),
        "p90": rounded(p90),
        "p99": rounded(p99),
        "max": rounded(arr.max()),
    }


def histogram(values: Sequence[int]) -> dict[str, int]:
    """Counts of each integer value, keys as strings in numeric order (JSON-friendly)."""
    out: dict[int, int] = {}
    for v in values:
        out[int(v)] = out.get(int(v), 0) + 1
    return {str(k): out[k] for k in sorted(out)}


def fraction(num: int, den: int) -> float:
    return rounded(num / den) if den else 0.0
