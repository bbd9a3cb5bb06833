"""What makes a random duration (the layout's ``distribution``) usable: one rule for the file checks, the
editor and the simulation."""

from __future__ import annotations

import math
from typing import Any

POSITIVE_MEAN = ("exponential", "normal", "lognormal", "gamma")
NEEDS_CV = ("lognormal", "gamma")


def duration_problem(kind: str, mean: float = 0.0, cv: float = 0.0, low: float = 0.0, high: float = 0.0,
                     mode: float = 0.0, values: tuple[float, ...] = ()) -> str | None:
    """Why these parameters are not a proper non-negative duration, or None."""
    numbers = (mean, cv, low, high, mode, *values)
    if not all(math.isfinite(v) and v >= 0 for v in numbers):
        return "durations and their parameters must be finite and >= 0"
    if kind in POSITIVE_MEAN and mean <= 0:
        return f"a {kind} duration needs a mean > 0"
    if kind in NEEDS_CV and cv <= 0:
        return f"a {kind} duration needs a cv > 0"
    if kind == "uniform" and not high > low:
        return "a uniform duration needs max > min"
    if kind == "triangular" and not (low <= mode <= high and high > low):
        return "a triangular duration needs min <= mode <= max and max > min"
    if kind == "empirical" and not values:
        return "an empirical duration needs values"
    return None


def section_problem(data: dict[str, Any]) -> str | None:
    """:func:`duration_problem` of a layout's ``{"dist": ..., "mean": ...}``."""
    try:
        return duration_problem(str(data.get("dist", "deterministic")), float(data.get("mean", 0.0)),
                                float(data.get("cv", 0.0)), float(data.get("min", 0.0)), float(data.get("max", 0.0)),
                                float(data.get("mode", 0.0)), tuple(float(v) for v in data.get("values", ())))
    except (TypeError, ValueError):
        return "a duration's parameters must be numbers"
