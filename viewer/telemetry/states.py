"""State rules: signal values -> component states (running, idle, warning, fault, stale, off).

A binding's ``rules`` are checked against each new value. A rule is active when
its condition holds: ``equals`` (a status code, a string or a boolean fault bit),
``bit`` (bit n of an integer status word is set), ``above`` / ``below`` a
threshold. Thresholds have hysteresis: a rule that became active above 80 with
``hysteresis: 2`` stays active until the value drops below 78, so a value
hovering at the limit does not make the component flash.

A signal takes the state of its most severe active rule; a component the most
severe state of its signals. A component whose newest value is older than the
stale time shows ``stale``, whatever its last state was: the operator must not
trust a colour that is no longer fed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from viewer.telemetry.bindings import Binding

# Most severe first. "normal" = data arrives and no rule says anything; "unknown" = no data yet.
# "uncertain" = the source itself says its value is of doubtful quality (OPC UA Uncertain): not taken as a value.
SEVERITY = {"fault": 8, "warning": 7, "stale": 6, "uncertain": 5, "off": 4, "idle": 3, "running": 2, "normal": 1,
            "unknown": 0}
ALARM_STATES = ("warning", "fault")
DEFAULT_STALE_AFTER_S = 10.0


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def rule_holds(rule: dict[str, Any], value: Any, was_active: bool) -> bool:
    """Whether a rule's condition holds for ``value``, given whether it held before (hysteresis)."""
    if "bit" in rule:
        number = _as_float(value)
        if number is None:
            return False
        bit_set = (int(number) >> int(rule["bit"])) & 1 == 1
        return bit_set == bool(rule.get("equals", True))
    if "equals" in rule:
        expected = rule["equals"]
        if isinstance(expected, bool) or isinstance(value, bool):
            return bool(value) == bool(expected) if isinstance(value, bool | int | float) else False
        if isinstance(expected, int | float):
            number = _as_float(value)
            return number is not None and number == float(expected)
        return str(value) == str(expected)
    number = _as_float(value)
    if number is None:
        return False
    band = float(rule.get("hysteresis", 0.0)) if was_active else 0.0
    holds = True
    if "above" in rule:
        holds &= number > float(rule["above"]) - band
    if "below" in rule:
        holds &= number < float(rule["below"]) + band
    return holds and ("above" in rule or "below" in rule)


@dataclass(frozen=True)
class RuleChange:
    """A rule that became active or inactive: the raw material of alarms."""

    component: str
    signal: str
    rule_index: int
    active: bool
    state: str
    message: str
    value: Any
    time: float


@dataclass
class _SignalState:
    active: set[int] = field(default_factory=set)
    state: str = "normal"
    last_time: float = 0.0
    stale_after: float = DEFAULT_STALE_AFTER_S
    offline_since: float | None = None  # its source said it went offline (Sparkplug DEATH): stale until new data
    uncertain_since: float | None = None  # its source sent an Uncertain value (OPC UA): until a newer good value


class StateEngine:
    """Evaluates rules on new values and keeps each component's state (GUI thread, single writer)."""

    def __init__(self, bindings: list[Binding], stale_after: float = DEFAULT_STALE_AFTER_S,
                 stale_after_opcua: float | None = None) -> None:
        self.default_stale_after = stale_after
        self.opcua_stale_after = stale_after_opcua
        self._bindings = {b.index: b for b in bindings}
        self._by_signal: dict[tuple[str, str], _SignalState] = {}
        self.component_states: dict[str, str] = {}

    def update(self, component: str, signal: str, value: Any, time: float,
               binding_index: int | None = None) -> list[RuleChange]:
        """Apply a new value of a signal (fed by binding ``binding_index``); returns rules that switched."""
        binding = self._bindings.get(binding_index) if binding_index is not None else None
        key = (component, signal)
        st = self._by_signal.get(key)
        if st is None:
            stale = self._stale_after_of(binding)
            st = self._by_signal[key] = _SignalState(stale_after=stale)
        st.last_time = max(st.last_time, time)
        if st.offline_since is not None and time > st.offline_since:
            st.offline_since = None  # a value newer than the death: the source is back
        if st.uncertain_since is not None and time > st.uncertain_since:
            st.uncertain_since = None
        changes: list[RuleChange] = []
        worst = "normal"
        for i, rule in enumerate(binding.rules if binding is not None else ()):
            was = i in st.active
            now = rule_holds(rule, value, was)
            if now != was:
                (st.active.add if now else st.active.discard)(i)
                changes.append(RuleChange(component, signal, i, now, rule["state"], rule.get("message", ""),
                                          value, time))
            if now and SEVERITY[rule["state"]] > SEVERITY[worst]:
                worst = rule["state"]
        st.state = worst
        return changes

    def _stale_after_of(self, binding: Binding | None) -> float:
        if binding is not None and binding.stale_after:
            return binding.stale_after
        if binding is not None and binding.is_opcua and self.opcua_stale_after:
            return self.opcua_stale_after
        return self.default_stale_after

    def refresh(self, now: float) -> dict[str, str]:
        """Every component's state at ``now`` (stale where data stopped); returns those that changed."""
        states: dict[str, str] = {}
        for (component, _signal), st in self._by_signal.items():
            stale = now - st.last_time > st.stale_after or st.offline_since is not None
            state = "stale" if stale else "uncertain" if st.uncertain_since is not None else st.state
            if SEVERITY[state] > SEVERITY.get(states.get(component, "unknown"), 0):
                states[component] = state
        changed = {c: s for c, s in states.items() if self.component_states.get(c) != s}
        self.component_states.update(states)
        return changed

    def set_offline(self, component: str, signal: str, since: float) -> None:
        """The signal's source went offline at ``since``: stale until a value newer than that arrives."""
        st = self._by_signal.get((component, signal))
        if st is not None and st.last_time <= since:
            st.offline_since = since

    def confirm_current(self, component: str, signal: str, when: float) -> None:
        """The signal's source is alive and would have reported a change (an OPC UA subscription's keep-alive):
        its last value still holds at ``when``, so it is not stale. A Bad or Uncertain status stays."""
        st = self._by_signal.get((component, signal))
        if st is not None:
            st.last_time = max(st.last_time, when)

    def set_uncertain(self, component: str, signal: str, since: float, stale_after: float | None = None) -> None:
        """The signal's source sent a value of uncertain quality at ``since``: "uncertain" until a newer good
        value. A signal never seen before is created (its first value may be the uncertain one)."""
        key = (component, signal)
        st = self._by_signal.get(key)
        if st is None:
            st = self._by_signal[key] = _SignalState(stale_after=stale_after or self.default_stale_after)
        st.last_time = max(st.last_time, since)  # the source is alive: uncertain, not stale
        if st.offline_since is not None and since > st.offline_since:
            st.offline_since = None  # Bad, then Uncertain (a sensor recovering): no longer no data
        st.uncertain_since = since

    def signal_state(self, component: str, signal: str) -> str:
        """The state a signal's rules give (not counting staleness; "uncertain" while its source says so)."""
        st = self._by_signal.get((component, signal))
        if st is None:
            return "unknown"
        return "uncertain" if st.uncertain_since is not None else st.state
