"""Remaining useful life on NASA C-MAPSS: the health model of ``viewer.analytics.health`` beside a baseline.

Learns from the training file's run-to-failure engines only (the window chosen by cross-validation grouped
by engine, the intervals calibrated split-conformal by engine), then predicts each test engine's remaining
life after its last cycle, streaming: the tracker sees the engine's rows one at a time and never a later one.

Figures (BENCHMARKS.md): ``cmapss_rmse`` and ``cmapss_phm_score`` against the true remaining life (not
capped), ``cmapss_coverage_90`` and ``cmapss_interval_width`` of the 90 % intervals, ``cmapss_brier_30``
of P(RUL <= 30 cycles), and ``trend_brier``: the Brier score of the live trend fallback's P(reaching the
limit within 30 cycles) (:func:`~viewer.analytics.health.rul_from_trend` on the best sensor's last
``TREND_CYCLES`` cycles, the limit being that sensor's median smoothed value at failure over the training
engines), measured on the training engines every ``TREND_EVERY`` cycles, against whether the smoothed
sensor did reach the limit within 30 cycles (no trend: probability 0, as live shows no risk).
Peer: linear degradation of the best single sensor (the one that follows the life
most closely after condition normalisation), its smoothed value mapped linearly to the capped life, with
intervals from its training residuals.

    python benchmarks/rul_cmapss.py [--train FILE --test FILE --rul FILE] [--quick] [--holdout FRACTION]

Defaults: the FD001 files in ../shared/data/cmapss (skipped, with a message, when absent). ``--holdout 0.3``:
a second check without the test files: 30 % of the training engines (drawn with a fixed seed) are held
out, each cut off at a cycle drawn uniformly from its 31st to its last-but-one, and the model learns from
the others.
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

from viewer.analytics.health import HealthModel, RulEstimate, conformal_band, rul_from_trend

DATA = ROOT.parent / "shared" / "data" / "cmapss"
SENSOR_NAMES = tuple(f"s{j}" for j in range(1, 22))
BRIER_HORIZON = 30.0
PEER_SMOOTHING = 10  # cycles: the baseline's moving average
TREND_CYCLES = 60  # the trend fallback looks back this many cycles (live: the last hour)
TREND_EVERY = 5  # cycles between the trend fallback's forecasts on each engine
HOLDOUT_FIRST_CUT = 31  # a held-out engine is seen for at least this many cycles


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


def trend_brier(model: HealthModel, train: list[np.ndarray],
                horizon: float = BRIER_HORIZON) -> tuple[float, float, int]:
    """The trend fallback's Brier score on run-to-failure engines with a limit; the base rate's; forecasts."""
    sensor = int(np.argmax(model.correlation))
    peer = LinearSensorBaseline.__new__(LinearSensorBaseline)
    peer.model, peer.sensor = model, sensor
    smoothed = [peer._smoothed(unit) for unit in train]
    rising = np.median([s[-1] for s in smoothed]) > np.median([s[0] for s in smoothed])
    limit = float(np.median([s[-1] for s in smoothed]))
    probabilities, outcomes = [], []
    for values in smoothed:
        crossed = values >= limit if rising else values <= limit
        first = int(np.argmax(crossed)) if crossed.any() else len(values)
        for cut in range(TREND_CYCLES, first, TREND_EVERY):  # before the limit is reached: live would alarm after
            t = np.arange(cut - TREND_CYCLES, cut, dtype=float)
            estimate = rul_from_trend(t, values[cut - TREND_CYCLES:cut], limit)
            probabilities.append(0.0 if estimate is None else estimate.p_fail_within(horizon))
            outcomes.append(float(first - (cut - 1) <= horizon))
    p, y = np.array(probabilities), np.array(outcomes)
    return float(np.mean((p - y) ** 2)), float(np.mean((y.mean() - y) ** 2)), len(p)


def holdout_split(train: list[np.ndarray], fraction: float, seed: int = 20) -> tuple[list[np.ndarray],
                                                                                    list[np.ndarray], np.ndarray]:
    """Training engines kept, held-out engines cut off at a uniform cycle, and the held-out true RULs."""
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(len(train))[:round(fraction * len(train))].tolist())
    kept = [u for i, u in enumerate(train) if i not in held]
    cuts = {i: int(rng.integers(HOLDOUT_FIRST_CUT, len(train[i]))) for i in sorted(held)}
    return kept, [train[i][:c] for i, c in cuts.items()], np.array([len(train[i]) - c for i, c in cuts.items()],
                                                                     dtype=float)


GOALS = {"cmapss_rmse": (15, False, "cycles"), "cmapss_phm_score": (None, False, ""),
         "cmapss_coverage_90": ("0.88-0.92", None, ""), "cmapss_interval_width": (None, False, "cycles"),
         "cmapss_brier_30": (None, False, ""), "trend_brier": (None, False, "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DATA / "train_FD001.txt")
    parser.add_argument("--test", type=Path, default=DATA / "test_FD001.txt")
    parser.add_argument("--rul", type=Path, default=DATA / "RUL_FD001.txt")
    parser.add_argument("--quick", action="store_true", help="one window, 3 folds, fewer epochs, no ensemble")
    parser.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                        help="test on this fraction of the training engines, cut off at random, instead")
    args = parser.parse_args()
    needed = (args.train,) if args.holdout else (args.train, args.test, args.rul)
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f"rul_cmapss: skipped, data not found: {', '.join(missing)}")
        return
    if args.holdout:
        if not 0 < args.holdout < 1:
            parser.error("--holdout is a fraction between 0 and 1")
        train, test, true = holdout_split(read_units(args.train), args.holdout)
        args.test = Path(f"{args.train.stem} held-out {100 * args.holdout:.0f} %")
    else:
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
    print(f"  calibration cells (age bands, life bands) {report.calibration}, chosen by grouped CV on the training "
          "engines: " + "; ".join(f"{c}: coverage {cov:.3f} width {w:.1f}"
                                  for c, (cov, w) in report.cv_calibration.items()))
    brier, base_rate_brier, forecasts = trend_brier(model, train)
    mine["trend_brier"], theirs["trend_brier"] = brier, base_rate_brier
    print(f"  trend fallback on the training engines: Brier {brier:.3f} over {forecasts} forecasts "
          f"(always the base rate: {base_rate_brier:.3f})")
    print(f"  peer: linear degradation of {SENSOR_NAMES[peer.sensor]}")
    print(f"  {'figure':<24}{'health model':>14}{'peer':>12}")
    for name in mine:
        print(f"  {name:<24}{mine[name]:>14.3f}{theirs[name]:>12.3f}")
    figures = []
    for name, (goal, higher, unit) in GOALS.items():
        peer_name = "base rate" if name == "trend_brier" else f"linear {SENSOR_NAMES[peer.sensor]}"
        figures.append({"figure": name, "value": round(mine[name], 3), "unit": unit, "goal": goal,
                        "higher_is_better": higher, "peer": peer_name, "peer_value": round(theirs[name], 3)})
    figures.append({"figure": "cmapss_cv_coverage_90", "value": round(report.cv_coverage, 3), "unit": "",
                    "goal": "0.88-0.92", "higher_is_better": None})
    emit(figures)


if __name__ == "__main__":
    main()
