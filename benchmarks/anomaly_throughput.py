"""Anomaly scorer throughput: batch samples/s and the live per-sample cost.

Figures (BENCHMARKS.md): ``anomaly_samples_per_s`` (batch, goal 1,000,000): ``ComponentScorer.score_batch``
of a learned scorer over one signal's long series and over 1,000 signals' rows (vectorised over time and
signals; equal to a frozen scorer streaming the same rows), and ``anomaly_live_us_per_sample``:
``ComponentScorer.update`` with 8 signals (goal < 20 µs), the live path that runs once per component per
frame. The live figure is pure Python arithmetic, so it scales with the machine: a fixed reference loop
timed in the same run is printed beside it (``reference_loop_s``: a 10-million-step ``for`` loop; about
0.4 s on a current desktop CPU).

Run ``python benchmarks/anomaly_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from bench_common import emit

from viewer.analytics.scorer import ComponentScorer, ScorerConfig


def median_rate(fn, samples: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        rates.append(samples / (time.perf_counter() - t))
    return statistics.median(rates)


def reference_loop() -> float:
    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    repeats = 3 if args.quick else 7
    n_one = 200_000 if args.quick else 2_000_000
    n_rows = 1_000 if args.quick else 2_000  # fewer rows and the per-call overhead, not the scoring, is timed

    one = ComponentScorer(["s"], ScorerConfig(learn_samples=400))
    one.retrain(rng.normal(size=(400, 1)))
    x_one = rng.normal(size=(n_one, 1))
    rate_one = median_rate(lambda: one.score_batch(x_one), n_one, repeats)

    many = ComponentScorer([f"s{i}" for i in range(1000)], ScorerConfig(learn_samples=400))
    many.retrain(rng.normal(size=(400, 1000)))
    x_many = rng.normal(size=(n_rows, 1000))
    rate_many = median_rate(lambda: many.score_batch(x_many), n_rows * 1000, max(1, repeats // 2))

    live = {}
    for d in (1, 8):
        scorer = ComponentScorer([f"s{i}" for i in range(d)])
        rows = rng.normal(size=(300 + (2_000 if args.quick else 20_000), d)).tolist()
        for i, row in enumerate(rows[:300]):
            scorer.update(float(i), row)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            for i, row in enumerate(rows[300:]):
                scorer.update(300.0 + i, row)
            runs.append((time.perf_counter() - t) / (len(rows) - 300) * 1e6)
        live[d] = statistics.median(runs)
    reference = statistics.median(reference_loop() for _ in range(3))

    print(f"batch (score_batch), 1 signal: {rate_one:,.0f} samples/s; 1,000 signals: {rate_many:,.0f} samples/s",
          file=sys.stderr)
    print(f"live ComponentScorer.update: {live[1]:.1f} µs (1 signal), {live[8]:.1f} µs (8 signals); "
          f"reference loop {reference:.2f} s (about 0.4 s on a current desktop CPU)", file=sys.stderr)
    note = "median of repeats; ComponentScorer.score_batch" + ("; --quick: fewer samples" if args.quick else "")
    emit([
        {"figure": "anomaly_samples_per_s", "value": round(min(rate_one, rate_many)), "unit": "samples/s",
         "goal": 1_000_000, "higher_is_better": True,
         "note": f"{note}; 1 signal {rate_one:,.0f}/s, 1,000 signals together {rate_many:,.0f}/s"},
        {"figure": "anomaly_live_us_per_sample", "value": round(live[8], 1), "unit": "µs", "goal": 20,
         "higher_is_better": False,
         "note": f"ComponentScorer.update with 8 signals (1 signal: {live[1]:.1f} µs); runs once per component per "
                 f"frame on coalesced values; reference loop {reference:.2f} s on this machine"},
        {"figure": "reference_loop_s", "value": round(reference, 2), "unit": "s", "higher_is_better": False,
         "note": "10-million-step Python for loop, to compare machines"},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
