"""One simulation job runner in a worker process: the newest request wins, and the planner is never starved.

The editor asks for a rerun after every edit. Requests never queue up: while a run is in flight, only the
newest request waits. A run that is already stale and has taken longer than ``STALE_AFTER_S`` is stopped
(the worker process is ended and started again) so the newest starts at once; a short stale run is let
finish, which costs less than a new process. But when nothing has been delivered for ``STARVATION_S`` (a
planner dragging without pause: an edit every 300 ms outpaces a 400 ms run), a stale run whose duration is
in line with the last one is let finish too, and its result is delivered marked ``superseded``: KPIs of an
earlier edit, which the editor shows greyed, rather than none at all. ``cancel()`` ends a run in flight, so
a long simulation of a big layout never holds up the planner. The UI thread never simulates: results arrive
through ``on_result(generation, report_or_error, superseded)`` on a reader thread, which the UI turns into a
signal; the newest request's first estimate (its first two replications) comes the same way, before its
result (``report.replications`` says which it is).
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from viewer.runtime import own_command
from viewer.sim.model import SimModel

STALE_AFTER_S = 0.5
STARVATION_S = 1.0  # nothing delivered for this long: let a stale run of the usual length finish
EDITOR_HOURS = 8.0  # what the editor's KPIs simulate after each edit
EDITOR_REPLICATIONS = 10
EDITOR_TIGHT = 0.02  # the editor stops at 4 or more replications once throughput is known to +-2 %


@dataclass
class SimRequest:
    model: SimModel
    hours: float = 8.0
    replications: int = 10
    seed: int = 1
    tight: float | None = EDITOR_TIGHT  # stop early once the throughput interval is this tight (see run())


def _send(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: Any) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    # Messages between the viewer and its own worker process over a private pipe; never from a file.
    return pickle.loads(data)


def worker_main() -> int:
    """The worker process (``twin-viewer _sim-worker``): simulate what arrives on stdin, reply on stdout."""
    from viewer.sim.runner import run

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply channel
    while True:
        try:
            generation, request = _receive(stdin)
        except (EOFError, OSError):
            return 0
        try:
            report = run(request.model, request.hours, request.replications, request.seed, workers=1,
                         first_estimate=lambda early, g=generation: _send(stdout, (g, ("first", early))),
                         tight=request.tight)
            _send(stdout, (generation, report))
        except Exception as exc:  # sent to the editor, which shows it
            _send(stdout, (generation, f"{type(exc).__name__}: {exc}"))


def worker_command() -> list[str]:
    """How to start the worker: this interpreter (or the bundled app) with the hidden subcommand."""
    return own_command("_sim-worker")


class SimulationJobRunner:
    """See the module docstring."""

    def __init__(self, on_result: Callable[[int, Any, bool], None]) -> None:
        self.on_result = on_result
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._generation = 0
        self._in_flight: int | None = None
        self._started = 0.0
        self._waiting: tuple[int, SimRequest] | None = None
        self.completed = 0  # runs the worker finished (delivered or superseded)
        self.delivered = 0  # results handed to on_result (superseded ones included)
        self._last_delivery = time.monotonic()
        self._typical_s: float | None = None  # how long the last finished run took
        self._cancelled_at = 0  # generations up to this one were cancelled: their results never arrive

    def submit(self, request: SimRequest) -> int:
        """Ask for a run; returns its generation (results for older generations are never delivered)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            if self._in_flight is not None and self._stop_stale(time.monotonic()):
                self._stop_process()  # a long stale run: stop it rather than wait
                self._in_flight = None
            if self._in_flight is None:
                self._waiting = None  # anything still waiting is older than this
                self._start(generation, request)
            else:
                self._waiting = (generation, request)  # replaces any older waiting request
        return generation

    def _stop_stale(self, now: float) -> bool:
        """Whether the stale run in flight is stopped for the new request (see the module docstring)."""
        running = now - self._started
        if running <= STALE_AFTER_S:
            return False
        starving = now - self._last_delivery > STARVATION_S
        expected = self._typical_s if self._typical_s is not None else 2.0 * STALE_AFTER_S  # none finished yet
        usual = running <= 2.0 * expected + STALE_AFTER_S
        return not (starving and usual)

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def cancel(self) -> None:
        """Stop the run in flight (the worker process is ended) and forget the waiting one."""
        with self._lock:
            self._waiting = None
            self._generation += 1
            self._cancelled_at = self._generation
            if self._in_flight is not None:
                self._stop_process()
                self._in_flight = None

    def close(self) -> None:
        with self._lock:
            self._waiting = None
            self._stop_process()

    # --- internals ------------------------------------------------------------------------------------
    def _ensure_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        # A fresh interpreter, not a fork: the viewer has Qt and VTK threads a fork would copy half-alive.
        self._process = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
        self._conn = self._process.stdin
        self._reader = threading.Thread(target=self._read, args=(self._process,), name="simulation-results",
                                        daemon=True)
        self._reader.start()

    def _start(self, generation: int, request: SimRequest) -> None:
        self._ensure_process()
        self._in_flight = generation
        self._started = time.monotonic()
        try:
            _send(self._conn, (generation, request))
        except OSError:  # the worker died: start again once
            self._stop_process()
            self._ensure_process()
            _send(self._conn, (generation, request))

    def _stop_process(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            self._process = None
        self._conn = None

    def _read(self, process: Any) -> None:
        stream = process.stdout
        while True:
            try:
                generation, result = _receive(stream)
            except (EOFError, OSError, pickle.UnpicklingError):
                return  # the process was stopped (cancel) or died
            if isinstance(result, tuple) and len(result) == 2 and result[0] == "first":
                with self._lock:  # a first estimate of the newest request: shown at once, the run goes on
                    current = process is self._process and generation == self._generation
                    if current:
                        self._last_delivery = time.monotonic()
                        self.delivered += 1
                if current:
                    self.on_result(generation, result[1], False)
                continue
            with self._lock:
                if process is not self._process:
                    return
                now = time.monotonic()
                self._typical_s = now - self._started
                self._in_flight = None
                self.completed += 1
                latest = self._generation
                if self._waiting is not None:
                    waiting_generation, request = self._waiting
                    self._waiting = None
                    self._start(waiting_generation, request)
                superseded = generation != latest
                # an older edit's KPIs are shown (greyed) rather than none; a cancelled run's never arrive
                deliver = not superseded or (not isinstance(result, str) and generation > self._cancelled_at)
                if deliver:
                    self._last_delivery = now
                    self.delivered += 1
            if deliver:
                self.on_result(generation, result, superseded)
