"""The anomaly scorer on generated signals: expected values derived in the test, never read from the code."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from viewer.analytics.calibration import chi2_cdf, clean_score, erf, z_to_score
from viewer.analytics.detectors import MultivariateT2, RobustUnivariate
from viewer.analytics.horizon import failure_horizon
from viewer.analytics.scorer import ComponentScorer, ScorerConfig

RNG_SEED = 20261123


def test_erf_and_tails_match_the_standard_library():
    xs = np.linspace(-5, 5, 101)
    assert np.allclose(erf(xs), [math.erf(x) for x in xs], atol=2e-7)
    # z = 3: two-sided tail 0.0027 -> score 0.9973
    assert z_to_score(np.array([3.0]))[0] == pytest.approx(1 - math.erfc(3 / math.sqrt(2)), abs=1e-6)


@pytest.mark.parametrize("dof", [1, 3, 8])
def test_chi2_cdf_matches_a_numerical_integral(dof):
    # Independent: integrate the chi-square density numerically.
    def density(x):
        return x ** (dof / 2 - 1) * math.exp(-x / 2) / (2 ** (dof / 2) * math.gamma(dof / 2))

    for q in (0.5 * dof, dof, 2 * dof, 4 * dof):
        grid = np.linspace(1e-9, q, 200_001)
        exact = np.trapezoid([density(x) for x in grid[::100]], grid[::100]) if dof > 1 else None
        if exact is None:  # dof 1: closed form erf(sqrt(q/2))
            exact = math.erf(math.sqrt(q / 2))
        assert chi2_cdf(np.array([q]), dof)[0] == pytest.approx(exact, abs=6e-3)


def test_nan_and_infinity_never_leave_as_scores():
    assert clean_score(np.array([np.nan, np.inf, -np.inf, 0.5, 2.0])).tolist() == [0.0, 1.0, 0.0, 0.5, 1.0]


def make_scorer(signals=("a", "b"), **config):
    return ComponentScorer(list(signals), ScorerConfig(learn_samples=300, **config))


def feed(scorer, rows, t0=0.0):
    return [scorer.update(t0 + i, row) for i, row in enumerate(rows)]


def correlated(rng, n, sign=1.0):
    x = rng.normal(size=(n, 2))
    x[:, 1] = sign * 0.95 * x[:, 0] + math.sqrt(1 - 0.95 ** 2) * x[:, 1]
    return x


def test_clean_noise_raises_no_alarm_over_a_long_run():
    rng = np.random.default_rng(RNG_SEED)
    scorer = make_scorer()
    results = feed(scorer, correlated(rng, 40_300))
    levels = [r.level for r in results[300:]]
    # Per-sample false warning probability is far below 1e-3 after smoothing and the 3-sample rule:
    # at most a couple in 40,000 samples.
    assert levels.count("warning") + levels.count("alarm") <= 2


@pytest.mark.parametrize("kind", ["step", "spike_burst", "variance", "broken_correlation"])
def test_anomalies_are_detected_within_a_bounded_delay(kind):
    rng = np.random.default_rng(RNG_SEED + 1)
    scorer = make_scorer()
    feed(scorer, correlated(rng, 2000))
    tail = correlated(rng, 100)
    if kind == "step":
        tail[:, 0] += 6.0  # six sigma on one signal
    elif kind == "spike_burst":
        tail[:, 1] += 12.0
    elif kind == "variance":
        tail *= 5.0
    else:
        tail = correlated(rng, 100, sign=-1.0)  # each signal stays in range, their relation flips
    results = feed(scorer, tail, t0=2000)
    first = next(i for i, r in enumerate(results) if r.level in ("warning", "alarm"))
    # A flipped relation is subtler per sample (|a| small makes it look normal), so it may take longer.
    assert first <= (25 if kind == "broken_correlation" else 10)
    if kind == "broken_correlation":
        # Each signal alone stays in its normal range: only their relation is wrong.
        assert np.abs(tail).max() < 4.5
    if kind == "step":
        assert next(iter(results[first].contributions)) == "a"


def test_one_spike_does_not_flash_the_component():
    rng = np.random.default_rng(RNG_SEED + 2)
    scorer = make_scorer()
    feed(scorer, correlated(rng, 1000))
    rows = correlated(rng, 50)
    rows[10, 0] += 20.0  # one absurd sample
    results = feed(scorer, rows, t0=1000)
    assert all(r.level == "normal" for r in results)
    assert max(r.score for r in results) > 0.99  # the score noticed it


def test_slow_drift_is_followed_not_alarmed():
    rng = np.random.default_rng(RNG_SEED + 3)
    scorer = make_scorer(("a",))
    n = 20_000
    rows = rng.normal(size=(n, 1)) + np.linspace(0, 3, n)[:, None]  # 3 sigma over 20,000 samples
    results = feed(scorer, rows)
    assert sum(r.level != "normal" for r in results[300:]) == 0


def test_missing_samples_and_irregular_timestamps():
    rng = np.random.default_rng(RNG_SEED + 4)
    scorer = make_scorer()
    rows = correlated(rng, 1500)
    rows[rng.random(rows.shape) < 0.1] = np.nan  # 10 % missing values
    times = np.cumsum(rng.exponential(1.0, len(rows)))
    results = [scorer.update(t, r) for t, r in zip(times, rows, strict=True)]
    assert all(np.isfinite(r.score) and 0.0 <= r.score <= 1.0 for r in results)
    assert sum(r.level != "normal" for r in results[300:]) <= 2


def test_state_saved_as_json_restores_identical_scores():
    rng = np.random.default_rng(RNG_SEED + 5)
    scorer = make_scorer(("a", "b"))
    feed(scorer, correlated(rng, 800))
    saved = json.loads(json.dumps(scorer.state_dict()))  # plain data only
    restored = ComponentScorer.from_state(saved)
    rows = correlated(rng, 300)
    rows[100:130, 1] += 5
    a = [(r.score, r.level, r.contributions) for r in feed(scorer, rows)]
    b = [(r.score, r.level, r.contributions) for r in feed(restored, rows)]
    assert a == b


def test_reset_freeze_and_retrain():
    rng = np.random.default_rng(RNG_SEED + 6)
    scorer = make_scorer(("a",))
    feed(scorer, rng.normal(size=(400, 1)))
    scorer.freeze()
    center = scorer.univariate.center.copy()
    feed(scorer, rng.normal(size=(200, 1)) + 0.5)
    assert np.array_equal(scorer.univariate.center, center)  # frozen: nothing learned
    scorer.reset()
    assert scorer.update(0.0, [100.0]).level == "learning"
    scorer.retrain(rng.normal(loc=50.0, size=(500, 1)))
    assert abs(scorer.univariate.center[0] - 50.0) < 0.2
    assert scorer.update(0.0, [50.0]).level == "normal"


def test_batch_scores_equal_streaming_scores_without_adaptation():
    rng = np.random.default_rng(RNG_SEED + 7)
    train, test = correlated(rng, 400), correlated(rng, 500)
    uni = RobustUnivariate(2, adapt=0.0)
    uni.learn(train)
    multi = MultivariateT2(2)
    multi.learn(train)
    batch_u = uni.score_batch(None, test)
    batch_m = multi.score_batch(None, test)
    stream_u = np.array([uni.update(0, row) for row in test])
    stream_m = np.array([multi.update(0, row)[0] for row in test])
    assert np.allclose(batch_u, stream_u) and np.allclose(batch_m, stream_m)


def test_failure_horizon_of_a_linear_trend_with_noise():
    rng = np.random.default_rng(RNG_SEED + 8)
    t = np.arange(0, 3600, 10.0)  # one hour, every 10 s
    slope = 2.0 / 3600  # rises 2 units an hour
    v = 5.0 + slope * t + rng.normal(0, 0.05, len(t))
    horizon = failure_horizon(t, v, limit=11.0)
    # Expected: now at 7.0, 4.0 units to go at 2 per hour -> about 2 h.
    assert horizon.seconds == pytest.approx(2 * 3600, rel=0.05)
    assert horizon.low < horizon.seconds < horizon.high
    assert "reaches its limit in about 2 h" in horizon.describe("temperature")
    # A falling signal toward a lower limit works the same way.
    down = failure_horizon(t, 10.0 - slope * t + rng.normal(0, 0.05, len(t)), limit=4.0)
    assert down.seconds == pytest.approx(2 * 3600, rel=0.05)


def test_no_horizon_without_a_meaningful_trend():
    rng = np.random.default_rng(RNG_SEED + 9)
    t = np.arange(0, 3600, 10.0)
    flat = failure_horizon(t, 5.0 + rng.normal(0, 1.0, len(t)), limit=11.0)
    assert flat.seconds is None and flat.reason == "no trend"
    away = failure_horizon(t, 5.0 - t / 3600 + rng.normal(0, 0.01, len(t)), limit=11.0)
    assert away.seconds is None
    assert failure_horizon(t[:5], t[:5], limit=10.0).reason.startswith("too few samples")


def test_robust_mahalanobis_is_calibrated_on_normal_data_and_ignores_outliers_in_training():
    from viewer.analytics.detectors import RobustMahalanobis

    rng = np.random.default_rng(RNG_SEED + 10)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 4.0]])
    mean = np.array([10.0, -5.0, 2.0])
    train = rng.multivariate_normal(mean, cov, size=2000)
    train[:200] += 25.0  # 10 % of the training block is anomalous
    det = RobustMahalanobis(3)
    det.learn(train)
    assert np.allclose(det.center, mean, atol=0.1)  # the outliers did not drag the centre
    normal = rng.multivariate_normal(mean, cov, size=20_000)
    # For a correct covariance E[d²] = p, so d²/p averages 1 (a little more: robust fits are slightly tight).
    normal_mean = det.raw(normal).mean()
    assert 0.9 < normal_mean < 1.25
    broken = normal.copy()
    broken[:, 1] = mean[1] - (broken[:, 0] - mean[0]) * 0.8  # same ranges, relation flipped
    # By hand: for (u, -0.8u, w), u ~ N(0,1), w ~ N(0,4): d² = u²(1 + 0.64 + 1.28)/0.36 + w²/4,
    # so E[d²]/p = (8.11 + 1) / 3 = 3.04 under the true covariance.
    assert det.raw(broken).mean() / normal_mean == pytest.approx(3.04, rel=0.2)
    restored = RobustMahalanobis.from_state(json.loads(json.dumps(det.state_dict())))
    assert np.array_equal(restored.raw(normal[:100]), det.raw(normal[:100]))


def test_smoothed_threshold_is_an_ewma_with_a_trained_threshold():
    from viewer.analytics.detectors import SmoothedThreshold

    raw_train = np.array([1.0, 3.0, 2.0, 0.0])
    raw_test = np.array([10.0, 10.0, 0.0])
    smoother = SmoothedThreshold(alpha=0.5, factor=2.0)
    smoothed = smoother.learn(raw_train)
    # By hand: s0 = 1; then 1 + .5(3-1) = 2; 2 + .5(2-2) = 2; 2 + .5(0-2) = 1. Max 2, threshold 4.
    assert smoothed.tolist() == [1.0, 2.0, 2.0, 1.0] and smoother.threshold == 4.0
    values, alarms = smoother.update(raw_test)
    # 1 + .5(10-1) = 5.5; 5.5 + .5(10-5.5) = 7.75; 7.75 + .5(0-7.75) = 3.875
    assert values.tolist() == [5.5, 7.75, 3.875] and alarms.tolist() == [True, True, False]


def test_a_drift_faster_than_the_baseline_follows_is_flagged_before_the_hard_limit():
    # Vibration-like: 3 mm/s rising 0.0024 per sample with half-normal noise; the hard limit is 7.1.
    rng = np.random.default_rng(RNG_SEED + 11)
    scorer = make_scorer(("vibration",))
    n = 3000
    values = 3.0 + 0.0024 * np.arange(n) + np.abs(rng.normal(0, 0.3, n))
    levels = [r.level for r in feed(scorer, values[:, None])]
    first = next(i for i, level in enumerate(levels) if level in ("warning", "alarm"))
    assert first > 300 and values[first] < 7.1  # after learning, amber before the rule's threshold is reached


def test_the_few_signal_fast_path_matches_the_vectorised_path():
    """Up to 16 signals the live update runs in plain floats; it must score and adapt exactly like numpy."""
    from viewer.analytics.detectors import SMALL, RobustUnivariate

    rng = np.random.default_rng(11)
    wide_n = SMALL + 4
    train = rng.normal(size=(300, wide_n))
    few, wide = RobustUnivariate(3, adapt=0.01), RobustUnivariate(wide_n, adapt=0.01)
    few.learn(train[:, :3])
    wide.learn(train)
    rows = rng.normal(size=(500, wide_n)) * 1.5
    rows[::37, 0] = np.nan  # missing
    rows[::53, 1] = np.inf  # broken sensor
    rows[::41, 2] += 9.0  # spikes outside the adaptation band
    for t, row in enumerate(rows):
        # Scores differ only by the vectorised erf approximation (Abramowitz & Stegun, |error| < 1.5e-7).
        np.testing.assert_allclose(few.update(t, row[:3]), wide.update(t, row)[:3], rtol=0, atol=1.5e-7)
    np.testing.assert_allclose(few.center, wide.center[:3], rtol=1e-12)
    np.testing.assert_allclose(few.scale, wide.scale[:3], rtol=1e-12)
