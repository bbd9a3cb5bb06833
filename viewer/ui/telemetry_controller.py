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
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from viewer.model.layout import Layout
from viewer.scene.plant_scene import PlantScene
from viewer.telemetry.alarm_journal import AlarmJournal
from viewer.telemetry.mqtt_client import (  # noqa: F401 - settings_for: the window imports it from here
    ConnectionStatus,
    MqttSettings,
    SettingsError,
    TelemetryClient,
    settings_for,
)
from viewer.telemetry.pipeline import (  # noqa: F401 - names the UI and tests use from here
    ANOMALY_SIGNAL,
    HISTORY_SAMPLES,
    JOINTS_SIGNAL,
    StepResult,
    TelemetryPipeline,
)
from viewer.telemetry.recording import RecorderStats
from viewer.telemetry.session import SessionRecording
from viewer.telemetry.store import MessageRate, Sample

log = logging.getLogger(__name__)

FRAME_MS = 33
INTERPOLATION_DELAY_S = 0.1
BLINK_S = 0.5


class TelemetryController(QObject):
    """Connects a layout to its broker and keeps the scene, alarms and status in step with the plant.

    The decoding, rules, alarms and anomaly scores live in a Qt-free :class:`TelemetryPipeline` (the replayer
    drives the same one); this class adds the frame timer, the scene (colours, badges, blinking, robot poses)
    and the status bar figures.
    """

    alarms_changed = Signal()
    states_changed = Signal(dict)  # {component id: displayed state}
    status_changed = Signal(object)  # TelemetryStatus
    values_changed = Signal(set)  # component ids whose live values changed this frame

    def __init__(self, scene: PlantScene, request_render: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.request_render = request_render
        self.pipeline = TelemetryPipeline(Layout(name=""))
        self.client: TelemetryClient | None = None
        self.opcua: Any = None  # viewer.telemetry.opcua_client.OpcUaClient, when the layout has an opcua section
        self.layout: Layout | None = None
        self.displayed: dict[str, str] = {}
        self._blink_on = True
        self._last_blink = 0.0
        self._rate_window = MessageRate(40)  # never across two stores: no negative rate after a reload
        self.journal: AlarmJournal | None = None  # the live layout's alarm journal, if it keeps one
        self.frames = 0
        self._health_task: Any = None  # viewer.ui.background.BackgroundTask fitting the remaining-life models
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.on_frame)
        # Robot arms: recent joint samples per robot; drawn INTERPOLATION_DELAY_S behind real time so
        # there is always a sample on each side of the drawn instant and motion is smooth at frame rate.
        self._joint_samples: dict[str, deque[tuple[float, np.ndarray]]] = {}
        self._shown_pose: dict[str, np.ndarray] = {}
        self.clamped: dict[str, np.ndarray] = {}
        self._robots: set[str] = set()
        self.session: SessionRecording | None = None
        self.replay_time: float | None = None
        # False while a replay has the 3D view: this pipeline keeps running (alarms, status, recording), but
        # the colours, badges and robot poses on the scene are the replay's.
        self.paints_scene = True

    # The pipeline's parts, under the names the window and the tests use.
    @property
    def store(self) -> Any:
        return self.pipeline.store

    @property
    def alarms(self) -> Any:
        return self.pipeline.alarms

    @property
    def engine(self) -> Any:
        return self.pipeline.engine

    @property
    def history(self) -> Any:
        return self.pipeline.history

    @property
    def units(self) -> Any:
        return self.pipeline.units

    @property
    def anomaly(self) -> Any:
        return self.pipeline.anomaly

    # ----------------------------------------------------------------- life cycle
    def start(self, layout: Layout, settings: MqttSettings | None, journal: AlarmJournal | None = None,
              opcua: Any = None, layout_dir: Path | None = None) -> None:
        """Subscribe to the layout's bindings on the broker. :class:`SettingsError` for unusable settings.
        ``journal``: the layout's alarm journal, restored now and kept up to date while live. Components with
        a run-to-failure history (``health``) get their learned models in the background (seconds each)."""
        self.stop()
        self.layout = layout
        self.pipeline = TelemetryPipeline(layout, health={})
        self._learn_health(layout, layout_dir)
        self._rate_window.reset()
        self.journal = journal
        if journal is not None:
            journal.restore(self.pipeline.alarms)
        self.displayed.clear()
        self._robots = set(self.scene.robot_ids())
        self._joint_samples.clear()
        self._shown_pose.clear()
        self.clamped.clear()
        if settings is not None:
            self.client = TelemetryClient(settings, self.pipeline.router)
            self.client.start()
        if opcua is not None:  # OPC UA beside (or instead of) MQTT: the same router, store and pipeline
            from viewer.telemetry.opcua_client import OpcUaClient

            self.opcua = OpcUaClient(opcua, self.pipeline.router)
            self.opcua.start()
        self.timer.start()

    def _learn_health(self, layout: Layout, layout_dir: Path | None) -> None:
        """Fit the remaining-life models of the components with a ``health`` section off the GUI thread; the
        pipeline uses the trend until they are there (a newer layout's pipeline drops an older fit)."""
        if not any(c.section("health") for c in layout.components):
            return
        from viewer.analytics.history import LiveHealth, learn_health
        from viewer.ui.background import BackgroundTask

        pipeline = self.pipeline
        if self._health_task is None:
            self._health_task = BackgroundTask("learn-health", self)

        def done(result: Any) -> None:
            models, problems = result
            if self.pipeline is pipeline:
                pipeline.health = {cid: LiveHealth(learned) for cid, learned in models.items()}
                pipeline.health_problems = problems
                self.values_changed.emit(set(models) | set(problems))

        self._health_task.run(lambda _context: learn_health(layout.components, layout_dir), done,
                              lambda exc: log.warning("remaining-life models not learned: %s", exc))

    def start_recording(self, out: Path, layout_path: Path | None) -> SessionRecording:
        """Record the live session to ``out`` (RecordingError if the file cannot be created)."""
        self.stop_recording()
        sources = [c.settings.describe() for c in (self.client, self.opcua) if c is not None]
        broker = " + ".join(sources)
        session = SessionRecording(self.pipeline, out, layout_path=layout_path, broker=broker,
                                   gaps=lambda: [g for c in (self.client, self.opcua) if c is not None
                                                 for g in c.status().gaps],
                                   broker_dropped=lambda: self.client.status().broker_dropped if self.client else None)
        self.session = session.start()
        return session

    def stop_recording(self) -> RecorderStats | None:
        """Finish the recording, if one runs; its figures."""
        if self.session is None:
            return None
        session, self.session = self.session, None
        return session.stop()

    def stop(self) -> None:
        """Disconnect and stop updating; the scene keeps its normal colours."""
        self.stop_recording()
        if self.journal is not None:  # the live alarms as they are now, for the next time this layout opens
            self.journal.save(self.pipeline.alarms)
            self.journal = None
        self.timer.stop()
        self._joint_samples.clear()
        if self.client is not None:
            self.client.stop(wait=False)
            self.client = None
        if self.opcua is not None:
            self.opcua.stop(wait=False)
            self.opcua = None
        for component in list(self.displayed):
            if component in getattr(self.scene, "_index", {}):
                self.scene.set_component_color(component, None)
        self.displayed.clear()
        if self.paints_scene:  # the badges on the scene are a replay's while it has the view
            self.scene.set_badges({})

    def release_scene(self) -> None:
        """Hand the 3D view to a replay: this pipeline runs on, its colours and badges leave the scene."""
        self.paints_scene = False
        for component in list(self.displayed):
            if component in getattr(self.scene, "_index", {}):
                self.scene.set_component_color(component, None)
        self.displayed.clear()
        self._joint_samples.clear()
        self._shown_pose.clear()
        self.scene.set_badges({})

    def take_scene(self) -> None:
        """Paint the 3D view again from this pipeline (the next frame recolours everything)."""
        self.paints_scene = True
        self.displayed.clear()
        self._shown_pose.clear()

    def attach_replay(self, layout: Layout, pipeline: TelemetryPipeline) -> None:
        """Show a replay's pipeline instead of live data (the replay's timer drives :meth:`show_replayed`)."""
        self.stop()
        self.layout = layout
        self.pipeline = pipeline
        self.replay_time = pipeline.store.stats().newest_received or 0.0
        self._robots = set(self.scene.robot_ids())
        self._joint_samples.clear()
        self._shown_pose.clear()
        self.clamped.clear()

    def detach_replay(self) -> None:
        """Leave replay: back to an idle pipeline (live telemetry starts again with :meth:`start`)."""
        self.replay_time = None
        self.stop()
        self.layout = None
        self.pipeline = TelemetryPipeline(Layout(name=""))

    def show_replayed(self, step: StepResult, t: float, seeked: bool) -> None:
        """Draw the replay at recording time ``t``; after a seek, robots jump to their pose at ``t``."""
        self.replay_time = t
        if seeked:
            self._joint_samples.clear()
            step.joint_samples = [(c, s) for (c, sig), s in self.store.latest_all().items()
                                  if sig == JOINTS_SIGNAL]
        self.show_step(step, t)

    def now(self) -> float:
        """Wall time when live; the recording's time when replaying."""
        return self.replay_time if self.replay_time is not None else time.time()

    @property
    def running(self) -> bool:
        """True while connected or trying to connect."""
        return self.client is not None or self.opcua is not None

    def connection_status(self) -> ConnectionStatus | None:
        """The client's status, if started."""
        return self.client.status() if self.client else None

    # ----------------------------------------------------------------- the frame
    def on_frame(self) -> None:
        """Drain, evaluate, recolour, animate; one repaint at most."""
        now = time.time()
        self.frames += 1
        if self.layout is None:
            return
        step = self.pipeline.step(now)
        if self.journal is not None:
            step.alarms_moved |= self.journal.poll(self.pipeline, now)
        self.show_step(step, now)
        if self.session is not None:
            self.session.poll(now)
        self._rate_window.add(now, self.store.message_count())
        if self.frames % 10 == 0:
            self.status_changed.emit(self.telemetry_status(now))

    def show_step(self, step: StepResult, now: float) -> None:
        """Bring the scene, the alarm list and the details up to date with one pipeline step."""
        dirty = False
        if self.paints_scene:
            for component, sample in step.joint_samples:
                if component in self._robots:
                    self._add_joint_sample(component, sample)
            if self._joint_samples:
                dirty |= self._animate_robots(now)
            blink_toggled = now - self._last_blink >= BLINK_S or now < self._last_blink
            if blink_toggled:
                self._blink_on = not self._blink_on
                self._last_blink = now
            if self._apply_states(blink_toggled or step.alarms_moved):
                dirty = True
        if step.alarms_moved:
            self.alarms_changed.emit()
        if step.changed_values:
            self.values_changed.emit(step.changed_values)
        if dirty:
            self.request_render()

    # ----------------------------------------------------------------- anomalies
    def retrain_anomaly(self, component: str) -> bool:
        """Learn normal for a component from the recent history of its scored signals."""
        return self.pipeline.retrain_anomaly(component)

    def anomaly_rows(self, component: str) -> list[tuple[str, str]]:
        """Explanation lines for the details panel: score and level, top signals, failure horizons."""
        return self.pipeline.anomaly_rows(component)

    def accept_anomaly(self, component: str) -> bool:
        """"Accept as new normal" for a component's anomaly episode (logged; recorded when recording)."""
        if not self.pipeline.accept_anomaly(component, self.now()):
            return False
        self._apply_states(True)
        self.alarms_changed.emit()
        self.request_render()
        return True

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
        states = self.pipeline.component_states()
        unacked = self.pipeline.unacknowledged()
        changed = {c: s for c, s in states.items() if self.displayed.get(c) != s}
        gone = [c for c in self.displayed if c not in states]  # e.g. a replay sought back before any data
        for component in gone:
            if component in getattr(self.scene, "_index", {}):
                self.scene.set_component_color(component, None)
            del self.displayed[component]
            changed[component] = "unknown"
        if not changed and not (blink_step and unacked):
            return False
        theme = self.scene.theme
        colors = {"warning": theme.warning, "fault": theme.fault, "stale": theme.stale,
                  "uncertain": theme.stale, "off": theme.off,
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
            parents = self.pipeline.parents
            badges = {c: s for c, s in states.items() if s in ("warning", "fault", "stale", "uncertain")
                      and not (parents.get(c) and states.get(parents[c]) == s)}
            self.scene.set_badges(badges)
            self.states_changed.emit(dict(changed))
        return True

    # ----------------------------------------------------------------- status
    def telemetry_status(self, now: float | None = None) -> dict[str, Any]:
        """Connection state, messages/s, decode errors, age of the newest message."""
        now = now or time.time()
        stats = self.store.stats()
        rate = self._rate_window.rate()
        status = self.client.status() if self.client else None
        opcua = self.opcua.status() if self.opcua is not None else None
        both = [s for s in (status, opcua) if s is not None]
        # The worst of the two connections decides the state; the detail names both.
        worst = next((s for s in both if s.state.value != "connected"), both[0] if both else None)
        return {
            "state": worst.state.value if worst else "off",
            "detail": " · ".join(s.detail for s in both) if both else "telemetry off",
            "gaps": [g for s in both for g in s.gaps],
            "warnings": [w for s in both for w in s.warnings],
            "client_id": status.client_id if status else "",  # MQTT's (OPC UA sessions have no client id here)
            "broker_dropped": status.broker_dropped if status else None,
            "rate": rate,
            "messages": stats.messages,
            "decode_errors": stats.decode_errors,
            "errors_by_topic": stats.errors_by_topic,
            "age": (now - stats.newest_received) if stats.newest_received else None,
        }

    def live_values(self, component: str) -> list[tuple[str, Any, str, float, str]]:
        """(signal, value, unit, age s, state) of a component, for the details panel."""
        return self.pipeline.live_values(component, self.now(), self.clamped.get(component))
