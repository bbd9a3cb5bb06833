"""Replaying a recording through the live pipeline, with keyframes for fast seeking.

Time in a replay is *recording* time. The pipeline steps at the live frame cadence
(every ``FRAME_S`` of recording time, counted from the first message), with the
messages received up to that instant routed first, so the states, alarms and anomaly
scores follow the same sequence as in the live session, whatever the playback speed.
Operator actions recorded in the session (acknowledge, shelve, accept an anomaly as the new
normal) are applied at their times, so the alarm list and the scorers show what the operator saw.

Opening a recording plays it once from start to end without drawing (``index``),
keeping a copy of the pipeline's state every ``keyframe_every`` seconds. A seek
restores the nearest keyframe before the target and plays the few seconds up to it:
the state after a seek is the state playback reaches at that instant (a test checks
it). The plot history is not part of a keyframe: after a seek it starts at the keyframe.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.model.layout import Layout
from viewer.telemetry.pipeline import FRAME_S, StepResult, TelemetryPipeline
from viewer.telemetry.recording import (
    EVENTS_TOPIC,
    RecordedMessage,
    RecordingError,
    RecordingInfo,
    data_section_problem,
    quick_info,
    read_messages,
)

log = logging.getLogger(__name__)

EPS_S = 1e-6  # times within this of a tick are at the tick (float epoch seconds carry ~0.2 µs)

KEYFRAME_EVERY_S = 2.0
KEYFRAME_BUDGET_BYTES = 256 * 1024 * 1024  # past this, every other keyframe goes (seeks play a little longer)
QUIET_STEP_S = 120.0  # after this long without a message, playback jumps to the next one (no tick between
#                       changes anything: scores move on new values, stale and shelving are checked by time)
_STATE_PARTS = ("store", "engine", "alarms", "anomaly", "anomaly_alarms", "anomaly_state", "units")


@dataclass
class Marker:
    """A point on the timeline worth jumping to."""

    time: float
    kind: str  # "alarm", "ack", "gap", "dropped", "damaged", "mark"
    text: str
    end: float | None = None  # a span (a connection gap), when its end is known


@dataclass
class _Keyframe:
    time: float  # the pipeline has stepped at this tick and not beyond
    state: bytes  # the pipeline's state, pickled in memory (see _copy_state)


@dataclass
class Replayer:
    """Plays one recording into a :class:`TelemetryPipeline` (see the module docstring)."""

    path: Path
    layout: Layout
    tick: float = FRAME_S
    keyframe_every: float = KEYFRAME_EVERY_S
    info: RecordingInfo | None = None
    pipeline: TelemetryPipeline | None = None
    markers: list[Marker] = field(default_factory=list)
    position: float = 0.0  # recording time the pipeline has reached (a tick)
    _keyframes: list[_Keyframe] = field(default_factory=list)
    _pending: Iterator[RecordedMessage] | None = None
    _next: RecordedMessage | None = None
    _alarm_log: list[Any] = field(default_factory=list)  # every alarm event of the recording, in order
    damage: list[Any] = field(default_factory=list)  # mcap_file.Damage: what could not be read, and was skipped
    played: int = 0  # messages the index pass routed (events included): what the replay really holds
    _last_routed: float = 0.0

    # --- opening --------------------------------------------------------------------------------------
    def index(self, progress: Callable[[float], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> RecordingInfo:
        """Read the recording once: its info, the timeline markers and the keyframes."""
        self.info = quick_info(self.path)  # the summary; a file without one is read through, past any damage
        self.pipeline = TelemetryPipeline(self.layout)
        if self.info.anomaly_state:  # the scorers start from what they had learned when recording began
            self.pipeline.anomaly.load_state(self.info.anomaly_state)
        self._keyframes = []
        self._alarm_log = []
        self.markers = []
        start = self.start
        self.position = start
        first_state = self._copy_state()
        if first_state is None:
            raise RecordingError(f"{self.path.name}: the pipeline's state cannot be copied for seeking")
        self._keyframes.append(_Keyframe(start, first_state))
        next_key = start + self.keyframe_every
        span = max(self.end - start, 1e-9)
        ticks = 0

        keyframe_bytes = len(self._keyframes[0].state)

        def at_tick(t: float) -> None:
            nonlocal next_key, ticks, keyframe_bytes
            if t >= next_key:
                state = self._copy_state()
                if state is not None:
                    self._keyframes.append(_Keyframe(t, state))
                    keyframe_bytes += len(state)
                    if keyframe_bytes > KEYFRAME_BUDGET_BYTES:  # bounded: thin out, space the next ones wider
                        self._keyframes = self._keyframes[::2]
                        keyframe_bytes = sum(len(k.state) for k in self._keyframes)
                        self.keyframe_every *= 2
                next_key = t + self.keyframe_every
            ticks += 1
            if ticks % 300 == 0:
                if progress is not None:
                    progress(min((t - start) / span, 0.999))
                if cancelled is not None and cancelled():
                    raise InterruptedError("cancelled")

        damage: list[Any] = []
        self._pending = read_messages(self.path, damage=damage)
        self._next = next(self._pending, None)
        self.played = 0
        self._last_routed = start
        self._play(self.end, at_tick, markers=True, merged=None)
        self._pending = None
        known = {d.offset for d in self.info.damage}
        self.damage = list(self.info.damage) + [d for d in damage if d.offset not in known]
        unprotected = data_section_problem(self.path) if self.info.complete and not self.damage else None
        if unprotected:  # every chunk was whole, but a record without its own CRC is not
            self.info.complete = False
            self.info.problem = unprotected
        for d in self.damage:  # the timeline shows what is missing, where the file still says when
            if d.start_ns is not None and d.end_ns is not None and start <= d.start_ns / 1e9 <= self.end:
                lost = f"{d.messages:,} messages" if d.messages is not None else "messages"
                self.markers.append(Marker(d.start_ns / 1e9, "damaged", f"damaged file: {lost} lost ({d.what})",
                                           d.end_ns / 1e9))
        self.markers.sort(key=lambda m: m.time)
        if progress is not None:
            progress(1.0)
        self.seek(start)
        return self.info

    @property
    def start(self) -> float:
        return self.info.start if self.info else 0.0

    @property
    def end(self) -> float:
        """The first tick at or after the last message: where playback stops."""
        if not self.info:
            return 0.0
        last = self.tick_at_or_before(self.info.end)
        return last if last >= self.info.end - EPS_S else self._after(last)

    # --- playing --------------------------------------------------------------------------------------
    def tick_at_or_before(self, t: float) -> float:
        """The last tick at or before ``t`` (ticks count from the first message)."""
        n = math.floor((t - self.start + EPS_S) / self.tick)
        return self.start + max(n, 0) * self.tick

    def _after(self, tick: float) -> float:
        """The tick after ``tick``, computed from its index: adding the step over and over drifts (float
        seconds since the epoch are only good to 0.2 µs, a 10-hour replay has a million ticks)."""
        return self.start + (round((tick - self.start) / self.tick) + 1) * self.tick

    def tick_at_or_after(self, t: float) -> float:
        """The first tick at or after ``t``: where an event at ``t`` has been taken into account."""
        before = self.tick_at_or_before(t)
        return before if before >= t - EPS_S else self._after(before)

    def advance_to(self, t: float) -> StepResult:
        """Play forward to recording time ``t``; what changed, merged over the ticks passed."""
        merged = StepResult()
        if self._pending is None:
            self._pending = read_messages(self.path, start=self.position + EPS_S)
            self._next = next(self._pending, None)
        self._play(t, None, markers=False, merged=merged)
        return merged

    def _play(self, t: float, on_tick: Callable[[float], None] | None, markers: bool,
              merged: StepResult | None) -> None:
        """Tick by tick up to ``t``: route the tick's messages, then step the pipeline at the tick."""
        assert self.pipeline is not None and self._pending is not None
        pipeline = self.pipeline
        target = self.tick_at_or_before(min(t, self.end))
        pending = self._pending
        while self._after(self.position) <= target + EPS_S:
            tick = self._after(self.position)
            batch = []
            nxt = self._next
            if (nxt is None or nxt.time > tick) and tick - self._last_routed > QUIET_STEP_S:
                # a long quiet stretch (a stopped plant, a wrong clock): jump to the tick before the next message
                before_next = target if nxt is None else self.tick_at_or_after(nxt.time) - self.tick
                tick = max(tick, min(target, self.tick_at_or_before(before_next)))
            while nxt is not None and nxt.time < tick + EPS_S:  # read_messages(start=tick + EPS_S) goes on after
                batch.append(nxt)
                nxt = next(pending, None)
            self._next = nxt
            if batch:
                self._route_batch(batch, markers)
                self._last_routed = batch[-1].time
                if markers:
                    self.played += len(batch)
            step = pipeline.step(tick)
            self.position = tick
            if merged is not None:
                _merge(merged, step)
            if markers and step.alarms_moved:
                self._alarm_markers(tick)
            if markers:  # the index pass keeps the whole alarm log once; keyframes only its length
                alarms = pipeline.alarms
                new = alarms.logged - len(self._alarm_log)
                if new > 0:
                    self._alarm_log.extend(alarms.history[-new:])
            if on_tick is not None:
                on_tick(tick)

    def _route_batch(self, batch: list[RecordedMessage], markers: bool) -> None:
        """One tick's messages. Like the live store, the frame only sees each signal's newest value, so only
        the newest message per topic is decoded (the others are counted); Sparkplug B (stateful: sequence
        numbers, aliases) and session events go through one by one, in order."""
        newest: dict[str, int] = {}
        for i, message in enumerate(batch):
            newest[message.topic] = i
        store = self.pipeline.store  # type: ignore[union-attr]
        router = self.pipeline.router  # type: ignore[union-attr]
        for i, message in enumerate(batch):
            topic = message.topic
            if topic == EVENTS_TOPIC:
                if markers:
                    self._event_marker(message)
                self._apply_event(message)
            elif newest[topic] == i or topic.startswith("spBv1.0/"):
                router.handle(topic, message.payload, message.time)
            else:
                store.count_message(message.time)

    def seek(self, t: float) -> StepResult:
        """Show the state at recording time ``t``: restore the keyframe before it and play up to it."""
        t = min(max(t, self.start), self.end)
        i = bisect.bisect_right([k.time for k in self._keyframes], t) - 1
        key = self._keyframes[max(i, 0)]
        self._restore_state(key.state)
        self.position = key.time
        self._last_routed = key.time
        self._pending = None
        self._next = None
        result = self.advance_to(t)
        result.changed_values |= {component for component, _ in self.pipeline.store.latest_all()}
        result.alarms_moved = True
        return result

    def next_marker(self, after: float, kinds: tuple[str, ...] = ("alarm",)) -> Marker | None:
        """The first marker of these kinds after ``after`` (jump to next alarm)."""
        for marker in self.markers:
            if marker.time > after + 1e-6 and marker.kind in kinds:
                return marker
        return None

    # --- internals ------------------------------------------------------------------------------------
    def _apply_event(self, message: RecordedMessage) -> None:
        """Operator actions recorded live are replayed at their times (by alarm key: ids may differ)."""
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        kind = event.get("kind")
        if kind == "accepted" and isinstance(event.get("component"), str):
            self.pipeline.accept_anomaly(event["component"], message.time)  # type: ignore[union-attr]
            return
        if kind not in ("acknowledged", "shelved", "unshelved"):
            return
        alarms = self.pipeline.alarms  # type: ignore[union-attr]
        key = (event.get("component"), event.get("signal"), event.get("rule"))
        for alarm in alarms.alarms.values():
            if alarm.key == key:
                if kind == "acknowledged":
                    alarms.acknowledge(alarm.id, message.time)
                elif kind == "shelved":
                    alarms.shelve(alarm.id, message.time, float(event.get("duration_s", 3600)))
                else:
                    alarms.unshelve(alarm.id, message.time)

    def _alarm_markers(self, tick: float) -> None:
        alarms = self.pipeline.alarms  # type: ignore[union-attr]
        known = getattr(self, "_marked", None)
        if known is None:
            known = self._marked = set()
        for event in alarms.history[-20:]:
            ident = (event.time, event.alarm_id, event.kind)
            if event.kind == "raised" and ident not in known:
                known.add(ident)
                self.markers.append(Marker(event.time, "alarm", f"{event.component}: {event.message}"))

    def _event_marker(self, message: RecordedMessage) -> None:
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("kind", "")
        if kind == "gap":
            quiet = event.get("quiet_since")
            start = float(quiet) if isinstance(quiet, int | float) and quiet <= message.time else message.time
            self.markers.append(Marker(start, "gap", f"connection lost: {event.get('reason', '')}"))
        elif kind == "gap_end":
            self._end_gap(message.time, event)
        elif kind == "dropped":
            self.markers.append(Marker(message.time, "dropped", f"{event.get('count')} messages not recorded "
                                                                "(disk too slow)"))
        elif kind == "broker_dropped":
            self.markers.append(Marker(message.time, "dropped", f"the broker dropped {event.get('count')} messages "
                                                                "(its queues were full; all its clients)"))
        elif kind == "mark":
            self.markers.append(Marker(message.time, "mark", str(event.get("text", "mark"))))

    def _end_gap(self, end: float, event: dict[str, Any]) -> None:
        """Close the span of the gap this event ends (or add it whole, when its start is before the file)."""
        for marker in reversed(self.markers):
            if marker.kind == "gap" and marker.end is None and marker.time <= end:
                marker.end = end
                return
        start = event.get("quiet_since") or event.get("start")
        start = float(start) if isinstance(start, int | float) and start <= end else end
        self.markers.append(Marker(start, "gap", f"connection lost: {event.get('reason', '')}", end))

    def _copy_state(self) -> bytes | None:
        """The pipeline's state, or None when it cannot be copied (the keyframe is skipped; seeks play from the
        one before). Pickle is a fast deep copy of our own in-memory objects (3-4x quicker than copy.deepcopy);
        these bytes never touch a file, nothing read from a file is ever unpickled, and what they hold is
        bounded: stored values are flat (viewer.telemetry.values), histories and logs have limits."""
        p = self.pipeline
        state = {name: getattr(p, name) for name in _STATE_PARTS}
        state["sparkplug"] = p.router.sparkplug  # type: ignore[union-attr]
        history, p.alarms.history = p.alarms.history, []  # rebuilt from the alarm log on restore
        try:
            return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError, TypeError) as exc:
            log.warning("%s: no keyframe at this point (%s)", self.path.name, type(exc).__name__)
            return None
        finally:
            p.alarms.history = history

    def _restore_state(self, state: bytes) -> None:
        p = self.pipeline
        assert p is not None
        fresh = pickle.loads(state)
        for name in _STATE_PARTS:
            setattr(p, name, fresh[name])
        p.router.store = p.store
        p.router.sparkplug = fresh["sparkplug"]
        alarms = p.alarms
        alarms.history = self._alarm_log[max(0, alarms.logged - alarms.max_history):alarms.logged]
        p.history.clear()


def _merge(into: StepResult, step: StepResult) -> None:
    into.changed_values |= step.changed_values
    into.alarms_moved |= step.alarms_moved
    into.joint_samples += step.joint_samples
