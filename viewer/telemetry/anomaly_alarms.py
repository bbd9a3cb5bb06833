"""Anomaly alarms (ISA-18.2: one cause, one alarm) and the sentences that explain them.

:class:`AnomalyAlarms` turns the scorers' results into alarms:

- **one alarm per episode**: a component's anomaly alarm is raised when an episode starts, is
  escalated (same alarm, re-annunciated) if the episode goes from warning to alarm, and clears
  when the episode ends (the scorer waits ``rearm_s`` of normal before it ends one), however the
  level flickers in between;
- **first-out**: a rule alarm (warning or fault) on a signal that explains the anomaly folds the
  anomaly alarm into itself (the alarm list shows one row with both facts), and a fault rule on a
  signal folds the warning rule of the same signal; released again when the rule alarm clears;
- **the new normal**: "Accept as new normal" (the operator; history event ``accepted``, which a
  replay applies again at its time) or the scorer's own acceptance after ``accept_after``
  (``auto-accepted``, which the replayed scorer reaches by itself) clears the alarm and logs who
  decided it, in the alarm history and so in the recording.

The explanation helpers write what the details panel and the tooltip show: score, rarity, the
signals that explain it and how, their learned normal bands, failure horizons naming the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from viewer.analytics.calibration import describe_rarity
from viewer.analytics.horizon import format_duration
from viewer.analytics.monitor import AnomalyMonitor
from viewer.analytics.scorer import ScoreResult
from viewer.analytics.signal_model import RECURRING_EPISODES
from viewer.telemetry.alarms import AlarmManager, AlarmState
from viewer.telemetry.states import RuleChange

ANOMALY_SIGNAL = "anomaly"
ANOMALY_RULE = 0
STATE_OF_LEVEL = {"warning": "warning", "alarm": "fault"}
_RANKS = {"high": 0, "medium": 1}
KIND_WORDS = {"value": "unusual value", "level": "lasting shift", "flat": "flat line (stuck sensor?)",
              "rhythm": "broken rhythm", "relation": "signals out of step with each other", "": "unusual"}


@dataclass(frozen=True)
class Limit:
    """A rule threshold a signal can reach: where, in which direction, and what it means."""

    value: float
    state: str  # "warning" or "fault"
    above: bool


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S")


class AnomalyAlarms:
    """Anomaly episodes -> alarms, first-out suppression and acceptance (see the module docstring)."""

    def __init__(self, alarms: AlarmManager, monitor: AnomalyMonitor) -> None:
        self.alarms = alarms
        self.monitor = monitor
        self._episodes: dict[str, tuple[int, str]] = {}  # component -> (episode id, worst state so far)
        self._signals: dict[str, set[str]] = {}  # component -> signals that explain its episode

    def key(self, component: str) -> tuple[str, str, int]:
        """The alarm key of a component's anomaly alarm."""
        return (component, ANOMALY_SIGNAL, ANOMALY_RULE)

    def process(self, component: str, result: ScoreResult, now: float) -> bool:
        """Feed one scorer result; returns whether an alarm moved."""
        moved = False
        if result.accepted == "automatic":
            after = format_duration(self.monitor.config_for(component).accept_after)
            moved |= self._accepted(component, now, "auto-accepted", f"accepted as new normal automatically "
                                                                     f"after {after}")
        elif result.accepted == "recurring":
            moved |= self._accepted(component, now, "auto-accepted", f"a level that came back in "
                                                                     f"{RECURRING_EPISODES} episodes is learned "
                                                                     f"as an operating level")
        episode, worst = self._episodes.get(component, (0, "normal"))
        if result.episode:
            state = STATE_OF_LEVEL.get(result.level, "normal")
            if result.episode != episode:
                worst = "normal"
            if state == "fault" or (state == "warning" and worst == "normal"):
                worst = state
            self._episodes[component] = (result.episode, worst)
            if result.contributions:
                self._signals.setdefault(component, set()).update(result.contributions)
            if worst != "normal":
                # The message keeps its last real explanation (a quiet sample explains nothing).
                message = self.message(result) if result.contributions else ""
                change = RuleChange(component, ANOMALY_SIGNAL, ANOMALY_RULE, True, worst, message,
                                    self._value_text(component, result), now)
                alarm = self.alarms.alarms.get(self.key(component))
                before = (alarm.state, alarm.severity) if alarm is not None else None
                alarm = self.alarms.apply(change)
                moved |= alarm is not None and (alarm.state, alarm.severity) != before
        elif episode:
            self._end(component, now)
            moved = True
        return moved

    def _end(self, component: str, now: float) -> None:
        self._episodes.pop(component, None)
        self._signals.pop(component, None)
        alarm = self.alarms.alarms.get(self.key(component))
        if alarm is not None and alarm.condition_active:
            self.alarms.apply(RuleChange(component, ANOMALY_SIGNAL, ANOMALY_RULE, False, "warning", "", None, now))

    def _accepted(self, component: str, now: float, kind: str, why: str) -> bool:
        key = self.key(component)
        if key in self.alarms.alarms:
            self.alarms.note(key, kind, now, why)
        self._end(component, now)
        return True

    def accept(self, component: str, now: float, who: str = "operator") -> bool:
        """The operator's "Accept as new normal"; returns False when there was nothing to accept."""
        if not self.monitor.accept(component, now):
            return False
        key = self.key(component)
        if key not in self.alarms.alarms:  # accepted before any alarm was raised: log it all the same
            self.alarms.apply(RuleChange(component, ANOMALY_SIGNAL, ANOMALY_RULE, False, "warning",
                                         "anomaly", None, now))
        return self._accepted(component, now, "accepted", f"accepted as new normal by the {who} at {_clock(now)}")

    def _value_text(self, component: str, result: ScoreResult) -> str:
        """What the alarm list's value column shows: the signal that explains it most, and its value."""
        signal = next(iter(result.contributions), None)
        value = self.monitor.latest(component, signal) if signal else None
        return f"{signal} {value:.4g}" if value is not None else f"{result.raw:.1f} decades"

    @staticmethod
    def message(result: ScoreResult) -> str:
        """The alarm's message: what is unusual, and which signals say so."""
        kind = KIND_WORDS.get(result.kind, "unusual")
        signals = ", ".join(f"{s} {share:.0%}" for s, share in result.contributions.items()) or "several signals"
        return f"Anomaly ({kind}): {signals}"

    # --- first-out ------------------------------------------------------------------------------------
    def first_out(self, now: float) -> bool:
        """Fold consequential alarms into the rule alarm that explains them; release the others."""
        moved = False
        # A rule alarm explains what it is listed for: while active, and after it cleared until acknowledged.
        active_rules: dict[tuple[str, str], list[Any]] = {}
        for alarm in self.alarms.alarms.values():
            if alarm.signal != ANOMALY_SIGNAL and (alarm.condition_active or alarm.awaits_acknowledgement) \
                    and alarm.state is not AlarmState.SHELVED:
                active_rules.setdefault((alarm.component, alarm.signal), []).append(alarm)
        wanted: dict[tuple[str, str, int], tuple[tuple[str, str, int], str]] = {}
        for rules in active_rules.values():
            rules.sort(key=lambda a: (not a.condition_active, 0 if a.severity == "high" else 1))
            primary = rules[0]
            for other in rules[1:]:  # a fault on a signal carries its warning
                if primary.severity == "high" and other.severity != "high" and other.state is not AlarmState.SHELVED:
                    wanted[other.key] = (primary.key, f"{other.message} since {_clock(other.raised_at)}")
        for component, signals in self._signals.items():
            key = self.key(component)
            alarm = self.alarms.alarms.get(key)
            if alarm is None or not alarm.condition_active or alarm.state is AlarmState.SHELVED:
                continue
            # Folded only into a row at least as severe: a highly unusual anomaly is not shown as a warning.
            causes = [active_rules[(component, s)][0] for s in signals if (component, s) in active_rules
                      and _RANKS[active_rules[(component, s)][0].severity] <= _RANKS[alarm.severity]]
            if causes:
                primary = min(causes, key=lambda a: (not a.condition_active, 0 if a.severity == "high" else 1))
                first = alarm.raised_at if alarm.raised_at else now
                lead = primary.raised_at - first if primary.raised_at else 0.0
                when = f", {format_duration(lead)} before it" if lead > 1.0 else ""
                wanted[key] = (primary.key, f"anomaly first seen {_clock(first)}{when} "
                                            f"({', '.join(sorted(signals))})")
        for key, (by, fact) in wanted.items():
            moved |= self.alarms.suppress(key, by, fact, now)
        for alarm in list(self.alarms.alarms.values()):
            if alarm.state is AlarmState.SUPPRESSED and alarm.key not in wanted:
                moved |= self.alarms.release(alarm.key, now)
        return moved


# --- explanations ---------------------------------------------------------------------------------------
def anomaly_lines(monitor: AnomalyMonitor, component: str, children: list[str],
                  limits: Callable[[str, str], list[Limit]], horizon: Callable[[str, str, float], Any],
                  unit: Callable[[str, str], str], names: Callable[[str], str]) -> list[tuple[str, str]]:
    """What the details panel shows of a component's anomaly scoring, and of its sensors'."""
    rows = _component_lines(monitor, component, limits, horizon, unit)
    for child in children:
        lines = _component_lines(monitor, child, limits, horizon, unit)
        if lines:
            rows.append((names(child), ""))
            rows += [(f"  {key}", text) for key, text in lines]
    return rows


def _component_lines(monitor: AnomalyMonitor, component: str, limits: Callable[[str, str], list[Limit]],
                     horizon: Callable[[str, str, float], Any], unit: Callable[[str, str], str],
                     ) -> list[tuple[str, str]]:
    entry = monitor.components.get(component)
    if entry is None:
        return []
    scorer, result = entry.scorer, entry.result
    if scorer.learning:
        return [("anomaly", f"learning normal ({scorer.learned_samples}/{scorer.config.learn_samples} samples)")]
    level = {"normal": "normal", "warning": "unusual (warning)", "alarm": "highly unusual (alarm)"}[scorer.level]
    rows = [("anomaly", f"{level}: score {_score_text(result.score, result.raw)}, {describe_rarity(result.raw)}"
                        f"{' (reference frozen)' if scorer.frozen else ''}")]
    evidence = scorer.signal_evidence()
    if result.contributions:
        why = []
        for signal, share in result.contributions.items():
            kind = "relation" if result.kind == "relation" else evidence.get(signal, (0.0, ""))[1]
            why.append(f"{signal} {share:.0%} ({KIND_WORDS.get(kind, 'unusual')})")
        rows.append(("why", ", ".join(why)))
    if result.episode_start is not None:
        accept_after = scorer.config.accept_after
        since = f"since {_clock(result.episode_start)}"
        if accept_after > 0 and not scorer.frozen:
            since += f"; becomes the new normal at {_clock(result.episode_start + accept_after)} if it lasts"
        rows.append(("episode", since))
    for signal in entry.signals:
        u = unit(component, signal)
        bands = scorer.level_bands(signal)
        band = scorer.normal_band(signal)
        if len(bands) > 1:
            shown = ", ".join(f"{low:.4g}–{high:.4g}" for low, high in bands)
            rows.append((f"{signal} normal", f"levels {shown} {u}".strip()))
        elif band is not None:
            rows.append((f"{signal} normal", f"{band[0]:.4g} to {band[1]:.4g} {u}".strip()))
        for limit in _limits_ahead(limits(component, signal), monitor.latest(component, signal)):
            estimate = horizon(component, signal, limit.value)
            if estimate.seconds is not None:  # only a significant trend toward the limit says when
                rows.append((f"{signal} horizon", estimate.describe(signal, u, limit.value, limit.state)))
    return rows


def _score_text(score: float, evidence: float) -> str:
    """The score as far as seven decimals tell it; beyond, its evidence in decades."""
    if evidence < 6.5:
        return f"{score:.6f}"
    return f"> 0.999999 ({evidence:.1f} decades)"


def _limits_ahead(limits: list[Limit], value: float | None) -> list[Limit]:
    """The limits still ahead of the value: the nearest warning and the fault beyond it, each way."""
    if value is None:
        return limits[:2]
    ahead = [lim for lim in limits if (value < lim.value) == lim.above]
    ahead.sort(key=lambda lim: abs(lim.value - value))
    chosen, states = [], set()
    for lim in ahead:
        if (lim.state, lim.above) not in states:
            states.add((lim.state, lim.above))
            chosen.append(lim)
    return chosen[:2]


def anomaly_summary(monitor: AnomalyMonitor, component: str) -> str:
    """One line for the tooltip: level, rarity, what explains it; nothing when normal."""
    entry = monitor.components.get(component)
    if entry is None or entry.scorer.learning or entry.scorer.level == "normal":
        return ""
    result = entry.result
    signals = ", ".join(f"{s} {share:.0%}" for s, share in result.contributions.items())
    level = "highly unusual" if entry.scorer.level == "alarm" else "unusual"
    return (f"anomaly: {level}, {describe_rarity(result.raw)} ({KIND_WORDS.get(result.kind, 'unusual')}"
            f"{': ' + signals if signals else ''})")
