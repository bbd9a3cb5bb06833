"""Trends of numeric signals over 10 minutes, 1 hour and 8 hours, in bounded memory.

Each signal keeps three rings of time buckets (1 s for 10 min, 10 s for 1 h, 60 s for 8 h); a bucket
holds the minimum, the maximum and the mean of the values that arrived in it, so a spike shorter than a
bucket still shows in the band a plot draws around the mean. Memory per signal is fixed (1,440 buckets,
46 KB), whatever the message rate and however long the viewer runs; the coarser rings are only made
when a signal has been seen for longer than the finer one holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TIERS = ((1.0, 600), (10.0, 360), (60.0, 480))  # (bucket seconds, buckets kept): 10 min, 1 h, 8 h
RANGES_S = {"10 min": 600.0, "1 h": 3600.0, "8 h": 28800.0}
_START, _MIN, _MAX, _SUM, _COUNT = range(5)


class _Ring:
    """The newest ``size`` buckets of ``width`` seconds."""

    __slots__ = ("data", "head", "size", "used", "width")

    def __init__(self, width: float, size: int) -> None:
        self.width = width
        self.size = size
        self.data = np.empty((size, 5))
        self.head = -1  # the newest bucket's row
        self.used = 0

    def add(self, t: float, value: float) -> None:
        start = math.floor(t / self.width) * self.width
        if self.used and start <= self.data[self.head, _START]:  # the newest bucket (or a late value)
            row = self.data[self.head]
            row[_MIN] = min(row[_MIN], value)
            row[_MAX] = max(row[_MAX], value)
            row[_SUM] += value
            row[_COUNT] += 1
            return
        self.head = (self.head + 1) % self.size
        self.data[self.head] = (start, value, value, value, 1.0)
        self.used = min(self.used + 1, self.size)

    def buckets(self) -> np.ndarray:
        """Oldest first."""
        if self.used < self.size:
            return self.data[:self.used]
        return np.roll(self.data, -(self.head + 1), axis=0)


@dataclass
class Trend:
    """One signal's trend over a span: bucket mid-times, means and the min-max band."""

    time: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bucket_s: float


class SignalTrend:
    """The three rings of one signal."""

    __slots__ = ("first", "rings")

    def __init__(self) -> None:
        self.rings = [_Ring(*TIERS[0])]
        self.first: float | None = None

    def add(self, t: float, value: float) -> None:
        if not math.isfinite(value) or not math.isfinite(t):
            return
        if self.first is None:
            self.first = t
        age = t - self.first
        while len(self.rings) < len(TIERS) and age > TIERS[len(self.rings) - 1][0] * TIERS[len(self.rings) - 1][1]:
            self._grow()
        for ring in self.rings:
            ring.add(t, value)

    def _grow(self) -> None:
        """The next coarser ring, filled from the finest one that has the past (nothing already seen is lost)."""
        width, size = TIERS[len(self.rings)]
        ring = _Ring(width, size)
        past = self.rings[-1].buckets()
        for start, low, high, total, count in past:
            ring.add(start, low)  # the band of the past survives: its extremes and its mean
            ring.add(start, high)
            bucket = ring.data[ring.head]
            bucket[_SUM] += total - low - high
            bucket[_COUNT] += count - 2
        self.rings.append(ring)

    def over(self, span_s: float, now: float) -> Trend:
        """The trend over the last ``span_s`` seconds from the finest ring that holds that span."""
        ring = next((r for r in self.rings if r.width * r.size >= span_s), self.rings[-1])
        data = ring.buckets()
        data = data[data[:, _START] >= now - span_s - ring.width]
        mean = data[:, _SUM] / np.maximum(data[:, _COUNT], 1.0)
        return Trend(data[:, _START] + ring.width / 2, mean, data[:, _MIN].copy(), data[:, _MAX].copy(), ring.width)


class TrendStore:
    """Trends of every numeric signal, by (component, signal)."""

    def __init__(self) -> None:
        self.signals: dict[tuple[str, str], SignalTrend] = {}

    def add(self, key: tuple[str, str], t: float, value: float) -> None:
        trend = self.signals.get(key)
        if trend is None:
            trend = self.signals[key] = SignalTrend()
        trend.add(t, value)

    def over(self, key: tuple[str, str], span_s: float, now: float) -> Trend | None:
        trend = self.signals.get(key)
        return trend.over(span_s, now) if trend is not None else None

    def keys_of(self, component: str) -> list[tuple[str, str]]:
        return [key for key in self.signals if key[0] == component]

    def clear(self) -> None:
        self.signals.clear()
