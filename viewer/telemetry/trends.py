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
    """The newest ``size`` buckets of ``width`` seconds: the closed ones in a numpy ring, the open one in plain
    floats (a value arriving costs a few float operations, not numpy element writes)."""

    __slots__ = ("data", "head", "open", "size", "used", "width")

    def __init__(self, width: float, size: int) -> None:
        self.width = width
        self.size = size
        self.data = np.empty((size, 5))
        self.head = -1  # the newest closed bucket's row
        self.used = 0
        self.open: list[float] | None = None  # [start, min, max, sum, count]

    def add(self, start: float, low: float, high: float, total: float, count: float) -> list[float] | None:
        """Merge a value (or a finer bucket) into the open bucket; returns the bucket this closed, if any."""
        start = math.floor(start / self.width) * self.width
        bucket = self.open
        if bucket is not None and start <= bucket[_START]:  # the open bucket (or a late value)
            if low < bucket[_MIN]:
                bucket[_MIN] = low
            if high > bucket[_MAX]:
                bucket[_MAX] = high
            bucket[_SUM] += total
            bucket[_COUNT] += count
            return None
        if bucket is not None:
            self.head = (self.head + 1) % self.size
            self.data[self.head] = bucket
            self.used = min(self.used + 1, self.size)
        self.open = [start, low, high, total, count]
        return bucket

    def closed(self) -> np.ndarray:
        """The closed buckets, oldest first."""
        if self.used < self.size:
            return self.data[:self.used]
        return np.roll(self.data, -(self.head + 1), axis=0)

    def buckets(self, pending: list[list[float]]) -> np.ndarray:
        """Closed buckets and the open one, with the finer rings' open buckets (``pending``) merged into it:
        a coarse bucket hears of a finer one only when that closes."""
        if self.open is None:
            return self.closed()
        newest = list(self.open)
        for bucket in pending:
            if bucket[_START] >= newest[_START]:
                newest[_MIN] = min(newest[_MIN], bucket[_MIN])
                newest[_MAX] = max(newest[_MAX], bucket[_MAX])
                newest[_SUM] += bucket[_SUM]
                newest[_COUNT] += bucket[_COUNT]
        closed = self.closed()
        return np.vstack([closed, np.array([newest])]) if len(closed) else np.array([newest])


@dataclass
class Trend:
    """One signal's trend over a span: bucket mid-times, means and the min-max band."""

    time: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bucket_s: float


class SignalTrend:
    """The rings of one signal: a value goes into the finest; a closed bucket into the next coarser."""

    __slots__ = ("first", "rings")

    def __init__(self) -> None:
        self.rings = [_Ring(*TIERS[0])]
        self.first: float | None = None

    def add(self, t: float, value: float) -> None:
        if not math.isfinite(value) or not math.isfinite(t):
            return
        if self.first is None:
            self.first = t
        rings = self.rings
        if len(rings) < len(TIERS):
            width, size = TIERS[len(rings) - 1]
            if t - self.first > width * size:
                self._grow()
        closed = rings[0].add(t, value, value, value, 1.0)
        k = 1
        while closed is not None and k < len(rings):
            closed = rings[k].add(*closed)
            k += 1

    def _grow(self) -> None:
        """The next coarser ring, filled from the finest one that has the past (nothing already seen is lost)."""
        ring = _Ring(*TIERS[len(self.rings)])
        for bucket in self.rings[-1].closed():
            ring.add(*bucket)
        self.rings.append(ring)

    def over(self, span_s: float, now: float) -> Trend:
        """The trend over the last ``span_s`` seconds from the finest ring that holds that span."""
        k = next((i for i, r in enumerate(self.rings) if r.width * r.size >= span_s), len(self.rings) - 1)
        ring = self.rings[k]
        data = ring.buckets([r.open for r in self.rings[:k] if r.open is not None])
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
