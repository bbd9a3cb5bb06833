"""Trends over 10 min / 1 h / 8 h: bucket means and bands from hand sums, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.telemetry.trends import TIERS, TrendStore


def test_one_second_buckets_hold_mean_min_and_max():
    store = TrendStore()
    key = ("ST10", "vibration")
    for t, v in [(100.1, 1.0), (100.5, 3.0), (100.9, 2.0), (101.2, 10.0), (103.0, 4.0)]:
        store.add(key, t, v)
    trend = store.over(key, 600, now=103.5)
    assert trend.bucket_s == 1.0
    assert list(trend.time) == [100.5, 101.5, 103.5]  # bucket mid-times; the empty second leaves a gap
    assert list(trend.mean) == [2.0, 10.0, 4.0]  # (1 + 3 + 2) / 3
    assert list(trend.low) == [1.0, 10.0, 4.0] and list(trend.high) == [3.0, 10.0, 4.0]
    store.add(key, 104.0, float("nan"))  # not a value: skipped, never a NaN in a plot
    assert np.isfinite(store.over(key, 600, 104.5).mean).all()


def test_eight_hours_at_one_value_a_second_keep_their_band_in_bounded_memory():
    store = TrendStore()
    key = ("R1", "current")
    t0 = 1_000_000.0 - 1_000_000.0 % 60  # on a minute: buckets of every ring start together
    hours = 9
    for i in range(hours * 3600):
        # a saw 0..59 every minute; spikes at t0 + 1000 s (8.7 h before the end) and t0 + 5000 s (7.6 h)
        value = 100.0 if i == 5000 else 200.0 if i == 1000 else float(i % 60)
        store.add(key, t0 + i, value)
    now = t0 + hours * 3600
    trend = store.signals[key]
    assert [ring.size for ring in trend.rings] == [size for _, size in TIERS]  # fixed, however long it runs
    eight = store.over(key, 8 * 3600, now)
    assert eight.bucket_s == 60.0 and len(eight.time) in (480, 481)
    # Every minute bucket holds one whole saw: mean (0 + ... + 59) / 60 = 29.5, band 0..59 ...
    assert eight.mean[-1] == pytest.approx(29.5) and eight.low[-1] == 0 and eight.high[-1] == 59
    # ... the spike 7.6 h ago is in the band, the one 8.7 h ago has gone; an hour's view has 10 s buckets.
    assert eight.high.max() == 100.0
    assert eight.time[np.argmax(eight.high)] == t0 + 5000 - 5000 % 60 + 30
    hour = store.over(key, 3600, now)
    assert hour.bucket_s == 10.0 and hour.time[0] >= now - 3600 - 10
    assert hour.mean[-1] == pytest.approx(np.mean(np.arange(50, 60)))  # the last 10 s of the saw: 50..59


def test_a_spike_shorter_than_a_bucket_survives_in_the_coarse_band():
    store = TrendStore()
    key = ("ST20", "temperature")
    t0 = 600_000.0
    for i in range(2 * 3600):
        store.add(key, t0 + i, 100.0 if i == 1234 else 20.0)
    hour_view = store.over(key, 8 * 3600, t0 + 2 * 3600)  # the 60 s ring, grown from the finer ones
    assert hour_view.high.max() == 100.0 and hour_view.low.min() == 20.0
    spike = hour_view.time[np.argmax(hour_view.high)]
    assert abs(spike - (t0 + 1234)) <= 30.0  # in the minute that held it
    assert hour_view.mean.max() == pytest.approx((59 * 20.0 + 100.0) / 60)
