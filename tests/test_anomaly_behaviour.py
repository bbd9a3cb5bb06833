"""The behaviour suite's cases, short: what an operator calls normal raises nothing, every change is flagged.

The cases are generated (benchmarks/anomaly_cases.py, seeded); what counts as normal and as a change is
decided by how the signal was made, never by what the scorer returned.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from anomaly_cases import STEP_KINDS, cases, run_case

from viewer.analytics.scorer import ComponentScorer, ScorerConfig

SEED = 7
ACCEPT_AFTER = ScorerConfig().accept_after


@pytest.mark.parametrize("name", list(cases(short=True)))
def test_each_case_as_an_operator_would_judge_it(name):
    case = cases(short=True)[name](np.random.default_rng(SEED))
    outcome = run_case(case, lambda signals: ComponentScorer(signals))
    assert outcome.false_alarms == 0, f"{name}: {outcome.false_alarms} false alarms"
    assert outcome.missed == [], f"{name}: missed {outcome.missed}"
    for kind, delay in outcome.delays:
        assert delay <= (50 if kind in STEP_KINDS else 400), (kind, delay)  # a broken rhythm takes a cycle or two
    if case.lasting:  # a lasting change becomes the new normal after accept_after (1 s a sample here)
        assert outcome.back_to_normal is not None
        assert ACCEPT_AFTER <= outcome.back_to_normal <= ACCEPT_AFTER + 120
    if case.drift is not None:
        assert outcome.horizon_before_limit, "the slow drift got no failure horizon before its limit"


def test_a_lasting_step_alarms_once_then_is_normal_and_the_old_level_stays_normal():
    rng = np.random.default_rng(SEED + 1)
    scorer = ComponentScorer(["x"], ScorerConfig(accept_after=600.0))
    levels = [scorer.update(float(t), [10 + 0.5 * rng.normal()]).level for t in range(1000)]
    levels += [scorer.update(float(t), [14 + 0.5 * rng.normal()]).level for t in range(1000, 2000)]
    levels += [scorer.update(float(t), [10 + 0.5 * rng.normal()]).level for t in range(2000, 2500)]
    flagged = np.array([lv in ("warning", "alarm") for lv in levels])
    assert flagged[1000:1010].any() and not flagged[:1000].any()
    rises = np.flatnonzero(flagged[1:] & ~flagged[:-1]) + 1
    assert len(rises) == 1  # one episode: no chattering
    assert not flagged[1000 + 600 + 5:].any()  # accepted after 600 s; back at 10 is normal too


def test_operating_levels_learned_together_keep_their_relation_checked():
    # Two signals switch together between idle and running; T² on the z-scores against each signal's own
    # level still sees a relation that breaks while both stay on known levels.
    rng = np.random.default_rng(SEED + 2)
    running = (np.arange(3000) // 100) % 2 == 1
    current = np.where(running, 20.0, 2.0) + 0.3 * rng.normal(size=3000)
    noise = rng.normal(size=3000)
    vibration = np.where(running, 4.0, 0.5) + 0.05 * noise + 0.5 * (current - np.where(running, 20.0, 2.0))
    scorer = ComponentScorer(["current", "vibration"], ScorerConfig(learn_samples=1000))
    results = [scorer.update(float(i), [c, v]) for i, (c, v) in enumerate(zip(current, vibration, strict=True))]
    assert all(r.level == "normal" for r in results[1000:])
    assert len(scorer.level_bands("current")) == 2 and len(scorer.level_bands("vibration")) == 2
    # Now the vibration moves against the current while both stay inside their levels' bands.
    rng2 = np.random.default_rng(SEED + 3)
    broken = []
    for i in range(400):
        on = (i // 100) % 2 == 1
        c = (20.0 if on else 2.0) + 0.3 * rng2.normal()
        v = (4.0 if on else 0.5) + 0.2 * rng2.normal() - 0.45 * (c - (20.0 if on else 2.0))
        broken.append(scorer.update(3000.0 + i, [c, v]))
    assert any(r.level != "normal" and r.kind == "relation" for r in broken)


def test_a_genuinely_new_level_of_a_multi_level_signal_is_flagged():
    rng = np.random.default_rng(SEED + 4)
    scorer = ComponentScorer(["x"])
    level = np.where((np.arange(4000) // 80) % 2 == 1, 50.0, 5.0)
    for i, v in enumerate(level + rng.normal(size=4000)):
        assert scorer.update(float(i), [v]).level == "normal" or i < 300
    results = [scorer.update(4000.0 + i, [27.0 + rng.normal()]) for i in range(20)]
    assert any(r.level != "normal" for r in results)


def test_an_operating_level_the_learning_period_missed_is_learned_once_it_keeps_coming_back():
    # The machine idled through the whole learning period; running (50) then comes and goes every few
    # minutes. Each return is an episode at first; the third one teaches the level, then it is normal.
    rng = np.random.default_rng(SEED + 5)
    scorer = ComponentScorer(["current"])
    values = list(5 + rng.normal(size=400))
    for _ in range(12):
        values += list(50 + rng.normal(size=120)) + list(5 + rng.normal(size=400))
    episodes, learned, last = set(), [], 0
    for i, v in enumerate(values):
        result = scorer.update(float(i), [v])
        if result.episode and result.episode != last:
            episodes.add(result.episode)
        if result.accepted == "recurring":
            learned.append(i)
        last = result.episode
    assert len(episodes) == 3 and len(learned) == 1
    assert [round((lo + hi) / 2) for lo, hi in scorer.level_bands("current")] == [5, 50]
