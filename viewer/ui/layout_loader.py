"""Loads a layout and builds its geometry off the GUI thread, with progress and cancel.

The worker touches only the Qt-free model (JSON, trimesh, numpy); the finished
geometry is handed to the GUI thread through a queued signal, where the scene
turns it into actors. The GUI never blocks on disk or parsing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import PlantGeometry, build_plant_geometry
from viewer.model.errors import Cancelled, LayoutError, MeshError
from viewer.model.layout import Layout
from viewer.model.layout_io import load_layout


@dataclass
class LoadedPlant:
    """What a finished load hands to the window."""

    path: Path
    layout: Layout
    geometry: PlantGeometry
    seconds: float


class LayoutLoader(QObject):
    """Runs one load at a time in a worker thread; signals arrive on the GUI thread."""

    progress = Signal(float, str)
    finished = Signal(object)  # LoadedPlant
    failed = Signal(str, str, list)  # path, summary, details (list of str)
    cancelled = Signal(str)  # path

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = MeshLibrary()
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # a superseded load reports nothing: its signals would confuse the new one

    @property
    def busy(self) -> bool:
        """True while a load is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, path: Path) -> None:
        """Begin loading ``path``; a load already running is cancelled first."""
        self.cancel()
        self._generation += 1
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(Path(path), self._cancel, self._generation),
                                        name="layout-loader", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the running load to stop; it reports :attr:`cancelled`."""
        if self._cancel is not None:
            self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Join the worker (tests and shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, path: Path, cancel: threading.Event, generation: int) -> None:
        start = time.perf_counter()

        def current() -> bool:
            return generation == self._generation

        try:
            self.progress.emit(0.0, f"Reading {path.name}")
            layout = load_layout(path)
            if cancel.is_set():
                raise Cancelled()
            geometry = build_plant_geometry(
                layout, path.parent, self.library,
                progress=lambda f, msg: current() and self.progress.emit(f, msg), cancel=cancel,
            )
        except Cancelled:
            if current():
                self.cancelled.emit(str(path))
        except LayoutError as exc:
            if current():
                self.failed.emit(str(path), f"{path.name} is not a usable layout file.",
                                 [str(p) for p in exc.problems])
        except MeshError as exc:
            if current():
                self.failed.emit(str(path), f"A mesh of {path.name} cannot be loaded.", [str(exc)])
        except Exception as exc:
            if current():
                self.failed.emit(str(path), f"{path.name} could not be opened.", [f"{type(exc).__name__}: {exc}"])
        else:
            if cancel.is_set():
                if current():
                    self.cancelled.emit(str(path))
            elif current():
                self.finished.emit(LoadedPlant(path, layout, geometry, time.perf_counter() - start))
