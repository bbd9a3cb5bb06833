"""Replaying a recording beside the live plant: open, index in the background, play, leave, recover.

The window owns the widgets (the timeline dock, the REPLAY banner, the replayed alarm list) and the two
telemetry controllers (the plant live, always; the recording, while replayed); this controller moves the
3D view between them and drives the :class:`Replayer`:

- **open** in the background (``Replayer.open``: instant with recorded keyframes; a file without a summary
  is read through, which can take a while, so never on the GUI thread), then show the first frame;
- **index** in the background where the file has no keyframes or no timeline (``Replayer.index_steps``):
  the operator plays and seeks at once, within what is indexed (``indexed_until``); progress in the status
  bar, Cancel stops it (what is indexed stays usable);
- **leave**: the view goes back to the live controller, nothing is reloaded;
- **recover** a damaged file in one click (a whole copy beside it, then replayed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMessageBox

from viewer.telemetry.recording import RecordingError, describe_damage
from viewer.telemetry.replay import Replayer
from viewer.ui.background import BackgroundTask, TaskContext
from viewer.ui.timeline import ReplayControl

APP_NAME = "twin-viewer"
PLOT_INTERVAL_S = 0.25


class ReplayController(QObject):
    """One window's replays (see the module docstring)."""

    def __init__(self, window: Any, on_frame: Callable[[float], None]) -> None:
        """``window``: the main window (its docks, banner, replayed alarm list, the live and replayed telemetry
        controllers, the status bar and its progress bar); ``on_frame(t)``: the window's refresh of the
        selection's details at recording time ``t``."""
        super().__init__(window)
        self.window = window
        self.on_frame = on_frame
        self.control: ReplayControl | None = None
        self.recovery_box: QMessageBox | None = None
        self.open_task = BackgroundTask("recording-open", self)
        self.index_task = BackgroundTask("recording-index", self)
        self.recover_task = BackgroundTask("recover", self)
        self._note: str | None = None

    @property
    def replayer(self) -> Replayer | None:
        return self.control.replayer if self.control is not None else None

    # --- opening ---------------------------------------------------------------------------------------
    def start(self, path: Path, note: str | None) -> None:
        """Open ``path`` on the window's plant, in the background; the replay shows when it is open."""
        w = self.window
        assert w.plant_layout is not None
        self.leave_view()
        self._note = note
        replayer = Replayer(path, w.plant_layout)
        w.begin_progress(f"Opening {path.name}…")
        self.open_task.run(lambda _context: (replayer.open(), replayer)[1], self._opened, self._failed)

    def _failed(self, exc: BaseException) -> None:
        w = self.window
        w.end_progress()
        name = getattr(self.replayer, "path", None)
        detail = str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {exc}"
        w.show_error(f"{name.name if name else 'The recording'} cannot be replayed.", [detail])

    def _opened(self, replayer: Replayer) -> None:
        w = self.window
        w.end_progress()
        w.telemetry.release_scene()  # live runs on beside the replay: its alarms, status and recording
        w.replayed.attach_replay(w.plant_layout, replayer.pipeline)
        self.control = ReplayControl(replayer, w.timeline, self._show, self)
        self.control.position_changed.connect(self._moved)
        w.timeline_dock.show()
        w.replay_alarm_dock.show()
        # the live list and the replayed one side by side; the live one, the operator's, keeps the most room
        live_width = max(w.width() * 62 // 100, 600)
        w.resizeDocks([w.alarm_dock, w.replay_alarm_dock], [live_width, w.width() - live_width],
                      Qt.Orientation.Horizontal)
        w.resizeDocks([w.alarm_dock], [230], Qt.Orientation.Vertical)  # the timeline took some of it
        w.replay_banner.show_replay(replayer.path.name)
        w.on_live_alarms_changed()
        self.alarms_changed()
        self.control.seek(replayer.start)
        w.remember(replayer.path)
        for problem in replayer.problems:  # e.g. a keyframe refused: said, the one before served
            w.status(f"{replayer.path.name}: {problem}")
        if replayer.needs_index:
            self._index(replayer)
        else:
            self._ready(replayer)

    def _index(self, replayer: Replayer) -> None:
        """Index in the background; play and seek meanwhile within what is indexed."""
        w = self.window
        name = replayer.path.name

        def work(context: TaskContext) -> Replayer:
            for fraction in replayer.index_steps(cancelled=context.cancelled):
                context.progress(fraction)
            return replayer

        def progress(fraction: float) -> None:
            w.show_progress(fraction, f"Indexing {name}: {fraction:.0%} — play and seek in what is indexed")
            if self.control is not None and self.control.replayer is replayer:
                self.control.refresh_markers()

        w.begin_progress(f"Indexing {name}… (play and seek in what is indexed)")
        self.index_task.run(work, self._indexed, self._index_failed, progress)

    def _indexed(self, replayer: Replayer) -> None:
        self.window.end_progress()
        if self.control is not None and self.control.replayer is replayer:
            self.control.refresh_markers()
            self._ready(replayer)

    def _index_failed(self, exc: BaseException) -> None:
        self.window.end_progress()
        if not isinstance(exc, InterruptedError):
            self._failed(exc)

    def cancel_background(self) -> bool:
        """Cancel opening or indexing, if either runs (what is indexed stays usable); True if one did."""
        busy = self.open_task.running or self.index_task.running
        self.open_task.cancel()
        self.index_task.cancel()
        if busy:
            self.window.end_progress()
            self.window.status("Stopped reading the recording: what was read can be played")
        return busy

    def _ready(self, replayer: Replayer) -> None:
        """The whole file is known: what it holds, and whether anything was lost."""
        w = self.window
        info = replayer.info
        span = replayer.end - replayer.start
        w.status(f"Replaying {replayer.path.name}: {replayer.played:,} messages over {span / 60:,.1f} min"
                 + (f" — note: {self._note}" if self._note else ""))
        if replayer.damage or (info is not None and not info.complete):
            # never present a damaged file as whole: what was skipped is said, and marked on the timeline
            problem = describe_damage(replayer.damage, info.orphans) if replayer.damage else info.problem
            w.last_error = (f"{replayer.path.name} is damaged: replaying what could be read.", [f"{problem}."])
            self._offer_recovery(replayer.path, f"{problem}.")
            skipped = len(replayer.damage)
            what = f"{skipped} stretch{'es' if skipped != 1 else ''} skipped" if skipped else "cut off"
            w.status(f"Replaying {replayer.path.name} (damaged: {what}): {replayer.played:,} messages")

    # --- playing ---------------------------------------------------------------------------------------
    def _show(self, result: object, t: float, seeked: bool) -> None:
        self.window.replayed.show_replayed(result, t, seeked)
        if seeked:
            self._last_plot = 0.0  # after a jump the plot is redrawn at once, even when paused
        if seeked or getattr(result, "alarms_moved", False):
            self.alarms_changed()

    def alarms_changed(self) -> None:
        w = self.window
        manager = w.replayed.alarms if self.control is not None else None
        w.replay_alarm_panel.set_manager(manager)
        waiting = manager.unacknowledged_count() if manager is not None else 0
        w.replay_alarm_dock.setWindowTitle(f"Replayed alarms ({waiting} unacknowledged then)" if waiting
                                           else "Replayed alarms")

    def _moved(self, t: float) -> None:
        self.window.replay_banner.update_text(t)
        now = time.time()
        if now - getattr(self, "_last_plot", 0.0) >= PLOT_INTERVAL_S:  # a replay moves every frame
            self._last_plot = now
            self.on_frame(t)

    # --- leaving ---------------------------------------------------------------------------------------
    def leave_view(self) -> None:
        """Close the replay (if one is open): the 3D view goes back to the plant live."""
        w = self.window
        self.cancel_background()
        if self.control is not None:
            self.control.stop()
            self.control.deleteLater()
            self.control = None
            w.replayed.detach_replay()
            w.telemetry.take_scene()
            self.alarms_changed()
            w.view.update()
        w.timeline_dock.hide()
        w.replay_alarm_dock.hide()
        w.replay_banner.hide()

    # --- a damaged file --------------------------------------------------------------------------------
    def _offer_recovery(self, path: Path, problem: str) -> None:
        """Say what is damaged and offer, in one click, a whole copy with everything readable (beside it)."""
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, f"{path.name} is damaged: replaying what could be read.",
                          QMessageBox.StandardButton.Close, self.window)
        box.setInformativeText(f"{problem}\nRecover writes a whole copy with everything readable beside it "
                               "and replays that (the damaged file stays as it is).")
        recover_button = box.addButton("Recover a whole copy", QMessageBox.ButtonRole.AcceptRole)
        recover_button.clicked.connect(lambda: self.recover(path))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.recovery_box = box
        box.open()

    def recover(self, path: Path) -> None:
        """Write ``path``'s readable content to PATH-recovered.mcap in the background, then replay it."""
        from viewer.telemetry.recording import recover

        w = self.window
        fixed = path.with_name(f"{path.stem}-recovered.mcap")
        n = 2
        while fixed.exists():
            fixed = path.with_name(f"{path.stem}-recovered-{n}.mcap")
            n += 1
        w.status(f"Recovering {path.name} into {fixed.name}…")

        def recovered(info: object) -> None:
            w.status(f"Recovered {info.messages:,} messages into {fixed}")  # type: ignore[attr-defined]
            w.open_recording(fixed)

        self.recover_task.run(lambda _context: recover(path, fixed), recovered,
                              lambda exc: w.show_error("The recording could not be recovered.", [str(exc)]))
