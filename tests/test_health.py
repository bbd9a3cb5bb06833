"""The health model: conditions, sensor choice, streaming without look-ahead, calibration, the trend fallback."""

from __future__ import annotations

import math
import statistics
import time
from statistics import NormalDist

import numpy as np
import pytest

from viewer.analytics.health import HealthModel, OperatingConditions, conformal_band, rul_from_trend

WEAR_SCALE = 25.0  # cycles: the synthetic wear grows as exp((t - life) / 25)


def synthetic_unit(rng: np.random.Generator, life: int) -> np.ndarray:
    """Rows = cycles; columns: 3 settings (two operating conditions), 4 sensors.

    Sensor 0 rises and sensor 1 falls with the wear, sensor 2 is noise, sensor 3 constant; each shifted by
    the operating condition, as C-MAPSS FD002's sensors are.
    """
    t = np.arange(1, life + 1, dtype=float)
    condition = rng.integers(0, 2, life).astype(float)
    wear = np.exp((t - life) / WEAR_SCALE)
    settings = np.column_stack([20 * condition, 0.5 * condition, np.full(life, 100.0)])
    settings += rng.normal(0, 0.001, settings.shape)
    sensors = np.column_stack([
        10 * condition + 3 * wear + rng.normal(0, 0.1, life),
        -5 * condition - 2 * wear + rng.normal(0, 0.1, life),
        7 * condition + rng.normal(0, 1.0, life),
        np.full(life, 4.0),
    ])
    return np.hstack([settings, sensors])


def fleet(seed: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synthetic_unit(rng, int(rng.integers(80, 160))) for _ in range(count)]


@pytest.fixture(scope="module")
def model() -> HealthModel:
    return HealthModel.fit(fleet(1, 60), cap=60, windows=(5, 10), folds=3, ensemble=1, hidden=16, epochs=12)


def test_two_operating_conditions_are_found_and_normalised_away(model: HealthModel) -> None:
    assert model.conditions is not None and len(model.conditions.centres) == 2
    unit = fleet(2, 1)[0]
    label = model.conditions.assign(unit[:, :3])
    assert np.array_equal(label == label[0], np.isclose(unit[:, 0], unit[0, 0], atol=1))  # same regime, same label
    noise = model._normalise(unit)[:, 2]  # the noise sensor: shifted by 7 per condition before, ~N(0, 1) in both after
    for regime in (0, 1):
        assert abs(noise[label == regime].mean()) < 0.4


def test_a_single_condition_stays_one() -> None:
    rng = np.random.default_rng(0)
    settings = np.column_stack([rng.normal(0, 0.002, 500), rng.normal(0, 0.0003, 500), np.full(500, 100.0)])
    assert len(OperatingConditions.fit(settings).centres) == 1


def test_the_wear_sensors_are_chosen_not_the_noise_or_the_constant(model: HealthModel) -> None:
    assert list(model.selected) == [0, 1]
    assert model.based_on == ("sensor 1", "sensor 2")
    assert model.report is not None and model.report.window in (5, 10)
    assert set(model.report.cv_rmse) == {5, 10}


def test_streaming_uses_only_the_cycles_so_far(model: HealthModel) -> None:
    unit = fleet(3, 1)[0]
    batch = model.predict_all(unit)
    tracker = model.tracker()
    streamed = [tracker.update(row).point for row in unit]
    assert np.allclose(streamed, batch)
    k = 40
    changed = unit.copy()
    changed[k + 1:, 3:5] += 50.0  # a wild future must not move the estimate at row k
    assert model.predict(unit[:k + 1]).point == pytest.approx(batch[k])
    assert model.predict_all(changed)[k] == pytest.approx(batch[k])


def test_intervals_and_probabilities_are_calibrated_on_unseen_units(model: HealthModel) -> None:
    rng = np.random.default_rng(9)
    hits, p20, failed = [], [], []
    for unit in fleet(4, 150):
        cut = int(rng.integers(10, len(unit)))  # cut off some time before failure, as C-MAPSS test engines are
        true = len(unit) - cut
        estimate = model.predict(unit[:cut])
        hits.append(estimate.low <= true <= estimate.high)
        p20.append(estimate.p_fail_within(20))
        failed.append(true <= 20)
    coverage = float(np.mean(hits))
    assert 0.82 <= coverage <= 0.97, coverage
    p, y = np.array(p20), np.array(failed, dtype=float)
    climatology = float(np.mean((y.mean() - y) ** 2))  # the Brier score of always saying the base rate
    assert float(np.mean((p - y) ** 2)) < 0.6 * climatology


def test_the_distribution_is_a_distribution(model: HealthModel) -> None:
    estimate = model.predict(fleet(5, 1)[0][:50])
    probabilities = [estimate.p_fail_within(t) for t in (-1, 0, 10, 30, 100, 1e9)]
    assert probabilities[0] == 0.0 and probabilities[-1] == 1.0
    assert probabilities == sorted(probabilities)
    # the interval is of the true (uncapped) life: near the cap it may lie above the capped point
    assert estimate.low <= float(np.median(estimate.outcomes)) <= estimate.high
    assert estimate.source == "history"
    assert "run-to-failure history" in estimate.describe("ST10", horizon=14) and "sensor 1" in estimate.describe("x")


def test_an_update_costs_well_under_a_millisecond(model: HealthModel) -> None:
    unit = fleet(6, 1)[0]
    tracker = model.tracker()
    times = []
    for row in unit:
        t0 = time.perf_counter()
        tracker.update(row)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 1e-3


def test_conformal_ranks_by_hand() -> None:
    residuals = np.arange(1.0, 20.0)[::-1]  # 19 values, unsorted on purpose
    # n = 19, level 0.9: upper rank ceil(20 * 0.95) = 19, lower rank floor(20 * 0.05) = 1
    assert conformal_band(residuals, 0.9) == (1.0, 19.0)
    # level 0.8: upper ceil(20 * 0.9) = 18, lower floor(20 * 0.1) = 2
    assert conformal_band(residuals, 0.8) == (2.0, 18.0)
    # n = 9 cannot give a 90 % bound: ceil(10 * 0.95) = 10 > 9
    assert conformal_band(np.arange(9.0), 0.9) == (-math.inf, math.inf)


def test_without_history_the_trend_to_the_limit_gives_the_distribution() -> None:
    t = np.arange(200, dtype=float)
    wobble = 0.02 * np.sin(t * 1.7)  # deterministic noise, so the slope's interval has a width
    values = 2.0 + 0.01 * t + wobble
    estimate = rul_from_trend(t, values, limit=5.0, signal="vibration")
    assert estimate is not None and estimate.source == "trend"
    # the line reaches 5 at t = 300, 101 s after the newest sample (t = 199); the sine shifts it slightly
    assert estimate.point == pytest.approx(101.0, rel=0.03)
    assert estimate.p_fail_within(estimate.point) == pytest.approx(0.5, abs=0.01)
    assert estimate.low < estimate.point < estimate.high
    assert estimate.p_fail_within(estimate.low) == pytest.approx(0.05, abs=0.01)
    assert "rule limit and trend" in estimate.describe("ST10", unit="s") and "vibration" in estimate.describe("x")
    assert rul_from_trend(t, np.full(200, 2.0) + wobble, limit=5.0) is None  # no trend, no estimate


# -- coverage against a closed-form remaining-life distribution ------------------------------------------------
# A wear sensor rises linearly, x(t) = b * t (b random per unit, no noise), and the unit fails when x reaches its
# own threshold D ~ N(MU, SIGMA), independent of b. After t cycles the sensor gives b = x / t exactly, and the
# remaining life is (D - x) / b with D known only to exceed x: a truncated normal, so the probability that the
# model's interval holds the true remaining life is computable for every row, with no sampling.
MU, SIGMA = 100.0, 10.0


def threshold_unit(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    slope = rng.uniform(0.7, 1.3)
    threshold = rng.normal(MU, SIGMA)
    life = int(threshold / slope)  # the last row with x <= D
    t = np.arange(1, life + 1, dtype=float)
    return np.column_stack([slope * t, rng.normal(0, 1, life)]), slope  # the wear sensor, a noise sensor


def true_coverage(x: float, t: float, low: float, high: float) -> float:
    """P(low <= remaining life <= high | x after t cycles): D = x + life * x / t, D ~ N(MU, SIGMA) given D >= x."""
    d = NormalDist(MU, SIGMA)
    survive = 1.0 - d.cdf(x)
    if survive <= 1e-12:
        return 1.0
    slope = x / t

    def cdf(life: float) -> float:
        return (d.cdf(x + max(life, 0.0) * slope) - d.cdf(x)) / survive

    return cdf(high) - cdf(low) if high >= max(low, 0.0) else 0.0


@pytest.fixture(scope="module")
def threshold_model() -> HealthModel:
    rng = np.random.default_rng(11)
    units = [threshold_unit(rng)[0] for _ in range(80)]
    return HealthModel.fit(units, n_settings=0, cap=60, windows=(5,), folds=4, ensemble=2, hidden=16, epochs=15)


def test_intervals_hold_what_they_claim_against_the_closed_form(threshold_model: HealthModel) -> None:
    """Averaged over every fifth row of 120 unseen units (the live protocol: a unit watched all its life), the
    true probability that the 90 % interval holds the remaining life is 0.9 within the sampling error of
    conformal calibration; the probability P(life <= 20) matches the closed form's on average too."""
    rng = np.random.default_rng(12)
    covered, p_model, p_true = [], [], []
    for _ in range(120):
        unit, _slope = threshold_unit(rng)
        for t in range(5, len(unit) + 1, 5):
            estimate = threshold_model.predict(unit[:t])
            x = float(unit[t - 1, 0])
            covered.append(true_coverage(x, t, estimate.low, estimate.high))
            p_model.append(estimate.p_fail_within(20))
            p_true.append(true_coverage(x, t, -1.0, 20.0))
    assert 0.86 <= float(np.mean(covered)) <= 0.94, float(np.mean(covered))
    assert abs(float(np.mean(p_model)) - float(np.mean(p_true))) < 0.04
    report = threshold_model.report
    assert report is not None and 0.85 <= report.cv_coverage <= 0.95  # what cross-validation said it would be
    assert report.calibration in report.cv_calibration


def test_calibration_cells_by_age_are_used_when_the_age_is_known(threshold_model: HealthModel) -> None:
    estimate_young = threshold_model.estimate(60.0, age=10)
    estimate_any = threshold_model.estimate(60.0)
    assert estimate_young.source == estimate_any.source == "history"
    assert len(estimate_any.outcomes) >= len(estimate_young.outcomes)  # the pooled cell holds every age
