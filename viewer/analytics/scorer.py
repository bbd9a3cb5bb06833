"""A component's anomaly score: its signals' evidence combined, levels with hysteresis, episodes, new normal.

``ComponentScorer.update(timestamp, values)`` returns a :class:`ScoreResult`. The first
``learn_samples`` samples teach each signal's :class:`~viewer.analytics.signal_model.SignalModel`
and the relation between the signals (score 0, level "learning"). After that, per sample:

1. every signal gives its evidence (value, persistence window, flat line, rhythm);
2. the signals together give Hotelling's T² of their z-scores against the levels they are at
   (a broken relation between signals that each stay in range), per sample and over a window;
3. the component's evidence is the strongest of these, less ``log10`` of how many chances a
   normal sample has to look that unusual somewhere: measured once at learning by simulating
   normal data with the learned correlation, so the score is calibrated for one signal or fifty,
   independent or correlated (``score = 1 - 10**-evidence``, see :mod:`~viewer.analytics.calibration`);
4. levels rise after ``min_samples`` samples past a threshold and fall after ``off_samples``
   below its lower "off" threshold (hysteresis and an off-delay: no chattering): warning above
   ``warn`` (default: one normal sample in three million), alarm above ``alarm`` (one in three
   billion). The thresholds are far out on purpose: a plant scores millions of samples a day.

**Episodes and the new normal.** Leaving normal starts an *episode* (one id until the component
has been normal again for ``rearm_s``: one alarm per episode, however the level flickers). A
lasting change is accepted as the new normal when the operator says so (:meth:`accept`) or by
itself after ``accept_after`` seconds in the episode: each signal adds the levels of the episode's
samples (or takes their new spread), so a new set point or a new tool stops alarming, and the
old level stays normal too. A frozen scorer keeps its reference: no drift following, no
automatic acceptance.

The whole state is plain JSON (:meth:`state_dict`): a saved model is data, never code.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.analytics.calibration import (
    LN10,
    chi2_tail_evidence,
    chi2_tail_evidence_array,
    evidence_to_score,
    evidence_to_score_array,
    gamma_evidence_threshold,
    gamma_tail_evidence,
    gamma_tail_evidence_array,
    normal_tail_ln_array,
    score_to_evidence,
)
from viewer.analytics.signal_model import (
    Z_RELATION,
    SignalModel,
    SignalSettings,
    capped_exponential_moments,
    soft_cap,
    soft_cap_array,
    window_laws,
)

LEVELS = ("normal", "warning", "alarm")
EXPLAIN_ABOVE = 2.0  # evidence below this is unremarkable: no explanation is computed
Z_CLIP = Z_RELATION
CALIBRATION_SAMPLES = 100_000
CALIBRATION_MAX_SIGNALS = 64
CALIBRATION_SEED = 20261201
STATE_VERSION = 2


@dataclass(frozen=True)
class ScorerConfig:
    """Thresholds and learning settings; the defaults work without configuration (see README)."""

    learn_samples: int = 300
    # Score thresholds: a share 1 - q of normal samples passes q. Far out on purpose: a plant scores
    # millions of samples a day. Chosen leave-one-group-out with the window, off-delay and run margin
    # (benchmarks/anomaly_defaults.py, README): warning at 10^-6.5, alarm at 10^-9.5, each with two
    # decades of hysteresis.
    warn: float = 1.0 - 10**-6.5
    warn_off: float = 1.0 - 10**-4.5
    alarm: float = 1.0 - 10**-9.5
    alarm_off: float = 1.0 - 10**-6.5
    min_samples: int = 3  # consecutive samples past a threshold before the level rises
    off_samples: int = 10  # ... and below its "off" threshold before it falls (ISA-18.2 off-delay: no chattering)
    windows: tuple[int, ...] = (10,)  # persistence window, samples
    adapt: float = 1e-3  # slowest drift-following rate (per sample)
    accept_after: float = 1800.0  # s in an episode before it becomes the new normal by itself; 0 = never
    rearm_s: float = 300.0  # s of normal before a new episode (and a new alarm) can start
    max_modes: int = 6
    run_margin: float = 3.0  # decades a run on one side of a level must beat its law by (a sign test)

    def signal_settings(self) -> SignalSettings:
        """The part each signal's model uses."""
        return SignalSettings(windows=tuple(int(w) for w in self.windows), adapt=self.adapt,
                              max_modes=self.max_modes, run_margin=self.run_margin)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = dict(self.__dict__)
        out["windows"] = list(self.windows)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScorerConfig:
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "windows" in known:
            known["windows"] = tuple(int(w) for w in known["windows"])
        return cls(**known)


@dataclass
class ScoreResult:
    """The outcome of one sample."""

    score: float
    level: str
    contributions: dict[str, float] = field(default_factory=dict)  # signal -> share, largest first
    raw: float = 0.0  # the evidence, in decades (score = 1 - 10**-raw)
    kind: str = ""  # what the top signal shows: value, level, flat, rhythm, relation
    episode: int = 0  # id of the episode in progress (0: none)
    episode_start: float | None = None
    accepted: str = ""  # "automatic": an episode became the new normal by itself on this sample;
    # "recurring": an episode just ended, and a level it showed came back often enough to be learned


class ComponentScorer:
    """Scores the signals of one component together (see the module docstring)."""

    def __init__(self, signals: list[str], config: ScorerConfig | None = None) -> None:
        if not signals:
            raise ValueError("a scorer needs at least one signal")
        self.signals = list(signals)
        self.config = config or ScorerConfig()
        self.frozen = False
        self._thresholds = tuple(score_to_evidence(q) for q in (self.config.warn, self.config.warn_off,
                                                                 self.config.alarm, self.config.alarm_off))
        self._episode_id = 0
        self.reset()

    # --- life cycle -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget what normal looked like and learn again from the next samples."""
        settings = self.config.signal_settings()
        self.models = [SignalModel(settings) for _ in self.signals]
        self._buffer: list[list[float]] = []
        self.level = "learning"
        self._streak = 0
        self.precision: np.ndarray | None = None  # of the clipped z-scores (T²)
        self._covariance: np.ndarray | None = None
        self._t2_laws: list[tuple[float, float]] = []
        self.offset = 0.0  # log10 of the effective number of chances (calibration)
        self._end_episode()
        self._reset_t2_windows()
        self._last: list[tuple[float, str, float]] = [(0.0, "", 0.0)] * len(self.signals)  # per signal
        self._window_cap = self.config.signal_settings().window_cap
        self._t2_window_floor: list[float] = []
        self._episode_kinds: dict[int, str] = {}  # signal -> the strongest kind it showed in the episode

    def _reset_t2_windows(self) -> None:
        longest = max(self.config.windows, default=1)
        self._t2_ring = [0.0] * longest
        self._t2_pos = 0
        self._t2_sums = [0.0] * len(self.config.windows)

    def _end_episode(self) -> None:
        self._episode_kinds = {}
        self._episode_start: float | None = None
        self._normal_since: float | None = None
        self._normal_count = 0
        self._recent: deque[list[float]] = deque(maxlen=max(self.config.learn_samples, 20))

    def freeze(self, frozen: bool = True) -> None:
        """Keep (or stop keeping) the reference as it is: no drift following, no automatic acceptance."""
        self.frozen = frozen

    @property
    def learning(self) -> bool:
        """True while the learning period lasts."""
        return self.level == "learning"

    @property
    def learned_samples(self) -> int:
        """How many samples the learning period has collected so far."""
        return len(self._buffer)

    def retrain(self, values: np.ndarray) -> None:
        """Learn normal from a block (rows = samples, in time order), replacing what was learned."""
        block = np.asarray(values, dtype=float).reshape(-1, len(self.signals))
        for j, model in enumerate(self.models):
            model.learn(block[:, j])
        self._learn_relation(block)
        self._buffer = []
        self.level = "normal"
        self._streak = 0
        self._end_episode()

    def _z_rows(self, block: np.ndarray) -> np.ndarray:
        z = np.zeros(block.shape)
        for j, model in enumerate(self.models):
            if model.learned:
                z[:, j] = model.nearest_array(block[:, j])[0]
        return np.clip(z, -Z_CLIP, Z_CLIP)

    def _learn_relation(self, block: np.ndarray) -> None:
        """The covariance of the signals' z-scores (T²), its window law and the calibration offset."""
        n = len(self.signals)
        z = self._z_rows(block)
        if n > 1 and len(z) > n + 2:
            self._set_covariance(np.atleast_2d(np.cov(z, rowvar=False)))
            t2 = np.einsum("ij,jk,ik->i", z, self.precision, z)
            y = soft_cap_array(chi2_tail_evidence_array(t2, n) * LN10, self._window_cap)
            self._t2_laws = window_laws(y, self.config.windows, *capped_exponential_moments(self._window_cap))
        else:
            # One signal, or fewer samples than a covariance needs: no T², signals taken as independent.
            self._covariance = np.diag(np.maximum(np.var(z, axis=0), 1e-12)) if len(z) else np.eye(n)
            self.precision = None
            self._t2_laws = []
        self._reset_t2_windows()
        self._set_t2_floors()
        self.offset = self._calibrate()

    def _set_covariance(self, cov: np.ndarray) -> None:
        """The z-scores' covariance as learned; T² uses it shrunk toward its diagonal (a few hundred
        samples give a noisy covariance whose small eigenvalues would turn harmless wiggles into a
        huge T²), the calibration simulates from it as it is."""
        n = len(cov)
        self._covariance = cov
        self.precision = np.linalg.pinv(0.9 * cov + 0.1 * np.diag(np.diag(cov)) + 1e-6 * np.eye(n))

    def _set_t2_floors(self) -> None:
        """Where the T² window sums pass one decade (below, no tail is computed)."""
        self._t2_window_floor = [gamma_evidence_threshold(1.0, a, b) for a, b in self._t2_laws]

    def _calibrate(self) -> float:
        """log10 of how many times likelier than one test the combined statistic passes a threshold.

        Simulates normal data with the learned correlation of the z-scores (unit variances: the scale
        of each signal is the model's business, the number of chances the combination's) through the
        same combination (every signal's value and window evidence, T² and its window) and compares how
        often the maximum passes 2.5 and 3 decades with one test alone. Seeded: the same correlation
        always gives the same offset. Kept cheap, since learning ends in the frame loop: one signal's
        offset depends on the windows alone and is simulated once per process; up to
        CALIBRATION_MAX_SIGNALS signals take 100,000 samples for a few signals down to 20,000 (about 0.1-0.3 s
        once per learning, measured on a 2-core VM); beyond, the
        single-signal offset times the correlation's effective number of signals (Li & Ji), plus T².
        """
        n = len(self.signals)
        if n == 1:
            return _single_signal_offset(tuple(self.config.windows), self._window_cap)
        cov = self._covariance if self._covariance is not None else np.eye(n)
        scale = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
        corr = cov / np.outer(scale, scale)
        if n > CALIBRATION_MAX_SIGNALS:
            single = _single_signal_offset(tuple(self.config.windows), self._window_cap)
            eig = np.abs(np.linalg.eigvalsh(corr))
            effective = max(1.0, float(np.sum((eig >= 1.0) + (eig - np.floor(eig)))))
            return single + math.log10(effective + 2.0)  # + T² and its window
        samples = min(CALIBRATION_SAMPLES, max(20_000, 400_000 // n))  # exceedances cluster: it takes many
        return _simulated_offset(corr, self.precision, self._t2_laws, self._t2_window_floor, self.config.windows,
                                 self._window_cap, samples)

    # --- scoring --------------------------------------------------------------------------------------
    def update(self, timestamp: float, values: Any) -> ScoreResult:
        """Score one sample (values in the order of :attr:`signals`; NaN = missing)."""
        row = values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]
        if len(row) != len(self.signals):
            raise ValueError(f"expected {len(self.signals)} values, got {len(row)}")
        if self.level == "learning":
            if any(v == v for v in row):
                self._buffer.append(row)
            if len(self._buffer) >= self.config.learn_samples:
                self.retrain(np.array(self._buffer))
            return ScoreResult(0.0, "learning")
        adapt = not self.frozen and self.level == "normal"  # never learn an anomaly as the new normal
        learn = not self.frozen
        # (evidence, kind, z for T²) of each signal
        self._last = last = [m.update(x, timestamp, adapt, learn) for m, x in zip(self.models, row, strict=True)]
        evidence, kind, _z = max(last, key=_evidence_of) if len(last) > 1 else last[0]
        if self.precision is not None:
            relation = self._relation([r[2] for r in last])
            if relation > evidence:
                # A broken relation is the explanation only while no signal is unusual by itself: a signal
                # 7 sigma up also breaks its relation to the others, but "vibration: lasting shift" says more.
                if evidence < self._thresholds[0]:
                    kind = "relation"
                evidence = relation
        evidence = evidence - self.offset if evidence > self.offset else 0.0
        self._step_level(evidence)
        result = ScoreResult(evidence_to_score(evidence), self.level, raw=evidence, kind=kind)
        if evidence >= EXPLAIN_ABOVE or self.level != "normal":
            result.contributions = self._explain(kind != "relation")
        if self._episode_start is not None or self.level != "normal":
            self._track_episode(timestamp, row, result)
        return result

    def _relation(self, zs: list[float]) -> float:
        """T² evidence of the z-scores together, per sample and over the persistence windows."""
        clipped = np.array(zs)  # clipped by the signal models
        t2 = float(clipped.dot(self.precision.dot(clipped)))
        self._last_z = clipped
        evidence = chi2_tail_evidence(t2, len(zs))
        y = evidence * LN10
        capped = soft_cap(y, self._window_cap)
        ring, pos, sums = self._t2_ring, self._t2_pos, self._t2_sums
        for j, w in enumerate(self.config.windows):
            total = sums[j] + capped - ring[pos - w]  # a negative index wraps around the ring
            sums[j] = total
            if total > self._t2_window_floor[j]:
                e = gamma_tail_evidence(total, *self._t2_laws[j])
                if e > evidence:
                    evidence = e
        ring[pos] = capped
        self._t2_pos = pos + 1 if pos + 1 < len(ring) else 0
        return evidence

    def _explain(self, by_signal: bool) -> dict[str, float]:
        if by_signal or self.precision is None:
            weights = [r[0] for r in self._last]
        else:
            z = self._last_z
            weights = [max(w, 0.0) for w in (z * (self.precision @ z)).tolist()]  # each signal's share of T²
        total = sum(weights)
        if not total > 0:
            return {}
        top = sorted(range(len(weights)), key=weights.__getitem__, reverse=True)[:3]
        return {self.signals[i]: round(weights[i] / total, 4) for i in top if weights[i] > 0.05 * total}

    def _step_level(self, evidence: float) -> None:
        warn, warn_off, alarm, alarm_off = self._thresholds
        current = LEVELS.index(self.level)
        wanted = 2 if evidence >= alarm else 1 if evidence >= warn else 0
        # Hysteresis: stay up while above the lower "off" threshold of the current level.
        if current == 2 and evidence >= alarm_off:
            wanted = 2
        elif current >= 1 and evidence >= warn_off:
            wanted = max(wanted, 1)
        if wanted == current:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= (self.config.min_samples if wanted > current else self.config.off_samples):
            self.level = LEVELS[wanted]
            self._streak = 0

    def _track_episode(self, timestamp: float, row: list[float], result: ScoreResult) -> None:
        c = self.config
        if self.level != "normal":
            if self._episode_start is None:
                self._episode_id += 1
                self._episode_start = timestamp
            self._normal_since, self._normal_count = None, 0
            self._recent.append(row)
            for j, (e, kind, _z) in enumerate(self._last):
                if e >= EXPLAIN_ABOVE:
                    self._episode_kinds[j] = kind
            if (not self.frozen and c.accept_after > 0 and timestamp - self._episode_start >= c.accept_after
                    and len(self._recent) >= 20):
                self._accept(timestamp)
                result.level, result.accepted = "normal", "automatic"
                result.score, result.raw = 0.0, 0.0
                return
        elif self._episode_start is not None:  # the unusual rows alone are what acceptance learns from
            if self._normal_since is None:
                self._normal_since = timestamp
            self._normal_count += 1
            if timestamp - self._normal_since >= c.rearm_s and self._normal_count >= c.min_samples:
                if not self.frozen and self._learn_recurring(timestamp):
                    result.accepted = "recurring"
                self._end_episode()
        if self._episode_start is not None:
            result.episode, result.episode_start = self._episode_id, self._episode_start

    def score_batch(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, evidence) of many samples (rows, in time order) against what was learned, vectorised.

        Exactly what a frozen copy of this scorer, with its running statistics fresh, would give
        streaming the rows one by one (no levels, no episodes, nothing learned); for analysing a
        block after the fact and for measuring the calibration on millions of samples.
        """
        if self.learning:
            raise ValueError("the scorer is still learning")
        block = np.asarray(values, dtype=float).reshape(-1, len(self.signals))
        evidence = np.zeros(len(block))
        z = np.zeros(block.shape)
        for j, model in enumerate(self.models):
            e, z[:, j] = model.evidence_batch(block[:, j])
            evidence = np.maximum(evidence, e)
        if self.precision is not None:
            n = len(self.signals)
            zc = np.clip(z, -Z_CLIP, Z_CLIP)
            inst = chi2_tail_evidence_array(np.einsum("ij,jk,ik->i", zc, self.precision, zc), n)
            relation = inst
            capped = soft_cap_array(inst * LN10, self._window_cap)
            for w, (shape, scale), floor in zip(self.config.windows, self._t2_laws, self._t2_window_floor,
                                                strict=True):
                sums = _rolling_sum(capped[:, None], w)[:, 0]
                relation = np.maximum(relation, np.where(sums > floor, gamma_tail_evidence_array(sums, shape, scale),
                                                         0.0))
            evidence = np.maximum(evidence, relation)
        evidence = np.maximum(evidence - self.offset, 0.0)
        return evidence_to_score_array(evidence), evidence

    def _learn_recurring(self, timestamp: float) -> bool:
        """An episode ended by itself: its unexplained levels count toward learning recurring levels."""
        if not self._recent:
            return False
        block = np.array(self._recent)
        keep = max(self.config.accept_after, 3600.0) * 24.0  # a level must come back within a day of the last
        learned = False
        for j in self._episode_kinds:
            learned |= self.models[j].note_episode(block[:, j], timestamp, keep)
        return learned

    # --- the new normal --------------------------------------------------------------------------------
    def accept(self, timestamp: float) -> bool:
        """The operator's "Accept as new normal": the episode's values become normal now.

        Returns False when there is nothing to accept (still learning, or no episode in progress).
        """
        if self.learning or self._episode_start is None or not self._recent:
            return False
        self._accept(timestamp)
        return True

    def _accept(self, timestamp: float) -> None:
        # The newer half of the episode: after a ramp or a drift, the level it arrived at is the new normal.
        recent = list(self._recent)
        block = np.array(recent[len(recent) // 2:] if len(recent) >= 40 else recent)
        for j, model in enumerate(self.models):
            model.accept(block[:, j], timestamp, self._episode_kinds.get(j, ""))
        n = len(self.signals)
        if self.precision is not None and len(block) >= max(30, 5 * n):
            fresh = np.atleast_2d(np.cov(self._z_rows(block), rowvar=False))
            self._set_covariance(0.5 * (self._covariance + fresh))
            self.offset = self._calibrate()
        self._reset_t2_windows()
        self.level = "normal"
        self._streak = 0
        self._end_episode()

    # --- what the operator sees ------------------------------------------------------------------------
    def signal_evidence(self) -> dict[str, tuple[float, str]]:
        """Each signal's evidence (decades) and kind at the latest sample."""
        return {s: (e, k) for s, (e, k, _z) in zip(self.signals, self._last, strict=True)}

    def normal_band(self, signal: str, width: float = 3.0) -> tuple[float, float] | None:
        """The learned normal band of a signal at its current level, inside its physical range."""
        if self.learning or signal not in self.signals:
            return None
        return self.models[self.signals.index(signal)].normal_band(width)

    def level_bands(self, signal: str, width: float = 3.0) -> list[tuple[float, float]]:
        """The normal band of every operating level learned for a signal, lowest first."""
        if self.learning or signal not in self.signals:
            return []
        return self.models[self.signals.index(signal)].level_bands(width)

    def episode_signals(self) -> list[str]:
        """The signals that showed evidence in the episode in progress."""
        return [self.signals[j] for j in sorted(self._episode_kinds)]

    # --- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue scoring exactly where this scorer is, as JSON-ready data."""
        return {
            "version": STATE_VERSION,
            "signals": self.signals,
            "config": self.config.to_dict(),
            "models": [m.state_dict() for m in self.models],
            "buffer": [list(r) for r in self._buffer],
            "level": self.level,
            "streak": self._streak,
            "frozen": self.frozen,
            "precision": self.precision.tolist() if self.precision is not None else None,
            "covariance": self._covariance.tolist() if self._covariance is not None else None,
            "t2_laws": [list(w) for w in self._t2_laws],
            "t2_ring": list(self._t2_ring), "t2_pos": self._t2_pos, "t2_sums": list(self._t2_sums),
            "offset": self.offset,
            "episode": {"id": self._episode_id, "start": self._episode_start, "normal_since": self._normal_since,
                        "normal_count": self._normal_count, "recent": [list(r) for r in self._recent],
                        "kinds": {str(j): k for j, k in self._episode_kinds.items()}},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ComponentScorer:
        """Rebuild from :meth:`state_dict` output (raises KeyError, TypeError or ValueError if malformed)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"scorer state version {state.get('version')!r}, expected {STATE_VERSION}")
        scorer = cls([str(s) for s in state["signals"]], ScorerConfig.from_dict(state["config"]))
        settings = scorer.config.signal_settings()
        n = len(scorer.signals)
        models = [SignalModel.from_state(m, settings) for m in state["models"]]
        if len(models) != n:
            raise ValueError("one model per signal expected")
        scorer.models = models
        scorer._buffer = [[float(x) for x in r] for r in state["buffer"]]
        if state["level"] not in (*LEVELS, "learning"):
            raise ValueError(f"unknown level {state['level']!r}")
        scorer.level = state["level"]
        scorer._streak = int(state["streak"])
        scorer.frozen = bool(state["frozen"])
        if state["precision"] is not None:
            scorer.precision = np.asarray(state["precision"], dtype=float).reshape(n, n)
        if state["covariance"] is not None:
            scorer._covariance = np.asarray(state["covariance"], dtype=float).reshape(-1, max(n, 1))
        scorer._t2_laws = [(float(a), float(b)) for a, b in state["t2_laws"]]
        if scorer.precision is not None and len(scorer._t2_laws) != len(scorer.config.windows):
            raise ValueError("one T² window law per window expected")
        ring = [float(x) for x in state["t2_ring"]]
        if len(ring) == len(scorer._t2_ring):
            scorer._t2_ring, scorer._t2_pos = ring, int(state["t2_pos"]) % len(ring)
            scorer._t2_sums = [float(x) for x in state["t2_sums"]][: len(scorer._t2_sums)]
        scorer.offset = float(state["offset"])
        scorer._set_t2_floors()
        episode = state["episode"]
        scorer._episode_id = int(episode["id"])
        scorer._episode_start = None if episode["start"] is None else float(episode["start"])
        scorer._normal_since = None if episode["normal_since"] is None else float(episode["normal_since"])
        scorer._normal_count = int(episode["normal_count"])
        scorer._recent.extend([float(x) for x in r] for r in episode["recent"])
        scorer._episode_kinds = {int(j): str(k) for j, k in episode.get("kinds", {}).items() if 0 <= int(j) < n}
        return scorer


_SINGLE_SIGNAL_OFFSET: dict[tuple[tuple[int, ...], float], float] = {}


def _single_signal_offset(windows: tuple[int, ...], cap: float) -> float:
    """One signal's offset depends on the windows alone: simulated once per process."""
    key = (windows, cap)
    if key not in _SINGLE_SIGNAL_OFFSET:
        _SINGLE_SIGNAL_OFFSET[key] = _simulated_offset(np.eye(1), None, [], [], windows, cap, CALIBRATION_SAMPLES)
    return _SINGLE_SIGNAL_OFFSET[key]


def _simulated_offset(corr: np.ndarray, precision: np.ndarray | None, t2_laws: list[tuple[float, float]],
                      t2_floors: list[float], windows: tuple[int, ...], cap: float, samples: int) -> float:
    """See :meth:`ComponentScorer._calibrate`."""
    n = len(corr)
    rng = np.random.default_rng(CALIBRATION_SEED + n)
    try:
        root = np.linalg.cholesky(corr + 1e-9 * np.eye(n))
    except np.linalg.LinAlgError:
        root = np.eye(n)
    z = rng.standard_normal((samples, n)) @ root.T
    y = -normal_tail_ln_array(z)
    best = np.max(y, axis=1) / LN10
    capped = soft_cap_array(y, cap)
    for w in windows:  # simulated samples are independent: the exact window law applies
        sums = _rolling_sum(capped, w)
        best = np.maximum(best, np.max(gamma_tail_evidence_array(sums, float(w)), axis=1))
    if precision is not None:
        zc = np.clip(z, -Z_CLIP, Z_CLIP)
        inst = chi2_tail_evidence_array(np.einsum("ij,jk,ik->i", zc, precision, zc), n)
        best = np.maximum(best, inst)
        capped_t2 = soft_cap_array(inst * LN10, cap)[:, None]
        for w, (shape, law_scale), floor in zip(windows, t2_laws, t2_floors, strict=True):
            sums = _rolling_sum(capped_t2, w)[:, 0]
            best = np.maximum(best, np.where(sums > floor, gamma_tail_evidence_array(sums, shape, law_scale), 0.0))
    best = best[max(windows, default=1):]  # the windows' start-up is not normal data
    levels = (2.5, 3.0)  # as far out as a simulation of this size can count (the thresholds are further still)
    hits = sum(int(np.sum(best >= level)) for level in levels)
    expected = sum(len(best) * 10.0**-level for level in levels)
    return max(0.0, math.log10(max(hits, 1) / expected))


def _evidence_of(result: tuple[float, str, float]) -> float:
    return result[0]


def _rolling_sum(values: np.ndarray, w: int) -> np.ndarray:
    """Sum of the last ``w`` rows at each row (fewer at the start)."""
    c = np.cumsum(values, axis=0)
    out = c.copy()
    out[w:] = c[w:] - c[:-w]
    return out
