"""The anomaly scorer's arithmetic and model: expected values from scipy, closed forms or the test's construction."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from viewer.analytics.calibration import (
    CALIBRATED_EVIDENCE,
    chi2_tail_evidence,
    describe_rarity,
    evidence_to_score,
    evidence_to_score_array,
    gamma_tail_evidence,
    gamma_tail_evidence_array,
    neg_tail_ln,
    normal_tail_ln,
    normal_tail_ln_array,
    score_to_evidence,
)
from viewer.analytics.horizon import failure_horizon, format_duration
from viewer.analytics.scorer import ComponentScorer, ScorerConfig
from viewer.analytics.signal_model import SignalModel, find_modes

RNG_SEED = 20261201
LN10 = math.log(10)


# --- tails against scipy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("z", [0.0, 0.3, 1.0, 2.5, 3.9, 6.0, 11.9, 12.1, 20.0, 40.0, 200.0])
def test_normal_tail_matches_scipy_everywhere(z):
    exact = stats.norm.logsf(z) + math.log(2.0)  # two-sided
    assert normal_tail_ln(z) == pytest.approx(exact, rel=2e-7, abs=2e-7)
    assert normal_tail_ln(-z) == pytest.approx(exact, rel=2e-7, abs=2e-7)
    assert -neg_tail_ln(z) == pytest.approx(exact, rel=1e-5, abs=1e-5)  # the live path's table
    assert normal_tail_ln_array(np.array([z]))[0] == pytest.approx(exact, rel=2e-7, abs=2e-7)


@pytest.mark.parametrize("shape", [1, 2, 6, 8, 26, 64])
@pytest.mark.parametrize("quantile", [0.5, 1e-2, 1e-4, 1e-9, 1e-40])
def test_gamma_tail_is_exact_for_integer_shapes(shape, quantile):
    x = stats.gamma.isf(quantile, shape)
    exact = -stats.gamma.logsf(x, shape) / LN10
    assert gamma_tail_evidence(x, shape) == pytest.approx(exact, rel=1e-9, abs=1e-9)
    assert gamma_tail_evidence_array(np.array([x]), shape)[0] == pytest.approx(exact, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("shape, scale", [(3.4, 2.3), (5.7, 1.4), (30.5, 1.0)])
@pytest.mark.parametrize("quantile", [1e-2, 1e-4, 1e-6])
def test_gamma_tail_of_other_shapes_is_close_and_never_overstates(shape, scale, quantile):
    x = stats.gamma.isf(quantile, shape, scale=scale)
    exact = -stats.gamma.logsf(x, shape, scale=scale) / LN10
    approx = gamma_tail_evidence(x, shape, scale)
    assert approx <= exact + 0.02  # Wilson-Hilferty is conservative in the far tail
    assert approx == pytest.approx(exact, abs=0.25 + 0.05 * exact)


@pytest.mark.parametrize("dof", [1, 2, 3, 5, 8, 51, 52])
def test_chi2_tail_matches_scipy(dof):
    for q in (0.5, 1e-3, 1e-8):
        x = stats.chi2.isf(q, dof)
        assert chi2_tail_evidence(x, dof) == pytest.approx(-stats.chi2.logsf(x, dof) / LN10, rel=1e-6, abs=1e-6)


def test_scores_are_probabilities_up_to_one_in_a_trillion_and_never_saturate():
    for e in (0.5, 2.0, 4.0, 9.0, CALIBRATED_EVIDENCE):
        assert 1.0 - evidence_to_score(e) == pytest.approx(10.0**-e, rel=1e-3)  # float resolution near 1
        assert score_to_evidence(evidence_to_score(e)) == pytest.approx(e, rel=1e-4)
    far = [12.5, 20.0, 100.0, 1e3, 1e4, 1e5, 1e6]
    scores = [evidence_to_score(e) for e in far]
    assert all(a < b < 1.0 for a, b in itertools.pairwise(scores))  # strictly ordered, below 1
    assert [score_to_evidence(s) for s in scores] == pytest.approx(far, rel=0.02)  # float resolution of 1 - s
    assert evidence_to_score_array(np.array(far)).tolist() == pytest.approx(scores, abs=0)
    assert evidence_to_score(0.0) == 0.0 and evidence_to_score(math.nan) == 0.0
    assert describe_rarity(6.3) == "1 in 2 million" and describe_rarity(0.1) == "ordinary"


# --- calibration on held-aside normal data ----------------------------------------------------------------
def _normal_rows(rng, n, kind):
    a = rng.normal(size=(n, 3))
    if kind == "one":
        return a[:, :1]
    if kind == "three independent":
        return a
    return np.column_stack([a[:, 0], 0.9 * a[:, 0] + math.sqrt(1 - 0.81) * a[:, 1]])  # correlated 0.9


@pytest.mark.parametrize("kind, learning_sets, held_out", [("one", 20, 150_000), ("three independent", 12, 120_000),
                                                           ("correlated pair", 12, 120_000)])
def test_share_of_normal_samples_above_q_is_one_minus_q(kind, learning_sets, held_out):
    # A frequentist statement: over learning sets and held-aside samples from the same normal process,
    # P(score >= q) = 1 - q. Pooled over several learning sets, so the sampling error of one learned
    # scale (which moves a 1e-4 tail by tens of percent) averages out as it does over a plant's components.
    rng = np.random.default_rng(RNG_SEED)
    above = {0.99: 0, 0.999: 0, 0.9999: 0}
    total = 0
    for _ in range(learning_sets):
        learn = _normal_rows(rng, 5000, kind)
        scorer = ComponentScorer([f"s{j}" for j in range(learn.shape[1])], ScorerConfig(learn_samples=5000))
        scorer.retrain(learn)
        scores, _evidence = scorer.score_batch(_normal_rows(rng, held_out, kind))
        for q in above:
            above[q] += int(np.sum(scores >= q))
        total += held_out
    for q, count in above.items():
        assert count / total == pytest.approx(1.0 - q, rel=0.2), (q, count / total)


# --- the per-signal model ---------------------------------------------------------------------------------
def test_operating_levels_are_found_at_empty_gaps_and_cycles_stay_one_level():
    rng = np.random.default_rng(RNG_SEED + 1)
    two = np.concatenate([5 + rng.normal(size=150), 50 + rng.normal(size=150)])
    modes = find_modes(two, 1e-9, 1.0, 6)
    assert [round(m[0]) for m in modes] == [5, 50] and all(0.8 < m[1] < 1.2 for m in modes)
    t = np.arange(300)
    cycle = 10 * np.sin(2 * np.pi * t / 288) + rng.normal(size=300)
    assert len(find_modes(cycle, 1e-9, 1.0, 6)) == 1
    quantised = np.round(20 + 0.7 * rng.normal(size=300))  # whole numbers only
    assert len(find_modes(quantised, 0.3, 0.7, 6)) == 1


def test_robust_scale_ignores_outliers_and_is_unbiased_on_normal_data():
    rng = np.random.default_rng(RNG_SEED + 2)
    scales = []
    for _ in range(200):
        v = 3.0 + 2.0 * rng.normal(size=300)
        v[:6] = 1000.0  # 2 % wild values in the learning data
        model = SignalModel()
        model.learn(v)
        scales.append(model.modes[0][1])
    assert np.mean(scales) == pytest.approx(2.0, rel=0.03)


def test_normal_band_stays_inside_a_non_negative_signals_range():
    rng = np.random.default_rng(RNG_SEED + 3)
    model = SignalModel()
    model.learn(np.abs(0.2 + 0.5 * rng.normal(size=400)))  # a vibration level near 0, never negative
    low, high = model.normal_band()
    assert low == 0.0 and high > 1.0
    signed = SignalModel()
    signed.learn(0.2 + 0.5 * rng.normal(size=400))
    assert signed.normal_band()[0] < 0


def test_batch_scores_equal_a_frozen_scorer_streaming_them():
    rng = np.random.default_rng(RNG_SEED + 4)
    scorer = ComponentScorer(["a", "b", "c"], ScorerConfig(learn_samples=1000))

    def rows(n: int) -> np.ndarray:
        out = rng.normal(size=(n, 3))
        out[:, 0] = 10.0 * np.sin(2 * np.pi * np.arange(n) / 200.0) + 0.3 * out[:, 0]  # a slow cycle
        out[:, 1] += np.where(np.arange(n) % 200 < 100, 0.0, 30.0)  # two operating levels
        return out

    for i, row in enumerate(rows(3000)):  # learning, then the rhythm is learned online
        scorer.update(float(i), row)
    scorer.freeze(True)
    test = rows(3000)
    test[500:520, 2] = test[499, 2]  # a flat stretch
    test[900:1400, 0] = 0.3 * rng.normal(size=500)  # the cycle stops: a broken rhythm
    test[rng.random(test.shape) < 0.02] = np.nan
    fresh = copy.deepcopy(scorer)
    for model in fresh.models:
        model.reset_statistics()
    fresh._reset_t2_windows()
    streamed, kinds = [], set()
    for i, row in enumerate(test):
        result = fresh.update(float(i), row)
        streamed.append(result.raw)
        kinds.add(result.kind)
        fresh.level = "normal"  # levels and episodes are not part of the batch
    _scores, evidence = scorer.score_batch(test)
    assert np.max(np.abs(evidence - np.array(streamed))) < 1e-4
    assert {"flat", "rhythm"} <= kinds  # the flat stretch and the stopped rhythm were seen both ways


def test_state_saved_as_json_continues_identically():
    rng = np.random.default_rng(RNG_SEED + 5)
    scorer = ComponentScorer(["a", "b"])
    rows = rng.normal(size=(1500, 2))
    rows[1000:1100, 0] += 5.0  # an episode in progress when saved
    for i, row in enumerate(rows[:1050]):
        scorer.update(float(i), row)
    restored = ComponentScorer.from_state(json.loads(json.dumps(scorer.state_dict())))
    for i, row in enumerate(rows[1050:], start=1050):
        a, b = scorer.update(float(i), row), restored.update(float(i), row)
        assert (a.score, a.level, a.episode, a.contributions) == (b.score, b.level, b.episode, b.contributions)
    with pytest.raises(ValueError):
        ComponentScorer.from_state({**scorer.state_dict(), "version": 1})


def test_reset_freeze_retrain_and_operator_accept():
    rng = np.random.default_rng(RNG_SEED + 6)
    scorer = ComponentScorer(["a"], ScorerConfig(learn_samples=100))
    for i in range(100):
        scorer.update(float(i), [rng.normal()])
    assert not scorer.learning
    scorer.reset()
    assert scorer.learning and scorer.update(200.0, [0.0]).level == "learning"
    scorer.retrain(rng.normal(size=(200, 1)))
    assert not scorer.learning
    assert not scorer.accept(300.0)  # nothing to accept while normal
    results = [scorer.update(300.0 + i, [8.0 + rng.normal()]) for i in range(10)]
    assert results[-1].level == "alarm" and results[-1].episode
    assert scorer.accept(310.0)  # the operator says the new level is normal
    after = [scorer.update(311.0 + i, [8.0 + rng.normal()]) for i in range(300)]
    assert all(r.level == "normal" for r in after)
    assert [round((low + high) / 2) for low, high in scorer.level_bands("a")] == [0, 8]  # old level kept
    frozen = ComponentScorer(["a"], ScorerConfig(learn_samples=100, accept_after=60.0))
    frozen.retrain(rng.normal(size=(200, 1)))
    frozen.freeze(True)
    late = [frozen.update(float(i), [8.0 + rng.normal()]) for i in range(200)]
    assert late[-1].level == "alarm" and not any(r.accepted for r in late)  # a frozen reference is kept


def test_explanation_names_the_signal_that_moved_or_the_relation_that_broke():
    rng = np.random.default_rng(RNG_SEED + 7)
    base = rng.normal(size=(2000, 2))
    base[:, 1] = 0.95 * base[:, 0] + math.sqrt(1 - 0.95**2) * base[:, 1]
    scorer = ComponentScorer(["a", "b"], ScorerConfig(learn_samples=2000))
    scorer.retrain(base)
    step = [scorer.update(float(i), [base[i, 0] + 7.0, base[i, 1]]) for i in range(10)]
    assert next(iter(step[-1].contributions)) == "a" and step[-1].kind in ("value", "level")
    scorer.retrain(base)
    flipped = rng.normal(size=(60, 2))
    flipped[:, 1] = -0.95 * flipped[:, 0] + math.sqrt(1 - 0.95**2) * flipped[:, 1]  # each in range, relation flipped
    broken = [scorer.update(100.0 + i, row) for i, row in enumerate(flipped)]
    assert np.abs(flipped).max() < 4.5
    assert any(r.level != "normal" for r in broken)
    assert any(r.kind == "relation" for r in broken if r.level != "normal")


def test_missing_values_and_irregular_timestamps_never_give_nan():
    rng = np.random.default_rng(RNG_SEED + 8)
    scorer = ComponentScorer(["a", "b"])
    rows = rng.normal(size=(1500, 2))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    times = np.cumsum(rng.exponential(1.0, len(rows)))
    results = [scorer.update(t, r) for t, r in zip(times, rows, strict=True)]
    assert all(np.isfinite(r.score) and 0.0 <= r.score < 1.0 for r in results)
    with pytest.raises(ValueError):
        scorer.update(0.0, [1.0])


def test_ten_thousand_normal_samples_of_eight_signals_raise_no_alarm():
    rng = np.random.default_rng(RNG_SEED + 9)
    scorer = ComponentScorer([f"s{i}" for i in range(8)])
    results = [scorer.update(float(i), row) for i, row in enumerate(rng.normal(size=(10_300, 8)))]
    assert sum(r.level != "normal" for r in results[300:]) == 0


# --- failure horizon ----------------------------------------------------------------------------------------
def test_failure_horizon_of_a_linear_trend_with_noise():
    rng = np.random.default_rng(RNG_SEED + 10)
    t = np.arange(0, 600, 2.0)
    v = 2.0 + 0.01 * t + rng.normal(0, 0.05, len(t))  # reaches 8 at t = 600 s: 1 s after the last sample
    h = failure_horizon(t, v, limit=10.0)
    expected = (10.0 - (2.0 + 0.01 * t[-1])) / 0.01  # 202 s from the newest sample
    assert h.seconds == pytest.approx(expected, rel=0.05)
    assert h.low < h.seconds < h.high
    text = h.describe("vibration", "mm/s", 10.0, "fault")
    assert text.startswith("at the current trend, vibration reaches its 10 mm/s fault limit in about 3.4 min")


def test_no_horizon_without_a_meaningful_trend():
    rng = np.random.default_rng(RNG_SEED + 11)
    t = np.arange(0, 600, 2.0)
    h = failure_horizon(t, 5.0 + rng.normal(0, 0.5, len(t)), limit=10.0)
    assert h.seconds is None and h.reason == "no trend"


def test_durations_read_as_an_operator_reads_them():
    assert [format_duration(s) for s in (40, 600, 3.5 * 3600, 6 * 86400)] == ["40 s", "10 min", "3.5 h", "6 days"]


# --- hostile values and damaged state ------------------------------------------------------------------------
def test_wild_values_give_finite_evidence_and_leave_the_windows_working():
    rng = np.random.default_rng(RNG_SEED + 12)
    ar = np.zeros(3000)
    for i in range(1, 3000):  # autocorrelated, so the window law is a widened (non-integer) one
        ar[i] = 0.8 * ar[i - 1] + 0.6 * rng.normal()
    scorer = ComponentScorer(["a"])
    scorer.retrain(ar[:2000, None])
    assert scorer.models[0].window_laws[0] != (10.0, 1.0)
    for i, value in enumerate([1e200, -1e300, math.inf, -math.inf, 3.4e38]):
        result = scorer.update(float(i), [value])
        assert math.isfinite(result.raw) and 0.0 <= result.score < 1.0
    assert all(math.isfinite(s) for s in scorer.models[0].sums)
    later = [scorer.update(10.0 + i, [v]).raw for i, v in enumerate(ar[2000:2400])]
    assert all(math.isfinite(e) for e in later)
    assert min(later[-200:]) < 1.0  # back to ordinary evidence once the wild values left the window


def test_one_error_code_in_the_learning_block_does_not_blind_the_signal():
    rng = np.random.default_rng(RNG_SEED + 13)
    learn = rng.normal(size=300)
    learn[5] = 3.4e38  # a PLC's "no value" float
    scorer = ComponentScorer(["a"])
    scorer.retrain(learn[:, None])
    results = [scorer.update(float(i), [20.0]) for i in range(5)]
    assert results[-1].level == "alarm"


def test_a_value_held_for_twelve_hours_is_not_in_alarm_indefinitely():
    rng = np.random.default_rng(RNG_SEED + 14)
    scorer = ComponentScorer(["a"])
    scorer.retrain(rng.normal(size=(300, 1)))
    episodes, level = set(), ""
    for t in range(12 * 3600):  # a sensor that stopped moving
        result = scorer.update(float(t), [0.4321])
        if result.episode:
            episodes.add(result.episode)
        level = result.level
    assert level == "normal" and len(episodes) == 1


def test_damaged_state_is_refused_quickly_not_looped_on():
    rng = np.random.default_rng(RNG_SEED + 15)
    scorer = ComponentScorer(["a", "b"])
    scorer.retrain(rng.normal(size=(300, 2)))
    for damage in ([[0.0, 1.0]], [[math.nan, 1.0]], [[3.0, -1.0]]):
        state = json.loads(json.dumps(scorer.state_dict()))
        state["models"][0]["window_laws"] = damage
        with pytest.raises(ValueError):
            ComponentScorer.from_state(state)
