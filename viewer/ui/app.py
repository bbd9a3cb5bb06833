"""Start the GUI: the application object, the control-room theme, the main window."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

from viewer import __version__
from viewer.ui.theme import DEFAULT_THEME, apply_theme

log = logging.getLogger(__name__)

_open_error_boxes: list = []  # error dialogs shown (kept alive while open; tests read them)


def _install_excepthook() -> None:
    """An unexpected error shows a dialog and the app keeps running, instead of a traceback or a vanishing window."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        log.error("unexpected error\n%s", text)
        sys.__stderr__.write(text)
        if QApplication.instance() is not None:
            from viewer.runtime import log_dir

            box = QMessageBox(QMessageBox.Icon.Critical, "twin-viewer",
                              f"An unexpected error occurred: {value}\n\nThe details are in the log: "
                              f"{log_dir() / 'twin-viewer.log'}. The viewer keeps running.",
                              QMessageBox.StandardButton.Ok)
            box.setDetailedText(text)
            box.setModal(False)  # the control room keeps watching while someone reads it
            box.show()
            _open_error_boxes.append(box)
            box.finished.connect(lambda _r, b=box: _open_error_boxes.remove(b))

    sys.excepthook = hook


def tune_allocator() -> None:
    """Keep freed heap memory instead of returning it to the system every frame (glibc only).

    Software OpenGL (llvmpipe) allocates ~16 MiB of vertex buffers per frame of a large
    plant; with glibc's default trim threshold that memory goes back to the kernel and
    returns as ~4,000 freshly zeroed pages on the next frame: 9-10 ms of every frame
    (measured with benchmarks/scene_load.py). A 1 GiB threshold keeps it in the heap.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad = -1, -2
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_top_pad, 64 << 20)
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        log.debug("allocator tuning not available")


class _GuiThreadGarbageCollector:
    """Python's cycle collector runs in whichever thread happens to allocate; with paho's network
    thread allocating thousands of messages a second, that is usually not the GUI thread, and freeing
    a Qt or VTK object from another thread crashes the process (sporadically: the worst kind). So
    automatic collection is off and this timer collects on the GUI thread (pyqtgraph does the same).
    """

    def __init__(self, app: QApplication, interval_ms: int = 1000) -> None:
        import gc

        from PySide6.QtCore import QTimer

        self._gc = gc
        gc.disable()
        self._threshold = gc.get_threshold()
        self.timer = QTimer(app)
        self.timer.timeout.connect(self.collect)
        self.timer.start(interval_ms)

    def collect(self) -> None:
        """Collect the generations that would have been collected automatically by now."""
        counts = self._gc.get_count()
        if counts[0] > self._threshold[0]:
            generation = 0
            if counts[1] > self._threshold[1]:
                generation = 2 if counts[2] > self._threshold[2] else 1
            self._gc.collect(generation)


def _ensure_a_font(app: QApplication) -> None:
    """A PC with no fonts installed (a minimal system) would show every label as empty boxes: fall back to
    the DejaVu Sans that ships inside matplotlib (a dependency of pyvista), in the bundle too."""
    from importlib.util import find_spec

    from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics

    if QFontMetrics(app.font()).inFont("A"):  # (families() is never empty: Qt lists its aliases regardless)
        return
    spec = find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        font_id = QFontDatabase.addApplicationFont(str(Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"))
        families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
        if families:
            app.setFont(QFont(families[0], 10))
            log.warning("no fonts installed on this system: using the bundled %s", families[0])
            return
    log.error("no fonts installed on this system and none bundled: text will not be readable")


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, themed (reuses an existing one, e.g. pytest-qt's)."""
    tune_allocator()
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    if not hasattr(app, "_twin_gc"):
        app._twin_gc = _GuiThreadGarbageCollector(app)  # type: ignore[attr-defined]
    app.setApplicationName("twin-viewer")
    app.setOrganizationName("twin-viewer")
    app.setApplicationVersion(__version__)
    _ensure_a_font(app)
    if not hasattr(app, "_twin_themed"):  # a window may have switched the theme since: keep its choice
        apply_theme(app, DEFAULT_THEME)
        app._twin_themed = True  # type: ignore[attr-defined]
    return app


def _quit_on_signals(app: QApplication) -> None:
    """SIGTERM (kill, a session ending) and SIGINT (Ctrl+C) close the app like its window's Quit.

    The Python handler may run in the middle of any Python code, a paint included, so it only sets
    a flag; a 200 ms timer, at the top of the event loop, sees it and quits there.
    """
    import signal

    from PySide6.QtCore import QTimer

    requested: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: requested.append(number))
    tick = QTimer(app)
    tick.timeout.connect(lambda: app.quit() if requested else None)
    tick.start(200)


def run_gui(file: Path | None = None, broker: str | None = None, recording: Path | None = None,
            kiosk: bool = False, opcua: str | None = None) -> int:
    """Open the main window (on ``file`` if given, live from ``broker`` if given; replaying ``recording``).

    The installed app's behaviour: settings restored and saved, the administrator's policy applied
    (operator mode full screen on its monitor), errors logged to the user's log file.
    """
    from viewer.runtime import load_policy

    app = create_application()
    _install_excepthook()
    from viewer.ui.main_window import MainWindow
    from viewer.ui.settings import open_settings, restore_window

    policy = load_policy(kiosk)
    log.info("starting twin-viewer %s: %s", __version__, policy.describe())
    window = MainWindow(broker=broker, policy=policy)
    window.opcua_endpoint = opcua  # --opcua: this server instead of the layout's
    window.settings = open_settings()
    restore_window(window.settings, window)
    window.refresh_recent()
    _quit_on_signals(app)
    if policy.fullscreen:
        window.show_full_screen()
    else:
        window.show()
    probe = os.environ.get("TWIN_VIEWER_STARTUP_PROBE")
    if probe:  # benchmarks/startup.py: note when the plant is on screen, then quit
        def shown(_path: str) -> None:
            window.view.render()
            app.processEvents()
            Path(probe).write_text(f"{time.time():.6f}\n")
            app.quit()

        window.layout_loaded.connect(shown)
    if file is not None and recording is not None:
        window.replay_on(file, recording)
    elif file is not None:
        window.open_layout(file)
    elif recording is not None:
        window.open_recording(recording)
    return app.exec()
