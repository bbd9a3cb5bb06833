"""Recording a live session: raw messages through the router's tap, session events from the pipeline.

:class:`SessionRecording` attaches a :class:`Recorder` to a running pipeline: every message the router
sees is recorded before it is decoded, and ``poll`` (called once a frame) writes what happened since the
last frame: alarm life-cycle events (with the alarm's key, so a replay can apply the operator's
acknowledgements to the same alarm) and connection gaps. ``record_headless`` is ``twin-viewer record``.
The recorder also writes replay keyframes and the timeline (:class:`~viewer.telemetry.replay.KeyframeWriter`,
on its own writer thread: the pipeline stepped by the frame loop is only read here, never from that thread).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from viewer.model.layout import Layout
from viewer.telemetry.bindings import topic_matches
from viewer.telemetry.pipeline import FRAME_S, TelemetryPipeline
from viewer.telemetry.recording import ANOMALY_ATTACHMENT, Recorder, RecorderStats, encoding_for
from viewer.telemetry.replay import KeyframeWriter
from viewer.telemetry.router import (
    MQTT_ALIVE_ENCODING,
    MQTT_ALIVE_TOPIC,
    OPCUA_ALIVE_ENCODING,
    OPCUA_ALIVE_TOPIC,
    OPCUA_ENCODING,
    OPCUA_PREFIX,
)


class SessionRecording:
    """One recording of a live session (see the module docstring)."""

    def __init__(self, pipeline: TelemetryPipeline, out: Path | str, *, layout_path: Path | str | None = None,
                 broker: str = "", gaps: Callable[[], list[Any]] | None = None,
                 broker_dropped: Callable[[], int | None] | None = None) -> None:
        self.pipeline = pipeline
        bindings = pipeline.table.bindings

        def encoding(topic: str) -> str:
            if topic == MQTT_ALIVE_TOPIC:
                return MQTT_ALIVE_ENCODING  # "{}": connected to the broker then (online Sparkplug nodes current)
            if topic == OPCUA_ALIVE_TOPIC:
                return OPCUA_ALIVE_ENCODING  # "{}": the subscription was alive then (its values current)
            if topic.startswith(OPCUA_PREFIX):
                return OPCUA_ENCODING  # JSON: {"value", "status", "source_time", "server_time"}
            for b in bindings:
                if b.topic is not None and topic_matches(b.topic, topic) is not None:
                    return encoding_for(b.encoding)
            return "text"

        learned = json.dumps(pipeline.anomaly.state_dict()).encode()  # replay scores from the same start
        # keyframes: a replay of the file as it is written, on the writer thread (see replay.KeyframeWriter)
        keyframes = KeyframeWriter(pipeline.layout, json.loads(learned))
        self.recorder = Recorder(out, layout_doc=pipeline.layout.to_dict(), layout_path=layout_path,
                                 broker=broker, encodings=encoding, attachments={ANOMALY_ATTACHMENT: learned},
                                 keyframes=keyframes)
        self._gaps = gaps or (lambda: [])
        self._broker_dropped = broker_dropped or (lambda: None)
        self._broker_dropped_written = 0
        self._history_seen = len(pipeline.alarms.history)
        self._gap_started = 0  # the number of the newest gap whose start is written
        self._gap_open: int | None = None  # a gap written as started, not yet as ended

    def start(self) -> SessionRecording:
        self.recorder.start()
        self.pipeline.router.tap = self.recorder.message
        self._history_seen = len(self.pipeline.alarms.history)
        gaps = self._gaps()
        self._gap_started = max((g.number for g in gaps), default=0)
        if gaps and gaps[-1].end is None and gaps[-1].reason != "not connected yet":
            self._write_gap_start(gaps[-1])  # recording starts while the link is down: say so
        return self

    def poll(self, now: float | None = None) -> None:
        """Write the session events since the last call (call once a frame, on the pipeline's thread)."""
        alarms = self.pipeline.alarms
        history = alarms.history
        if len(history) < self._history_seen:  # the manager trims its history: start over at its end
            self._history_seen = 0
        for event in history[self._history_seen:]:
            alarm = alarms.by_id(event.alarm_id)
            key = alarm.key if alarm is not None else None
            self.recorder.event(event.kind, event.time, alarm_id=event.alarm_id, component=event.component,
                                signal=key[1] if key else None, rule=key[2] if key else None,
                                severity=event.severity, message=event.message,
                                **({"duration_s": (alarm.shelved_until or event.time) - event.time}
                                   if event.kind == "shelved" and alarm is not None else {}))
        self._history_seen = len(history)
        self._write_gaps(self._gaps())
        dropped = self._broker_dropped()
        if dropped is not None and dropped > self._broker_dropped_written:
            # the broker's own count, for all its clients: ours may be among them (and a gap in the data)
            self.recorder.event("broker_dropped", now or time.time(), count=dropped - self._broker_dropped_written,
                                total=dropped, scope="all clients of the broker")
            self._broker_dropped_written = dropped

    def _write_gaps(self, gaps: list[Any]) -> None:
        """A "gap" event when a link loss is noticed, a "gap_end" when it is back (numbered, never capped)."""
        for gap in gaps:
            if gap.number > self._gap_started:
                self._gap_started = gap.number
                if gap.reason != "not connected yet":  # before the first connection: no data was missed
                    self._write_gap_start(gap)
            if gap.number == self._gap_open and gap.end is not None:
                self._gap_open = None
                self.recorder.event("gap_end", gap.end, number=gap.number, start=gap.start, end=gap.end,
                                    quiet_since=gap.quiet_since, reason=gap.reason)

    def _write_gap_start(self, gap: Any) -> None:
        self._gap_open = gap.number
        self.recorder.event("gap", gap.start, number=gap.number, start=gap.start, quiet_since=gap.quiet_since,
                            reason=gap.reason)

    def mark(self, text: str, when: float | None = None) -> None:
        """An operator's note on the timeline."""
        self.recorder.event("mark", when or time.time(), text=text)

    def layout_changed(self, layout: Layout, when: float | None = None) -> None:
        self.recorder.event("layout", when or time.time(), name=layout.name,
                            layout=json.loads(json.dumps(layout.to_dict())))

    def stop(self) -> RecorderStats:
        self.poll()
        if self.pipeline.router.tap == self.recorder.message:
            self.pipeline.router.tap = None
        return self.recorder.stop()


def record_headless(layout: Layout, settings: Any, out: Path | str, *, opcua: Any = None,
                    layout_path: Path | str | None = None, duration: float | None = None,
                    stop: threading.Event | None = None,
                    on_status: Callable[[str], None] | None = None) -> tuple[RecorderStats, list[Any]]:
    """Subscribe and record until ``duration`` seconds pass or ``stop`` is set (``twin-viewer record``).

    ``settings`` (MQTT) and ``opcua`` (:class:`~viewer.telemetry.opcua_client.OpcUaSettings`) may each be
    ``None``, not both: a layout may use either or both, recorded into one file. Returns the recorder's
    figures and each connection's last status (whether it ever connected, and why not), MQTT first.
    ``on_status`` hears every change of a connection's state at once, and the counts every 5 s.
    """
    pipeline = TelemetryPipeline(layout, health={})  # recording only: no remaining-life model to fit
    clients = _recording_clients(settings, opcua, pipeline)
    mqtt = clients[0] if settings is not None else None
    session = SessionRecording(pipeline, out, layout_path=layout_path,
                               broker=", ".join(c.settings.describe() for c in clients),
                               gaps=lambda: [g for c in clients for g in c.status().gaps],
                               broker_dropped=lambda: mqtt.status().broker_dropped if mqtt else None)
    session.start()
    stop = stop or threading.Event()
    say = on_status or (lambda _line: None)
    try:
        for client in clients:
            client.start()
            for warning in client.settings.warnings():
                say(f"warning: {warning}")
        _record_until(pipeline, session, clients, stop, duration, say)
    finally:
        stats = session.stop()  # before disconnecting: our own goodbye is not a gap in the plant's data
        statuses = [c.status() for c in clients]
        for client in clients:
            client.stop()
    return stats, statuses


def _recording_clients(settings: Any, opcua: Any, pipeline: TelemetryPipeline) -> list[Any]:
    """The MQTT and OPC UA clients of a headless recording, feeding one pipeline's router."""
    clients: list[Any] = []
    if settings is not None:
        from viewer.telemetry.mqtt_client import TelemetryClient

        settings.role = "recorder"  # its own client id: never evicts a viewer on the same layout
        clients.append(TelemetryClient(settings, pipeline.router))
    if opcua is not None:
        from viewer.telemetry.opcua_client import OpcUaClient

        clients.append(OpcUaClient(opcua, pipeline.router))
    if not clients:
        raise ValueError("nothing to record: no MQTT broker and no OPC UA server")
    return clients


def _record_until(pipeline: TelemetryPipeline, session: SessionRecording, clients: list[Any],
                  stop: threading.Event, duration: float | None, say: Callable[[str], None]) -> None:
    """Step the pipeline and the recording each frame; say each connection's news, and the counts every 5 s."""
    began = time.monotonic()
    last_counts = began
    last_detail = [""] * len(clients)
    while not stop.wait(FRAME_S):
        pipeline.step(time.time())
        session.poll()
        now = time.monotonic()
        statuses = [c.status() for c in clients]
        for i, status in enumerate(statuses):
            if status.detail != last_detail[i]:
                last_detail[i] = status.detail
                say(status.detail)
        if now - last_counts >= 5:
            last_counts = now
            stats = session.recorder.stats
            dropped = next((s.broker_dropped for s in statuses if s.broker_dropped), None)
            broker = f", the broker dropped {dropped:,}" if dropped else ""
            states = "/".join(s.state.value for s in statuses)
            say(f"{states}: {stats.messages:,} messages, {stats.dropped:,} dropped{broker}")
        if duration is not None and now - began >= duration:
            break
