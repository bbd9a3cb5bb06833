"""A component's anomaly score: learning period, combined detectors, smoothing, hysteresis, minimum duration.

``ComponentScorer.update(timestamp, values)`` returns a :class:`ScoreResult`: the score
(0..1), the level (normal / warning / alarm) and which signals contribute most. The
first ``learn_samples`` samples teach it what normal looks like (score 0, level
"learning"); after that:

1. each signal gets a robust univariate score, the signals together a T² score;
   the component's raw score is the larger of the T² score and the univariate
   maximum corrected for the number of signals (so ten sensors do not raise ten
   times the false alarms of one);
2. the raw score is smoothed as evidence: an exponential average of −log10 of its
   tail probability, so one spike raises the score but does not flash the component,
   while a few clearly abnormal samples in a row reach the alarm level quickly;
3. levels switch with hysteresis (on above ``warn``, off below ``warn_off``) and only
   after ``min_samples`` consecutive samples past the threshold.

It can be frozen (stop adapting), reset (learn again) or retrained on a block; its
whole state is plain JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.analytics.detectors import MultivariateT2, RobustUnivariate

LEVELS = ("normal", "warning", "alarm")
EXPLAIN_ABOVE = 0.9  # below this raw score a sample is unremarkable: no explanation is computed
MIN_TAIL = 1e-12  # evidence is capped at 12 decades so one absurd value cannot pin the score for minutes


@dataclass(frozen=True)
class ScorerConfig:
    """Thresholds and learning settings; the defaults work without configuration."""

    learn_samples: int = 300
    warn: float = 0.999  # one normal sample in a thousand would pass
    warn_off: float = 0.99
    alarm: float = 0.99999
    alarm_off: float = 0.999
    min_samples: int = 3  # consecutive samples past a threshold before the level changes
    smoothing: float = 0.3  # weight of the newest sample in the smoothed evidence
    adapt: float = 1e-3  # how fast the univariate baselines follow slow drift


@dataclass
class ScoreResult:
    """The outcome of one sample."""

    score: float
    level: str
    contributions: dict[str, float] = field(default_factory=dict)  # signal -> share, largest first
    raw: float = 0.0


class ComponentScorer:
    """Scores the signals of one component together (see the module docstring)."""

    def __init__(self, signals: list[str], config: ScorerConfig | None = None) -> None:
        if not signals:
            raise ValueError("a scorer needs at least one signal")
        self.signals = list(signals)
        self.config = config or ScorerConfig()
        self.univariate = RobustUnivariate(len(signals), adapt=self.config.adapt)
        self.multivariate = MultivariateT2(len(signals)) if len(signals) > 1 else None
        self.frozen = False
        self.reset()

    # --- life cycle -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget what normal looked like and learn again from the next samples."""
        self._buffer: list[np.ndarray] = []
        self.univariate.learned = False
        if self.multivariate is not None:
            self.multivariate.learned = False
        self.level = "learning"
        self._evidence = 0.0  # smoothed -log10(tail probability): 0 = perfectly normal, 3 = a 1e-3 event
        self._streak = 0

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or resume) adapting the baseline to drift."""
        self.frozen = frozen
        self.univariate.frozen = frozen

    def retrain(self, values: np.ndarray) -> None:
        """Learn normal from a block (a recording marked as normal), replacing what was learned."""
        block = np.asarray(values, dtype=float).reshape(-1, len(self.signals))
        self.univariate.learn(block)
        if self.multivariate is not None:
            self.multivariate.learn(block)
        self._buffer = []
        self.level = "normal"
        self._evidence, self._streak = 0.0, 0

    @property
    def learning(self) -> bool:
        """True while the learning period lasts."""
        return self.level == "learning"

    # --- scoring --------------------------------------------------------------------------------------
    def _raw(self, uni: np.ndarray, multi: float) -> float:
        uni_tail = (1.0 - float(uni.max())) * len(self.signals)  # Bonferroni: the max of n is n times likelier
        return max(float(multi), 1.0 - min(uni_tail, 1.0))

    def update(self, timestamp: float, values: Any) -> ScoreResult:
        """Score one sample (values in the order of :attr:`signals`; NaN = missing)."""
        row = np.asarray(values, dtype=float).reshape(-1)
        if self.learning:
            if np.isfinite(row).any():
                self._buffer.append(row)
            if len(self._buffer) >= self.config.learn_samples:
                self.retrain(np.vstack(self._buffer))
            return ScoreResult(0.0, "learning")
        self.univariate.adapting = self.level == "normal"  # never learn an anomaly as the new normal
        uni = self.univariate.update(timestamp, row)
        multi, shares = 0.0, np.zeros(len(self.signals))
        if self.multivariate is not None:
            multi, shares = self.multivariate.update(timestamp, row)
        raw = self._raw(uni, multi)
        raw = min(max(raw, 0.0), 1.0) if math.isfinite(raw) else 0.0  # NaN never reaches the scene
        a = self.config.smoothing
        evidence = -math.log10(max(1.0 - raw, MIN_TAIL))
        self._evidence = (1.0 - a) * self._evidence + a * evidence
        score = min(max(1.0 - 10.0 ** -self._evidence, 0.0), 1.0)
        self._step_level(score)
        contributions: dict[str, float] = {}
        if raw >= EXPLAIN_ABOVE or self.level != "normal":  # explanations only where someone will read them
            if self.multivariate is None or not np.isfinite(shares).all() or not shares.any():
                weights = np.nan_to_num(uni)
            else:
                weights = np.clip(shares, 0.0, None)
            total = float(weights.sum())
            order = np.argsort(-weights)
            contributions = {self.signals[i]: round(float(weights[i] / total), 4) for i in order[:3]
                             if total > 0 and weights[i] > 0}
        return ScoreResult(score, self.level, contributions, raw)

    def _step_level(self, score: float) -> None:
        c = self.config
        target = {"normal": 0, "warning": 1, "alarm": 2}[self.level]
        wanted = 2 if score >= c.alarm else 1 if score >= c.warn else 0
        # Hysteresis: stay up while above the lower "off" threshold of the current level.
        if target == 2 and score >= c.alarm_off:
            wanted = max(wanted, 2)
        elif target >= 1 and score >= c.warn_off:
            wanted = max(wanted, 1)
        if wanted == target:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= c.min_samples:
            self.level = LEVELS[wanted]
            self._streak = 0

    # --- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue scoring exactly where this scorer is, as JSON-ready data."""
        return {
            "signals": self.signals,
            "config": self.config.__dict__,
            "univariate": self.univariate.state_dict(),
            "multivariate": self.multivariate.state_dict() if self.multivariate is not None else None,
            "buffer": [row.tolist() for row in self._buffer],
            "level": self.level,
            "evidence": self._evidence,
            "streak": self._streak,
            "frozen": self.frozen,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ComponentScorer:
        """Rebuild from :meth:`state_dict` output."""
        scorer = cls(list(state["signals"]), ScorerConfig(**state["config"]))
        scorer.univariate = RobustUnivariate.from_state(state["univariate"])
        if state["multivariate"] is not None:
            scorer.multivariate = MultivariateT2.from_state(state["multivariate"])
        scorer._buffer = [np.asarray(row, dtype=float) for row in state["buffer"]]
        scorer.level = state["level"]
        scorer._evidence = float(state["evidence"])
        scorer._streak = int(state["streak"])
        scorer.frozen = bool(state["frozen"])
        return scorer
