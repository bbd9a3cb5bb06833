"""The anomaly behaviour suite: generated signals (seeded) with known normal stretches and true changes.

Shared by ``benchmarks/anomaly_suite.py`` (long cases, several seeds) and ``tests/test_anomaly_behaviour.py``
(short ones). Each case is a :class:`Case`: times, values (one column), the index and kind of each true
change, the stretches where every alarm is a false alarm, and whether the change lasts (then it must
become the new normal after the scorer's ``accept_after``).

What is normal and what is a change here is what an operator would say, not what a detector finds easy:
a machine switching between idle and running levels, a daily cycle, a batch sawtooth and isolated single-
sample spikes are normal (a spike raises the score, never an alarm); a 6-sigma step, a lasting spread
change, a new level, a flat-lined sensor and a broken rhythm (the cycle stops, the batch is never emptied)
are changes. A slow drift toward a rule limit is tracked by the failure horizon, not alarmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

STEP_KINDS = ("step", "spread", "new level", "flat")  # the delay goal (<= 50 samples) applies to these


@dataclass
class Case:
    """One generated signal and what an operator would call it."""

    name: str
    times: np.ndarray
    values: np.ndarray  # one column per signal
    changes: list[tuple[int, str]] = field(default_factory=list)  # (first changed sample, kind)
    normal: list[tuple[int, int]] = field(default_factory=list)  # [start, end) where an alarm is false
    lasting: bool = False  # the change stays: it must become the new normal
    drift: tuple[int, float] | None = None  # (drift start, the rule limit it heads for)


def _seconds(n: int, step: float = 1.0) -> np.ndarray:
    return np.arange(n) * step


def step_change(rng: np.random.Generator, sign: float, n: int, at: int) -> Case:
    """Level 10, noise 0.5, a 6-sigma step at ``at`` that stays."""
    x = 10.0 + 0.5 * rng.normal(size=n)
    x[at:] += sign * 3.0
    return Case(f"step {'up' if sign > 0 else 'down'}", _seconds(n), x[:, None], [(at, "step")], [(300, at)], True)


def spread_change(rng: np.random.Generator, n: int, at: int) -> Case:
    """Noise 0.5, three times wider from ``at`` on."""
    x = 10.0 + 0.5 * rng.normal(size=n)
    x[at:] = 10.0 + 1.5 * rng.normal(size=n - at)
    return Case("spread", _seconds(n), x[:, None], [(at, "spread")], [(300, at)], True)


def slow_drift(rng: np.random.Generator, n: int, at: int) -> Case:
    """From ``at`` the level drifts from 10 to the rule limit 20 by the end (20 sigma in n - at samples)."""
    x = 10.0 + 0.5 * rng.normal(size=n)
    x += np.clip((np.arange(n) - at) / (n - at), 0.0, None) * 10.0
    return Case("drift", _seconds(n), x[:, None], [], [(300, at)], drift=(at, 20.0))


def two_levels(rng: np.random.Generator, n: int, at: int) -> Case:
    """Idle (5) and running (50) with random dwell (10 + exponential 90 samples), then a new level 27."""
    level, on = [], False
    while len(level) < n:
        level += [on] * int(10 + rng.exponential(90))
        on = not on
    x = np.where(np.array(level[:n]), 50.0, 5.0) + rng.normal(size=n)
    x[at:] = 27.0 + rng.normal(size=n - at)
    return Case("two levels", _seconds(n), x[:, None], [(at, "new level")], [(300, at)], True)


def daily_cycle(rng: np.random.Generator, days: int, stop_day: int) -> Case:
    """A daily cycle (amplitude 10, noise 1) every 5 minutes; on ``stop_day`` the cycle stops for a day."""
    per_day = 288
    n = days * per_day
    t = _seconds(n, 300.0)
    x = 50.0 + 10.0 * np.sin(2 * np.pi * t / 86400.0) + rng.normal(size=n)
    at = stop_day * per_day
    x[at:at + per_day] = 50.0 + rng.normal(size=per_day)
    return Case("daily cycle", t, x[:, None], [(at, "rhythm")], [(300, at), (at + 2 * per_day, n)])


def batch_sawtooth(rng: np.random.Generator, n: int, at: int, period: int = 120) -> Case:
    """A batch fills over ``period`` samples and empties; from ``at`` it stays full for 1,500 samples."""
    x = 10.0 * (np.arange(n) % period) / period + 0.2 * rng.normal(size=n)
    x[at:at + 1500] = 10.0 + 0.2 * rng.normal(size=min(1500, n - at))
    return Case("sawtooth", _seconds(n), x[:, None], [(at, "rhythm")], [(300, at), (at + 2500, n)])


def isolated_spikes(rng: np.random.Generator, n: int) -> Case:
    """Noise with single-sample 8-sigma spikes, one in 500 samples on average: normal (no alarm)."""
    x = 10.0 + rng.normal(size=n)
    hit = rng.random(n) < 1 / 500
    x[hit] += 8.0 * rng.choice([-1.0, 1.0], size=int(hit.sum()))
    return Case("spikes", _seconds(n), x[:, None], [], [(300, n)])


def stuck_sensor(rng: np.random.Generator, n: int, at: int) -> Case:
    """From ``at`` the sensor repeats its last value for 2,000 samples, then recovers."""
    x = 20.0 + rng.normal(size=n)
    x[at:at + 2000] = x[at]
    return Case("stuck", _seconds(n), x[:, None], [(at, "flat")], [(300, at), (at + 3000, n)])


def gaps(rng: np.random.Generator, n: int) -> Case:
    """Noise with ten 10-minute pauses in the data and ten runs of 50 missing values: normal."""
    t = _seconds(n)
    for g in rng.choice(np.arange(1000, n), 10, replace=False):
        t[g:] += 600.0
    x = 10.0 + rng.normal(size=n)
    for g in rng.choice(np.arange(1000, n - 100), 10, replace=False):
        x[g:g + 50] = np.nan
    return Case("gaps", t, x[:, None], [], [(300, n)])


def cases(short: bool = False) -> dict[str, Callable[[np.random.Generator], Case]]:
    """The suite's cases by name; ``short`` ones (a few thousand samples) for the tests."""
    lasting = 6500 if short else 9000  # long enough for a change to become normal (accept_after) at 1 Hz
    return {
        "step up": lambda r: step_change(r, +1.0, lasting, 1500 if short else 2000),
        "step down": lambda r: step_change(r, -1.0, lasting, 1500 if short else 2000),
        "spread": lambda r: spread_change(r, lasting, 1500 if short else 2000),
        "drift": lambda r: slow_drift(r, 8000 if short else 20000, 1000 if short else 2000),
        "two levels": lambda r: two_levels(r, 8000 if short else 20000, 4000 if short else 15000),
        "daily cycle": lambda r: daily_cycle(r, 10 if short else 12, 7 if short else 8),
        "sawtooth": lambda r: batch_sawtooth(r, 5000 if short else 12000, 2500 if short else 8000),
        "spikes": lambda r: isolated_spikes(r, 6000 if short else 20000),
        "stuck": lambda r: stuck_sensor(r, 6000 if short else 8000, 2500 if short else 3000),
        "gaps": lambda r: gaps(r, 6000 if short else 20000),
    }


@dataclass
class Outcome:
    """What a scorer did on one case."""

    false_alarms: int  # alarms (episodes) started inside the normal stretches (and after a change became normal)
    normal_samples: int
    delays: list[tuple[str, int]]  # (kind, samples from the change to the first warning or alarm)
    missed: list[str]  # kinds of changes never flagged
    back_to_normal: int | None  # samples from a lasting change until it became normal for good
    horizon_before_limit: bool | None  # drift: a horizon toward the limit was reported before it was reached


def run_case(case: Case, make_scorer: Callable[[list[str]], object]) -> Outcome:
    """Stream a case through a fresh scorer and measure what an operator would see."""
    from viewer.analytics.horizon import failure_horizon

    scorer = make_scorer([f"s{j}" for j in range(case.values.shape[1])])
    flagged = np.zeros(len(case.times), dtype=bool)
    episode_starts = []  # one alarm per episode (the pipeline raises one per episode, however the level flickers)
    accepted_at = []  # samples where an episode became the new normal by itself
    last_episode = 0
    horizon_seen = None if case.drift is None else False
    for i, (t, row) in enumerate(zip(case.times.tolist(), case.values.tolist(), strict=True)):
        result = scorer.update(t, row)  # type: ignore[attr-defined]
        flagged[i] = result.level in ("warning", "alarm")
        if result.episode and result.episode != last_episode:
            episode_starts.append(i)
        if result.accepted == "automatic":
            accepted_at.append(i)
        last_episode = result.episode
        if case.drift is not None and not horizon_seen and i > case.drift[0] and i % 250 == 0:
            lo = max(0, i - 600)
            h = failure_horizon(case.times[lo:i + 1], case.values[lo:i + 1, 0], case.drift[1])
            horizon_seen = h.seconds is not None and case.values[i, 0] < case.drift[1]
    raised = np.array(episode_starts, dtype=int)
    normal = list(case.normal)
    delays, missed, back = [], [], None
    for at, kind in case.changes:
        hits = np.flatnonzero(flagged[at:])
        if len(hits) == 0:
            missed.append(kind)
            continue
        delays.append((kind, int(hits[0])))
        if case.lasting:
            after = [a for a in accepted_at if a >= at]
            if after:  # it became the new normal: from there on every alarm is false
                back = after[0] - at
                normal.append((after[0] + 1, len(flagged)))
    false_alarms = sum(int(((raised >= a) & (raised < b)).sum()) for a, b in normal)
    return Outcome(false_alarms, sum(b - a for a, b in normal), delays, missed, back, horizon_seen)
