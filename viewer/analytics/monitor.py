"""Anomaly scoring of a whole plant: one :class:`ComponentScorer` per component, fed from live values.

The GUI's frame timer calls :meth:`AnomalyMonitor.observe` for each drained value and
:meth:`AnomalyMonitor.step` once per frame. A component's scorer covers its numeric
signals (counters and vectors such as joint angles are left out); the set is fixed once
no new signal appeared for ``settle_s`` seconds, and a later new signal restarts learning.
History is not kept here: the caller already keeps each signal's recent values (for its
plots) and passes them in for failure horizons and retraining, so there is one copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.analytics.horizon import Horizon, failure_horizon
from viewer.analytics.scorer import ComponentScorer, ScorerConfig, ScoreResult

SKIPPED_SIGNALS = ("count", "counter", "cycles", "joints")


@dataclass
class ComponentAnomaly:
    """The scoring state of one component."""

    signals: list[str]
    scorer: ComponentScorer
    latest: dict[str, float] = field(default_factory=dict)
    result: ScoreResult = field(default_factory=lambda: ScoreResult(0.0, "learning"))


class AnomalyMonitor:
    """Per-component anomaly scorers for a plant (single writer: the GUI thread)."""

    def __init__(self, config: ScorerConfig | None = None, settle_s: float = 3.0,
                 per_component: dict[str, dict[str, Any]] | None = None) -> None:
        self.config = config or ScorerConfig()
        self.settle_s = settle_s
        self.per_component = per_component or {}
        self.components: dict[str, ComponentAnomaly] = {}
        self._pending: dict[str, tuple[set[str], float]] = {}  # component -> (signals seen, time of the last new one)
        self._values: dict[str, dict[str, float]] = {}
        self._dirty: set[str] = set()

    @staticmethod
    def scorable(signal: str, value: Any) -> bool:
        """Numeric, finite-or-missing, and not a counter or a vector."""
        if signal.lower() in SKIPPED_SIGNALS or isinstance(value, bool):
            return False
        return isinstance(value, int | float)

    def observe(self, component: str, signal: str, value: Any, time: float) -> None:
        """A new value of a component's signal."""
        settings = self.per_component.get(component, {})
        if settings.get("enabled") is False:
            return
        wanted = settings.get("signals")
        if (wanted is not None and signal not in wanted) or (wanted is None and not self.scorable(signal, value)):
            return
        value = float(value)
        self._values.setdefault(component, {})[signal] = value if math.isfinite(value) else math.nan
        self._dirty.add(component)
        known = self.components.get(component)
        if known is not None and signal in known.signals:
            return
        seen, _ = self._pending.get(component, (set(), time))
        if signal not in seen:
            self._pending[component] = (seen | {signal}, time)

    def step(self, now: float) -> dict[str, ScoreResult]:
        """Score every component whose values changed; returns their results."""
        for component, (seen, last_new) in list(self._pending.items()):
            if now - last_new >= self.settle_s:
                self._start(component, sorted(seen))
                del self._pending[component]
        results = {}
        for component in self._dirty:
            entry = self.components.get(component)
            if entry is None:
                continue
            values = self._values.get(component, {})
            row = [values.get(s, math.nan) for s in entry.signals]
            entry.result = entry.scorer.update(now, row)
            results[component] = entry.result
        self._dirty.clear()
        return results

    def _start(self, component: str, signals: list[str]) -> None:
        previous = self.components.get(component)
        if previous is not None:
            signals = sorted(set(signals) | set(previous.signals))
        settings = self.per_component.get(component, {})
        config = self.config
        overrides = {k: settings[k] for k in ("warn", "alarm", "learn_samples") if k in settings}
        if overrides:
            config = ScorerConfig(**{**config.__dict__, **overrides})
        self.components[component] = ComponentAnomaly(signals, ComponentScorer(signals, config))

    # --- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What each component's scorer has learned, as JSON-ready data (recordings carry it)."""
        return {"components": {c: {"signals": e.signals, "scorer": e.scorer.state_dict()}
                               for c, e in self.components.items()}}

    def load_state(self, state: dict[str, Any]) -> int:
        """Continue from :meth:`state_dict` output; returns how many components were restored."""
        restored = 0
        for component, entry in (state.get("components") or {}).items():
            try:
                scorer = ComponentScorer.from_state(entry["scorer"])
            except (KeyError, TypeError, ValueError):
                continue  # one unreadable entry does not cost the others
            self.components[component] = ComponentAnomaly(list(entry["signals"]), scorer)
            restored += 1
        return restored

    # --- operator actions -----------------------------------------------------------------------------
    def reset(self, component: str) -> None:
        """Learn normal again from the next samples."""
        if component in self.components:
            self.components[component].scorer.reset()

    def freeze(self, component: str, frozen: bool = True) -> None:
        """Stop (or resume) adapting to drift."""
        if component in self.components:
            self.components[component].scorer.freeze(frozen)

    def retrain(self, component: str, history: Mapping[tuple[str, str], Iterable[tuple[float, float]]]) -> bool:
        """Learn normal from recent values, ``history[(component, signal)] = [(time, value), ...]``."""
        entry = self.components.get(component)
        if entry is None:
            return False
        columns = [np.array([v for _t, v in history.get((component, s), ())]) for s in entry.signals]
        n = min((len(c) for c in columns), default=0)
        if n < 20:
            return False
        entry.scorer.retrain(np.column_stack([c[-n:] for c in columns]))
        return True

    # --- explanations ----------------------------------------------------------------------------------
    @staticmethod
    def horizon(points: Iterable[tuple[float, float]], limit: float) -> Horizon:
        """When a signal with these recent (time, value) points reaches ``limit`` at its trend."""
        data = np.asarray(list(points), dtype=float)
        if len(data) == 0:
            return Horizon(None, None, None, 0.0, "no data")
        return failure_horizon(data[:, 0], data[:, 1], limit)

    def normal_band(self, component: str, signal: str, width: float = 3.0) -> tuple[float, float] | None:
        """The learned normal range of a signal (centre ± ``width`` robust sigmas)."""
        entry = self.components.get(component)
        if entry is None or entry.scorer.learning or signal not in entry.signals:
            return None
        i = entry.signals.index(signal)
        center = float(entry.scorer.univariate.center[i])
        scale = float(entry.scorer.univariate.scale[i])
        return center - width * scale, center + width * scale
