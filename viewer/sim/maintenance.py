"""Repair windows ranked by expected lost output, from the layout's shift calendar and the simulation.

For a station at risk and a horizon, the candidate windows are now, each shift change, break and
off-shift start of the calendar (``simulation.calendar``), and the start of each low-volume shift of a
production plan (``simulation.production_plan``: ``[{"start": s, "end": s, "volume": parts}]`` within the
calendar's period) when the layout has one. For each window:

    expected lost output = planned loss (the station down for its repair time, starting then)
                         + P(failure before the window) x unplanned loss (down for its MTTR, at a random time)

With a production plan, a loss is output the plan misses: a shift whose planned volume is below what the
line can make in it (its capacity, simulated) has slack, and parts a stop costs in that shift are made up
from the slack first (lost against the plan = max(0, parts lost - slack)); a stop is charged to the shift it
starts in. Without a plan every part lost is lost (the line is asked for all it can make).

Both losses are simulated by the ordinary engine, with no engine change: a stop is the station's own
failure made deterministic (first failure at the stop, repair of the given length), the calendar rotated
so that the stop falls at the window's phase; each run is compared with the same run, same seeds, without
the stop (common random numbers: the difference is the stop's alone). The unplanned loss averages
failures at evenly spaced phases over the calendar's period (a stratified "random time"). Doing nothing
costs P(failure within the horizon) x the unplanned loss.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from viewer.sim.kernel import simulate
from viewer.sim.model import Calendar, PlanShift, SimModel, plan_shifts

TAIL_S = 2 * 3600.0  # after the repair: time for the line to show what the stop cost downstream
LEAD_S = 3 * 3600.0  # before the stop: the line fills; longer than the tail (see _stopped)
PHASES = 24  # failure phases over the calendar period for the unplanned loss
BREAK_MAX_S = 2 * 3600.0  # an off-time this short is a break; longer, off-shift


def shift_capacity(model: SimModel, station: int, shift: PlanShift, *, replications: int = 4,
                   seed: int = 1) -> float:
    """Parts the line makes in ``shift`` (its normal failures included, no stop): the same runs, same seeds,
    to the shift's start and to its end, differenced."""
    base = _stopped(model, station, shift.start, None)
    for node in base.nodes:  # keep the station's own failures: _stopped(None) removed them
        if node.id == model.nodes[station].id:
            node.mtbf, node.mttr = model.nodes[station].mtbf, model.nodes[station].mttr
    seeds = np.random.SeedSequence(seed).spawn(replications)
    span = shift.end - shift.start
    return float(np.mean([simulate(base, LEAD_S + span, s).produced - simulate(base, LEAD_S, s).produced
                          for s in seeds]))


class PlanSlack:
    """The slack of each shift of a production plan (capacity - planned volume, never below 0), by phase."""

    def __init__(self, model: SimModel, station: int, shifts: Sequence[PlanShift], period: float, *,
                 replications: int = 4, seed: int = 1) -> None:
        self.period = period
        self.shifts = list(shifts)
        self.slack = [max(0.0, shift_capacity(model, station, sh, replications=replications, seed=seed)
                          - sh.volume) for sh in self.shifts]

    def at(self, phase: float) -> float:
        """The slack of the shift a stop starting at ``phase`` falls in (0 outside every shift)."""
        phase %= self.period
        for shift, slack in zip(self.shifts, self.slack, strict=True):
            if shift.start <= phase < shift.end:
                return slack
        return 0.0

    def lost(self, parts: float, phase: float) -> float:
        """Parts lost against the plan by a stop starting at ``phase`` that costs ``parts`` of output."""
        return max(0.0, parts - self.at(phase))


@dataclass(frozen=True)
class RepairWindow:
    """A moment to start the repair, and what it is expected to cost (parts)."""

    start: float  # s from now
    kind: str  # "now", "shift change", "break", "off shift", "low-volume shift"
    planned_loss: float = 0.0
    p_fail_before: float = 0.0
    expected_loss: float = 0.0


@dataclass
class MaintenancePlan:
    """The ranked windows of one station, the unplanned loss and the cost of doing nothing."""

    station: str
    repair_s: float
    horizon_s: float
    unplanned_loss: float
    p_fail_horizon: float
    do_nothing: float
    windows: list[RepairWindow] = field(default_factory=list)  # best first
    basis: str = ""

    def best(self, count: int = 3) -> list[RepairWindow]:
        return self.windows[:count]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["windows"] = [asdict(w) for w in self.best()]
        return data

    def format(self) -> str:
        lines = [f"{self.station}: {100 * self.p_fail_horizon:.0f} % probability of failure within "
                 f"{_hours(self.horizon_s)} ({self.basis}); repair {_hours(self.repair_s)}; "
                 f"an unplanned failure costs {self.unplanned_loss:.1f} parts"]
        lines.append(f"  {'window':<28}{'planned loss':>14}{'P(fail first)':>15}{'expected loss':>15}")
        for w in self.best():
            lines.append(f"  {w.kind + ' in ' + _hours(w.start):<28}{w.planned_loss:>14.1f}"
                         f"{100 * w.p_fail_before:>14.0f}%{w.expected_loss:>15.1f}")
        lines.append(f"  {'do nothing':<28}{'':>14}{100 * self.p_fail_horizon:>14.0f}%{self.do_nothing:>15.1f}")
        return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 86400:.1f} d" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} h"


def candidate_windows(calendar: Calendar | None, horizon: float, now: float = 0.0,
                      plan: Sequence[PlanShift] | None = None) -> list[RepairWindow]:
    """Now, and every shift change, break and off-shift start (and low-volume shift) within the horizon.

    ``now`` is the calendar phase of the present (s since the start of a period).
    """
    found: dict[float, str] = {0.0: "now"}
    if calendar is not None and calendar.working:
        period = calendar.period
        working = sorted(calendar.working)
        marks = []
        for i, (_start, end) in enumerate(working):
            next_start = working[(i + 1) % len(working)][0] + (period if i + 1 == len(working) else 0.0)
            gap = next_start - end
            kind = "shift change" if gap <= 0 else "break" if gap <= BREAK_MAX_S else "off shift"
            marks.append((end % period, kind))
        if plan:
            low = float(np.median([shift.volume for shift in plan]))
            marks += [(shift.start % period, "low-volume shift") for shift in plan if shift.volume < low]
        for base in np.arange(math.floor(now / period) * period, now + horizon + period, period):
            for phase, kind in marks:
                at = base + phase - now
                if 0.0 < at <= horizon:
                    found.setdefault(round(at, 6), kind)
    return [RepairWindow(at, kind) for at, kind in sorted(found.items())]


def _rotated(calendar: Calendar | None, shift: float) -> Calendar | None:
    """The calendar moved ``shift`` seconds later (what was at phase p is at p + shift), wrapped."""
    if calendar is None or not calendar.working:
        return calendar
    period = calendar.period
    pieces: list[tuple[float, float]] = []
    for start, end in calendar.working:
        a, b = (start + shift) % period, (start + shift) % period + (end - start)
        pieces += [(a, b)] if b <= period else [(a, period), (0.0, b - period)]
    return Calendar(period, sorted(pieces))


def _stopped(model: SimModel, station: int, phase: float, repair: tuple[str, float] | None) -> SimModel:
    """A copy where the station's own failures are replaced by one stop at sim time LEAD_S (= ``phase``).

    The stop is a deterministic failure at LEAD_S whose repair has the given family and mean; the next one
    would come at 2 LEAD_S + repair, after the run's end (LEAD_S + repair + TAIL_S). ``repair`` None: no stop.
    """
    out = copy.deepcopy(model)
    out.warmup = 0.0
    out.calendar = _rotated(model.calendar, LEAD_S - phase)
    node = out.nodes[station]
    if repair is None:
        node.mtbf = node.mttr = None
    else:
        node.failure_dist, node.mtbf = "deterministic", LEAD_S
        node.repair_dist, node.mttr = repair
    return out


def stop_loss(model: SimModel, station: int, phase: float, repair: tuple[str, float], *,
              replications: int = 4, seed: int = 1) -> float:
    """Mean parts lost by stopping ``station`` at calendar ``phase`` for ``repair`` = (family, mean s)."""
    duration = LEAD_S + repair[1] + TAIL_S
    without, with_stop = _stopped(model, station, phase, None), _stopped(model, station, phase, repair)
    seeds = np.random.SeedSequence(seed).spawn(replications)
    losses = [simulate(without, duration, s).produced - simulate(with_stop, duration, s).produced for s in seeds]
    return float(np.mean(losses))


def plan_repair(model: SimModel, station_id: str, *, repair_s: float, horizon_s: float,
                p_fail_within: Callable[[float], float], now: float = 0.0, plan: Sequence[dict] | None = None,
                replications: int = 4, seed: int = 1, basis: str = "") -> MaintenancePlan:
    """Rank the repair windows of ``station_id`` within ``horizon_s`` by expected lost output (parts).

    ``p_fail_within(t)``: the probability the station fails within t seconds from now (a health
    model's estimate, or the station's MTBF).
    """
    station = model.index(station_id)
    node = model.nodes[station]
    period = model.calendar.period if model.calendar is not None and model.calendar.working else 86400.0
    shifts = plan_shifts(plan, period) if plan is not None else model.production_plan
    slack = PlanSlack(model, station, shifts, period, replications=replications, seed=seed)
    mttr = (node.repair_dist, node.mttr) if node.mttr else ("deterministic", repair_s)
    phases = (np.arange(PHASES) + 0.5) * period / PHASES
    unplanned = float(np.mean([slack.lost(stop_loss(model, station, float(p), mttr, replications=replications,
                                                    seed=seed), float(p)) for p in phases]))
    windows = []
    by_phase: dict[float, float] = {}  # the line is the same every period: one simulation per phase
    for w in candidate_windows(model.calendar, horizon_s, now, shifts):
        phase = round((now + w.start) % period, 6)
        if phase not in by_phase:
            by_phase[phase] = slack.lost(stop_loss(model, station, phase, ("deterministic", repair_s),
                                                   replications=replications, seed=seed), phase)
        planned = by_phase[phase]
        p_before = float(p_fail_within(w.start)) if w.start > 0 else 0.0
        windows.append(RepairWindow(w.start, w.kind, planned, p_before, planned + p_before * unplanned))
    windows.sort(key=lambda w: (w.expected_loss, w.start))
    p_horizon = float(p_fail_within(horizon_s))
    return MaintenancePlan(station_id, repair_s, horizon_s, unplanned, p_horizon, p_horizon * unplanned,
                           windows, basis)


def calendar_phase(epoch_s: float, period: float) -> float:
    """The calendar phase of a moment: the layout's calendar periods start at local midnight of a Monday
    (a 1-day period: midnight each day; 8 h shifts: midnight, 08:00, 16:00)."""
    import time as _time

    local = _time.localtime(epoch_s)
    since_monday = local.tm_wday * 86400 + local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec
    return float((since_monday + epoch_s % 1.0) % period)


def exponential_failure(mtbf: float) -> Callable[[float], float]:
    """P(failure within t) of a station with a constant failure rate (no history, no trend)."""
    return lambda t: 1.0 - math.exp(-max(t, 0.0) / mtbf)


_UNIT_S = {"s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'14d', '8h', '30min', '90s' or plain seconds -> seconds."""
    text = text.strip().lower()
    for unit in sorted(_UNIT_S, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNIT_S[unit]
    return float(text)


def main_maintenance(argv: Sequence[str],
                     risks_from_recording: Callable[[Any, Any, float], dict[str, tuple[Callable[[float], float], str]]]
                     | None = None) -> int:
    """``twin-viewer maintenance LAYOUT [--recording R.mcap] [--horizon 14d] [--json] ...``: the repair windows
    of each station at risk.

    With ``--recording``, ``risks_from_recording(layout, path, horizon)`` (the CLI's: it replays the file's
    last hour) gives the stations whose signals head for their fault limits, with their failure probability
    and its basis; elsewhere a station's failure probability comes from its MTBF (constant rate); stations
    with neither are not at risk.
    """
    import argparse
    import json
    import sys
    from pathlib import Path

    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout
    from viewer.sim.model import SimModelError, model_from_layout

    parser = argparse.ArgumentParser(prog="twin-viewer maintenance",
                                     description="rank repair windows by expected lost output")
    parser.add_argument("layout", type=Path)
    parser.add_argument("--horizon", default="14d", help="how far ahead to look (14d, 8h, 90min; default 14d)")
    parser.add_argument("--station", action="append", help="only this station (repeatable)")
    parser.add_argument("--repair-time", help="planned repair duration (default: the station's MTTR)")
    parser.add_argument("--now", default=None, help="the present as a time of the calendar's period, e.g. 6h "
                        "(default: the clock's, the period starting at local midnight on a Monday)")
    parser.add_argument("--replications", type=int, default=4, help="runs per simulated loss (default 4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the plans as JSON")
    parser.add_argument("--recording", type=Path, help="a recording of the plant: stations whose signals head for "
                        "their fault limits there are at risk by their trend")
    args = parser.parse_args(list(argv))
    try:
        horizon = parse_duration(args.horizon)
        now = parse_duration(args.now) if args.now is not None else None
        repair = parse_duration(args.repair_time) if args.repair_time else None
    except ValueError:
        parser.error("durations look like 14d, 8h, 30min or 90s")
    if horizon <= 0 or args.replications < 1:
        parser.error("--horizon must be > 0 and --replications >= 1")
    try:
        layout = load_layout(args.layout)
        model = model_from_layout(layout)
    except (LayoutError, SimModelError) as exc:
        print(f"{args.layout}: {exc}", file=sys.stderr)
        return 1
    trend_risks: dict[str, tuple[Callable[[float], float], str]] = {}
    if args.recording is not None and risks_from_recording is not None:
        try:
            trend_risks = risks_from_recording(layout, args.recording, horizon)
        except (OSError, ValueError) as exc:  # RecordingError is a ValueError's sibling: the hook says why
            print(f"{args.recording}: {exc}", file=sys.stderr)
            return 1
    if now is None:
        import time

        now = calendar_phase(time.time(), model.calendar.period if model.calendar is not None else 86400.0)
    chosen = [n for n in model.nodes if n.kind == "station" and (n.mtbf or n.id in trend_risks)
              and (not args.station or n.id in args.station)]

    def risk_of(node: Any) -> tuple[Callable[[float], float], str]:
        return trend_risks.get(node.id) or (exponential_failure(float(node.mtbf)), "from its MTBF, no history")

    plans = [plan_repair(model, n.id, repair_s=repair or float(n.mttr or 3600.0), horizon_s=horizon,
                         p_fail_within=risk_of(n)[0], now=now, replications=args.replications,
                         seed=args.seed, basis=risk_of(n)[1]) for n in chosen]
    plans.sort(key=lambda p: -p.p_fail_horizon)
    if args.json:
        print(json.dumps([p.to_dict() for p in plans], indent=2))
    elif not plans:
        print("no station at risk: none states an MTBF (sim.mtbf) and there is no history")
    else:
        print("\n\n".join(p.format() for p in plans))
    return 0
