"""Percentiles and latency summaries of the measured samples."""

from __future__ import annotations

import math
from array import array
from typing import Any


def percentile(sorted_values: list[int] | array, fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_us: array) -> dict[str, Any]:
    values = sorted(latencies_us)
    if not values:
        return {
            "count": 0,
            "p50_ms": None,
            "p90_ms": None,
            "p99_ms": None,
            "max_ms": None,
            "mean_ms": None,
            "quantiles_ms": [],
        }
    ms = 1000.0
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.50) / ms,
        "p90_ms": percentile(values, 0.90) / ms,
        "p99_ms": percentile(values, 0.99) / ms,
        "max_ms": values[-1] / ms,
        "mean_ms": round(sum(values) / len(values) / ms, 3),
        # 0th to 100th percentile, enough to draw the distribution.
        "quantiles_ms": [
            (values[0] if q == 0 else percentile(values, q / 100)) / ms for q in range(101)
        ],
    }


def ratio(mine: float | None, reference: float | None) -> float | None:
    if mine is None or reference is None or reference == 0:
        return None
    return round(mine / reference, 3)
