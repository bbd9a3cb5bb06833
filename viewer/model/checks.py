"""Layout checks a planner needs while editing (and CI runs headless: ``twin-viewer check``).

Each :class:`LayoutProblem` names the components at fault, so a click selects them:

- **overlap** (error): two pieces of equipment whose floor footprints overlap (flow neighbours may touch;
  children overlap their parents by design);
- **off the floor** (error): a footprint outside the floor;
- **no flow path** (error): the material flow has sources and sinks but no path from one to the other;
- **not connected** (warning): a station, robot, buffer or conveyor that no flow link touches;
- **robot reach** (error): a robot feeds or is fed by equipment whose footprint is beyond its reach
  (``robot.reach``, else the reach of its kinematic chain with the joint limits);
- **walkway clearance** (warning): an AGV path passing closer than ``AGV_CLEARANCE_M`` to equipment;
- **robot safety** (error): an AGV path (a walkway) running through a robot's reach envelope;
- **no transport** (warning): a direct flow link between equipment more than ``FAR_HANDOVER_M`` apart in a
  layout without AGV paths (the simulation would hand parts over instantly).

Footprints come from the plant geometry (mesh bounds), as ``{id: (xmin, xmax, ymin, ymax)}``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from viewer.model.layout import Layout, path_polyline

EQUIPMENT = ("station", "robot", "buffer", "conveyor", "source", "sink")
FLOW_KINDS = ("station", "robot", "buffer", "conveyor")
OVERLAP_TOLERANCE_M = 0.05  # footprints may touch
AGV_CLEARANCE_M = 0.3
FAR_HANDOVER_M = 6.0  # as viewer.sim.model.AGV_AUTO_M: beyond this a link needs a conveyor or AGVs

Footprint = tuple[float, float, float, float]


@dataclass(frozen=True)
class LayoutProblem:
    severity: str  # "error" or "warning"
    code: str
    components: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"severity": self.severity, "code": self.code, "components": list(self.components),
                "message": self.message}


def footprints_from_geometry(geometry: object) -> dict[str, Footprint]:
    """Each component's floor footprint from the built plant geometry."""
    out = {}
    for i, cid in enumerate(geometry.component_ids):  # type: ignore[attr-defined]
        b = geometry.bounds[i]  # type: ignore[attr-defined]
        out[cid] = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    return out


def check_layout(layout: Layout, footprints: Mapping[str, Footprint],
                 reaches: Mapping[str, float] | None = None) -> list[LayoutProblem]:
    """Every problem found, errors first. ``reaches``: each robot's reach from its own kinematics
    (:func:`robot_reaches` of the built plant); a stated ``robot.reach`` wins."""
    problems: list[LayoutProblem] = []
    problems += _overlaps(layout, footprints)
    problems += _off_floor(layout, footprints)
    problems += _flow(layout)
    problems += _reach(layout, footprints, reaches)
    problems += _walkways(layout, footprints)
    problems += _robot_safety(layout, reaches)
    problems.sort(key=lambda p: (p.severity != "error", p.code, p.components))
    return problems


def _names(layout: Layout) -> dict[str, str]:
    return {c.id: c.display_name for c in layout.components}


def _overlaps(layout: Layout, footprints: Mapping[str, Footprint]) -> list[LayoutProblem]:
    names = _names(layout)
    neighbours = {(f.source, f.target) for f in layout.flow} | {(f.target, f.source) for f in layout.flow}
    parents = {c.id: c.parent for c in layout.components}
    items = [(c.id, footprints[c.id]) for c in layout.components if c.kind in EQUIPMENT and c.id in footprints]
    items.sort(key=lambda item: item[1][0])
    out = []
    for i, (a, fa) in enumerate(items):  # sweep along x: only boxes that start before this one ends
        for b, fb in items[i + 1:]:
            if fb[0] >= fa[1] - OVERLAP_TOLERANCE_M:
                break
            if (a, b) in neighbours or parents.get(a) == b or parents.get(b) == a:
                continue
            dx = min(fa[1], fb[1]) - max(fa[0], fb[0])
            dy = min(fa[3], fb[3]) - max(fa[2], fb[2])
            if dx > OVERLAP_TOLERANCE_M and dy > OVERLAP_TOLERANCE_M:
                out.append(LayoutProblem("error", "overlap", (a, b),
                                         f"{names[a]} and {names[b]} overlap ({dx:.2f} m x {dy:.2f} m)"))
    return out


def _off_floor(layout: Layout, footprints: Mapping[str, Footprint]) -> list[LayoutProblem]:
    floor = layout.floor or {}
    if "size" not in floor:
        return []
    ox, oy = (floor.get("origin") or (0.0, 0.0))[:2]
    w, d = floor["size"][:2]
    out = []
    for comp in layout.components:
        fp = footprints.get(comp.id)
        if comp.kind not in EQUIPMENT or fp is None:
            continue
        if fp[0] < ox - 1e-6 or fp[1] > ox + w + 1e-6 or fp[2] < oy - 1e-6 or fp[3] > oy + d + 1e-6:
            out.append(LayoutProblem("error", "off-floor", (comp.id,), f"{comp.display_name} is partly off the floor"))
    return out


def _flow(layout: Layout) -> list[LayoutProblem]:
    linked = {f.source for f in layout.flow} | {f.target for f in layout.flow}
    out = [LayoutProblem("warning", "not-connected", (c.id,), f"{c.display_name} is not connected to the flow")
           for c in layout.components if c.kind in FLOW_KINDS and c.id not in linked and c.parent is None]
    kinds = {c.id: c.kind for c in layout.components}
    sources = [c for c in linked if kinds.get(c) == "source"]
    sinks = {c for c in linked if kinds.get(c) == "sink"}
    if sources and sinks:
        if not any(layout.downstream(s) & sinks for s in sources):
            out.append(LayoutProblem("error", "no-flow-path", tuple(sorted(sources)),
                                     "no path in the material flow leads from a source to a sink"))
    elif layout.flow:
        missing = "source" if not sources else "sink"
        out.append(LayoutProblem("error", "no-flow-path", (), f"the material flow has no {missing}"))
    if not any(c.kind == "agv-path" for c in layout.components):
        by_id = {c.id: c for c in layout.components}
        for f in layout.flow:
            a, b = by_id.get(f.source), by_id.get(f.target)
            if a is None or b is None or "conveyor" in (a.kind, b.kind) or f.transport == "direct":
                continue
            gap = math.dist(a.position[:2], b.position[:2])
            if gap > FAR_HANDOVER_M:
                out.append(LayoutProblem("warning", "no-transport", (a.id, b.id),
                                         f"{a.display_name} feeds {b.display_name} {gap:.1f} m away with no "
                                         "conveyor or AGV path between them"))
    return out


def _distance_to_box(x: float, y: float, fp: Footprint) -> float:
    dx = max(fp[0] - x, 0.0, x - fp[1])
    dy = max(fp[2] - y, 0.0, y - fp[3])
    return math.hypot(dx, dy)


def _reach_of(comp: Any, reaches: Mapping[str, float] | None) -> float | None:
    """``robot.reach`` when the layout states it, else what its kinematics give (``reaches``, from
    :func:`viewer.geometry.reach.robot_reaches`); None (no check) when neither is known."""
    stated = comp.section("robot").get("reach")
    if stated is not None:
        return float(stated)
    return reaches.get(comp.id) if reaches is not None else None


def _reach(layout: Layout, footprints: Mapping[str, Footprint],
           reaches: Mapping[str, float] | None = None) -> list[LayoutProblem]:
    out = []
    names = _names(layout)
    for comp in layout.components:
        if comp.kind != "robot":
            continue
        reach = _reach_of(comp, reaches)
        if reach is None:
            continue
        served = {f.target for f in layout.flow if f.source == comp.id} | \
                 {f.source for f in layout.flow if f.target == comp.id}
        x, y = comp.position[0], comp.position[1]
        for other in sorted(served):
            fp = footprints.get(other)
            if fp is None:
                continue
            gap = _distance_to_box(x, y, fp)
            if gap > reach:
                out.append(LayoutProblem("error", "robot-reach", (comp.id, other),
                                         f"{names[comp.id]} cannot reach {names[other]}: {gap:.2f} m away, "
                                         f"reach {reach:.2f} m"))
    return out


def _segment_box_distance(a: tuple[float, float], b: tuple[float, float], fp: Footprint) -> float:
    """The distance between segment AB and an axis-aligned box, exactly: 0 when they meet, else the nearest of
    the endpoints to the box and the box's corners to the segment (two convex shapes apart). Constant time,
    however long the segment (a sampled walk along a 1,000 km typo took minutes)."""
    if _segment_meets_box(a, b, fp):
        return 0.0
    corners = [(fp[0], fp[2]), (fp[0], fp[3]), (fp[1], fp[2]), (fp[1], fp[3])]
    return min(_distance_to_box(a[0], a[1], fp), _distance_to_box(b[0], b[1], fp),
               *(_point_segment_distance(c, a, b) for c in corners))


def _point_segment_distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def _segment_meets_box(a: tuple[float, float], b: tuple[float, float], fp: Footprint) -> bool:
    """Liang-Barsky: does any point of AB lie in the box?"""
    t0, t1 = 0.0, 1.0
    for p, q in ((a[0] - b[0], a[0] - fp[0]), (b[0] - a[0], fp[1] - a[0]),
                 (a[1] - b[1], a[1] - fp[2]), (b[1] - a[1], fp[3] - a[1])):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _walkways(layout: Layout, footprints: Mapping[str, Footprint]) -> list[LayoutProblem]:
    out = []
    equipment = [(c.id, c.display_name, footprints[c.id]) for c in layout.components
                 if c.kind in EQUIPMENT and c.kind != "conveyor" and c.id in footprints]
    for comp, a, b in _path_segments(layout):
        for cid, name, fp in equipment:
            gap = _segment_box_distance(a, b, fp)
            if gap < AGV_CLEARANCE_M:
                out.append(LayoutProblem("warning", "walkway-clearance", (comp.id, cid),
                                         f"{comp.display_name} passes {gap:.2f} m from {name} "
                                         f"(clearance {AGV_CLEARANCE_M} m)"))
    return list({p.components: p for p in out}.values())


def _path_segments(layout: Layout) -> list[tuple[Any, tuple[float, float], tuple[float, float]]]:
    """(path component, a, b) for every straight piece of the AGV paths."""
    return [(comp, a, b) for comp in layout.components if comp.kind == "agv-path"
            for a, b in itertools.pairwise(path_polyline(comp))]


def _robot_safety(layout: Layout, reaches: Mapping[str, float] | None = None) -> list[LayoutProblem]:
    """No walkway or AGV path may run inside a robot's reach."""
    out = {}
    segments = _path_segments(layout)
    for comp in layout.components:
        if comp.kind != "robot" or not segments:
            continue
        reach = _reach_of(comp, reaches)
        if reach is None:
            continue
        base = (comp.position[0], comp.position[0], comp.position[1], comp.position[1])  # a point as a box
        for path, a, b in segments:
            gap = _segment_box_distance(a, b, base)
            if gap < reach:
                key = (comp.id, path.id)
                out[key] = LayoutProblem("error", "robot-safety", key,
                                         f"{path.display_name} runs {gap:.2f} m from {comp.display_name}'s base, "
                                         f"inside its {reach:.2f} m reach")
    return list(out.values())


def free_spot(footprints: Mapping[str, Footprint], extent: Footprint, near: tuple[float, float],
              floor: Mapping[str, Any] | None = None, *, clearance: float = 0.5, step: float = 0.5,
              max_radius: float = 60.0) -> tuple[float, float] | None:
    """A free position near ``near`` (on a ``step`` grid, searched outward in square rings, the nearest of
    each ring first) where equipment of
    ``extent`` (its footprint relative to its position: xmin, xmax, ymin, ymax) stands ``clearance`` clear of
    every footprint given and inside the floor; None when there is no such place within ``max_radius``."""
    boxes = list(footprints.values())
    origin = tuple((floor or {}).get("origin") or (0.0, 0.0))[:2]
    size = (floor or {}).get("size")
    cx, cy = round(near[0] / step) * step, round(near[1] / step) * step

    def fits(x: float, y: float) -> bool:
        box = (x + extent[0], x + extent[1], y + extent[2], y + extent[3])
        if size is not None and (box[0] < origin[0] or box[1] > origin[0] + size[0]
                                 or box[2] < origin[1] or box[3] > origin[1] + size[1]):
            return False
        return all(box[0] >= b[1] + clearance or box[1] <= b[0] - clearance
                   or box[2] >= b[3] + clearance or box[3] <= b[2] - clearance for b in boxes)

    for ring in range(int(max_radius / step) + 1):  # every point of a ring is as far (in steps) as the ring
        candidates = [(i, j) for i in range(-ring, ring + 1) for j in range(-ring, ring + 1)
                      if max(abs(i), abs(j)) == ring]
        candidates.sort(key=lambda ij: ij[0] ** 2 + ij[1] ** 2)  # the nearest of the ring first
        for i, j in candidates:
            if fits(cx + i * step, cy + j * step):
                return cx + i * step, cy + j * step
    return None
