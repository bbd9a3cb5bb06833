"""Alarms with the ISA-18.2 life cycle.

An alarm condition is a state rule of a binding (component, signal, rule) whose
state is ``warning`` or ``fault``. Its alarm moves through the ISA-18.2 states::

    NORMAL --condition--> UNACK_ACTIVE --ack--> ACK_ACTIVE --clears--> NORMAL
                              |                                 (history keeps it)
                              +--clears--> UNACK_RTN --ack--> NORMAL
    any state --shelve(until)--> SHELVED --unshelve/expiry--> the state the condition now implies
    any state --suppress(by)--> SUPPRESSED --release--> the state it had (ISA-18.2 "suppressed by design")

An alarm that returned to normal unacknowledged stays in the list until the
operator acknowledges it: the operator must see what happened while away.
Shelving hides an alarm for a limited time (never forever) and says so.
Suppression by design folds a consequential alarm into the alarm that explains it
(first-out): the fault on a signal carries its warning and the anomaly that came first,
as one row with all the facts, instead of three alarms for one cause.
A condition whose severity rises while active is escalated: the same alarm, re-annunciated.
Every transition is logged as an :class:`AlarmEvent` (the recorder writes them).

An *occurrence* runs from a raise out of NORMAL until the alarm is back in NORMAL (cleared and
acknowledged). A condition that comes back before the operator acknowledged its return (chattering)
is a re-raise of the same occurrence: ``raise_count`` goes up, ``first_raised_at`` stays, ``raised_at``
is the latest raise. The list order is ISA-18.2's (:func:`list_order`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from viewer.telemetry.states import RuleChange

SEVERITY_OF_STATE = {"fault": "high", "warning": "medium"}
_RANK = {"high": 0, "medium": 1}
MAX_SHELVE_S = 8 * 3600  # a shift; shelving is never indefinite


class AlarmState(Enum):
    """ISA-18.2 alarm states."""

    NORMAL = "normal"
    UNACK_ACTIVE = "unacknowledged"
    ACK_ACTIVE = "acknowledged"
    UNACK_RTN = "cleared, unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed by design"


@dataclass
class Alarm:
    """One alarm condition and where it is in its life cycle."""

    id: int
    component: str
    signal: str
    rule_index: int
    severity: str
    message: str
    state: AlarmState = AlarmState.NORMAL
    condition_active: bool = False
    raised_at: float = 0.0
    acknowledged_at: float | None = None
    cleared_at: float | None = None
    shelved_until: float | None = None
    value: object = None
    suppressed_by: tuple[str, str, int] | None = None
    state_before_suppression: AlarmState | None = None
    related: dict[tuple[str, str, int], str] = field(default_factory=dict)  # facts of alarms folded into this one
    first_raised_at: float = 0.0  # the occurrence's first raise (raised_at is the latest)
    raise_count: int = 0  # raises in this occurrence (re-raises before it was back to normal count too)
    raised_value: object = None  # the value that raised (or escalated) it; ``value`` is the latest
    unconfirmed: bool = False  # restored from the journal as active: live data has not confirmed it yet

    @property
    def display_message(self) -> str:
        """The message with the facts of the alarms folded into this one (first-out)."""
        if not self.related:
            return self.message
        return self.message + "; " + "; ".join(self.related.values())

    @property
    def key(self) -> tuple[str, str, int]:
        """(component, signal, rule index): identifies the condition."""
        return (self.component, self.signal, self.rule_index)

    @property
    def needs_attention(self) -> bool:
        """Unacknowledged (active or returned to normal): the view blinks these."""
        return self.state in (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN)

    @property
    def awaits_acknowledgement(self) -> bool:
        """Unacknowledged, folded into another row or not (a folded alarm keeps its own life cycle)."""
        state = self.state_before_suppression if self.state is AlarmState.SUPPRESSED else self.state
        return state in (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN)

    @property
    def listed(self) -> bool:
        """Shown in the active-alarm list."""
        return self.state not in (AlarmState.NORMAL, AlarmState.SUPPRESSED)


# ISA-18.2 list order: what needs the operator now first, then what is known and handled, then what
# happened while away; shelved alarms last (hidden on purpose, listed so they are not forgotten).
_GROUP = {AlarmState.UNACK_ACTIVE: 0, AlarmState.ACK_ACTIVE: 1, AlarmState.UNACK_RTN: 2, AlarmState.SHELVED: 3}


def list_order(alarm: Alarm) -> tuple[int, int, float, int]:
    """Sort key of the alarm list: active unacknowledged, active acknowledged, cleared unacknowledged,
    shelved; within each, high before medium, then the newest raise first (a re-raise comes back to the
    top of its priority), then the newer alarm."""
    return (_GROUP.get(alarm.state, 4), _RANK.get(alarm.severity, 2), -alarm.raised_at, -alarm.id)


@dataclass(frozen=True)
class AlarmEvent:
    """A logged transition: raised, acknowledged, cleared, shelved, unshelved."""

    time: float
    alarm_id: int
    kind: str
    component: str
    severity: str
    message: str


@dataclass
class AlarmManager:
    """Keeps every alarm and its history (GUI thread, single writer)."""

    alarms: dict[tuple[str, str, int], Alarm] = field(default_factory=dict)
    history: list[AlarmEvent] = field(default_factory=list)
    max_history: int = 10_000
    logged: int = 0  # events ever logged (the history keeps the newest max_history)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _log(self, alarm: Alarm, kind: str, time: float) -> None:
        self.note(alarm.key, kind, time, alarm.display_message)

    def apply(self, change: RuleChange) -> Alarm | None:
        """Feed a rule that switched on or off; returns the alarm it moved, if it is an alarm rule."""
        if change.state not in SEVERITY_OF_STATE:
            return None
        key = (change.component, change.signal, change.rule_index)
        alarm = self.alarms.get(key)
        if alarm is None:
            message = change.message or f"{change.signal} {change.state}"
            alarm = Alarm(next(self._ids), change.component, change.signal, change.rule_index,
                          SEVERITY_OF_STATE[change.state], message)
            self.alarms[key] = alarm
        severity = SEVERITY_OF_STATE[change.state]
        was_active = alarm.condition_active
        alarm.condition_active = change.active
        alarm.value = change.value
        if change.active:
            alarm.unconfirmed = False  # live data says the condition holds
        if change.active and change.message:
            alarm.message = change.message
        if alarm.state is AlarmState.SHELVED:
            if change.active and (not was_active or _RANK[severity] < _RANK[alarm.severity]):
                alarm.severity = severity
            return alarm  # the condition is tracked; the operator is not disturbed until unshelved
        if alarm.state is AlarmState.SUPPRESSED:
            self._apply_folded(alarm, change, severity, was_active)
            return alarm
        if change.active:
            if alarm.state in (AlarmState.NORMAL, AlarmState.UNACK_RTN):
                _count_raise(alarm, change.time, change.value, again=alarm.state is AlarmState.UNACK_RTN)
                alarm.state = AlarmState.UNACK_ACTIVE
                alarm.severity = severity
                alarm.acknowledged_at = alarm.cleared_at = None
                self._log(alarm, "raised", change.time)
            elif _RANK[severity] < _RANK[alarm.severity]:  # the same condition got worse: escalate
                alarm.severity = severity
                alarm.state = AlarmState.UNACK_ACTIVE
                alarm.acknowledged_at = None
                alarm.raised_value = change.value
                self._log(alarm, "escalated", change.time)
        else:
            if alarm.state is AlarmState.UNACK_ACTIVE:
                alarm.state = AlarmState.UNACK_RTN
                alarm.cleared_at = change.time
                self._log(alarm, "cleared", change.time)
            elif alarm.state is AlarmState.ACK_ACTIVE:
                alarm.state = AlarmState.NORMAL
                alarm.cleared_at = change.time
                self._log(alarm, "cleared", change.time)
        return alarm

    def _apply_folded(self, alarm: Alarm, change: RuleChange, severity: str, was_active: bool) -> None:
        """A folded alarm keeps its own life cycle (in the state it returns to), logged as it happens."""
        before = alarm.state_before_suppression or AlarmState.NORMAL
        if change.active and not was_active:
            alarm.severity = severity
            _count_raise(alarm, change.time, change.value, again=before is AlarmState.UNACK_RTN)
            alarm.acknowledged_at = alarm.cleared_at = None
            alarm.state_before_suppression = AlarmState.UNACK_ACTIVE
            self._log(alarm, "raised", change.time)
        elif change.active and _RANK[severity] < _RANK[alarm.severity]:
            alarm.severity = severity
            alarm.raised_value = change.value
            alarm.state_before_suppression = AlarmState.UNACK_ACTIVE
            alarm.acknowledged_at = None
            self._log(alarm, "escalated", change.time)
        elif not change.active and was_active:
            alarm.cleared_at = change.time
            alarm.state_before_suppression = (AlarmState.UNACK_RTN if before is AlarmState.UNACK_ACTIVE
                                              else AlarmState.NORMAL)
            self._log(alarm, "cleared", change.time)

    def acknowledge(self, alarm_id: int, time: float) -> bool:
        """The operator acknowledges an alarm; returns whether it was waiting for that."""
        alarm = self._by_id(alarm_id)
        if alarm is None or not alarm.needs_attention:
            return False
        alarm.acknowledged_at = time
        alarm.state = AlarmState.ACK_ACTIVE if alarm.state is AlarmState.UNACK_ACTIVE else AlarmState.NORMAL
        self._log(alarm, "acknowledged", time)
        for key in list(alarm.related):  # the alarms folded into this row were seen with it
            folded = self.alarms.get(key)
            if folded is not None and folded.state is AlarmState.SUPPRESSED:
                before = folded.state_before_suppression
                if before in (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN):
                    folded.state_before_suppression = (AlarmState.ACK_ACTIVE if before is AlarmState.UNACK_ACTIVE
                                                       else AlarmState.NORMAL)
                    folded.acknowledged_at = time
        return True

    def acknowledge_all(self, time: float) -> int:
        """Acknowledge every alarm that waits; returns how many."""
        return sum(self.acknowledge(a.id, time) for a in list(self.alarms.values()) if a.needs_attention)

    def shelve(self, alarm_id: int, time: float, duration_s: float) -> bool:
        """Hide an alarm for ``duration_s`` (capped at a shift)."""
        alarm = self._by_id(alarm_id)
        if alarm is None or alarm.state is AlarmState.SHELVED:
            return False
        alarm.state = AlarmState.SHELVED
        alarm.shelved_until = time + min(max(duration_s, 0.0), MAX_SHELVE_S)
        self._log(alarm, "shelved", time)
        return True

    def unshelve(self, alarm_id: int, time: float) -> bool:
        """Bring a shelved alarm back; it is active-unacknowledged if its condition still holds."""
        alarm = self._by_id(alarm_id)
        if alarm is None or alarm.state is not AlarmState.SHELVED:
            return False
        alarm.shelved_until = None
        if alarm.condition_active:
            _count_raise(alarm, time, alarm.value, again=alarm.first_raised_at > 0)
            alarm.state = AlarmState.UNACK_ACTIVE
            self._log(alarm, "raised", time)
        else:
            alarm.state = AlarmState.NORMAL
        self._log(alarm, "unshelved", time)
        return True

    def suppress(self, key: tuple[str, str, int], by: tuple[str, str, int], fact: str, time: float) -> bool:
        """Fold the alarm ``key`` into the alarm ``by`` (first-out): it leaves the list, ``by`` shows
        ``fact``; returns whether anything changed."""
        alarm, primary = self.alarms.get(key), self.alarms.get(by)
        if alarm is None or primary is None or alarm is primary or alarm.state is AlarmState.SHELVED:
            return False  # a shelved alarm stays shelved: the operator's hiding it comes first
        primary.related[key] = fact
        if alarm.state is AlarmState.SUPPRESSED and alarm.suppressed_by == by:
            return False
        if alarm.state is not AlarmState.SUPPRESSED:
            alarm.state_before_suppression = alarm.state
        alarm.state = AlarmState.SUPPRESSED
        alarm.suppressed_by = by
        self._log(alarm, "suppressed", time)
        return True

    def release(self, key: tuple[str, str, int], time: float) -> bool:
        """End a suppression: the alarm takes the state its condition implies (unacknowledged if it
        still holds and was never acknowledged on its own)."""
        alarm = self.alarms.get(key)
        if alarm is None or alarm.state is not AlarmState.SUPPRESSED:
            return False
        primary = self.alarms.get(alarm.suppressed_by) if alarm.suppressed_by else None
        if primary is not None:
            primary.related.pop(key, None)
        alarm.state = alarm.state_before_suppression or AlarmState.NORMAL  # its own life cycle went on
        alarm.suppressed_by = alarm.state_before_suppression = None
        self._log(alarm, "released", time)
        return True

    def log_event(self, component: str, kind: str, time: float, message: str) -> None:
        """Log a decision that belongs to no alarm (e.g. "planned maintenance") in the alarm history."""
        self.history.append(AlarmEvent(time, 0, kind, component, "info", message))
        self.logged += 1
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]

    def note(self, key: tuple[str, str, int], kind: str, time: float, message: str) -> bool:
        """Log an operator action or a decision on an alarm (e.g. "accepted as new normal")."""
        alarm = self.alarms.get(key)
        if alarm is None:
            return False
        self.history.append(AlarmEvent(time, alarm.id, kind, alarm.component, alarm.severity, message))
        self.logged += 1
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        return True

    def expire_shelving(self, time: float) -> list[Alarm]:
        """Unshelve alarms whose shelving time ran out; returns them."""
        due = [a for a in self.alarms.values()
               if a.state is AlarmState.SHELVED and a.shelved_until is not None and a.shelved_until <= time]
        for alarm in due:
            self.unshelve(alarm.id, time)
        return due

    def listed(self) -> list[Alarm]:
        """Alarms to show, in ISA-18.2 order (:func:`list_order`)."""
        return sorted((a for a in self.alarms.values() if a.listed), key=list_order)

    def restore(self, alarms: list[Alarm], history: list[AlarmEvent], logged: int) -> None:
        """Take over alarms and history kept from an earlier session (the alarm journal); new alarms get
        ids after the restored ones, so the history's ids stay unambiguous."""
        for alarm in alarms:
            self.alarms[alarm.key] = alarm
        self.history = list(history[-self.max_history:])
        self.logged = max(logged, len(self.history))
        top = max([a.id for a in self.alarms.values()] + [e.alarm_id for e in self.history], default=0)
        self._ids = itertools.count(top + 1)

    def settle_unconfirmed(self, evaluated: Callable[[str, str], bool], time: float) -> bool:
        """Restored active alarms whose signal live data has now evaluated without raising them again: the
        condition is gone, so they clear (an unacknowledged one stays listed to be acknowledged). Returns
        whether any alarm moved."""
        moved = False
        for alarm in self.alarms.values():
            if not alarm.unconfirmed or not evaluated(alarm.component, alarm.signal):
                continue
            alarm.unconfirmed = False
            alarm.condition_active = False
            state = alarm.state_before_suppression if alarm.state is AlarmState.SUPPRESSED else alarm.state
            cleared = {AlarmState.UNACK_ACTIVE: AlarmState.UNACK_RTN, AlarmState.ACK_ACTIVE: AlarmState.NORMAL}
            if state not in cleared:
                continue  # e.g. shelved: the condition is tracked, the operator not disturbed
            alarm.cleared_at = time
            if alarm.state is AlarmState.SUPPRESSED:
                alarm.state_before_suppression = cleared[state]
            else:
                alarm.state = cleared[state]
            self._log(alarm, "cleared", time)
            moved = True
        return moved

    def unacknowledged_count(self) -> int:
        """How many alarms wait for acknowledgement."""
        return sum(1 for a in self.alarms.values() if a.needs_attention)

    def by_id(self, alarm_id: int) -> Alarm | None:
        """The alarm with this id, or None."""
        return self._by_id(alarm_id)

    def _by_id(self, alarm_id: int) -> Alarm | None:
        return next((a for a in self.alarms.values() if a.id == alarm_id), None)


def _count_raise(alarm: Alarm, time: float, value: object, *, again: bool) -> None:
    """A raise: a new occurrence (count 1, first time now), or ``again`` one more of the same occurrence."""
    if again and alarm.first_raised_at:
        alarm.raise_count += 1
    else:
        alarm.first_raised_at = time
        alarm.raise_count = 1
    alarm.raised_at = time
    alarm.raised_value = value
