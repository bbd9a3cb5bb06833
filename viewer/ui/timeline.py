"""The replay timeline: play/pause, step, speed, loop, a scrubber with alarm markers, jump to the next alarm.

``ReplayControl`` owns the :class:`Replayer` on the GUI side: a 30 Hz timer moves the
playback position by the elapsed wall time times the speed, asks the replayer to play
up to it and hands the result to the telemetry controller, which draws it exactly as
it draws live data. Dragging the scrubber seeks (keyframe + a short replay).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from viewer.telemetry.replay import Marker, Replayer
from viewer.ui.theme import current as current_theme

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
def marker_colours() -> dict[str, str]:
    """Alarm amber, dropped or damaged data red, gaps grey, the operator's marks blue: in the theme's shades."""
    theme = current_theme()
    return {"alarm": theme.text_warning, "gap": theme.text_muted, "dropped": theme.text_fault,
            "damaged": theme.text_fault, "mark": theme.plot_pens[1]}


class TimelineBar(QWidget):
    """The scrubber: a track, the markers, the playhead; click or drag to seek."""

    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.start, self.end, self.position = 0.0, 1.0, 0.0
        self.markers: list[Marker] = []
        self.setMouseTracking(True)

    def set_range(self, start: float, end: float, markers: list[Marker]) -> None:
        self.start, self.end = start, max(end, start + 1e-6)
        self.markers = markers
        self.update()

    def set_position(self, t: float) -> None:
        self.position = t
        self.update()

    def _x(self, t: float) -> float:
        return 6 + (self.width() - 12) * (t - self.start) / (self.end - self.start)

    def _t(self, x: float) -> float:
        return self.start + (x - 6) / max(self.width() - 12, 1) * (self.end - self.start)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        mid = self.height() / 2
        theme = current_theme()
        p.fillRect(QRectF(6, mid - 2, self.width() - 12, 4), QColor(theme.disabled_text))
        p.fillRect(QRectF(6, mid - 2, self._x(self.position) - 6, 4), QColor(theme.plot_pens[1]))
        colours = marker_colours()
        for marker in self.markers:
            colour = QColor(colours.get(marker.kind, theme.plot_foreground))
            p.setPen(QPen(colour, 2))
            x = self._x(marker.time)
            p.drawLine(QPointF(x, 3), QPointF(x, mid - 4))
            if marker.end is not None and marker.end > marker.time:  # a connection gap: its whole span
                p.fillRect(QRectF(x, mid + 3, max(self._x(marker.end) - x, 2.0), 3), colour)
        p.setPen(QPen(QColor(theme.text_strong), 2))
        x = self._x(self.position)
        p.drawLine(QPointF(x, 2), QPointF(x, self.height() - 2))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self.seek_requested.emit(self._t(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.seek_requested.emit(self._t(event.position().x()))
        else:
            x = event.position().x()
            near = [m for m in self.markers if abs(self._x(m.time) - x) < 4
                    or (m.end is not None and self._x(m.time) <= x <= self._x(m.end))]
            self.setToolTip("\n".join(_marker_text(m) for m in near[:8]))


def _marker_text(marker: Marker) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(marker.time))
    if marker.end is None:
        return f"{when} {marker.text}"
    return f"{when}-{time.strftime('%H:%M:%S', time.localtime(marker.end))} ({marker.end - marker.time:.1f} s) " \
           f"{marker.text}"


class TimelinePanel(QWidget):
    """Buttons, speed, loop and the scrubber."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        self.play_button = QPushButton("Play", self)
        self.play_button.setCheckable(True)
        self.back_button = QPushButton("−1 s", self)
        self.step_button = QPushButton("+1 s", self)
        self.speed = QComboBox(self)
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}x", s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.loop = QCheckBox("Loop", self)
        self.bar = TimelineBar(self)
        self.next_alarm_button = QPushButton("Next alarm", self)
        self.time_label = QLabel(self)
        self.time_label.setTextFormat(Qt.TextFormat.PlainText)
        self.live_button = QPushButton("Back to live", self)
        for w in (self.play_button, self.back_button, self.step_button, self.speed, self.loop):
            row.addWidget(w)
        row.addWidget(self.bar, 1)
        for w in (self.next_alarm_button, self.time_label, self.live_button):
            row.addWidget(w)


class ReplayControl(QObject):
    """Playback state and the frame timer for one replay (see the module docstring)."""

    position_changed = Signal(float)
    finished = Signal()

    def __init__(self, replayer: Replayer, panel: TimelinePanel,
                 show: Callable[[object, float, bool], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.replayer = replayer
        self.panel = panel
        self.show = show
        self.speed = 1.0
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._on_tick)
        self._last_wall = 0.0
        panel.bar.set_range(replayer.start, replayer.end, replayer.markers)
        panel.bar.seek_requested.connect(self.seek)
        panel.play_button.toggled.connect(self.set_playing)
        panel.back_button.clicked.connect(lambda: self.seek(self.position - 1.0))
        panel.step_button.clicked.connect(lambda: self.step(1.0))
        panel.speed.currentIndexChanged.connect(lambda i: self.set_speed(float(panel.speed.itemData(i))))
        panel.next_alarm_button.clicked.connect(self.next_alarm)
        self._update_label()

    @property
    def position(self) -> float:
        return self.replayer.position

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_playing(self, playing: bool) -> None:
        if playing:
            if self.position >= self.replayer.end - 1e-6:
                self.seek(self.replayer.start)
            self._last_wall = time.monotonic()
            self.timer.start()
        else:
            self.timer.stop()
        if self.panel.play_button.isChecked() != playing:
            self.panel.play_button.setChecked(playing)
        self.panel.play_button.setText("Pause" if playing else "Play")

    def set_speed(self, speed: float) -> None:
        self.speed = min(max(speed, 0.1), 100.0)

    def refresh_markers(self) -> None:
        """The markers and span as the replayer knows them now (they grow while a file is indexed)."""
        r = self.replayer
        self.panel.bar.set_range(r.start, r.end, r.markers)
        self.panel.bar.set_position(self.position)

    def seek(self, t: float) -> None:
        r = self.replayer
        if r.needs_index and t > r.indexed_until:  # not indexed yet: as far as it is (a seek there is quick)
            t = r.indexed_until
        result = r.seek(t)
        self.show(result, self.position, True)
        self._moved()

    def step(self, seconds: float) -> None:
        result = self.replayer.advance_to(self.position + seconds)
        self.show(result, self.position, False)
        self._moved()

    def next_alarm(self) -> None:
        marker = self.replayer.next_marker(self.position)
        if marker is not None:
            self.seek(self.replayer.tick_at_or_after(marker.time))  # the frame that shows it

    def stop(self) -> None:
        self.timer.stop()

    def _on_tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_wall = now - self._last_wall, now
        target = self.position + elapsed * self.speed
        end = self.replayer.end
        if target >= end:
            result = self.replayer.advance_to(end)
            self.show(result, self.position, False)
            if self.panel.loop.isChecked():
                self.seek(self.replayer.start)
            else:
                self.set_playing(False)
                self.finished.emit()
            self._moved()
            return
        result = self.replayer.advance_to(target)
        self.show(result, self.position, False)
        self._moved()

    def _moved(self) -> None:
        self.panel.bar.set_position(self.position)
        self._update_label()
        self.position_changed.emit(self.position)

    def _update_label(self) -> None:
        fmt = "%H:%M:%S"
        self.panel.time_label.setText(f"{time.strftime(fmt, time.localtime(self.position))} / "
                                      f"{time.strftime(fmt, time.localtime(self.replayer.end))}")


REPLAY_BANNER_COLOUR = "#3f3f9f"  # indigo: no alarm, warning or state colour uses it (ISA-101): "not live"


class ReplayBanner(QLabel):
    """The unmistakable strip above the 3D view while it shows a recording, not the plant: what is replayed,
    the recording's clock, and that live alarms keep arriving (the alarm list below stays live)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)  # file names are never markup
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)  # a narrow view cuts the end
        self.setStyleSheet(f"background: {REPLAY_BANNER_COLOUR}; color: white; font-weight: bold; padding: 4px;")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # never widens the window
        self.hide()
        self.name = ""
        self.live_unacknowledged = 0

    def show_replay(self, name: str) -> None:
        self.name = name
        self.show()

    def update_text(self, t: float) -> None:
        n = self.live_unacknowledged
        live = (f"LIVE: {n} unacknowledged alarm{'s' if n != 1 else ''} below" if n
                else "live alarms keep arriving below")
        # the most important first: a narrow view cuts the end, never "REPLAY" or the live alarms
        self.setText(f"REPLAY — {live} — {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t))}"
                     f" of {self.name}, not the plant now")
