"""A plant's own run-to-failure histories: the CSV format, its loader, and the health model learned from it.

The layout names a history per component (``viewer/model/layout.schema.json``, a component's ``health``)::

    "health": {"history": "histories/st10_spindle.csv", "signals": ["vibration", "temperature"],
               "time_unit": "s"}

**The file** is CSV (comma separated, UTF-8) with a header row. Columns, by name, in any order:

- ``unit``: which machine (or which life of it) the row belongs to: any text; a unit's rows need not be
  contiguous, but its times must increase in file order;
- ``time``: when, in ``time_unit`` (``s``, ``min``, ``h``, ``d``, or ``cycles``); any origin per unit;
- one column per signal named in ``signals``, numbers (other columns are ignored);
- optionally ``failed``: 1 on the row where the unit failed (it must be the unit's last row), 0 elsewhere.
  Without the column, each unit's last row is its failure. A unit with no 1 in ``failed`` never failed
  (censored: still running, or repaired before failing): it is **skipped** for learning and counted in
  :attr:`RunToFailureHistory.censored` (its rows say only that the life was longer than what they show,
  which the piecewise-linear target cannot use without biasing the lives short or long).

Errors name the file, the line (1 = the header), the column and why (:class:`HistoryError`); nothing is
guessed. The histories are resampled onto one regular step, the median spacing of the file's times (the
latest value of each signal at or before each step, anchored at the failure, so the last row is the
failure): the live pipeline resamples the stream onto the same step, so a row live means what it meant
when learning. ``cycles``: one row per cycle as written (the live stream makes one row per new value of
the first signal, and a cycle's duration live is the median spacing of those rows).

:func:`fit_history` learns a :class:`~viewer.analytics.health.HealthModel` from it (no operating settings:
one condition; the cap of the piecewise-linear target is :data:`CAP_FRACTION` of the median life, as
C-MAPSS's usual 125 cycles is of FD001's ~200; the window candidates are shortened for short lives).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viewer.analytics.health import WINDOW_CHOICES, HealthModel, RulEstimate

TIME_UNITS: dict[str, float | None] = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "cycles": None}
CAP_FRACTION = 0.6
MIN_FAILED_UNITS = 5  # the model's grouped cross-validation needs units in every fold
MAX_ROWS_PER_UNIT = 5000  # after resampling: a finer step than the wear needs only costs fitting time
MAX_FILE_BYTES = 200 * 1024 * 1024


class HistoryError(ValueError):
    """A history file that cannot be used: where (file, line, column) and why."""

    def __init__(self, path: Path | str, why: str, line: int | None = None, column: str | None = None) -> None:
        self.path, self.why, self.line, self.column = Path(path), why, line, column
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {why}")


@dataclass
class RunToFailureHistory:
    """Failed units resampled onto one step: each an array (steps x signals), the last row the failure."""

    path: Path
    signals: tuple[str, ...]
    time_unit: str
    step: float  # in time_unit
    units: list[np.ndarray]
    unit_names: list[str]
    censored: list[str] = field(default_factory=list)  # units that never failed: skipped

    @property
    def step_s(self) -> float | None:
        """The step in seconds (None for cycles)."""
        scale = TIME_UNITS[self.time_unit]
        return None if scale is None else self.step * scale


def read_history(path: Path | str, signals: Sequence[str], time_unit: str = "s") -> RunToFailureHistory:
    """Read a run-to-failure CSV (see the module docstring); :class:`HistoryError` says where and why not."""
    path = Path(path)
    if time_unit not in TIME_UNITS:
        raise HistoryError(path, f"time unit {time_unit!r} is not one of {', '.join(TIME_UNITS)}")
    if not signals:
        raise HistoryError(path, "no signals named: a history needs at least one signal column")
    rows_of = _read_rows(path, tuple(signals))
    failed_units, names, censored = [], [], []
    for name, (times, values, failed, lines) in rows_of.items():
        if failed is not None and not failed.any():
            censored.append(name)
            continue
        if failed is not None and not failed[-1]:
            line = lines[int(np.flatnonzero(failed)[0])]
            raise HistoryError(path, f"unit {name!r} has failed = 1 before its last row: a failure ends a unit's "
                                     "run (start the next run as a new unit)", line, "failed")
        failed_units.append((times, values))
        names.append(name)
    if len(failed_units) < MIN_FAILED_UNITS:
        raise HistoryError(path, f"{len(failed_units)} unit(s) ran to failure ({len(censored)} censored): at least "
                                 f"{MIN_FAILED_UNITS} are needed to learn from")
    gaps = np.concatenate([np.diff(t) for t, _ in failed_units if len(t) > 1] or [np.zeros(0)])
    if len(gaps) == 0:
        raise HistoryError(path, "every unit has a single row: no history to learn from")
    step = 1.0 if time_unit == "cycles" else float(np.median(gaps))
    longest = max(t[-1] - t[0] for t, _ in failed_units)
    step = max(step, longest / MAX_ROWS_PER_UNIT)
    units = [_resample(t, v, step) for t, v in failed_units]
    return RunToFailureHistory(path, tuple(signals), time_unit, step, units, names, censored)


def _read_rows(path: Path, signals: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                                                        list[int]]]:
    """Each unit's times, signal values, failed flags (None without the column) and file lines."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HistoryError(path, f"{size:,} bytes: a history may be at most {MAX_FILE_BYTES:,}")
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise HistoryError(path, "file not found") from None
    except OSError as exc:
        raise HistoryError(path, f"cannot read the file: {exc.strerror}") from None
    units: dict[str, list[tuple[float, list[float], float, int]]] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise HistoryError(path, "the file is empty: a header row is needed", 1) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise HistoryError(path, f"not a readable CSV file ({exc})", 1) from None
        needed = ("unit", "time", *signals)
        missing = [name for name in needed if name not in header]
        if missing:
            raise HistoryError(path, f"the header has no column {', '.join(repr(m) for m in missing)} (it has "
                                     f"{', '.join(repr(h) for h in header)})", 1)
        where = {name: header.index(name) for name in (*needed, "failed") if name in header}
        try:
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) < len(header):
                    raise HistoryError(path, f"{len(row)} fields where the header has {len(header)}", line_no)
                unit = row[where["unit"]].strip()
                if not unit:
                    raise HistoryError(path, "empty unit", line_no, "unit")
                t = _number(path, row, where, "time", line_no)
                values = [_number(path, row, where, s, line_no) for s in signals]
                failed = _number(path, row, where, "failed", line_no) if "failed" in where else 0.0
                if failed not in (0.0, 1.0):
                    raise HistoryError(path, f"{row[where['failed']]!r}: 'failed' is 0 or 1", line_no, "failed")
                rows = units.setdefault(unit, [])
                if rows and t <= rows[-1][0]:
                    raise HistoryError(path, f"time {t:g} is not after the unit's previous row ({rows[-1][0]:g}, "
                                             f"line {rows[-1][3]}): a unit's rows are in time order", line_no, "time")
                rows.append((t, values, failed, line_no))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise HistoryError(path, f"not a readable CSV file ({exc})", reader.line_num) from None
    if not units:
        raise HistoryError(path, "no data rows after the header", 2)
    has_failed = "failed" in where
    return {name: (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                   np.array([r[2] == 1.0 for r in rows]) if has_failed else None, [r[3] for r in rows])
            for name, rows in units.items()}


def _number(path: Path, row: list[str], where: dict[str, int], column: str, line: int) -> float:
    text = row[where[column]].strip()
    try:
        value = float(text)
    except ValueError:
        raise HistoryError(path, f"{text!r} is not a number" if text else "empty value", line, column) from None
    if not math.isfinite(value):
        raise HistoryError(path, f"{text!r} is not a finite number", line, column)
    return value


def _resample(times: np.ndarray, values: np.ndarray, step: float) -> np.ndarray:
    """The latest values at or before each step back from the failure (the last row), oldest first."""
    back = np.arange(math.floor((times[-1] - times[0]) / step + 1e-9), -1, -1)
    grid = times[-1] - back * step
    index = np.searchsorted(times, grid + 1e-9 * step, side="right") - 1
    return values[np.maximum(index, 0)]


@dataclass
class LearnedHealth:
    """A component's model learned from its history, and what the details panel says about it."""

    model: HealthModel
    history: RunToFailureHistory
    fit_s: float

    @property
    def histories(self) -> int:
        return len(self.history.units)


def fit_history(history: RunToFailureHistory, **options: object) -> LearnedHealth:
    """Learn a health model from ``history`` (rows = steps; see the module docstring for the choices).

    ``options`` go to :meth:`HealthModel.fit` (``epochs``, ``ensemble``, ...; the defaults otherwise).
    """
    lives = np.array([len(u) for u in history.units], dtype=float)
    cap = max(2.0, CAP_FRACTION * float(np.median(lives)))
    shortest_window = max(2, int(np.median(lives) // 4))
    windows = tuple(sorted({min(w, shortest_window) for w in WINDOW_CHOICES}))
    settings = {"cap": cap, "windows": windows, **options}
    t0 = time.perf_counter()
    model = HealthModel.fit(history.units, n_settings=0, sensor_names=history.signals, **settings)  # type: ignore[arg-type]
    return LearnedHealth(model, history, time.perf_counter() - t0)


class LiveHealth:
    """A component's learned model fed live: the stream resampled onto the history's step, one tracker row a step.

    :meth:`catch_up` takes each signal's recent (time, value) samples (newer than those already taken) and
    emits the rows the history's resampling would have made: every ``step`` seconds, the latest value of each
    signal at or before that time (for ``cycles``: one row per new value of the first signal). A gap longer
    than the tracker's window holds the last values for the window's rows and counts the rest in the age.
    """

    def __init__(self, learned: LearnedHealth) -> None:
        self.learned = learned
        self.tracker = learned.model.tracker()
        self.signals = learned.history.signals
        self.step_s = learned.history.step_s
        self.latest: dict[str, float] = {}
        self.taken: dict[str, float] = {}  # the newest sample time taken per signal
        self.next_row: float | None = None  # stream time of the next row (seconds histories)
        self.row_times: list[float] = []  # recent row times (cycles: a cycle's duration live)
        self.estimate: RulEstimate | None = None  # in model steps

    def catch_up(self, samples: dict[str, Sequence[tuple[float, float]]]) -> None:
        """Take the samples newer than those taken; emit the rows they complete."""
        events = sorted((t, name, v) for name, rows in samples.items() if name in self.signals
                        for t, v in rows if t > self.taken.get(name, -math.inf))
        for t, name, value in events:
            self._rows_until(t, inclusive=False)  # the rows before t are complete: every value up to them is in
            self.latest[name] = value
            self.taken[name] = t
            if self.next_row is None and len(self.latest) == len(self.signals):
                self.next_row = t  # the first row: once every signal has a value
            if self.step_s is None and name == self.signals[0]:
                self._row(t)
        if events:
            self._rows_until(events[-1][0], inclusive=True)

    def _rows_until(self, t: float, *, inclusive: bool) -> None:
        """Emit the due rows at next_row, next_row + step, ... before ``t`` (or at it, ``inclusive``)."""
        step, start = self.step_s, self.next_row
        if step is None or start is None or t < start:
            return
        span = (t - start) / step
        due = math.floor(span + 1e-9) + 1 if inclusive else math.ceil(span - 1e-9)
        window = self.learned.model.window
        if due > window:  # a long gap: the held values fill the window; the rest only ages the unit
            self.tracker.age += due - window
            start += (due - window) * step
            due = window
        for k in range(due):
            self._row(start + k * step)
        self.next_row = start + due * step

    def _row(self, t: float) -> None:
        if len(self.latest) < len(self.signals):
            return
        self.estimate = self.tracker.update(np.array([self.latest[s] for s in self.signals]))
        self.row_times = [*self.row_times[-49:], t]

    def seconds_per_step(self) -> float | None:
        """The step in seconds: the history's, or for cycles the median spacing of the live cycles."""
        if self.step_s is not None:
            return self.step_s
        gaps = np.diff(self.row_times)
        return float(np.median(gaps)) if len(gaps) else None

    def current(self) -> RulEstimate | None:
        """The latest estimate in seconds (None before the first row, or for cycles before the second)."""
        scale = self.seconds_per_step()
        e = self.estimate
        if e is None or scale is None:
            return None
        return RulEstimate(e.point * scale, e.low * scale, e.high * scale, e.level, e.source, e.based_on,
                           e.outcomes * scale)


def health_section(component: object) -> dict[str, object]:
    """A component's ``health`` section (read from the file's object when the model does not carry it)."""
    section = getattr(component, "section", None)
    found = section("health") if callable(section) else {}
    if not found:
        found = (getattr(component, "as_read", None) or {}).get("health") or {}
    return found if isinstance(found, dict) else {}


def learn_health(components: Sequence[object], layout_dir: Path | str | None = None,
                 **options: object) -> tuple[dict[str, LearnedHealth], dict[str, str]]:
    """Each component with a ``health`` section: its model learned from its history file (relative paths
    from ``layout_dir``, else the working directory). Returns (models, problems): a component whose history
    cannot be used is in ``problems`` with why, never raised."""
    learned: dict[str, LearnedHealth] = {}
    problems: dict[str, str] = {}
    base = Path(layout_dir) if layout_dir is not None else Path.cwd()
    for comp in components:
        section = health_section(comp)
        if not section.get("history"):
            continue
        cid = str(getattr(comp, "id", ""))
        try:
            history = read_history(base / str(section["history"]), [str(s) for s in section.get("signals", [])],
                                   str(section.get("time_unit", "s")))
            learned[cid] = fit_history(history, **options)
        except (HistoryError, ValueError) as exc:
            problems[cid] = str(exc)
    return learned, problems
