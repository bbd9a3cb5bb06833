"""Remaining useful life on NASA C-MAPSS: the health model of ``viewer.analytics.health`` beside a baseline.

Learns from the training file's run-to-failure engines only (the window chosen by cross-validation grouped
by engine, the intervals calibrated split-conformal by engine), then predicts each test engine's remaining
life after its last cycle, streaming: the tracker sees the engine's rows one at a time and never a later one.

Figures (BENCHMARKS.md): ``cmapss_rmse`` and ``cmapss_phm_score`` against the true remaining life (not
capped), ``cmapss_coverage_90`` and ``cmapss_interval_width`` of the 90 % intervals, ``cmapss_brier_30``
of P(RUL <= 30 cycles). Peer: linear degradation of the best single sensor (the one that follows the life
most closely after condition normalisation), its smoothed value mapped linearly to the capped life, with
intervals from its training residuals.

    python benchmarks/rul_cmapss.py [--train FILE --test FILE --rul FILE] [--quick]

Defaults: the FD001 files in ../shared/data/cmapss (skipped, with a message, when absent).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, emit

from viewer.analytics.health import HealthModel, RulEstimate, conformal_band

DATA = ROOT.parent / "shared" / "data" / "cmapss"
SENSOR_NAMES = tuple(f"s{j}" for j in range(1, 22))
BRIER_HORIZON = 30.0
PEER_SMOOTHING = 10  # cycles: the baseline's moving average


def read_units(path: Path) -> list[np.ndarray]:
    """A C-MAPSS file as one array per unit (rows = cycles; columns = 3 settings, 21 sensors)."""
    table = np.loadtxt(path)
    return [table[table[:, 0] == unit][:, 2:] for unit in np.unique(table[:, 0])]


def phm_score(predicted: np.ndarray, true: np.ndarray) -> float:
    """PHM08: sum of exp(-d/13) - 1 for early predictions (d < 0), exp(d/10) - 1 for late ones."""
    d = predicted - true
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


class LinearSensorBaseline:
    """The peer: remaining life linear in the smoothed best sensor, clipped to [0, cap]."""

    def __init__(self, model: HealthModel, train: list[np.ndarray]) -> None:
        self.model = model
        self.sensor = int(np.argmax(model.correlation))
        xs, ys = [], []
        for unit in train:
            xs.append(self._smoothed(unit))
            ys.append(np.minimum(np.arange(len(unit), 0, -1) - 1.0, model.cap))
        x, y = np.concatenate(xs), np.concatenate(ys)
        self.slope, self.intercept = np.polyfit(x, y, 1)
        true = np.concatenate([np.arange(len(u), 0, -1) - 1.0 for u in train])
        self.residuals = np.sort(true - self._map(x))

    def _smoothed(self, unit: np.ndarray) -> np.ndarray:
        values = self.model._normalise(unit)[:, self.sensor]
        sums = np.cumsum(np.concatenate([[0.0], values]))
        n = np.arange(1, len(values) + 1)
        start = np.maximum(n - PEER_SMOOTHING, 0)
        return (sums[n] - sums[start]) / (n - start)  # each row's mean of its last cycles, past rows only

    def _map(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.slope * x + self.intercept, 0.0, self.model.cap)

    def predict(self, unit: np.ndarray) -> RulEstimate:
        point = float(self._map(self._smoothed(unit)[-1:])[0])
        low, high = conformal_band(self.residuals, 0.9)
        return RulEstimate(point, max(point + low, 0.0), max(point + high, 0.0), 0.9, "history",
                           (SENSOR_NAMES[self.sensor],), np.maximum(point + self.residuals, 0.0))


def figures_of(estimates: list[RulEstimate], true: np.ndarray) -> dict[str, float]:
    point = np.array([e.point for e in estimates])
    low = np.array([e.low for e in estimates])
    high = np.array([e.high for e in estimates])
    p30 = np.array([e.p_fail_within(BRIER_HORIZON) for e in estimates])
    return {
        "cmapss_rmse": float(np.sqrt(np.mean((point - true) ** 2))),
        "cmapss_phm_score": phm_score(point, true),
        "cmapss_coverage_90": float(np.mean((true >= low) & (true <= high))),
        "cmapss_interval_width": float(np.mean(high - low)),
        "cmapss_brier_30": float(np.mean((p30 - (true <= BRIER_HORIZON)) ** 2)),
        "rmse_vs_capped_truth": float(np.sqrt(np.mean((point - np.minimum(true, 125.0)) ** 2))),
    }


def stream(model: HealthModel, unit: np.ndarray) -> tuple[RulEstimate, list[float]]:
    """Feed a unit row by row; the estimate after its last row and each update's time (s)."""
    tracker = model.tracker()
    times = []
    estimate = None
    for row in unit:
        t0 = time.perf_counter()
        estimate = tracker.update(row)
        times.append(time.perf_counter() - t0)
    assert estimate is not None
    return estimate, times


GOALS = {"cmapss_rmse": (15, False, "cycles"), "cmapss_phm_score": (None, False, ""),
         "cmapss_coverage_90": ("0.88-0.92", None, ""), "cmapss_interval_width": (None, False, "cycles"),
         "cmapss_brier_30": (None, False, "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DATA / "train_FD001.txt")
    parser.add_argument("--test", type=Path, default=DATA / "test_FD001.txt")
    parser.add_argument("--rul", type=Path, default=DATA / "RUL_FD001.txt")
    parser.add_argument("--quick", action="store_true", help="one window, 3 folds, fewer epochs, no ensemble")
    args = parser.parse_args()
    missing = [str(p) for p in (args.train, args.test, args.rul) if not p.exists()]
    if missing:
        print(f"rul_cmapss: skipped, data not found: {', '.join(missing)}")
        return
    train, test = read_units(args.train), read_units(args.test)
    true = np.loadtxt(args.rul).reshape(-1)
    options = dict(windows=(30,), folds=3, epochs=15, ensemble=1) if args.quick else {}
    t0 = time.perf_counter()
    model = HealthModel.fit(train, sensor_names=SENSOR_NAMES, **options)
    fit_s = time.perf_counter() - t0
    ours, update_s = [], []
    for unit in test:
        estimate, times = stream(model, unit)
        ours.append(estimate)
        update_s += times
    peer = LinearSensorBaseline(model, train)
    mine, theirs = figures_of(ours, true), figures_of([peer.predict(u) for u in test], true)
    report = model.report
    assert report is not None
    print(f"C-MAPSS {args.train.name} -> {args.test.name}: {len(train)} training engines, {len(test)} test engines"
          f"{' (quick)' if args.quick else ''}")
    print(f"  conditions {report.conditions}; sensors {', '.join(report.sensors)}; window {report.window} "
          f"(grouped CV RMSE {', '.join(f'{w}: {v:.1f}' for w, v in report.cv_rmse.items())}); "
          f"fit {fit_s:.0f} s; update median {1e3 * statistics.median(update_s):.3f} ms, "
          f"p99 {1e3 * float(np.quantile(update_s, 0.99)):.3f} ms")
    print(f"  peer: linear degradation of {SENSOR_NAMES[peer.sensor]}")
    print(f"  {'figure':<24}{'health model':>14}{'peer':>12}")
    for name in mine:
        print(f"  {name:<24}{mine[name]:>14.3f}{theirs[name]:>12.3f}")
    figures = []
    for name, (goal, higher, unit) in GOALS.items():
        figures.append({"figure": name, "value": round(mine[name], 3), "unit": unit, "goal": goal,
                        "higher_is_better": higher, "peer": f"linear {SENSOR_NAMES[peer.sensor]}",
                        "peer_value": round(theirs[name], 3)})
    emit(figures)


if __name__ == "__main__":
    main()
