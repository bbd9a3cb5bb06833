"""What one frame computes from the telemetry, without Qt: live and replay run this same code.

``TelemetryPipeline`` owns the router (decoding), the latest-value store, the state
rules, the alarm life cycle and the anomaly scoring of one layout. ``step(now)``
drains what arrived since the last step (coalescing a burst per signal into its
newest value), feeds the values to the rules, the alarms and the scorer, and says
what changed. The viewer's frame timer calls it 30 times a second on live data; the
replayer calls it at the same cadence of *recording* time, so a replay shows what
the live session showed, and a seek rebuilds the same state.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from viewer.analytics.health import RulEstimate, rul_from_trend
from viewer.analytics.history import LearnedHealth, LiveHealth, learn_health
from viewer.analytics.horizon import Horizon, format_duration
from viewer.analytics.monitor import AnomalyMonitor
from viewer.model.layout import Layout
from viewer.telemetry.alarms import AlarmManager
from viewer.telemetry.anomaly_alarms import ANOMALY_SIGNAL, AnomalyAlarms, Limit, anomaly_lines, anomaly_summary
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.router import TelemetryRouter
from viewer.telemetry.states import SEVERITY, StateEngine
from viewer.telemetry.store import LatestValueStore, Sample
from viewer.telemetry.trends import TrendStore

FRAME_S = 0.033  # the frame cadence, live and in replay
JOINTS_SIGNAL = "joints"
__all__ = ["ANOMALY_SIGNAL", "FRAME_S", "StepResult", "TelemetryPipeline"]
FAILURE_HORIZON_S = 14 * 86400.0  # the planner's usual look-ahead: two weeks
MIN_TREND_SAMPLES = 20  # fewer recent samples say nothing about a trend
TREND_SPAN_S = 3600.0  # the failure trend looks back an hour, where there is one
HISTORY_SAMPLES = 600  # per numeric signal, for the live plot (one per frame at most)


@dataclass
class FailureRisk:
    """A signal heading for its fault limit (``estimate.source == "trend"``), or a component's remaining life
    learned from its run-to-failure history (``"history"``: ``signal`` lists the signals the model reads,
    ``limit`` is NaN): when it may fail, and how likely within the horizon."""

    component: str
    signal: str
    limit: float
    unit: str
    estimate: RulEstimate
    probability: float  # of reaching the limit (trend) or failing (history) within horizon_s
    horizon_s: float
    histories: int = 0  # run-to-failure histories the model learned from (history only)

    def describe(self, name: str) -> str:
        e = self.estimate
        if e.source == "history":
            return (f"{name}: {100 * self.probability:.0f} % probability of failure within "
                    f"{format_duration(self.horizon_s)}; {100 * e.level:.0f} % interval {format_duration(e.low)}-"
                    f"{format_duration(e.high)}; learned from {self.histories} run-to-failure histories, based on "
                    f"{', '.join(e.based_on)}")
        limit = f"{self.limit:g} {self.unit}".rstrip()
        return (f"{name}: {100 * self.probability:.0f} % probability of reaching its fault limit ({limit}) within "
                f"{format_duration(self.horizon_s)}; {100 * e.level:.0f} % interval {format_duration(e.low)}-"
                f"{format_duration(e.high)}; from the trend of {self.signal}, no run-to-failure history")


@dataclass
class StepResult:
    """What one step changed."""

    changed_values: set[str] = field(default_factory=set)  # components with new values
    alarms_moved: bool = False
    joint_samples: list[tuple[str, Sample]] = field(default_factory=list)


class TelemetryPipeline:
    """Decoding, latest values, state rules, alarms and anomaly scores of one layout (see the module docstring)."""

    def __init__(self, layout: Layout, *, layout_dir: Path | str | None = None,
                 health: dict[str, LearnedHealth] | None = None) -> None:
        self.layout = layout
        self.table = BindingTable.from_layout(layout)
        self.store = LatestValueStore()
        self.router = TelemetryRouter(self.table, self.store)
        self.alarms = AlarmManager()
        stale = float((layout.mqtt or {}).get("stale_after", 10.0))
        opcua_stale = (layout.opcua or {}).get("stale_after")  # OPC UA bindings: the opcua section's, if it says
        self.engine = StateEngine(self.table.bindings, stale_after=stale,
                                  stale_after_opcua=float(opcua_stale) if opcua_stale is not None else None)
        self.bindings: dict[int, Any] = {b.index: b for b in self.table.bindings}
        self.parents = {c.id: c.parent for c in layout.components if c.parent}
        self.history: dict[tuple[str, str], deque[tuple[float, float]]] = {}  # recent raw samples (retrain)
        self.trends = TrendStore()  # 10 min / 1 h / 8 h for the plots, bounded
        self.units: dict[tuple[str, str], str] = {}  # (component, signal) -> unit, filled as values arrive
        self.anomaly = AnomalyMonitor(per_component={c.id: c.section("anomaly") for c in layout.components
                                                     if c.section("anomaly")})
        self.anomaly_state: dict[str, str] = {}
        self.anomaly_alarms = AnomalyAlarms(self.alarms, self.anomaly)
        self._first_out_seen = 0  # the alarm log's length when first-out last ran
        self.children: dict[str, list[str]] = {}
        for c in layout.components:
            if c.parent:
                self.children.setdefault(c.parent, []).append(c.id)
        self.limits: dict[tuple[str | None, str], list[Limit]] = {}
        for b in self.table.bindings:  # rule thresholds are the natural limits for failure horizons
            for rule in b.rules:
                if rule.get("state") in ("warning", "fault") and ("above" in rule or "below" in rule):
                    above = "above" in rule
                    value = float(rule["above"] if above else rule["below"])
                    self.limits.setdefault((b.component, b.signal), []).append(Limit(value, rule["state"], above))
        # Remaining-life models learned from the components' run-to-failure histories (``health`` sections):
        # fitted here unless the caller fitted them (in the background) and passes them in ``health``.
        self.health_problems: dict[str, str] = {}
        if health is None:
            health, self.health_problems = learn_health(layout.components, layout_dir)
        self.health = {cid: LiveHealth(learned) for cid, learned in health.items()}

    def step(self, now: float) -> StepResult:
        """Drain, evaluate rules, alarms and anomaly scores at time ``now``."""
        out = StepResult()
        engine = self.engine
        for (component, signal), sample in self.store.drain().items():
            out.changed_values.add(component)
            if (component, signal) not in self.units and sample.binding in self.bindings:
                self.units[(component, signal)] = self.bindings[sample.binding].unit or ""
            value = sample.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                hist = self.history.get((component, signal))
                if hist is None:
                    hist = self.history[(component, signal)] = deque(maxlen=HISTORY_SAMPLES)
                hist.append((sample.received, float(value)))
                self.trends.add((component, signal), sample.received, float(value))
            if signal == JOINTS_SIGNAL:
                out.joint_samples.append((component, sample))
            self.anomaly.observe(component, signal, value, sample.received)
            for change in engine.update(component, signal, value, sample.received, sample.binding):
                if self.alarms.apply(change) is not None:
                    out.alarms_moved = True
        for (component, signal), since in self.store.drain_offline().items():
            engine.set_offline(component, signal, since)
            out.changed_values.add(component)
        for (component, signal), when in self.store.drain_alive().items():
            engine.confirm_current(component, signal, when)
        for (component, signal), since in self.store.drain_uncertain().items():
            engine.set_uncertain(component, signal, since)
            out.changed_values.add(component)
        out.alarms_moved |= self._score_anomalies(now)
        if self.alarms.expire_shelving(now):
            out.alarms_moved = True
        if out.alarms_moved or self.alarms.logged != self._first_out_seen:  # an acknowledgement counts too
            out.alarms_moved |= self.anomaly_alarms.first_out(now)
            self._first_out_seen = self.alarms.logged
        engine.refresh(now)
        return out

    def _score_anomalies(self, now: float) -> bool:
        """Score components with new values: a warning turns them amber, an alarm red; one alarm an episode."""
        moved = False
        for component, result in self.anomaly.step(now).items():
            self.anomaly_state[component] = {"warning": "warning", "alarm": "fault"}.get(result.level, "normal")
            moved |= self.anomaly_alarms.process(component, result, now)
        return moved

    def accept_anomaly(self, component: str, now: float, who: str = "operator") -> bool:
        """"Accept as new normal" for a component's anomaly episode (logged in the alarm history)."""
        if not self.anomaly_alarms.accept(component, now, who):
            return False
        self.anomaly_state[component] = "normal"
        self.anomaly_alarms.first_out(now)
        return True

    # ----------------------------------------------------------------- what the scene shows
    def component_states(self) -> dict[str, str]:
        """The worst state of each component and its children, anomaly levels included."""
        states: dict[str, str] = {}
        merged = dict(self.engine.component_states)
        for component, state in self.anomaly_state.items():  # anomaly levels colour like rule states
            if SEVERITY[state] > SEVERITY.get(merged.get(component, "unknown"), 0):
                merged[component] = state
        for component, state in merged.items():
            for target in self.with_ancestors(component):
                if SEVERITY[state] > SEVERITY.get(states.get(target, "unknown"), 0):
                    states[target] = state
        return states

    def with_ancestors(self, component: str) -> list[str]:
        chain = [component]
        seen = {component}
        parent = self.parents.get(component)
        while parent is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self.parents.get(parent)
        return chain

    def unacknowledged(self) -> set[str]:
        """Components (and their ancestors) with an alarm that still needs the operator."""
        unacked = {a.component for a in self.alarms.alarms.values() if a.needs_attention}
        for a in list(unacked):
            unacked.update(self.with_ancestors(a))
        return unacked

    def retrain_anomaly(self, component: str) -> bool:
        """Learn normal for a component from the recent history of its scored signals."""
        return self.anomaly.retrain(component, self.history)

    def limits_of(self, component: str, signal: str) -> list[Limit]:
        """The rule limits of a signal (bindings that name the component, or a ``{n}`` placeholder)."""
        exact = self.limits.get((component, signal))
        if exact is not None:
            return exact
        return [lim for (c, s), lims in self.limits.items() if s == signal and c and "{" in c for lim in lims]

    def horizon_of(self, component: str, signal: str, limit: float) -> Horizon:
        """When the signal reaches ``limit`` at its recent trend."""
        return self.anomaly.horizon(self.history.get((component, signal), ()), limit)

    def anomaly_rows(self, component: str) -> list[tuple[str, str]]:
        """Explanation lines for the details panel: score, rarity, why, normal bands, failure horizons."""
        names = {c.id: c.display_name for c in self.layout.components}
        return anomaly_lines(self.anomaly, component, self.children.get(component, []), self.limits_of,
                             self.horizon_of, lambda c, s: self.units.get((c, s), ""),
                             lambda c: names.get(c, c))

    def failure_risks(self, component: str, horizon_s: float = FAILURE_HORIZON_S) -> list[FailureRisk]:
        """The remaining-life estimates of the component and its sensors, with P(failure within ``horizon_s``).

        A component with a model learned from its run-to-failure history (its ``health`` section) gets that
        model's estimate (``estimate.source == "history"``), fed its signals resampled onto the history's
        step; the others (and one whose model has no live row yet) get, for each signal with a fault limit
        and a trend toward it, the trend's estimate of reaching the limit (``"trend"``)."""
        risks = []
        for c in (component, *self.children.get(component, [])):
            learned = self._history_risk(c, horizon_s)
            if learned is not None:
                risks.append(learned)
                continue
            for (owner, signal), samples in self.history.items():
                if owner != c or len(samples) < MIN_TREND_SAMPLES:
                    continue
                for limit in self.limits_of(c, signal):
                    if limit.state != "fault":
                        continue
                    times, values = self._trend_points(c, signal, samples)
                    estimate = rul_from_trend(times, values, limit.value, signal=signal)
                    if estimate is not None:
                        risks.append(FailureRisk(c, signal, limit.value, self.units.get((c, signal), ""), estimate,
                                                 estimate.p_fail_within(horizon_s), horizon_s))
        return risks

    def _history_risk(self, component: str, horizon_s: float) -> FailureRisk | None:
        """The learned model's risk, after feeding it the samples that arrived since it was last asked (the
        component's own signals, else its sensors' of the same name)."""
        live = self.health.get(component)
        if live is None:
            return None
        samples: dict[str, Any] = {}
        for signal in live.signals:
            for owner in (component, *self.children.get(component, [])):
                if (owner, signal) in self.history:
                    samples[signal] = self.history[(owner, signal)]
                    break
        live.catch_up(samples)
        estimate = live.current()
        if estimate is None:
            return None
        return FailureRisk(component, ", ".join(live.signals), math.nan, "", estimate,
                           estimate.p_fail_within(horizon_s), horizon_s, live.learned.histories)

    def _trend_points(self, component: str, signal: str, samples: Any) -> tuple[np.ndarray, np.ndarray]:
        """The trend store's bucket means over the last hour (1 s buckets for the first ten minutes, then
        10 s: a trend that a frame-rate history of a few seconds cannot show), else the recent raw samples."""
        points = np.asarray(samples, dtype=float)
        hour = self.trends.over((component, signal), TREND_SPAN_S, float(points[-1, 0]))
        if hour is not None and len(hour.time) >= MIN_TREND_SAMPLES:
            return hour.time, hour.mean
        return points[:, 0], points[:, 1]

    def failure_rows(self, component: str, horizon_s: float = FAILURE_HORIZON_S) -> list[tuple[str, str]]:
        """The details panel's sentences of :meth:`failure_risks`: "ST10 spindle vibration: 87 % probability
        of reaching its fault limit (10 mm/s) within 14 days; 90 % interval 9 days-20 days; from the trend of
        vibration, no run-to-failure history"."""
        names = {c.id: c.display_name for c in self.layout.components}
        rows = [(f"{r.signal} failure" if r.estimate.source == "trend" else "remaining life",
                 r.describe(names.get(r.component, r.component))) for r in self.failure_risks(component, horizon_s)]
        for c in (component, *self.children.get(component, [])):
            if c in self.health_problems:  # a history that could not be learned from: say why, and that it fell back
                rows.append(("health history", f"{names.get(c, c)}: not learned from its run-to-failure history "
                                               f"({self.health_problems[c]}); the trend to the fault limits instead"))
        return rows

    def anomaly_summary(self, component: str) -> str:
        """Tooltip lines when the component (or one of its sensors) is unusual, with the nearest horizon."""
        lines = [anomaly_summary(self.anomaly, c) for c in (component, *self.children.get(component, []))]
        horizons = [text for key, text in self.anomaly_rows(component) if key.strip().endswith("horizon")]
        return "\n".join([line for line in lines if line] + horizons[:1])

    def live_values(self, component: str, now: float | None = None,
                    clamped: np.ndarray | None = None) -> list[tuple[str, Any, str, float, str]]:
        """(signal, value, unit, age s, state) of a component, for the details panel."""
        now = time.time() if now is None else now
        rows = []
        for signal, sample in sorted(self.store.signals_of(component).items()):
            # The sample names its binding; the store may hold values the frame loop has not drained yet.
            binding = self.bindings.get(sample.binding) if sample.binding is not None else None
            unit = (binding.unit or "") if binding is not None else ""
            state = self.engine.signal_state(component, signal)
            if signal == JOINTS_SIGNAL and clamped is not None and clamped.any():
                # Out-of-limit joint values are drawn clamped; say which, so nobody trusts the pose blindly.
                state = "out of limits: " + ", ".join(f"j{i + 1}" for i in np.flatnonzero(clamped))
            rows.append((signal, sample.value, unit, now - sample.received, state))
        return rows

    def snapshot(self) -> dict[str, Any]:
        """A comparable summary of the state (tests and seek checks): states, alarms, latest values."""
        return {
            "states": self.component_states(),
            "alarms": sorted((a.component, a.signal, a.state.value, a.severity, a.message)
                             for a in self.alarms.alarms.values()),
            "values": {f"{c}/{s}": _plain(v.value) for (c, s), v in sorted(self.store.latest_all().items())},
            "anomaly": dict(sorted(self.anomaly_state.items())),
            "alarm_history": [(e.time, e.kind, e.component, e.message) for e in self.alarms.history],
            "alarms_logged": self.alarms.logged,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
