"""Failure horizon: at the current trend, when does a signal reach its limit?

A Theil–Sen line (the median of all pairwise slopes: robust to spikes and a few
bad samples) is fitted on the recent window. The horizon is the time for the
fitted line to reach the limit; its range comes from the confidence interval of
the slope. A horizon is reported only when the trend is meaningful:
the slope's 90 % confidence interval (Sen's rank method) excludes zero and points toward
the limit; otherwise "no trend".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_POINTS = 300  # pairwise slopes grow with the square of the window; thin it beyond this


@dataclass(frozen=True)
class Horizon:
    """A time-to-limit estimate (seconds from the newest sample), or the reason there is none."""

    seconds: float | None
    low: float | None
    high: float | None
    slope: float
    reason: str = ""

    def describe(self, signal: str, unit: str = "", limit: float | None = None, limit_kind: str = "") -> str:
        """The sentence the details panel shows, in readable units, naming the limit.

        "vibration reaches its 8 mm/s fault limit in about 3 h (2–5 h)".
        """
        if self.seconds is None:
            return f"{signal}: {self.reason or 'no trend'}"
        what = "its limit"
        if limit is not None:
            value = f"{limit:.4g} {unit}".strip()
            what = f"its {value} {limit_kind} limit".replace("  ", " ") if limit_kind else f"its {value} limit"
        if self.seconds == 0.0:
            return f"{signal} is at {what}"
        low = self.low if self.low is not None else self.seconds
        high = self.high
        point_unit = _unit_for(self.seconds)
        span = f"{_in_unit(low, point_unit)}–{_in_unit(high, point_unit) if high is not None else '∞'}"
        return (f"at the current trend, {signal} reaches {what} in about {format_duration(self.seconds)} "
                f"({span} {point_unit})")


_UNITS = (("s", 1.0), ("min", 60.0), ("h", 3600.0), ("days", 86400.0))


def _unit_for(seconds: float) -> str:
    if seconds < 90:
        return "s"
    if seconds < 90 * 60:
        return "min"
    if seconds < 48 * 3600:
        return "h"
    return "days"


def _in_unit(seconds: float, unit: str) -> str:
    value = seconds / dict(_UNITS)[unit]
    if not np.isfinite(value):
        return "∞"
    return f"{value:.2g}" if value < 10 else f"{value:,.0f}"


def format_duration(seconds: float) -> str:
    """A duration as an operator reads it: "40 s", "12 min", "3.5 h", "6 days"."""
    unit = _unit_for(seconds)
    return f"{_in_unit(seconds, unit)} {unit}"


def _sen_interval(sorted_slopes: np.ndarray, n: int, z: float = 1.645) -> tuple[float, float]:
    """90 % confidence interval of the Theil–Sen slope (Sen 1968): ranks around the median of the slopes."""
    count = len(sorted_slopes)
    c = z * np.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo = int(np.clip(np.floor((count - c) / 2.0), 0, count - 1))
    hi = int(np.clip(np.ceil((count + c) / 2.0), 0, count - 1))
    return float(sorted_slopes[lo]), float(sorted_slopes[hi])


def failure_horizon(times: np.ndarray, values: np.ndarray, limit: float, *, min_points: int = 20) -> Horizon:
    """Estimate when ``values`` (sampled at ``times``, seconds) reach ``limit`` at their current trend."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if len(t) < min_points:
        return Horizon(None, None, None, 0.0, f"too few samples ({len(t)} of {min_points})")
    if len(t) > MAX_POINTS:
        keep = np.linspace(0, len(t) - 1, MAX_POINTS).round().astype(int)
        t, v = t[keep], v[keep]
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    good = dt > 0
    slopes = (v[j] - v[i])[good] / dt[good]
    if len(slopes) == 0:
        return Horizon(None, None, None, 0.0, "no time span")
    slope = float(np.median(slopes))
    lo_slope, hi_slope = _sen_interval(np.sort(slopes), len(t))
    intercept = float(np.median(v - slope * t))
    now = float(t[-1])
    current = intercept + slope * now
    gap = limit - current
    if abs(gap) < 1e-12:
        return Horizon(0.0, 0.0, 0.0, slope, "at the limit")
    toward = slope if gap > 0 else -slope
    lo_toward, hi_toward = (lo_slope, hi_slope) if gap > 0 else (-hi_slope, -lo_slope)
    if lo_toward <= 0:  # the interval of slopes toward the limit includes zero (or points away): no trend
        return Horizon(None, None, None, slope, "no trend")
    seconds = abs(gap) / toward
    return Horizon(seconds, abs(gap) / hi_toward, abs(gap) / lo_toward, slope)
