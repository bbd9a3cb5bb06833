"""Recording a live session: raw messages through the router's tap, session events from the pipeline.

:class:`SessionRecording` attaches a :class:`Recorder` to a running pipeline: every message the router
sees is recorded before it is decoded, and ``poll`` (called once a frame) writes what happened since the
last frame: alarm life-cycle events (with the alarm's key, so a replay can apply the operator's
acknowledgements to the same alarm) and connection gaps. ``record_headless`` is ``twin-viewer record``.
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


class SessionRecording:
    """One recording of a live session (see the module docstring)."""

    def __init__(self, pipeline: TelemetryPipeline, out: Path | str, *, layout_path: Path | str | None = None,
                 broker: str = "", gaps: Callable[[], list[Any]] | None = None) -> None:
        self.pipeline = pipeline
        bindings = pipeline.table.bindings

        def encoding(topic: str) -> str:
            for b in bindings:
                if topic_matches(b.topic, topic) is not None:
                    return encoding_for(b.encoding)
            return "text"

        learned = json.dumps(pipeline.anomaly.state_dict()).encode()  # replay scores from the same start
        self.recorder = Recorder(out, layout_doc=pipeline.layout.to_dict(), layout_path=layout_path,
                                 broker=broker, encodings=encoding, attachments={ANOMALY_ATTACHMENT: learned})
        self._gaps = gaps or (lambda: [])
        self._history_seen = len(pipeline.alarms.history)
        self._gaps_seen = 0

    def start(self) -> SessionRecording:
        self.recorder.start()
        self.pipeline.router.tap = self.recorder.message
        self._history_seen = len(self.pipeline.alarms.history)
        self._gaps_seen = len(self._gaps())
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
        gaps = self._gaps()
        for gap in gaps[self._gaps_seen:]:
            if gap.reason != "not connected yet":  # before the first connection: no data was missed
                self.recorder.event("gap", gap.start, reason=gap.reason)
        self._gaps_seen = len(gaps)

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


def record_headless(layout: Layout, settings: Any, out: Path | str, *, layout_path: Path | str | None = None,
                    duration: float | None = None, stop: threading.Event | None = None,
                    on_status: Callable[[str], None] | None = None) -> RecorderStats:
    """Subscribe and record until ``duration`` seconds pass or ``stop`` is set (``twin-viewer record``)."""
    from viewer.telemetry.mqtt_client import TelemetryClient

    pipeline = TelemetryPipeline(layout)
    client = TelemetryClient(settings, pipeline.router)
    session = SessionRecording(pipeline, out, layout_path=layout_path, broker=f"{settings.host}:{settings.port}",
                               gaps=lambda: client.status().gaps)
    session.start()
    client.start()
    stop = stop or threading.Event()
    began = time.monotonic()
    last_status = began
    try:
        while not stop.wait(FRAME_S):
            pipeline.step(time.time())
            session.poll()
            now = time.monotonic()
            if on_status is not None and now - last_status >= 5:
                last_status = now
                stats = session.recorder.stats
                on_status(f"{client.status().state.value}: {stats.messages:,} messages, "
                          f"{stats.dropped:,} dropped")
            if duration is not None and now - began >= duration:
                break
    finally:
        stats = session.stop()  # before disconnecting: our own goodbye is not a gap in the plant's data
        client.stop()
    return stats
