"""Live telemetry on the GUI side: one frame timer drains the store and updates everything once.

The network thread (paho) only decodes into the thread-safe store. Here, on the
GUI thread, a ~30 Hz timer:

1. drains what changed since the last frame (a burst of messages for one signal
   costs one update: coalescing);
2. feeds the values to the state rules and the alarm life cycle (single writer);
3. turns component states into colours and badges in the scene, blinks
   components with unacknowledged alarms, moves robot arms toward their newest
   joint sample (interpolated between samples);
4. asks the view for one repaint, only if something changed.

The GUI never waits on the network: connecting and reconnecting happen on paho's thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from viewer.analytics.monitor import AnomalyMonitor
from viewer.model.layout import Layout
from viewer.scene.plant_scene import PlantScene
from viewer.telemetry.alarms import AlarmManager
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.mqtt_client import ConnectionStatus, MqttSettings, SettingsError, TelemetryClient
from viewer.telemetry.router import TelemetryRouter
from viewer.telemetry.states import SEVERITY, RuleChange, StateEngine
from viewer.telemetry.store import LatestValueStore, Sample

log = logging.getLogger(__name__)

FRAME_MS = 33
JOINTS_SIGNAL = "joints"
ANOMALY_SIGNAL = "anomaly"
INTERPOLATION_DELAY_S = 0.1
BLINK_S = 0.5
HISTORY_SAMPLES = 600  # per numeric signal, for the live plot (one per frame at most)


class TelemetryController(QObject):
    """Connects a layout to its broker and keeps the scene, alarms and status in step with the plant."""

    alarms_changed = Signal()
    states_changed = Signal(dict)  # {component id: displayed state}
    status_changed = Signal(object)  # TelemetryStatus
    values_changed = Signal(set)  # component ids whose live values changed this frame

    def __init__(self, scene: PlantScene, request_render: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.request_render = request_render
        self.store = LatestValueStore()
        self.alarms = AlarmManager()
        self.client: TelemetryClient | None = None
        self.engine: StateEngine | None = None
        self.layout: Layout | None = None
        self.displayed: dict[str, str] = {}
        self.history: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self.units: dict[tuple[str, str], str] = {}
        self._parents: dict[str, str] = {}
        self._blink_on = True
        self._last_blink = 0.0
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=40)
        self.frames = 0
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.on_frame)
        # Robot arms: recent joint samples per robot; drawn INTERPOLATION_DELAY_S behind real time so
        # there is always a sample on each side of the drawn instant and motion is smooth at frame rate.
        self._joint_samples: dict[str, deque[tuple[float, np.ndarray]]] = {}
        self._shown_pose: dict[str, np.ndarray] = {}
        self.clamped: dict[str, np.ndarray] = {}
        self._robots: set[str] = set()
        self.anomaly = AnomalyMonitor()
        self._anomaly_state: dict[str, str] = {}
        self._limits: dict[tuple[str | None, str], float] = {}
        self._bindings: dict[int, Any] = {}

    # ----------------------------------------------------------------- life cycle
    def start(self, layout: Layout, settings: MqttSettings) -> None:
        """Subscribe to the layout's bindings on the broker. :class:`SettingsError` for unusable settings."""
        self.stop()
        self.layout = layout
        self.store.clear()
        self.alarms = AlarmManager()
        self.history.clear()
        self.displayed.clear()
        table = BindingTable.from_layout(layout)
        self.units = {}  # (component, signal) -> unit, filled from each sample's binding as values arrive
        stale = float((layout.mqtt or {}).get("stale_after", 10.0))
        self.engine = StateEngine(table.bindings, stale_after=stale)
        self._bindings = {b.index: b for b in table.bindings}
        self._parents = {c.id: c.parent for c in layout.components if c.parent}
        self._robots = set(self.scene.robot_ids())
        self.anomaly = AnomalyMonitor(per_component={c.id: c.section("anomaly") for c in layout.components
                                                     if c.section("anomaly")})
        self._anomaly_state = {}
        self._limits = {}
        for b in table.bindings:  # a rule threshold is the natural limit for a failure horizon
            for rule in b.rules:
                if rule.get("state") in ("warning", "fault") and ("above" in rule or "below" in rule):
                    self._limits.setdefault((b.component, b.signal), float(rule.get("above", rule.get("below"))))
        self._joint_samples.clear()
        self._shown_pose.clear()
        self.clamped.clear()
        self.client = TelemetryClient(settings, TelemetryRouter(table, self.store))
        self.client.start()
        self.timer.start()

    def stop(self) -> None:
        """Disconnect and stop updating; the scene keeps its normal colours."""
        self.timer.stop()
        self._joint_samples.clear()
        if self.client is not None:
            self.client.stop(wait=False)
            self.client = None
        for component in list(self.displayed):
            if component in getattr(self.scene, "_index", {}):
                self.scene.set_component_color(component, None)
        self.displayed.clear()
        self.scene.set_badges({})

    @property
    def running(self) -> bool:
        """True while connected or trying to connect."""
        return self.client is not None

    def connection_status(self) -> ConnectionStatus | None:
        """The client's status, if started."""
        return self.client.status() if self.client else None

    # ----------------------------------------------------------------- the frame
    def on_frame(self) -> None:
        """Drain, evaluate, recolour, animate; one repaint at most."""
        now = time.time()
        self.frames += 1
        dirty = False
        engine = self.engine
        if engine is None:
            return
        changed_values: set[str] = set()
        alarms_moved = False
        for (component, signal), sample in self.store.drain().items():
            changed_values.add(component)
            if (component, signal) not in self.units and sample.binding in self._bindings:
                self.units[(component, signal)] = self._bindings[sample.binding].unit or ""
            value = sample.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                hist = self.history.get((component, signal))
                if hist is None:
                    hist = self.history[(component, signal)] = deque(maxlen=HISTORY_SAMPLES)
                hist.append((sample.received, float(value)))
            if signal == JOINTS_SIGNAL and component in self._robots:
                self._add_joint_sample(component, sample)
            self.anomaly.observe(component, signal, value, sample.received)
            for change in engine.update(component, signal, value, sample.received, sample.binding):
                if self.alarms.apply(change) is not None:
                    alarms_moved = True
        alarms_moved |= self._score_anomalies(now)
        if self.alarms.expire_shelving(now):
            alarms_moved = True
        if self._joint_samples:
            dirty |= self._animate_robots(now)
        engine.refresh(now)
        blink_toggled = now - self._last_blink >= BLINK_S
        if blink_toggled:
            self._blink_on = not self._blink_on
            self._last_blink = now
        if self._apply_states(blink_toggled or alarms_moved):
            dirty = True
        if alarms_moved:
            self.alarms_changed.emit()
        if changed_values:
            self.values_changed.emit(changed_values)
        self._rate_window.append((now, self.store.message_count()))
        if self.frames % 10 == 0:
            self.status_changed.emit(self.telemetry_status(now))
        if dirty:
            self.request_render()

    # ----------------------------------------------------------------- anomalies
    def _score_anomalies(self, now: float) -> bool:
        """Score components with new values; a warning turns them amber, an alarm red, both raise alarms."""
        moved = False
        for component, result in self.anomaly.step(now).items():
            state = {"warning": "warning", "alarm": "fault"}.get(result.level, "normal")
            previous = self._anomaly_state.get(component, "normal")
            if state == previous:
                continue
            self._anomaly_state[component] = state
            top = ", ".join(f"{s} {share:.0%}" for s, share in result.contributions.items()) or "several signals"
            for index, level_state in ((0, "warning"), (1, "fault")):
                active = SEVERITY[state] >= SEVERITY[level_state]
                was = SEVERITY[previous] >= SEVERITY[level_state]
                if active != was:
                    message = f"Anomaly ({'unusual' if index == 0 else 'highly unusual'}): {top}"
                    change = RuleChange(component, ANOMALY_SIGNAL, index, active, level_state, message,
                                        round(result.score, 6), now)
                    moved |= self.alarms.apply(change) is not None
        return moved

    def retrain_anomaly(self, component: str) -> bool:
        """Learn normal for a component from the recent history of its scored signals."""
        return self.anomaly.retrain(component, self.history)

    def anomaly_rows(self, component: str) -> list[tuple[str, str]]:
        """Explanation lines for the details panel: score and level, top signals, failure horizons."""
        entry = self.anomaly.components.get(component)
        if entry is None:
            return []
        result = entry.result
        if result.level == "learning":
            done = len(entry.scorer._buffer)
            return [("anomaly", f"learning normal ({done}/{entry.scorer.config.learn_samples} samples)")]
        rows = [("anomaly", f"{result.score:.4f} ({result.level})")]
        if result.contributions:
            rows.append(("why", ", ".join(f"{s} {share:.0%}" for s, share in result.contributions.items())))
        for signal in entry.signals:
            band = self.anomaly.normal_band(component, signal)
            if band is not None:
                rows.append((f"{signal} normal", f"{band[0]:.4g} to {band[1]:.4g}"))
            limit = self._limits.get((component, signal))
            if limit is not None:
                horizon = self.anomaly.horizon(self.history.get((component, signal), ()), limit)
                rows.append((f"{signal} horizon", horizon.describe(signal)))
        return rows

    # ----------------------------------------------------------------- robots
    def _add_joint_sample(self, component: str, sample: Sample) -> None:
        try:
            q = np.asarray(sample.value, dtype=float).reshape(-1)[:6]
        except (TypeError, ValueError):
            return
        if q.shape != (6,) or not np.isfinite(q).all():
            return
        samples = self._joint_samples.setdefault(component, deque(maxlen=16))
        if samples and sample.received <= samples[-1][0]:
            return
        samples.append((sample.received, q))

    def _animate_robots(self, now: float) -> bool:
        """Pose each arm at (now - delay), interpolated between the samples around that instant."""
        t = now - INTERPOLATION_DELAY_S
        moved = False
        for component, samples in self._joint_samples.items():
            while len(samples) >= 2 and samples[1][0] <= t:
                samples.popleft()  # keep the newest sample at or before t, and what follows
            t0, q0 = samples[0]
            if len(samples) >= 2 and t > t0:
                t1, q1 = samples[1]
                u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
                q = q0 + (q1 - q0) * u
            else:
                q = q0
            shown = self._shown_pose.get(component)
            if shown is not None and np.abs(shown - q).max() < 0.01:
                continue
            self.clamped[component] = self.scene.set_robot_pose(component, q)
            self._shown_pose[component] = q
            moved = True
        return moved

    def _apply_states(self, blink_step: bool) -> bool:
        """Component colours: the worst state of a component and its children; unacknowledged alarms blink."""
        assert self.engine is not None
        states: dict[str, str] = {}
        merged = dict(self.engine.component_states)
        for component, state in self._anomaly_state.items():  # anomaly levels colour like rule states
            if SEVERITY[state] > SEVERITY.get(merged.get(component, "unknown"), 0):
                merged[component] = state
        for component, state in merged.items():
            for target in self._with_ancestors(component):
                if SEVERITY[state] > SEVERITY.get(states.get(target, "unknown"), 0):
                    states[target] = state
        unacked = {a.component for a in self.alarms.alarms.values() if a.needs_attention}
        for a in list(unacked):
            unacked.update(self._with_ancestors(a))
        changed = {c: s for c, s in states.items() if self.displayed.get(c) != s}
        if not changed and not (blink_step and unacked):
            return False
        theme = self.scene.theme
        colors = {"warning": theme.warning, "fault": theme.fault, "stale": theme.stale, "off": theme.off,
                  "idle": theme.idle}
        for component, state in states.items():
            if component not in changed and component not in unacked:
                continue
            color = colors.get(state)
            if component in unacked and not self._blink_on and color is not None:
                color = theme.blink_dim
            self.scene.set_component_color(component, color)
        self.displayed.update(states)
        if changed:
            # One badge per problem: a sensor's badge is left out where its machine shows the same one.
            badges = {c: s for c, s in states.items() if s in ("warning", "fault", "stale")
                      and not (self._parents.get(c) and states.get(self._parents[c]) == s)}
            self.scene.set_badges(badges)
            self.states_changed.emit(dict(changed))
        return True

    def _with_ancestors(self, component: str) -> list[str]:
        chain = [component]
        seen = {component}
        parent = self._parents.get(component)
        while parent is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self._parents.get(parent)
        return chain

    # ----------------------------------------------------------------- status
    def telemetry_status(self, now: float | None = None) -> dict[str, Any]:
        """Connection state, messages/s, decode errors, age of the newest message."""
        now = now or time.time()
        stats = self.store.stats()
        rate = 0.0
        if len(self._rate_window) >= 2:
            (t0, n0), (t1, n1) = self._rate_window[0], self._rate_window[-1]
            rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        status = self.client.status() if self.client else None
        return {
            "state": status.state.value if status else "off",
            "detail": status.detail if status else "telemetry off",
            "gaps": status.gaps if status else [],
            "rate": rate,
            "messages": stats.messages,
            "decode_errors": stats.decode_errors,
            "errors_by_topic": stats.errors_by_topic,
            "age": (now - stats.newest_received) if stats.newest_received else None,
        }

    def live_values(self, component: str) -> list[tuple[str, Any, str, float, str]]:
        """(signal, value, unit, age s, state) of a component, for the details panel."""
        now = time.time()
        rows = []
        for signal, sample in sorted(self.store.signals_of(component).items()):
            # The sample names its binding; the store may hold values the frame loop has not drained yet.
            binding = self._bindings.get(sample.binding) if sample.binding is not None else None
            unit = (binding.unit or "") if binding is not None else ""
            state = self.engine.signal_state(component, signal) if self.engine else "unknown"
            flags = self.clamped.get(component)
            if signal == JOINTS_SIGNAL and flags is not None and flags.any():
                # Out-of-limit joint values are drawn clamped; say which, so nobody trusts the pose blindly.
                state = "out of limits: " + ", ".join(f"j{i + 1}" for i in np.flatnonzero(flags))
            rows.append((signal, sample.value, unit, now - sample.received, state))
        return rows


def settings_for(layout: Layout, broker: str | None, base_dir: Any = None) -> MqttSettings | None:
    """Connection settings: the layout's ``mqtt`` section, with ``--broker HOST:PORT`` overriding the address.

    ``None`` when the layout names no broker and none was given (telemetry stays off).
    """
    if layout.mqtt is None and broker is None:
        return None
    settings = MqttSettings.from_layout(layout.mqtt, base_dir)
    if broker:
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"--broker must be HOST:PORT, got {broker!r}")
        settings.host, settings.port = host, int(port)
    return settings
