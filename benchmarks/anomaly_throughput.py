"""Anomaly scorer throughput: batch (replay) samples/s and live per-sample cost.

Figures (BENCHMARKS.md): ``anomaly_samples_per_s`` (batch, goal 1,000,000) for 1 signal and for
1,000 signals updated together, and the live per-sample cost of a component scorer (goal < 20 µs).
Run ``python benchmarks/anomaly_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from bench_common import emit

from viewer.analytics.detectors import MultivariateT2, RobustUnivariate
from viewer.analytics.scorer import ComponentScorer


def median_rate(fn, samples: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        rates.append(samples / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    repeats = 3 if args.quick else 7
    n_one = 200_000 if args.quick else 2_000_000
    n_rows = 200 if args.quick else 2_000

    one = RobustUnivariate(1)
    one.learn(rng.normal(size=(400, 1)))
    x_one = rng.normal(size=(n_one, 1))
    rate_one = median_rate(lambda: one.score_batch(None, x_one), n_one, repeats)

    many = RobustUnivariate(1000)
    many.learn(rng.normal(size=(400, 1000)))
    x_many = rng.normal(size=(n_rows, 1000))
    rate_many = median_rate(lambda: many.score_batch(None, x_many), n_rows * 1000, repeats)

    multi = MultivariateT2(8)
    multi.learn(rng.normal(size=(400, 8)))
    x_multi = rng.normal(size=(n_one // 8, 8))
    rate_multi = median_rate(lambda: multi.score_batch(None, x_multi), x_multi.size, repeats)

    live = {}
    for d in (1, 8):
        scorer = ComponentScorer([f"s{i}" for i in range(d)])
        rows = rng.normal(size=(400 + (2_000 if args.quick else 20_000), d))
        for row in rows[:400]:
            scorer.update(0.0, row)
        t = time.perf_counter()
        for row in rows[400:]:
            scorer.update(0.0, row)
        live[d] = (time.perf_counter() - t) / (len(rows) - 400) * 1e6

    print(f"batch, 1 signal: {rate_one:,.0f} samples/s; 1,000 signals: {rate_many:,.0f} samples/s; "
          f"T² over 8 signals: {rate_multi:,.0f} samples/s", file=sys.stderr)
    print(f"live ComponentScorer.update: {live[1]:.1f} µs (1 signal), {live[8]:.1f} µs (8 signals)", file=sys.stderr)
    note = "median of repeats; robust univariate score_batch" + ("; --quick: fewer samples" if args.quick else "")
    figures = [
        {"figure": "anomaly_samples_per_s", "value": round(min(rate_one, rate_many)), "unit": "samples/s",
         "goal": 1_000_000, "higher_is_better": True,
         "note": f"{note}; 1 signal {rate_one:,.0f}/s, 1,000 signals together {rate_many:,.0f}/s, "
                 f"multivariate T² (8 signals) {rate_multi:,.0f} values/s"},
        {"figure": "anomaly_live_us_per_sample", "value": round(live[8], 1), "unit": "µs", "goal": 20,
         "higher_is_better": False,
         "note": f"ComponentScorer.update with 8 signals (1 signal: {live[1]:.1f} µs); in the viewer it runs "
                 "once per component per frame on coalesced values, not per message"},
    ]
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
