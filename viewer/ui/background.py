"""Work off the GUI thread, once: the window's background tasks (compare, redraw, recover, index a recording).

A :class:`BackgroundTask` runs one function at a time in a worker thread and hands its result to a
callback on the GUI thread. Asking again supersedes what runs: the older run's result is dropped when
it arrives (its generation is no longer the newest), so a slow early answer never overwrites a newer one.
The function gets a :class:`TaskContext` to report progress and to see whether it was cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class TaskContext:
    """What a running task may ask: is it still wanted, and how far it is."""

    def __init__(self, task: BackgroundTask, generation: int) -> None:
        self._task = task
        self.generation = generation

    def cancelled(self) -> bool:
        """True once the task was cancelled or superseded: stop early, the result would be dropped."""
        return self.generation != self._task.generation

    def progress(self, fraction: float) -> None:
        """Report progress (0..1); delivered on the GUI thread."""
        self._task._progressed.emit(self.generation, float(fraction))


class BackgroundTask(QObject):
    """One kind of background work for one owner (see the module docstring)."""

    _finished = Signal(int, object, bool)  # generation, result or exception, failed
    _progressed = Signal(int, float)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.generation = 0
        self.running = False
        self._done: Callable[[Any], None] | None = None
        self._failed: Callable[[BaseException], None] | None = None
        self._on_progress: Callable[[float], None] | None = None
        self._finished.connect(self._deliver)
        self._progressed.connect(self._deliver_progress)

    def run(self, work: Callable[[TaskContext], Any], done: Callable[[Any], None],
            failed: Callable[[BaseException], None] | None = None,
            progress: Callable[[float], None] | None = None) -> int:
        """Start ``work(context)`` in a worker thread; ``done(result)`` or ``failed(exception)`` follow on the
        GUI thread unless a newer run or :meth:`cancel` came first. Returns the run's generation."""
        self.generation += 1
        generation = self.generation
        self._done, self._failed, self._on_progress = done, failed, progress
        context = TaskContext(self, generation)
        self.running = True

        def thread_main() -> None:
            try:
                result, bad = work(context), False
            except Exception as exc:  # handed to the owner, who says what went wrong
                result, bad = exc, True
            self._finished.emit(generation, result, bad)

        threading.Thread(target=thread_main, name=self.name, daemon=True).start()
        return generation

    def cancel(self) -> None:
        """Drop whatever runs now (it sees ``cancelled()`` and its result is not delivered)."""
        self.generation += 1
        self.running = False

    def _deliver(self, generation: int, result: object, failed: bool) -> None:
        if generation != self.generation:
            return  # superseded or cancelled
        self.running = False
        if not failed:
            if self._done is not None:
                self._done(result)
        elif self._failed is not None:
            self._failed(result)  # type: ignore[arg-type]
        else:
            log.error("%s failed: %s", self.name, result)

    def _deliver_progress(self, generation: int, fraction: float) -> None:
        if generation == self.generation and self._on_progress is not None:
            self._on_progress(fraction)
