"""Anomaly scoring of a whole plant: one :class:`ComponentScorer` per component, fed from live values.

The frame loop calls :meth:`AnomalyMonitor.observe` for each drained value and
:meth:`AnomalyMonitor.step` once per frame. A component's scorer covers its numeric signals
(counters and vectors such as joint angles are left out); the set is fixed once no new signal
appeared for ``settle_s`` seconds, and a later new signal restarts learning. Each step scores
the components that received values; a signal without a new value in that step counts as
missing for that sample (so a slow signal is not read as a flat line).

History is not kept here: the caller already keeps each signal's recent values (for its plots)
and passes them in for failure horizons and retraining, so there is one copy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from viewer.analytics.horizon import Horizon, failure_horizon
from viewer.analytics.scorer import ComponentScorer, ScorerConfig, ScoreResult

log = logging.getLogger(__name__)
SKIPPED_SIGNALS = ("count", "counter", "cycles", "joints")
# Layout keys (the component's "anomaly" section) that override the scorer's defaults.
OVERRIDES = ("warn", "alarm", "learn_samples", "accept_after")


@dataclass
class ComponentAnomaly:
    """The scoring state of one component."""

    signals: list[str]
    scorer: ComponentScorer
    result: ScoreResult = field(default_factory=lambda: ScoreResult(0.0, "learning"))


class AnomalyMonitor:
    """Per-component anomaly scorers for a plant (single writer: the frame loop's thread)."""

    def __init__(self, config: ScorerConfig | None = None, settle_s: float = 3.0,
                 per_component: dict[str, dict[str, Any]] | None = None) -> None:
        self.config = config or ScorerConfig()
        self.settle_s = settle_s
        self.per_component = per_component or {}
        self.components: dict[str, ComponentAnomaly] = {}
        self._pending: dict[str, tuple[set[str], float]] = {}  # component -> (signals seen, time of the last new one)
        self._fresh: dict[str, dict[str, float]] = {}  # values that arrived since the last step
        self._latest: dict[str, dict[str, float]] = {}

    @staticmethod
    def scorable(signal: str, value: Any) -> bool:
        """Numeric, finite-or-missing, and not a counter or a vector."""
        if signal.lower() in SKIPPED_SIGNALS or isinstance(value, bool):
            return False
        return isinstance(value, int | float)

    def config_for(self, component: str) -> ScorerConfig:
        """The scorer configuration of a component: the defaults with its layout overrides."""
        settings = self.per_component.get(component, {})
        overrides = {k: settings[k] for k in OVERRIDES if k in settings}
        return replace(self.config, **overrides) if overrides else self.config

    def observe(self, component: str, signal: str, value: Any, time: float) -> None:
        """A new value of a component's signal."""
        settings = self.per_component.get(component, {})
        if settings.get("enabled") is False:
            return
        wanted = settings.get("signals")
        if (wanted is not None and signal not in wanted) or (wanted is None and not self.scorable(signal, value)):
            return
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        value = float(value)
        value = value if math.isfinite(value) else math.nan
        self._fresh.setdefault(component, {})[signal] = value
        self._latest.setdefault(component, {})[signal] = value
        known = self.components.get(component)
        if known is not None and signal in known.signals:
            return
        seen, _ = self._pending.get(component, (set(), time))
        if signal not in seen:
            self._pending[component] = (seen | {signal}, time)

    def step(self, now: float) -> dict[str, ScoreResult]:
        """Score every component that received values since the last step; returns their results."""
        for component, (seen, last_new) in list(self._pending.items()):
            if now - last_new >= self.settle_s:
                self._start(component, sorted(seen))
                del self._pending[component]
        results = {}
        fresh, self._fresh = self._fresh, {}
        for component, values in fresh.items():
            entry = self.components.get(component)
            if entry is None:
                continue
            try:
                entry.result = entry.scorer.update(now, [values.get(s, math.nan) for s in entry.signals])
            except (ArithmeticError, ValueError, IndexError) as exc:  # one component must not stop the frame
                log.error("anomaly scorer of %s failed (%s: %s); it learns normal again", component,
                          type(exc).__name__, exc)
                entry.scorer.reset()
                entry.result = ScoreResult(0.0, "learning")
            results[component] = entry.result
        return results

    def _start(self, component: str, signals: list[str]) -> None:
        previous = self.components.get(component)
        if previous is not None:
            signals = sorted(set(signals) | set(previous.signals))
        self.components[component] = ComponentAnomaly(signals, ComponentScorer(signals, self.config_for(component)))

    # --- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What each component's scorer has learned, as JSON-ready data (recordings carry it)."""
        return {"components": {c: {"signals": e.signals, "scorer": e.scorer.state_dict()}
                               for c, e in self.components.items()}}

    def load_state(self, state: dict[str, Any]) -> int:
        """Continue from :meth:`state_dict` output; returns how many components were restored.

        An entry that cannot be read (another version, damaged) is skipped: that component learns
        again, the others keep what they had learned.
        """
        restored = 0
        components = state.get("components") if isinstance(state, dict) else None
        for component, entry in (components if isinstance(components, dict) else {}).items():
            try:
                scorer = ComponentScorer.from_state(entry["scorer"])
                signals = [str(s) for s in entry["signals"]]
            except (KeyError, TypeError, ValueError, IndexError):
                continue  # one unreadable entry does not cost the others
            self.components[str(component)] = ComponentAnomaly(signals, scorer)
            restored += 1
        return restored

    # --- operator actions -----------------------------------------------------------------------------
    def reset(self, component: str) -> None:
        """Learn normal again from the next samples."""
        if component in self.components:
            self.components[component].scorer.reset()

    def freeze(self, component: str, frozen: bool = True) -> None:
        """Keep (or stop keeping) the component's reference as it is."""
        if component in self.components:
            self.components[component].scorer.freeze(frozen)

    def accept(self, component: str, now: float) -> bool:
        """"Accept as new normal": the component's current episode becomes normal now."""
        entry = self.components.get(component)
        if entry is None or not entry.scorer.accept(now):
            return False
        entry.result = ScoreResult(0.0, "normal")
        return True

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
        """The learned normal range of a signal at its current level, inside its physical range."""
        entry = self.components.get(component)
        if entry is None:
            return None
        return entry.scorer.normal_band(signal, width)

    def latest(self, component: str, signal: str) -> float | None:
        """The newest scored value of a signal."""
        value = self._latest.get(component, {}).get(signal)
        return None if value is None or value != value else value
