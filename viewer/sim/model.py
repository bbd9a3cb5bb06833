"""The simulation model: a layout's material flow as plain, picklable data.

A :class:`SimModel` is a list of :class:`Node` (sources, stations, buffers,
conveyors, sinks) joined by routing links. It is built from a layout with
:func:`model_from_layout` (which reports every problem with the component and the
reason) or directly in Python, which the tests do to write textbook queues.

Semantics (the engine follows them; the README repeats them for users):

- **Blocking after service.** A station that finishes a part keeps it, and stays
  occupied, until the next node has room.
- **Capacity.** A station holds at most ``servers`` parts (in process or blocked);
  a buffer ``capacity`` parts (``None`` = unbounded); a conveyor ``capacity`` parts.
- **Sources** without an inter-arrival time always have raw material (the line is
  never starved at its start); with one, arrivals that find the line full wait at
  the source in an unbounded backlog (they count as work in progress).
- **Failures** are time-based: the time to the next failure runs in calendar
  time, whether the station works or not; a failure pauses the station's parts in
  process, which resume where they stopped after the repair.
- **Routing.** Links with ``share`` are chosen at random by share when the part
  finishes (it then waits for that target); links without shares send the part to
  whichever target has room, the emptiest first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.model.durations import duration_problem

DIST_KINDS = ("deterministic", "exponential", "normal", "lognormal", "uniform", "triangular", "gamma", "empirical")
SIM_KINDS = ("source", "station", "buffer", "conveyor", "sink")
AGV_AUTO_M = 6.0  # a direct link between components farther apart than this goes by AGV (when there are AGVs)
DEFAULT_CONVEYOR_SPEED = 0.25  # m/s, a typical roller conveyor
DEFAULT_PITCH_M = 0.5  # a part every half metre when a conveyor states no capacity
DEFAULT_BATCH = 50  # parts between setups when a station has a setup time and no batch size


class SimModelError(ValueError):
    """The layout cannot be simulated; ``problems`` lists (component or path, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {why}" for where, why in problems))


@dataclass(frozen=True)
class Distribution:
    """A random duration in seconds."""

    kind: str = "deterministic"
    mean: float = 0.0
    cv: float = 0.0
    low: float = 0.0
    high: float = 0.0
    mode: float = 0.0
    values: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Distribution:
        """Parse the layout's ``{"dist": ..., "mean": ..., ...}``; ValueError says what is missing."""
        kind = data.get("dist", "deterministic")
        if kind not in DIST_KINDS:
            raise ValueError(f"unknown distribution {kind!r}")
        values = tuple(float(v) for v in data.get("values", ()))
        dist = cls(kind, float(data.get("mean", 0.0)), float(data.get("cv", 0.0)), float(data.get("min", 0.0)),
                   float(data.get("max", 0.0)), float(data.get("mode", 0.0)), values)
        dist.check()
        return dist

    @classmethod
    def exponential(cls, mean: float) -> Distribution:
        return cls("exponential", mean)

    @classmethod
    def fixed(cls, value: float) -> Distribution:
        return cls("deterministic", value)

    def check(self) -> None:
        """ValueError unless the parameters describe a proper non-negative duration."""
        problem = duration_problem(self.kind, self.mean, self.cv, self.low, self.high, self.mode, self.values)
        if problem:
            raise ValueError(problem)

    @property
    def expected(self) -> float:
        """The mean duration."""
        if self.kind == "uniform":
            return (self.low + self.high) / 2.0
        if self.kind == "triangular":
            return (self.low + self.mode + self.high) / 3.0
        if self.kind == "empirical":
            return float(np.mean(self.values))
        return self.mean

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws (vectorised: the engine draws in blocks, not per event)."""
        k, m = self.kind, self.mean
        if k == "deterministic":
            return np.full(n, m)
        if k == "exponential":
            return rng.exponential(m, n)
        if k == "normal":  # truncated at zero: a duration cannot be negative
            return np.maximum(rng.normal(m, m * self.cv, n), 0.0)
        if k == "lognormal":  # parameterised by the mean and cv of the duration itself
            s2 = math.log1p(self.cv * self.cv)
            return rng.lognormal(math.log(m) - s2 / 2.0, math.sqrt(s2), n)
        if k == "gamma":
            shape = 1.0 / (self.cv * self.cv)
            return rng.gamma(shape, m / shape, n)
        if k == "uniform":
            return rng.uniform(self.low, self.high, n)
        if k == "triangular":
            return rng.triangular(self.low, self.mode, self.high, n)
        return rng.choice(np.asarray(self.values, dtype=float), n)


@dataclass
class Node:
    """One element of the material flow."""

    id: str
    kind: str  # one of SIM_KINDS
    name: str = ""
    servers: int = 1  # stations: parallel servers
    cycle: Distribution | None = None  # stations
    setup: Distribution | None = None  # stations: before each batch
    batch_size: int = DEFAULT_BATCH
    mtbf: float | None = None  # stations: mean time between failures, s (time-based)
    mttr: float | None = None
    failure_dist: str = "exponential"
    repair_dist: str = "exponential"
    scrap: float = 0.0  # probability a finished part is scrap
    rework: float = 0.0  # probability a finished part is processed again at the same station
    interarrival: Distribution | None = None  # sources; None = raw material always available
    capacity: int | None = None  # buffers and conveyors; None = unbounded
    transit: float = 0.0  # conveyors: seconds from entry to the end
    accumulating: bool = True  # conveyors: False = the whole belt stops while the part at its end waits
    outputs: list[tuple[int, float | None]] = field(default_factory=list)  # (node index, share)
    source: int = -1  # transports: the node the AGV picks up from

    @property
    def ideal_cycle(self) -> float:
        """Mean cycle time per part at full speed (servers in parallel), s."""
        return self.cycle.expected / self.servers if self.cycle is not None else 0.0


@dataclass
class Calendar:
    """Working periods repeating every ``period`` seconds; stations pause outside them."""

    period: float = 86400.0
    working: list[tuple[float, float]] = field(default_factory=list)  # [(start, end)] within a period

    def working_fraction(self) -> float:
        return sum(b - a for a, b in self.working) / self.period if self.working else 1.0


@dataclass
class AgvFleet:
    """The AGVs carrying parts along the AGV paths; travel times between the stops they serve."""

    size: int
    load_time: float  # s to load, and again to unload
    travel: dict[tuple[int, int], float] = field(default_factory=dict)  # (node, node) -> s along the paths

    def seconds(self, a: int, b: int) -> float:
        return 0.0 if a == b else self.travel[(a, b)]


@dataclass(frozen=True)
class PlanShift:
    """One entry of a production plan: ``volume`` parts planned in [start, end) of every calendar period."""

    start: float
    end: float
    volume: float
    name: str = ""


def plan_shifts(plan: Sequence[dict] | None, period: float) -> list[PlanShift]:
    """The layout's ``simulation.production_plan`` checked: each entry within the period, start before end,
    none overlapping; ``ValueError`` naming the entry (its JSON path) and why."""
    shifts = []
    for i, entry in enumerate(plan or ()):
        where = f"simulation.production_plan[{i}]"
        try:
            start, end, volume = float(entry["start"]), float(entry["end"]), float(entry["volume"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: needs numbers start, end (s within the calendar period) and volume "
                             f"(parts)") from None
        if not (0.0 <= start < end <= period) or volume < 0 or not math.isfinite(volume):
            raise ValueError(f"{where}: start {start:g} s and end {end:g} s must satisfy 0 <= start < end <= "
                             f"the period ({period:g} s), and the volume {volume:g} must be >= 0")
        shifts.append(PlanShift(start, end, volume, str(entry.get("name", ""))))
    shifts.sort(key=lambda sh: sh.start)
    for a, b in itertools.pairwise(shifts):
        if b.start < a.end:
            raise ValueError(f"simulation.production_plan: {a.name or a.start} and {b.name or b.start} overlap "
                             f"({b.start:g} s < {a.end:g} s)")
    return shifts


@dataclass
class SimModel:
    """Nodes in a list; links by index. Plain data: it crosses process boundaries for parallel replications."""

    nodes: list[Node]
    calendar: Calendar | None = None
    warmup: float = 0.0  # s removed from the statistics at the start of each run
    agv: AgvFleet | None = None
    production_plan: list[PlanShift] = field(default_factory=list)  # planned volume per shift (maintenance)

    def index(self, node_id: str) -> int:
        for i, node in enumerate(self.nodes):
            if node.id == node_id:
                return i
        raise KeyError(node_id)

    def link(self, source: str, target: str, share: float | None = None) -> SimModel:
        """Add a routing link (for models written in Python); returns self for chaining."""
        self.nodes[self.index(source)].outputs.append((self.index(target), share))
        return self

    def check(self) -> None:
        """SimModelError listing every structural problem (no source, dead ends, unreachable sinks...)."""
        problems: list[tuple[str, str]] = []
        kinds = [n.kind for n in self.nodes]
        if "source" not in kinds:
            problems.append(("flow", "no source: add a component of kind 'source' feeding the line"))
        if "sink" not in kinds:
            problems.append(("flow", "no sink: add a component of kind 'sink' where finished parts leave"))
        inputs = [0] * len(self.nodes)
        for node in self.nodes:
            for target, _share in node.outputs:
                inputs[target] += 1
        for i, node in enumerate(self.nodes):
            if node.kind != "sink" and not node.outputs:
                problems.append((node.id, "material reaches it but has nowhere to go (no outgoing flow link)"))
            if node.kind == "sink" and node.outputs:
                problems.append((node.id, "a sink cannot feed other components"))
            if node.kind != "source" and inputs[i] == 0:
                problems.append((node.id, "nothing feeds it (no incoming flow link)"))
            if node.kind == "source" and inputs[i]:
                problems.append((node.id, "a source cannot be fed by other components"))
            if node.kind == "station":
                if node.cycle is None:
                    problems.append((node.id, "a station needs sim.cycle_time"))
                if node.servers < 1:
                    problems.append((node.id, "servers must be at least 1"))
                if (node.mtbf is None) != (node.mttr is None):
                    problems.append((node.id, "give both mtbf and mttr, or neither"))
                if node.scrap + node.rework >= 1.0:
                    problems.append((node.id, "scrap_rate + rework_rate must stay below 1"))
            if node.kind == "buffer" and node.capacity is not None and node.capacity < 0:
                problems.append((node.id, "capacity must be >= 0"))
            if node.kind == "conveyor" and (node.capacity is None or node.capacity < 1):
                problems.append((node.id, "a conveyor needs a capacity of at least 1 part"))
        if not problems:
            problems += self._unreachable_sinks()
        if problems:
            raise SimModelError(problems)

    def _unreachable_sinks(self) -> list[tuple[str, str]]:
        seen: set[int] = set()
        todo = [i for i, n in enumerate(self.nodes) if n.kind == "source"]
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            todo += [t for t, _ in self.nodes[i].outputs]
        if not any(self.nodes[i].kind == "sink" for i in seen):
            return [("flow", "no path leads from a source to a sink")]
        return [(self.nodes[i].id, "no source feeds it") for i in range(len(self.nodes)) if i not in seen]

    def routing(self, i: int) -> tuple[list[int], list[float] | None]:
        """Targets of node ``i`` and their probabilities (None = 'whichever has room')."""
        outs = self.nodes[i].outputs
        targets = [t for t, _ in outs]
        shares = [s for _, s in outs]
        if all(s is None for s in shares):
            return targets, None
        given = sum(s for s in shares if s is not None)
        missing = [j for j, s in enumerate(shares) if s is None]
        rest = max(1.0 - given, 0.0) / len(missing) if missing else 0.0
        probs = [rest if s is None else s for s in shares]
        total = sum(probs)  # shares that add up to less than 1 are scaled up (stated in the README)
        return targets, [p / total for p in probs]


def model_from_layout(layout: Any, hours_hint: float | None = None) -> SimModel:
    """Build the simulation model of a layout's material flow, or raise SimModelError with every problem.

    Components take part when they appear in a flow link; robots are stations.
    """
    by_id = {c.id: c for c in layout.components}
    used: list[str] = []
    for link in layout.flow:
        for ref in (link.source, link.target):
            if ref not in used:
                used.append(ref)
    if not used:
        raise SimModelError([("flow", "the layout has no material flow to simulate (no flow links)")])
    problems: list[tuple[str, str]] = []
    nodes: list[Node] = []
    for cid in used:
        comp = by_id.get(cid)
        if comp is None:
            problems.append((cid, "a flow link names a component that does not exist"))
            continue
        try:
            nodes.append(_node_from_component(comp))
        except (ValueError, TypeError) as exc:
            problems.append((cid, str(exc)))
    if problems:
        raise SimModelError(problems)
    model = SimModel(nodes)
    _link_with_transport(model, layout, by_id, problems)
    if problems:
        raise SimModelError(problems)
    settings = getattr(layout, "simulation", None) or {}
    model.warmup = float(settings.get("warmup", 0.0))
    cal = settings.get("calendar")
    if cal:
        model.calendar = Calendar(float(cal.get("period", 86400.0)),
                                  [(float(a), float(b)) for a, b in cal.get("working", [])])
    if settings.get("production_plan"):
        period = model.calendar.period if model.calendar is not None else 86400.0
        try:
            model.production_plan = plan_shifts(settings["production_plan"], period)
        except ValueError as exc:
            raise SimModelError([("simulation", str(exc))]) from None
    model.check()
    return model


def goes_by_agv(link: Any, a: Any, b: Any, has_agv_paths: bool) -> bool:
    """Whether a flow link from component ``a`` to ``b`` goes by AGV: it says so, or it says nothing, its ends
    are more than ``AGV_AUTO_M`` apart, neither is a conveyor and the layout has AGV paths."""
    far = math.dist(a.position[:2], b.position[:2]) > AGV_AUTO_M and "conveyor" not in (a.kind, b.kind)
    return link.transport == "agv" or (link.transport is None and far and has_agv_paths)


def agv_links(layout: Any) -> set[tuple[str, str]]:
    """The (source, target) of every flow link that goes by AGV (see :func:`goes_by_agv`)."""
    from viewer.sim.agv import PathNetwork

    by_id = {c.id: c for c in layout.components}
    has_paths = PathNetwork.from_layout(layout) is not None
    return {(f.source, f.target) for f in layout.flow if f.source in by_id and f.target in by_id
            and goes_by_agv(f, by_id[f.source], by_id[f.target], has_paths)}


def _link_with_transport(model: SimModel, layout: Any, by_id: dict[str, Any], problems: list) -> None:
    """Add the flow links; a link that goes by AGV gets a transport node in between and the fleet its
    travel times (see the README: a link goes by AGV when it says so, or when its ends are more than
    ``AGV_AUTO_M`` apart, neither is a conveyor and the layout has AGV paths)."""
    from viewer.sim.agv import PathNetwork

    network = PathNetwork.from_layout(layout)
    stops: dict[str, int] = {}
    transports: list[int] = []
    for link in layout.flow:
        a, b = by_id[link.source], by_id[link.target]
        if not goes_by_agv(link, a, b, network is not None):
            model.link(link.source, link.target, link.share)
            continue
        if network is None:
            problems.append((f"{link.source} -> {link.target}", "goes by AGV but the layout has no AGV path"))
            continue
        node = Node(f"AGV {link.source}->{link.target}", "transport", f"AGV {a.display_name} to {b.display_name}")
        node.source = model.index(link.source)
        model.nodes.append(node)
        model.link(link.source, node.id, link.share)
        model.link(node.id, link.target)
        transports.append(len(model.nodes) - 1)
        for comp in (a, b):
            if comp.id not in stops:
                stops[comp.id] = network.join((comp.position[0], comp.position[1]))
    if not transports or network is None:
        return
    if network.fleet < 1:
        problems.append(("AGV paths", "links go by AGV but the fleet is 0 (path.fleet)"))
        return
    fleet = AgvFleet(network.fleet, network.load_time)
    ids = list(stops)
    for x in ids:
        for y in ids:
            metres = network.distance(stops[x], stops[y])
            if not math.isfinite(metres):
                problems.append((f"{x} -> {y}", "the AGV paths do not connect them"))
                return
            fleet.travel[(model.index(x), model.index(y))] = metres / network.speed
    model.agv = fleet


def _node_from_component(comp: Any) -> Node:
    kind = {"robot": "station"}.get(comp.kind, comp.kind)
    if kind not in SIM_KINDS:
        raise ValueError(f"a {comp.kind!r} cannot carry material in the simulation (only {', '.join(SIM_KINDS)}"
                         " and robots)")
    sim = comp.section("sim")
    node = Node(comp.id, kind, comp.name or comp.id)
    if kind == "source":
        if "interarrival" in sim:
            node.interarrival = Distribution.from_dict(sim["interarrival"])
    elif kind == "station":
        if "cycle_time" not in sim:
            raise ValueError(f"a {comp.kind} in the flow needs sim.cycle_time")
        node.cycle = Distribution.from_dict(sim["cycle_time"])
        node.servers = int(sim.get("servers", 1))
        if "setup_time" in sim:
            node.setup = Distribution.from_dict(sim["setup_time"])
            node.batch_size = int(sim.get("batch_size", DEFAULT_BATCH))
        if "mtbf" in sim or "mttr" in sim:
            if "mtbf" not in sim or "mttr" not in sim:
                raise ValueError("give both sim.mtbf and sim.mttr, or neither")
            node.mtbf, node.mttr = float(sim["mtbf"]), float(sim["mttr"])
        node.failure_dist = sim.get("failure_dist", "exponential")
        node.repair_dist = sim.get("repair_dist", "exponential")
        node.scrap = float(sim.get("scrap_rate", 0.0))
        node.rework = float(sim.get("rework_rate", 0.0))
        if node.scrap + node.rework >= 1.0:
            raise ValueError("scrap_rate + rework_rate must stay below 1")
    elif kind == "buffer":
        node.capacity = int(comp.section("buffer").get("capacity", 0))
    elif kind == "conveyor":
        conv = comp.section("conveyor")
        length = float(conv.get("length", 1.0))
        speed = float(conv.get("speed", DEFAULT_CONVEYOR_SPEED))
        node.transit = length / speed
        node.capacity = int(conv.get("capacity", max(1, round(length / DEFAULT_PITCH_M))))
        node.accumulating = bool(conv.get("accumulating", True))
    return node


def spread_distribution(kind: str, mean: float) -> Distribution:
    """Failure and repair durations: the named family with the given mean (cv 1 for lognormal and gamma)."""
    if kind == "deterministic":
        return Distribution.fixed(mean)
    if kind in ("lognormal", "gamma"):
        return Distribution(kind, mean, 1.0)
    return Distribution.exponential(mean)
