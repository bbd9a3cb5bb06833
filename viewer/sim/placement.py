"""Where to put the stations: a search over free floor slots that shortens AGV travel without costing output,
keeping every layout check as green as it was.

Given the layout, free slots on the floor (x, y) and the components that may move (by default the stations
at either end of an AGV link), each round tries every movable component in every free slot (its old place
becomes free) and every swap of two movable components. A candidate counts only if the editor's own move
command accepts it (conveyors stretch, sensors follow their machine) and ``check_layout`` finds no problem the
layout did not already have (overlap, off the floor, robot reach and safety, walkway clearance...).

Each feasible candidate gets two figures: the **loaded AGV travel per part**, exact and cheap (visit ratio of
every AGV link times its distance along the AGV paths), and the **throughput**, simulated with the same seeds
for every candidate (common random numbers), the simulations submitted to a ``concurrent.futures`` executor
like ``optimise``. A round takes the best improvement: clearly more output (above the current design's 95 %
interval) first, else the shortest travel among candidates whose output stays within that interval. Rounds
go on until nothing improves or ``rounds`` is reached.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import build_plant_geometry
from viewer.geometry.reach import robot_reaches
from viewer.model.checks import check_layout, footprints_from_geometry
from viewer.model.document import EditRefusedError, LayoutDocument, MoveComponent
from viewer.model.layout import Layout
from viewer.sim.agv import PathNetwork
from viewer.sim.model import SimModel, SimModelError, model_from_layout
from viewer.sim.optimise import InlineExecutor
from viewer.sim.runner import Estimate, run, visit_ratios

Slot = tuple[float, float]


@dataclass
class Placement:
    """One arrangement: which components moved where, and what it gives."""

    moves: dict[str, Slot]  # component id -> (x, y), relative to the layout as given
    layout: Layout
    travel_m: float  # loaded AGV metres per part that enters the line
    throughput: Estimate

    def describe(self) -> str:
        return ", ".join(f"{cid} to ({x:g}, {y:g})" for cid, (x, y) in sorted(self.moves.items())) or "as laid out"


@dataclass
class PlacementResult:
    base: Placement
    best: list[Placement]  # best first
    evaluations: int  # candidates simulated
    refused: int  # candidates the move command or the checks turned down
    rounds: list[str] = field(default_factory=list)


def agv_travel_m(layout: Layout, model: SimModel | None = None) -> float:
    """Loaded AGV metres per part entering the plant: sum over AGV links of visits x path distance. Parts
    come from the sources in proportion to their arrival rates (evenly if a source has no arrivals set)."""
    model = model or model_from_layout(layout)
    network = PathNetwork.from_layout(layout)
    if model.agv is None or network is None:
        return 0.0
    sources = {i: n.interarrival for i, n in enumerate(model.nodes) if n.kind == "source"}
    weights = None
    if all(d is not None and d.expected > 0 for d in sources.values()):
        rates = {i: 1.0 / d.expected for i, d in sources.items()}  # type: ignore[union-attr]
        weights = {i: r / sum(rates.values()) for i, r in rates.items()}
    visits = visit_ratios(model, weights)
    total = 0.0
    for i, node in enumerate(model.nodes):
        if node.kind == "transport":
            target = node.outputs[0][0]
            total += float(visits[i]) * model.agv.seconds(node.source, target) * network.speed
    return total


def throughput(model: SimModel, hours: float, replications: int, seed: int) -> Estimate:
    """Parts per hour (top level, so any executor can ship it)."""
    return run(model, hours, replications, seed, workers=1).throughput_per_hour


def default_movable(layout: Layout) -> list[str]:
    """The stations at either end of an AGV link (their placement sets the AGV travel)."""
    model = model_from_layout(layout)
    ends: set[str] = set()
    for node in model.nodes:
        if node.kind == "transport":
            ends |= {model.nodes[node.source].id, model.nodes[node.outputs[0][0]].id}
    return [c.id for c in layout.components if c.id in ends and layout.component(c.id).kind in ("station", "robot")]


class _Judge:
    """Applies candidate moves and turns down the ones the editor or the checks would refuse."""

    def __init__(self, layout: Layout, layout_dir: Path) -> None:
        self.layout_dir = layout_dir
        self.library = MeshLibrary()
        self.before = self._problems(layout)

    def _problems(self, layout: Layout) -> set[tuple[str, tuple[str, ...]]]:
        geometry = build_plant_geometry(layout, self.layout_dir, self.library, strict=False)
        return {(p.code, tuple(p.components)) for p in check_layout(layout, footprints_from_geometry(geometry),
                                                                       robot_reaches(geometry))}

    def apply(self, layout: Layout, moves: dict[str, Slot]) -> Layout | None:
        """The layout with ``moves`` made, or None where the move command or the checks refuse it. Moves are
        tried in both orders: between two stations joined by a conveyor, one order squashes it on the way."""
        for order in (list(moves.items()), list(reversed(moves.items()))):
            document = LayoutDocument(copy.deepcopy(layout), None)
            try:
                for cid, (x, y) in order:
                    z = document.layout.component(cid).position[2]
                    document.push(MoveComponent(cid, (x, y, z)))
            except (EditRefusedError, KeyError):
                continue
            return document.layout if self._problems(document.layout) <= self.before else None
        return None


def optimise_placement(layout: Layout, layout_dir: Path, slots: Sequence[Slot], movable: Sequence[str] | None = None,
                       hours: float = 8.0, replications: int = 10, seed: int = 1, rounds: int = 3,
                       executor: Executor | None = None, progress: Callable[[str], None] | None = None,
                       cancelled: Callable[[], bool] | None = None) -> PlacementResult:
    """See the module docstring. ``slots`` are free (x, y) places; ``movable`` component ids (default:
    :func:`default_movable`)."""
    if not slots:
        raise ValueError("give at least one free slot (x, y) on the floor")
    movable = list(movable) if movable is not None else default_movable(layout)
    for cid in movable:
        layout.component(cid)  # KeyError names an unknown id
    if not movable:
        raise ValueError("nothing to move: no station is at either end of an AGV link; name the components "
                         "that may move (--move ID,ID)")
    model = model_from_layout(layout)
    model.check()
    pool = executor or InlineExecutor()
    judge = _Judge(layout, layout_dir)
    base = Placement({}, layout, agv_travel_m(layout, model), throughput(model, hours, replications, seed))
    original = {cid: tuple(layout.component(cid).position[:2]) for cid in movable}
    # Output may not fall below the layout as it is (its 95 % interval), however many rounds trade it for travel.
    floor = base.throughput.mean - base.throughput.half_width
    seen: dict[tuple, Placement | None] = {(): base}
    current, evaluations, refused, history = base, 1, 0, []
    for _ in range(rounds):
        if cancelled is not None and cancelled():
            raise InterruptedError("placement search cancelled")
        positions = {cid: original[cid] if cid not in current.moves else current.moves[cid] for cid in movable}
        occupied = set(positions.values())
        free = [s for s in dict.fromkeys([*slots, *(original[c] for c in current.moves)]) if s not in occupied]
        candidates: list[dict[str, Slot]] = []
        for cid in movable:
            candidates += [current.moves | {cid: s} for s in free]
        for i, a in enumerate(movable):
            for b in movable[i + 1:]:
                candidates.append(current.moves | {a: positions[b], b: positions[a]})
        jobs, placements = [], []
        for raw in candidates:
            moves = {cid: xy for cid, xy in raw.items() if xy != original[cid]}  # back home is no move
            key = tuple(sorted(moves.items()))
            if key in seen:
                cached = seen[key]
                if cached is not None and cached is not current and cached not in placements:
                    placements.append(cached)  # weighed again against the new current design
                continue
            seen[key] = None  # refused unless it gets through below
            moved = judge.apply(layout, moves)
            try:
                moved_model = model_from_layout(moved) if moved is not None else None
            except SimModelError:  # e.g. the move broke the AGV connection
                moved_model = None
            if moved is None or moved_model is None:
                refused += 1
                continue
            jobs.append((key, moves, moved, agv_travel_m(moved, moved_model),
                         pool.submit(throughput, moved_model, hours, replications, seed)))
        for key, moves, moved, travel, future in jobs:
            placements.append(Placement(dict(moves), moved, travel, future.result()))
            seen[key] = placements[-1]
            evaluations += 1
        now = current.throughput
        more = [p for p in placements if p.throughput.mean > now.mean + now.half_width]
        shorter = [p for p in placements if p.throughput.mean >= max(now.mean - now.half_width, floor)
                   and p.travel_m < current.travel_m - 1e-6]
        if more:
            current = max(more, key=lambda p: p.throughput.mean)
        elif shorter:
            current = min(shorter, key=lambda p: (p.travel_m, -p.throughput.mean))
        else:
            history.append("no move or swap raises output or shortens AGV travel: stop")
            break
        history.append(f"{current.describe()}: {current.throughput.mean:,.1f}/h, AGV {current.travel_m:,.1f} m/part")
        if progress is not None:
            progress(history[-1])
    # The chosen placement, then the other good ones found: no output lost against the layout as it is, and
    # either clearly more output or shorter AGV travel.
    good = [p for p in seen.values() if p is not None and p is not current and p is not base
            and p.throughput.mean >= floor
            and (p.throughput.mean > base.throughput.mean + base.throughput.half_width or p.travel_m < base.travel_m)]
    ranked = [current, *sorted(good, key=lambda p: (-round(p.throughput.mean, 1), p.travel_m))]
    return PlacementResult(base, ranked[:5], evaluations, refused, history)
