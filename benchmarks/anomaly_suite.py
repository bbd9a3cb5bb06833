"""The anomaly behaviour suite: generated signals an operator would judge at a glance (anomaly_cases.py).

Every case streams through a fresh :class:`ComponentScorer` with the default configuration, at several
seeds. Figures (BENCHMARKS.md): ``suite_false_alarms_per_10k`` (alarms raised in normal stretches, also
after a lasting change became the new normal), ``suite_detection_delay_p90`` (samples from a clear change:
6-sigma step, new level, lasting spread change, flat line; to its first warning), ``suite_missed_changes``
(any change, broken rhythms included, never flagged). Printed beside them: the delay of broken rhythms,
the samples from a lasting change back to normal with the default ``accept_after`` (at one sample a
second: half an hour), and whether the slow drift got a failure horizon before it reached its limit.

Run ``python benchmarks/anomaly_suite.py [--quick]`` (``--quick``: the short cases, two seeds).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from anomaly_cases import STEP_KINDS, cases, run_case
from bench_common import emit

from viewer.analytics.scorer import ComponentScorer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cases, two seeds")
    args = parser.parse_args()
    seeds = (1, 2) if args.quick else (1, 2, 3, 4, 5)
    start = time.perf_counter()
    false_alarms = normal = 0
    step_delays, rhythm_delays, missed, back, horizons = [], [], [], [], []
    print(f"{'case':12s} {'false alarms':>13s} {'per 10k':>8s}  delays (samples)", file=sys.stderr)
    for name, make in cases(short=args.quick).items():
        fa = n = 0
        delays = []
        for seed in seeds:
            outcome = run_case(make(np.random.default_rng(seed)), lambda s: ComponentScorer(s))
            fa += outcome.false_alarms
            n += outcome.normal_samples
            delays += [d for _k, d in outcome.delays]
            step_delays += [d for k, d in outcome.delays if k in STEP_KINDS]
            rhythm_delays += [d for k, d in outcome.delays if k not in STEP_KINDS]
            missed += [f"{name} ({k})" for k in outcome.missed]
            if outcome.back_to_normal is not None:
                back.append(outcome.back_to_normal)
            if outcome.horizon_before_limit is not None:
                horizons.append(outcome.horizon_before_limit)
        false_alarms += fa
        normal += n
        print(f"{name:12s} {fa:13d} {1e4 * fa / max(n, 1):8.2f}  {delays}", file=sys.stderr)
    per_10k = 1e4 * false_alarms / max(normal, 1)
    p90 = float(np.percentile(step_delays, 90)) if step_delays else float("nan")
    rhythm_p90 = float(np.percentile(rhythm_delays, 90)) if rhythm_delays else float("nan")
    back_median = float(np.median(back)) if back else float("nan")
    print(f"false alarms {false_alarms} in {normal:,} normal samples ({per_10k:.2f} per 10k); clear changes: delay "
          f"p90 {p90:.0f} samples; broken rhythms: p90 {rhythm_p90:.0f}; missed: {missed or 'none'}", file=sys.stderr)
    print(f"back to normal after a lasting change: median {back_median:.0f} samples (accept_after 30 min at 1 Hz); "
          f"drift horizon before the limit: {sum(horizons)}/{len(horizons)}; {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    note = f"{len(seeds)} seeds{', short cases (--quick)' if args.quick else ''}"
    emit([
        {"figure": "suite_false_alarms_per_10k", "value": round(per_10k, 3), "unit": "alarms per 10k normal samples",
         "goal": 1, "higher_is_better": False, "note": note},
        {"figure": "suite_detection_delay_p90", "value": round(p90, 1), "unit": "samples", "goal": 50,
         "higher_is_better": False, "note": f"{note}; broken rhythms p90 {rhythm_p90:.0f} samples"},
        {"figure": "suite_missed_changes", "value": len(missed), "unit": "changes", "goal": 0,
         "higher_is_better": False, "note": note},
        {"figure": "suite_back_to_normal_samples", "value": round(back_median), "unit": "samples",
         "higher_is_better": False, "note": "median, lasting changes, accept_after 1800 s at one sample a second"},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
