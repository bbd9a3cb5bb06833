"""Two simulated layouts side by side: the line's KPIs and each station's differences."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer.sim.model import SimModelError, agv_links, model_from_layout
from viewer.sim.runner import SimReport, run


@dataclass
class StationDelta:
    id: str
    in_a: bool
    in_b: bool
    working: tuple[float, float]  # (a, b) shares
    blocked: tuple[float, float]
    starved: tuple[float, float]
    down: tuple[float, float]
    oee: tuple[float, float]
    bottleneck: tuple[float, float]


@dataclass
class Comparison:
    throughput: tuple[float, float]
    ci: tuple[float, float]
    overlap: bool  # the two 95 % intervals overlap: the difference may be noise
    oee: tuple[float, float]
    wip: tuple[float, float]
    lead_time_s: tuple[float, float]
    bottleneck: tuple[str | None, str | None]
    stations: list[StationDelta]


class CompareError(ValueError):
    """A layout of a comparison cannot be read or simulated: which file, and why."""


def simulate_pair(first: Path, second: Path, hours: float, replications: int,
                  seed: int = 1) -> tuple[list[Any], list[SimReport]]:
    """Load and simulate two layout files with the same seeds (common random numbers: the difference is the
    layouts', not the dice's). One implementation for ``twin-viewer compare`` and the window's Compare."""
    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout

    layouts, reports = [], []
    for path in (first, second):
        try:
            layout = load_layout(path)
            reports.append(run(model_from_layout(layout), hours, replications, seed, workers=1))
        except (LayoutError, SimModelError) as exc:
            raise CompareError(f"{path}: {exc}") from exc
        layouts.append(layout)
    return layouts, reports


def compare(a: SimReport, b: SimReport) -> Comparison:
    """Line and per-station figures of two reports (stations only in one appear with zeros in the other)."""
    ta, tb = a.throughput_per_hour, b.throughput_per_hour
    by_a = {s.id: s for s in a.stations}
    by_b = {s.id: s for s in b.stations}
    ids = [s.id for s in a.stations] + [s.id for s in b.stations if s.id not in by_a]
    rows = []
    for sid in ids:
        sa, sb = by_a.get(sid), by_b.get(sid)

        rows.append(StationDelta(sid, sa is not None, sb is not None,
                                 *(_pair(sa, sb, f) for f in ("working", "blocked", "starved", "down", "oee",
                                                              "bottleneck_share"))))
    return Comparison((ta.mean, tb.mean), (ta.half_width, tb.half_width),
                      ta.low <= tb.high and tb.low <= ta.high, (a.line_oee.mean, b.line_oee.mean),
                      (a.wip.mean, b.wip.mean), (a.lead_time_s.mean, b.lead_time_s.mean),
                      (a.bottleneck, b.bottleneck), rows)


def _pair(a: object, b: object, field: str) -> tuple[float, float]:
    return (getattr(a, field) if a is not None else 0.0, getattr(b, field) if b is not None else 0.0)


def explain_change(saved: Any, edited: Any, base: SimReport | None, report: SimReport) -> list[str]:
    """What changed between the saved layout and the edited one, in the words a planner needs next to the new
    throughput: links now (or no longer) carried by AGV, links and equipment added or removed, where the
    bottleneck went, and a fleet that has become the limit."""
    lines = []
    names = {c.id: c.display_name for c in [*saved.components, *edited.components]}

    def link_text(link: tuple[str, str]) -> str:
        return f"{names.get(link[0], link[0])} → {names.get(link[1], link[1])}"

    links_before = {(f.source, f.target) for f in saved.flow}
    links_now = {(f.source, f.target) for f in edited.flow}
    agv_before, agv_now = agv_links(saved), agv_links(edited)
    for link in sorted((agv_now - agv_before) & links_before):
        lines.append(f"{link_text(link)} now goes by AGV (its ends are far apart or it says so)")
    for link in sorted((agv_before - agv_now) & links_now):
        lines.append(f"{link_text(link)} no longer goes by AGV")
    for link in sorted(links_now - links_before):
        lines.append(f"new link {link_text(link)}" + (" (by AGV)" if link in agv_now else ""))
    for link in sorted(links_before - links_now):
        lines.append(f"link {link_text(link)} removed")
    ids_before, ids_now = set(saved.ids()), set(edited.ids())
    if ids_now - ids_before:
        lines.append("added: " + ", ".join(sorted(names[i] for i in ids_now - ids_before)))
    if ids_before - ids_now:
        lines.append("removed: " + ", ".join(sorted(names[i] for i in ids_before - ids_now)))
    if base is not None and base.bottleneck != report.bottleneck and report.bottleneck:
        lines.append(f"the bottleneck moved from {base.bottleneck or '—'} to {report.bottleneck}")
    busy, was = report.agv_utilisation, base.agv_utilisation if base is not None else None
    if busy is not None and busy > 0.9 and (was is None or was <= 0.9):
        lines.append(f"the AGV fleet is now the limit: busy {busy:.0%} of the time")
    return lines
