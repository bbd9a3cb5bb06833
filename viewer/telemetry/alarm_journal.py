"""The alarm journal: a plant's alarm list and alarm history survive reopening its layout.

One journal per layout file, in the user's data folder (``alarm_journal_dir``), named after the layout
and a hash of its resolved path (the path is the layout's identity: the same file reopened, reloaded or
gone back to live after a replay finds its journal; a copy elsewhere is another plant's list).

Format: JSON lines, UTF-8, never pickle (a file in a user folder may have been put there by anyone).
Line 1 is a header ``{"format": "twin-viewer-alarm-journal", "version": 1, ...}``; then one line per
alarm (``{"alarm": {...}}``) and one per history event (``{"event": {...}}``), oldest first. Only alarm
facts are kept (ids, texts, states, times, plain values), the layout's path and name: no broker, no
credentials. Bounded: at most ``MAX_EVENTS`` events and ``MAX_BYTES`` in all (the oldest events go
first), strings cut at ``MAX_TEXT``; a file much larger than that is not read. Written whole to a
temporary file and renamed over the old one, so a crash leaves the previous journal, never half of one.

Reading never stops the app: a line that cannot be understood is skipped and reported with its line
number and the reason; a file that is not a journal (wrong header, newer version, unreadable) is
skipped whole and reported, and kept aside as ``*.damaged`` for a look.

Restoring keeps what the operator still has to do: a cleared alarm not yet acknowledged is still to be
acknowledged; an acknowledgement stays. An alarm that was active is restored *unconfirmed*: live data
re-evaluates it (the first value of its signal raises nothing new if the condition still holds, and
clears it if it does not: :meth:`AlarmManager.settle_unconfirmed`). Anomaly episodes do not survive a
reload (the scorer starts again), so an active anomaly alarm is restored as returned to normal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from viewer.telemetry.alarms import Alarm, AlarmEvent, AlarmManager, AlarmState
from viewer.telemetry.anomaly_alarms import ANOMALY_SIGNAL
from viewer.telemetry.pipeline import TelemetryPipeline

log = logging.getLogger(__name__)

FORMAT = "twin-viewer-alarm-journal"
VERSION = 1
MAX_EVENTS = 5_000
MAX_BYTES = 2 * 1024 * 1024
MAX_TEXT = 1_000  # characters per string
SAVE_INTERVAL_S = 2.0  # at most one write per this while alarms move (and always when the plant closes)

_ALARM_FIELDS = {f.name for f in fields(Alarm)}
_STATES = {s.name: s for s in AlarmState}


def alarm_journal_dir() -> Path:
    """The user's folder for alarm journals (``$TWIN_VIEWER_ALARM_JOURNAL`` overrides it)."""
    env = os.environ.get("TWIN_VIEWER_ALARM_JOURNAL")
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "twin-viewer" / "alarm-journal"


def journal_path(folder: Path, layout_path: Path | str, layout_name: str = "") -> Path:
    """The journal file of a layout: readable name, and a hash of the resolved path that makes it unique."""
    resolved = str(Path(layout_path).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", layout_name or Path(layout_path).stem).strip("-")[:40] or "layout"
    return folder / f"{slug}-{digest}.jsonl"


@dataclass
class JournalProblem:
    """Something in a journal file that could not be used: where (file, line) and why."""

    path: Path
    line: int | None  # None: the whole file
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.reason}"


# --------------------------------------------------------------------------- encoding
def _plain(value: Any) -> Any:
    """A JSON-safe copy of a telemetry value: numbers, strings, booleans, None; lists of those; else text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, list | tuple) and len(value) <= 64:
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy values and small arrays
        return _plain(value.tolist())
    return str(value)[:MAX_TEXT]


def alarm_to_dict(alarm: Alarm) -> dict[str, Any]:
    """One alarm as plain JSON values."""
    out: dict[str, Any] = {}
    for name in _ALARM_FIELDS:
        value = getattr(alarm, name)
        if isinstance(value, AlarmState):
            value = value.name
        elif name == "related":
            value = [[list(key), _plain(fact)] for key, fact in value.items()]
        elif name == "suppressed_by" and value is not None:
            value = list(value)
        else:
            value = _plain(value)
        out[name] = value
    return out


def _key(value: Any) -> tuple[str, str, int]:
    component, signal, rule = value
    if not (isinstance(component, str) and isinstance(signal, str) and isinstance(rule, int)):
        raise ValueError(f"not an alarm key: {value!r}")
    return (component, signal, rule)


def _number(value: Any, name: str, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is not a number: {value!r}")
    return float(value)


def alarm_from_dict(doc: dict[str, Any]) -> Alarm:
    """An alarm from :func:`alarm_to_dict`'s output; ValueError (with the field) when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("an alarm is not an object")
    try:
        alarm = Alarm(int(doc["id"]), str(doc["component"]), str(doc["signal"]), int(doc["rule_index"]),
                      str(doc["severity"]), str(doc["message"]))
    except KeyError as exc:
        raise ValueError(f"the alarm has no {exc.args[0]!r}") from None
    alarm.state = _state(doc.get("state", "NORMAL"), "state")
    before = doc.get("state_before_suppression")
    alarm.state_before_suppression = None if before is None else _state(before, "state_before_suppression")
    for name in ("raised_at", "first_raised_at"):
        setattr(alarm, name, _number(doc.get(name, 0.0), name, optional=False))
    for name in ("acknowledged_at", "cleared_at", "shelved_until"):
        setattr(alarm, name, _number(doc.get(name), name))
    alarm.condition_active = bool(doc.get("condition_active", False))
    alarm.raise_count = int(doc.get("raise_count", 0))
    alarm.value = doc.get("value")
    alarm.raised_value = doc.get("raised_value")
    alarm.unconfirmed = bool(doc.get("unconfirmed", False))
    by = doc.get("suppressed_by")
    alarm.suppressed_by = None if by is None else _key(by)
    related = doc.get("related", [])
    if not isinstance(related, list):
        raise ValueError("related is not a list")
    alarm.related = {_key(key): str(fact) for key, fact in related}
    return alarm


def _state(name: Any, what: str) -> AlarmState:
    if name not in _STATES:
        raise ValueError(f"{what} {name!r} is not an alarm state")
    return _STATES[name]


def event_to_dict(event: AlarmEvent) -> dict[str, Any]:
    """One history event as plain JSON values."""
    return {"time": event.time, "alarm_id": event.alarm_id, "kind": event.kind[:MAX_TEXT],
            "component": event.component[:MAX_TEXT], "severity": event.severity, "message": event.message[:MAX_TEXT]}


def event_from_dict(doc: dict[str, Any]) -> AlarmEvent:
    """A history event; ValueError when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("an event is not an object")
    try:
        return AlarmEvent(float(_number(doc["time"], "time", optional=False)), int(doc["alarm_id"]),
                          str(doc["kind"]), str(doc["component"]), str(doc["severity"]), str(doc["message"]))
    except KeyError as exc:
        raise ValueError(f"the event has no {exc.args[0]!r}") from None


# --------------------------------------------------------------------------- the file
@dataclass
class JournalContents:
    """What a journal file held (and what could not be used)."""

    alarms: list[Alarm] = field(default_factory=list)
    history: list[AlarmEvent] = field(default_factory=list)
    logged: int = 0
    saved_at: float | None = None
    problems: list[JournalProblem] = field(default_factory=list)


def write_journal(path: Path, manager: AlarmManager, *, layout_path: Path | str, layout_name: str = "",
                  max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> int:
    """Write the manager's listed and folded alarms and its newest history (bounded); returns the bytes."""
    header = json.dumps({"format": FORMAT, "version": VERSION, "layout_path": str(Path(layout_path).resolve()),
                         "layout_name": layout_name[:MAX_TEXT], "saved_at": time.time(),
                         "logged": manager.logged})
    kept = [a for a in manager.alarms.values() if a.state is not AlarmState.NORMAL]
    alarm_lines = [json.dumps({"alarm": alarm_to_dict(a)}, ensure_ascii=False) for a in kept]
    event_lines = [json.dumps({"event": event_to_dict(e)}, ensure_ascii=False)
                   for e in manager.history[-max_events:]]
    size = len(header) + 1 + sum(len(line.encode()) + 1 for line in alarm_lines)
    budget = max_bytes - size
    first = len(event_lines)
    while first > 0 and budget - (len(event_lines[first - 1].encode()) + 1) >= 0:  # newest events first
        first -= 1
        budget -= len(event_lines[first].encode()) + 1
    text = "\n".join([header, *alarm_lines, *event_lines[first:]]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return len(text.encode())


def read_journal(path: Path, *, max_bytes: int = MAX_BYTES) -> JournalContents:
    """The journal at ``path``: empty (no problem) when there is none; unusable lines skipped and listed."""
    out = JournalContents()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return out
    except OSError as exc:
        out.problems.append(JournalProblem(path, None, f"cannot be read ({exc.strerror or exc})"))
        return out
    if size > 4 * max_bytes:
        out.problems.append(JournalProblem(path, None, f"{size:,} bytes, more than a journal ever holds: not read"))
        return out
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(JournalProblem(path, None, f"cannot be read ({exc})"))
        return out
    reason = _header_problem(lines[0] if lines else "")
    if reason:
        out.problems.append(JournalProblem(path, 1, reason))
        return out
    header = json.loads(lines[0])
    out.logged = header.get("logged", 0) if isinstance(header.get("logged"), int) else 0
    out.saved_at = header.get("saved_at") if isinstance(header.get("saved_at"), int | float) else None
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if isinstance(doc, dict) and "alarm" in doc:
                out.alarms.append(alarm_from_dict(doc["alarm"]))
            elif isinstance(doc, dict) and "event" in doc:
                out.history.append(event_from_dict(doc["event"]))
            else:
                raise ValueError("neither an alarm nor an event")
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            out.problems.append(JournalProblem(path, number, str(exc)[:200]))
    return out


def _header_problem(line: str) -> str:
    try:
        header = json.loads(line)
    except ValueError as exc:
        return f"not an alarm journal ({exc})"
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return "not an alarm journal (no twin-viewer-alarm-journal header)"
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        return f"journal version {version!r} is newer than this viewer reads ({VERSION})"
    return ""


# --------------------------------------------------------------------------- live use
def restored(alarms: list[Alarm]) -> list[Alarm]:
    """Alarms as a new session takes them over: active conditions wait for live data to confirm them;
    anomaly episodes, which do not survive a reload, have returned to normal."""
    returned = {AlarmState.UNACK_ACTIVE: AlarmState.UNACK_RTN, AlarmState.ACK_ACTIVE: AlarmState.NORMAL}
    for alarm in alarms:
        if alarm.signal == ANOMALY_SIGNAL and alarm.condition_active:
            alarm.condition_active = False
            if alarm.state is AlarmState.SUPPRESSED:  # folded: first-out sorts it out on the first step
                before = alarm.state_before_suppression
                alarm.state_before_suppression = returned.get(before, before) if before else None
            else:
                alarm.state = returned.get(alarm.state, alarm.state)
        elif alarm.condition_active:
            alarm.unconfirmed = True
    return alarms


class AlarmJournal:
    """The journal of one layout while it is shown live: restore once, save as alarms move and at the end."""

    def __init__(self, folder: Path, layout_path: Path | str, layout_name: str = "") -> None:
        self.path = journal_path(folder, layout_path, layout_name)
        self.layout_path = Path(layout_path)
        self.layout_name = layout_name
        self.problems: list[JournalProblem] = []
        self._saved_logged = -1
        self._last_save = 0.0

    def restore(self, manager: AlarmManager) -> int:
        """Put the journal's alarms and history into ``manager`` (a fresh one); returns how many alarms.
        Problems are logged and kept in :attr:`problems`; a file that is not a journal is moved aside."""
        contents = read_journal(self.path)
        self.problems = contents.problems
        for problem in contents.problems:
            log.warning("alarm journal %s", problem)
        if any(p.line in (None, 1) for p in contents.problems) and self.path.exists():
            try:  # kept for a look; the next save starts a new journal
                os.replace(self.path, self.path.with_name(self.path.name + ".damaged"))
            except OSError as exc:
                log.warning("cannot move %s aside: %s", self.path, exc)
        alarms = restored(contents.alarms)
        manager.restore(alarms, contents.history, contents.logged)
        self._saved_logged = manager.logged
        return len(alarms)

    def save(self, manager: AlarmManager) -> bool:
        """Write the journal now; False (logged) when the disk refuses: alarms go on, unjournaled."""
        try:
            write_journal(self.path, manager, layout_path=self.layout_path, layout_name=self.layout_name)
        except OSError as exc:
            log.warning("cannot write the alarm journal %s: %s", self.path, exc)
            return False
        self._saved_logged = manager.logged
        return True

    def poll(self, pipeline: TelemetryPipeline, now: float) -> bool:
        """Once a frame: settle restored alarms whose signals live data has evaluated, save when the history
        grew (at most every SAVE_INTERVAL_S); returns whether alarms moved."""
        manager = pipeline.alarms
        engine = pipeline.engine
        moved = manager.settle_unconfirmed(lambda c, s: engine.signal_state(c, s) != "unknown", now)
        if manager.logged != self._saved_logged and (now - self._last_save >= SAVE_INTERVAL_S
                                                     or now < self._last_save):
            self._last_save = now
            self.save(manager)
        return moved
