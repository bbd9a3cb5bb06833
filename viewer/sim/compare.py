"""Two simulated layouts side by side: the line's KPIs and each station's differences."""

from __future__ import annotations

from dataclasses import dataclass

from viewer.sim.runner import SimReport


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
