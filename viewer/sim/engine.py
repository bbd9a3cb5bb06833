"""One replication of the discrete-event simulation: the reference kernel, a state object with a handler per event.

How it works (``Replication`` below; the compiled ``_kernel.pyx`` is the same class in typed Cython):

- one binary heap of events ``(time, seq, kind, node, job, epoch)`` dispatched to ``on_<kind>`` handlers:
  no generator per process, no event objects, no callbacks;
- only these are events: a station finishing a part, a part reaching the end of a conveyor, failures,
  repairs, shift changes, the end of the warm-up, arrivals, AGV pick-ups and drops. Moving a part into a
  buffer or a free station, blocking and unblocking happen in the same instant without the heap (``settle``);
- node state lives in flat lists indexed by node (held parts, ready queues, who waits for room where), and
  each statistic is integrated lazily when its value changes;
- random durations are drawn from numpy in blocks per node and purpose (``prepare``), read one by one.

Parts are their creation times (floats): the lead time is the exit time minus it.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from viewer.sim.model import Distribution, SimModel, spread_distribution

COMPLETE, CONVEYOR, FAIL, REPAIR, SHIFT_OFF, SHIFT_ON, WARMUP, ARRIVAL, PICKUP, DROP = range(10)
BLOCK = 512  # random draws fetched per refill
UNBOUNDED = 1 << 60


class Stream:
    """Draws from one distribution with one generator, refilled in blocks.

    The generator is the ``purpose``-th child of the node's seed (:func:`node_generators`), built on the
    first draw: a stream never drawn from costs nothing (1,013 components have thousands of them)."""

    __slots__ = ("_rng", "_seed", "buf", "dist", "pos")

    def __init__(self, dist: Distribution, rng: np.random.Generator | None = None,
                 seed: tuple[np.random.SeedSequence, int, int] | None = None) -> None:
        self.dist, self._rng, self._seed = dist, rng, seed
        self.buf: list[float] = []
        self.pos = 0

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            root, node, purpose = self._seed  # type: ignore[misc]
            self._rng = np.random.default_rng(stream_seed(root, node, purpose))
        return self._rng

    def block(self) -> np.ndarray:
        return self.dist.sample(self.rng, BLOCK)

    def next(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.block().tolist()
            self.pos = 0
        value = self.buf[self.pos]
        self.pos += 1
        return value


@dataclass
class StationStats:
    """Server-seconds per state after the warm-up (divide by servers × horizon for fractions)."""

    working: float = 0.0
    setup: float = 0.0
    blocked: float = 0.0
    starved: float = 0.0
    down: float = 0.0
    off_shift: float = 0.0
    processed: int = 0  # completed cycles, scrap and rework included
    scrapped: int = 0
    reworked: int = 0
    failures: int = 0
    active_time: float = 0.0  # for the active-period bottleneck methods
    active_periods: int = 0
    periods: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each active period


@dataclass
class ReplicationResult:
    """Raw figures of one run (after the warm-up); :mod:`viewer.sim.runner` aggregates them."""

    horizon: float  # seconds of statistics (run length minus warm-up)
    produced: int = 0
    scrapped: int = 0
    lead_times: list[float] = field(default_factory=list)  # good parts
    all_sojourns: float = 0.0  # summed time in system of every part that left (good or scrap): Little's law
    departures: int = 0
    wip_area: float = 0.0
    occupancy_area: list[float] = field(default_factory=list)  # per node, part-seconds
    stations: dict[int, StationStats] = field(default_factory=dict)
    events: int = 0
    operations: int = 0  # station cycles completed in the whole run (speed figures)
    agv_busy: float = 0.0  # vehicle-seconds the AGVs spent on transport jobs (empty trip, load, loaded trip)
    agv_fleet: int = 0
    planned_fraction: float = 1.0

    @property
    def wip(self) -> float:
        return self.wip_area / self.horizon if self.horizon > 0 else 0.0


def child(seq: np.random.SeedSequence, j: int) -> np.random.SeedSequence:
    """The ``j``-th child seed, the same every time (``SeedSequence.spawn`` would move on at each call)."""
    return np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, j), pool_size=seq.pool_size)


def node_generators(seq: np.random.SeedSequence, node: int, count: int) -> list[np.random.Generator]:
    """Generators of one node: 0 routing/scrap, 1 cycle, 2 setup or arrivals, 3 failures, 4 repairs.

    The node's seed is built directly (child ``node``), not as the last of ``node + 1`` children: the same
    streams, without the cost quadratic in the node count (682 nodes took 1.4 s of a 2.2 s replication)."""
    return [np.random.default_rng(stream_seed(seq, node, purpose)) for purpose in range(count)]


def stream_seed(seq: np.random.SeedSequence, node: int, purpose: int) -> np.random.SeedSequence:
    """The seed of one node's stream (``purpose`` as in :func:`node_generators`)."""
    return child(child(seq, node), purpose)


def _routing_past_empty_buffers(model: SimModel, i: int, depth: int = 0) -> tuple[list[int], list[float] | None]:
    """Node i's targets, with zero-capacity buffers replaced by what they feed (a part passes straight through)."""
    targets, probs = model.routing(i)
    if depth > len(model.nodes) or not any(_passes_through(model.nodes[t]) for t in targets):
        return targets, probs
    out_t: list[int] = []
    out_p: list[float] = []
    any_room = probs is None
    for j, t in enumerate(targets):
        p = probs[j] if probs is not None else 1.0 / len(targets)
        if _passes_through(model.nodes[t]):
            sub_t, sub_p = _routing_past_empty_buffers(model, t, depth + 1)
            any_room = any_room or sub_p is None
            for k, st in enumerate(sub_t):
                out_t.append(st)
                out_p.append(p * (sub_p[k] if sub_p is not None else 1.0 / len(sub_t)))
        else:
            out_t.append(t)
            out_p.append(p)
    if any_room:  # 'whichever has room' anywhere on the way: keep that choice
        return list(dict.fromkeys(out_t)), None
    return out_t, out_p


def _passes_through(node: object) -> bool:
    return getattr(node, "kind", "") == "buffer" and getattr(node, "capacity", None) == 0


@dataclass
class Prepared:
    """What both kernels read of a model: flat per-node lists, the random streams, the calendar's events.

    :func:`prepare` states once how a :class:`SimModel` becomes these arrays, so the reference kernel below
    and the compiled one (``viewer/sim/_kernel.pyx``) cannot read a model differently."""

    duration: float
    warmup: float
    kind: list[str]
    cap: list[int]
    targets: list[list[int]]
    route_cum: list[list[float] | None]  # cumulative routing shares; None: one target, or 'whichever has room'
    transport_dest: list[int]  # a transport node's destination, else -1
    scrap: list[float]
    rework: list[float]
    batch: list[int]
    servers: list[int]
    transit: list[float]
    accumulating: list[bool]
    # One stream per node and purpose (None where the node has none).
    cycle: list[Stream | None]
    setup: list[Stream | None]
    fail: list[Stream | None]
    repair: list[Stream | None]
    arrival: list[Stream | None]
    uniform: list[Stream]
    fleet_size: int
    load_time: float
    travel: dict[tuple[int, int], float]
    first_stop: int
    drains_without_agv: list[bool]  # no transport downstream: parts there leave without waiting for an AGV
    shifts: list[tuple[float, int]]  # (time, SHIFT_ON or SHIFT_OFF), in the order they are scheduled
    planned_fraction: float


def _drains_without_agv(model: SimModel) -> list[bool]:
    """Per node: True when no transport node is reachable downstream of it (one backward sweep from them)."""
    nodes = model.nodes
    feeders: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for t, _share in node.outputs:
            feeders[t].append(i)
    reaches = [False] * len(nodes)
    todo = [i for i, node in enumerate(nodes) if node.kind == "transport"]
    while todo:
        for f in feeders[todo.pop()]:
            if not reaches[f]:
                reaches[f] = True
                todo.append(f)
    return [not r for r in reaches]


def prepare(model: SimModel, duration: float, seed: int | np.random.SeedSequence = 0) -> Prepared:
    """The model as flat lists, with one independent generator per node and purpose: a change at one
    station leaves the others' draws alone (common random numbers across layouts that differ in one place)."""
    nodes = model.nodes
    n = len(nodes)
    seq_root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    cap = [UNBOUNDED] * n
    for i, nd in enumerate(nodes):
        if nd.kind == "station":
            cap[i] = nd.servers
        elif nd.kind in ("buffer", "conveyor") and nd.capacity is not None:
            cap[i] = nd.capacity
        elif nd.kind == "transport":
            cap[i] = 0  # nothing waits in a transport: the part stays at its source until an AGV picks it up
    p = Prepared(
        duration=duration, warmup=min(model.warmup, duration), kind=[nd.kind for nd in nodes], cap=cap,
        targets=[], route_cum=[], transport_dest=[], scrap=[nd.scrap for nd in nodes],
        rework=[nd.rework for nd in nodes], batch=[nd.batch_size for nd in nodes],
        servers=[nd.servers for nd in nodes], transit=[nd.transit for nd in nodes],
        accumulating=[nd.accumulating for nd in nodes], cycle=[None] * n, setup=[None] * n, fail=[None] * n,
        repair=[None] * n, arrival=[None] * n, uniform=[],
        fleet_size=model.agv.size if model.agv else 0, load_time=model.agv.load_time if model.agv else 0.0,
        travel=dict(model.agv.travel) if model.agv else {},
        first_stop=next((nd.source for nd in nodes if nd.kind == "transport"), 0),
        drains_without_agv=_drains_without_agv(model), shifts=[],
        planned_fraction=1.0)
    for i, nd in enumerate(nodes):
        t, probs = _routing_past_empty_buffers(model, i)
        p.targets.append(t)
        cum = list(np.cumsum(probs)) if probs is not None and len(t) > 1 else None
        if cum is not None:
            cum = [float(c) for c in cum]
            cum[-1] = 1.0
        p.route_cum.append(cum)
        p.transport_dest.append(t[0] if nd.kind == "transport" else -1)
        p.uniform.append(Stream(Distribution("uniform", low=0.0, high=1.0), seed=(seq_root, i, 0)))
        if nd.cycle is not None:
            p.cycle[i] = Stream(nd.cycle, seed=(seq_root, i, 1))
        if nd.setup is not None:
            p.setup[i] = Stream(nd.setup, seed=(seq_root, i, 2))
        if nd.mtbf is not None and nd.mttr is not None:
            p.fail[i] = Stream(spread_distribution(nd.failure_dist, nd.mtbf), seed=(seq_root, i, 3))
            p.repair[i] = Stream(spread_distribution(nd.repair_dist, nd.mttr), seed=(seq_root, i, 4))
        if nd.interarrival is not None:
            p.arrival[i] = Stream(nd.interarrival, seed=(seq_root, i, 2))
    cal = model.calendar
    if cal is not None and cal.working:
        p.planned_fraction = cal.working_fraction()
        for period in range(math.ceil(duration / cal.period) + 1):
            base = period * cal.period
            for start, end in cal.working:
                p.shifts.append((base + start, SHIFT_ON))
                p.shifts.append((base + end, SHIFT_OFF))
        if cal.working[0][0] > 0:  # off from time 0 until the first working period starts
            p.shifts.append((0.0, SHIFT_OFF))
        p.shifts = [(t, k) for t, k in p.shifts if t <= duration]
    return p


class Replication:
    """One replication's state and one handler per event kind: the reference kernel.

    Parts are their creation times (floats). Stations hold ``jobs`` in process (``[part, end or remaining,
    setup share, epoch]``), buffers and stations a ``ready`` queue of ``(part, target or -1)`` waiting to
    leave; a node that cannot move its front part onward waits in the target's ``waiting`` list and is woken
    (``room_freed``) when a place frees. Moves between nodes happen in the same instant through ``settle``,
    without the heap. The compiled kernel (``viewer/sim/_kernel.pyx``) is this class line for line in typed
    Cython; ``tests/test_sim_kernels.py`` runs both on every feature and compares them part for part.
    """

    def __init__(self, p: Prepared, cancelled: Callable[[], bool] | None = None) -> None:
        n = len(p.kind)
        self.p, self.n, self.cancelled = p, n, cancelled
        self.kind = p.kind
        self.is_station = [k == "station" for k in p.kind]
        self.station_ids = [i for i in range(n) if self.is_station[i]]
        self.now = 0.0
        self.heap: list[tuple] = []
        self.seq = 0
        self.counting = p.warmup <= 0.0
        self.off_shift = False
        # Nodes: parts held, ready to leave, who waits for room here.
        self.held = [0] * n
        self.ready: list[deque] = [deque() for _ in range(n)]
        self.waiting: list[list[int]] = [[] for _ in range(n)]
        # Stations.
        self.jobs: list[list[list]] = [[] for _ in range(n)]
        self.pending: list[list[float]] = [[] for _ in range(n)]  # accepted while paused: start on resume
        self.paused = [0] * n  # > 0: down and/or off shift
        self.down = [False] * n
        self.batch_count = [0] * n
        self.n_busy = [0] * n
        self.n_block = [0] * n
        # Sources and conveyors: the belt clock of a non-accumulating conveyor stops while its end part waits.
        self.raw_route = [-2] * n  # always-available source: the drawn target of the next raw part (-2: none)
        self.last_due = [0.0] * n
        self.stopped_total = [0.0] * n
        self.stopped_since = [-1.0] * n
        self.deferred: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        # AGVs: requests (source node, transport node) in order; the nearest free vehicle takes the oldest it
        # may serve (``first_servable``), drives there empty, loads, drives, and unloads when the destination
        # has room (it waits there if not, where that cannot deadlock the fleet).
        self.reserved = [0] * n  # places kept for AGV parts, on their way or waiting (taken for everyone else)
        self.unloading: list[deque] = [deque() for _ in range(n)]  # (vehicle, part) waiting for room
        self.kept = [False] * p.fleet_size  # the vehicle's trip has a place kept at its destination
        self.requested = [False] * n
        self.agv_queue: deque = deque()
        self.agv_loc = [p.first_stop] * p.fleet_size
        self.agv_free = list(range(p.fleet_size))
        self.agv_since = [0.0] * p.fleet_size
        self.agv_busy = 0.0
        # Statistics, integrated lazily when a value changes.
        self.stats = {i: StationStats() for i in self.station_ids}
        self.acc_t = [0.0] * n
        self.active = [False] * n
        self.active_since = [-1.0] * n  # start of the open active period; -1: none
        self.inactive_since = [0.0] * n
        self.occ_area = [0.0] * n
        self.occ_t = [0.0] * n
        self.wip = 0
        self.wip_t = 0.0
        self.wip_area = 0.0
        self.produced = self.scrapped = self.departures = self.operations = self.events = 0
        self.sojourn_sum = 0.0
        self.lead_times: list[float] = []

    # -- the event loop ------------------------------------------------------------------------------------
    def schedule(self, t: float, ev: int, node: int, job: object = None, epoch: object = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, ev, node, job, epoch))

    def run(self) -> ReplicationResult:
        p = self.p
        for i in range(self.n):
            if p.arrival[i] is not None:
                self.schedule(p.arrival[i].next(), ARRIVAL, i)
            if p.fail[i] is not None:
                self.schedule(p.fail[i].next(), FAIL, i)
        for t, k in p.shifts:
            if t == 0.0:  # before everything else at time 0
                self.seq += 1
                heapq.heappush(self.heap, (t, -1, k, -1, None, 0))
            else:
                self.schedule(t, k, -1)
        if p.warmup > 0:
            self.schedule(p.warmup, WARMUP, -1)
        for i in range(self.n):  # always-available sources fill the line at time 0
            if self.kind[i] == "source" and p.arrival[i] is None:
                self.settle(i)
        heap, handlers, cancelled = self.heap, self.handlers(), self.cancelled
        while heap and heap[0][0] <= p.duration:
            self.now, _, ev, i, job, epoch = heapq.heappop(heap)
            self.events += 1
            handlers[ev](i, job, epoch)
            if cancelled is not None and self.events % 4096 == 0 and cancelled():
                raise InterruptedError("simulation cancelled")
        return self.finish()

    def handlers(self) -> list[Callable]:
        return [self.on_complete, self.on_conveyor, self.on_fail, self.on_repair, self.on_shift_off,
                self.on_shift_on, self.on_warmup, self.on_arrival, self.on_pickup, self.on_drop]

    # -- one handler per event kind ----------------------------------------------------------------------------
    def on_complete(self, s: int, job: list, epoch: int) -> None:
        """Station ``s`` finished a part: scrap it, process it again (rework) or make it ready to leave."""
        if job[3] != epoch:
            return  # paused since: rescheduled on resume
        self.account(s)
        self.jobs[s].remove(job)
        self.n_busy[s] -= 1
        self.operations += 1
        st = self.stats[s]
        if self.counting:
            st.processed += 1
            st.setup += job[2]
        u = self.p.uniform[s].next()
        if u < self.p.scrap[s]:
            if self.counting:
                st.scrapped += 1
                self.scrapped += 1
                self.departures += 1
                self.sojourn_sum += self.now - job[0]
            self.occupancy(s, -1)
            self.wip_change(-1)
            self.activity(s)
            work = [s]
            self.room_freed(s, work)
            self.drain(work)
        elif u < self.p.scrap[s] + self.p.rework[s]:
            if self.counting:
                st.reworked += 1
            self.start_job(s, job[0])  # processed again on the same server
            self.activity(s)
        else:
            self.n_block[s] += 1
            self.activity(s)
            self.ready[s].append((job[0], self.pick(s)))
            self.settle(s)

    def on_conveyor(self, c: int, part: float, due: float) -> None:
        """A part reached the end of conveyor ``c`` (unless the belt stopped since: then later)."""
        if not self.p.accumulating[c]:
            due_wall = due + (self.stopped_total[c] if self.stopped_since[c] < 0 else math.inf)
            if due_wall > self.now:
                if self.stopped_since[c] >= 0:
                    self.deferred[c].append((due, part))
                else:
                    self.schedule(due_wall, CONVEYOR, c, part, due)
                return
        self.ready[c].append((part, self.pick(c)))
        self.settle(c)

    def on_pickup(self, t: int, vehicle: int, a: int) -> None:
        """An AGV loaded at node ``a`` for transport ``t`` and drives to the destination."""
        self.requested[a] = False
        if self.kind[a] == "source" and self.p.arrival[a] is None and not self.ready[a]:
            self.raw_route[a] = -2  # raw material leaves on the AGV: from now on it is work in progress
            self.wip_change(1)
            part = self.now
        else:
            part, _target = self.ready[a].popleft()
            self.occupancy(a, -1)
            if self.is_station[a]:
                self.account(a)
                self.n_block[a] -= 1
        b = self.p.transport_dest[t]
        self.schedule(self.now + self.travel(a, b) + self.p.load_time, DROP, t, vehicle, part)
        work = [a]
        self.room_freed(a, work)
        self.drain(work)

    def on_drop(self, t: int, vehicle: int, part: float) -> None:
        """An AGV arrived at transport ``t``'s destination: unload, or wait there for room."""
        b = self.p.transport_dest[t]
        if self.kept[vehicle]:
            self.kept[vehicle] = False
            self.reserved[b] -= 1  # the place kept for this part is the one it takes now
        elif self.held[b] + self.reserved[b] >= self.p.cap[b]:
            self.reserved[b] += 1  # the next free place is this vehicle's
            self.unloading[b].append((vehicle, part))
            return
        work: list[int] = []
        self.unload(b, vehicle, part, work)
        self.drain(work)
        self.dispatch()

    def on_arrival(self, i: int, _job: object, _epoch: object) -> None:
        """A part arrives at source ``i``; the next arrival is scheduled."""
        self.wip_change(1)
        self.occupancy(i, 1)
        self.ready[i].append((self.now, self.pick(i)))
        self.schedule(self.now + self.p.arrival[i].next(), ARRIVAL, i)  # type: ignore[union-attr]
        self.settle(i)

    def on_fail(self, s: int, _job: object, _epoch: object) -> None:
        self.account(s)
        self.down[s] = True  # before pausing: a failure continues the station's active period
        self.pause(s)
        if self.counting:
            self.stats[s].failures += 1
        self.schedule(self.now + self.p.repair[s].next(), REPAIR, s)  # type: ignore[union-attr]

    def on_repair(self, s: int, _job: object, _epoch: object) -> None:
        self.account(s)
        self.down[s] = False
        self.resume(s)
        self.schedule(self.now + self.p.fail[s].next(), FAIL, s)  # type: ignore[union-attr]

    def on_shift_off(self, _i: int, _job: object, _epoch: object) -> None:
        self.shift(True)

    def on_shift_on(self, _i: int, _job: object, _epoch: object) -> None:
        self.shift(False)

    def on_warmup(self, _i: int, _job: object, _epoch: object) -> None:
        """Statistics count from here on."""
        for s in self.station_ids:
            self.account(s)
            self.stats[s] = StationStats()
            self.active_since[s] = self.now if self.active[s] else -1.0
        for d in range(self.n):
            self.occupancy(d, 0)
            self.occ_area[d] = 0.0
        self.wip_change(0)
        self.wip_area = 0.0
        self.counting = True

    # -- moving parts ------------------------------------------------------------------------------------------
    def settle(self, first: int) -> None:
        self.drain([first])

    def drain(self, work: list[int]) -> None:
        """Move parts onward from every node in ``work`` (a stack) until nothing more can move."""
        while work:
            self.push_out(work.pop(), work)

    def push_out(self, i: int, work: list[int]) -> None:
        """Move the ready parts of node i onward while their targets have room."""
        p = self.p
        q = self.ready[i]
        moved = False
        raw = self.kind[i] == "source" and p.arrival[i] is None  # raw material always available
        while q or raw:
            if q:
                part, d = q[0]
            else:
                d = self.raw_route[i]
                if d == -2:
                    d = self.raw_route[i] = self.pick(i)
            if d < 0:
                d = self.least_full(i)
                if d < 0:
                    for t in p.targets[i]:
                        self.wait_for_room(i, t)
                    break
            if p.transport_dest[d] >= 0:
                if not self.requested[i]:  # the part waits here for an AGV (blocking this node meanwhile)
                    self.requested[i] = True
                    self.agv_queue.append((i, d))
                    self.dispatch()
                break
            if self.held[d] + self.reserved[d] >= p.cap[d]:
                self.wait_for_room(i, d)
                break
            if q:
                q.popleft()
                self.occupancy(i, -1)
                if self.is_station[i]:
                    self.account(i)
                    self.n_block[i] -= 1
            else:  # raw material enters the line: from now on it is work in progress
                self.raw_route[i] = -2
                self.wip_change(1)
                part = self.now
            moved = True
            self.accept(d, part, work)
        if moved and self.kind[i] != "source":
            self.room_freed(i, work)
        if self.kind[i] == "conveyor" and not p.accumulating[i]:
            self.belt_state(i)

    def least_full(self, i: int) -> int:
        """For 'whichever has room': the target with room that is least full (-1: none has room)."""
        p = self.p
        best, best_fill = -1, 2.0
        for t in p.targets[i]:
            room_at = p.transport_dest[t] if p.transport_dest[t] >= 0 else t  # by AGV: room at its destination
            if self.held[room_at] + self.reserved[room_at] < p.cap[room_at]:
                fill = self.held[room_at] / p.cap[room_at] if p.cap[room_at] < UNBOUNDED else 0.0
                if fill < best_fill:
                    best, best_fill = t, fill
        return best

    def wait_for_room(self, i: int, d: int) -> None:
        if i not in self.waiting[d]:
            self.waiting[d].append(i)

    def accept(self, d: int, part: float, work: list[int]) -> None:
        """Part arrives in node d (room was checked)."""
        p = self.p
        self.occupancy(d, 1)
        k = self.kind[d]
        if k == "station":
            self.account(d)
            if self.paused[d]:
                self.pending[d].append(part)
            else:
                self.start_job(d, part)
                self.activity(d)
        elif k == "buffer":
            self.ready[d].append((part, self.pick(d)))
            work.append(d)
        elif k == "conveyor":
            now = self.now
            if p.accumulating[d]:
                due = max(now + p.transit[d], self.last_due[d])
                self.last_due[d] = due
                self.schedule(due, CONVEYOR, d, part, 0)
            else:  # in belt time: wall time less the time the belt stood still
                since = self.stopped_since[d]
                belt_now = now - self.stopped_total[d] - (now - since if since >= 0 else 0.0)
                due = max(belt_now + p.transit[d], self.last_due[d])
                self.last_due[d] = due
                self.schedule(due + self.stopped_total[d], CONVEYOR, d, part, due)
        else:  # sink
            self.occupancy(d, -1)
            self.wip_change(-1)
            if self.counting:
                self.produced += 1
                self.departures += 1
                lead = self.now - part
                self.lead_times.append(lead)
                self.sojourn_sum += lead

    def pick(self, i: int) -> int:
        """Target chosen by share when the part becomes ready; -1: whichever has room."""
        t = self.p.targets[i]
        if len(t) == 1:
            return t[0]
        cum = self.p.route_cum[i]
        if cum is None:
            return -1
        u = self.p.uniform[i].next()
        for j, c in enumerate(cum):
            if u < c:
                return t[j]
        return t[-1]

    def room_freed(self, i: int, work: list[int]) -> None:
        """A place in node i freed: a waiting AGV unloads first, then the nodes blocked on i try again."""
        while self.unloading[i] and self.held[i] < self.p.cap[i]:
            vehicle, part = self.unloading[i].popleft()
            self.reserved[i] -= 1
            self.unload(i, vehicle, part, work)
        if self.agv_queue:
            self.dispatch()
        if self.waiting[i]:
            waiters = self.waiting[i]
            self.waiting[i] = []
            work.extend(reversed(waiters))  # the longest-waiting node moves first (work is a stack)

    def belt_state(self, c: int) -> None:
        """A non-accumulating belt stops while its end part waits, and restarts when it leaves."""
        if self.ready[c] and self.stopped_since[c] < 0:
            self.stopped_since[c] = self.now
        elif not self.ready[c] and self.stopped_since[c] >= 0:
            self.stopped_total[c] += self.now - self.stopped_since[c]
            self.stopped_since[c] = -1.0
            for due, part in self.deferred[c]:
                self.schedule(due + self.stopped_total[c], CONVEYOR, c, part, due)
            self.deferred[c] = []

    # -- AGVs ------------------------------------------------------------------------------------------------
    def travel(self, a: int, b: int) -> float:
        return 0.0 if a == b else self.p.travel[(a, b)]

    def dispatch(self) -> None:
        """Send free AGVs to the oldest requests they may serve (``first_servable``)."""
        while self.agv_free and self.agv_queue:
            k = self.first_servable()
            if k < 0:
                return
            a, t = self.agv_queue[k]
            del self.agv_queue[k]
            b = self.p.transport_dest[t]
            keep = not self.p.drains_without_agv[b]
            if keep:
                self.reserved[b] += 1
            vehicle = min(self.agv_free, key=lambda v: self.travel(self.agv_loc[v], a))
            self.agv_free.remove(vehicle)
            self.kept[vehicle] = keep
            self.agv_since[vehicle] = self.now
            self.schedule(self.now + self.travel(self.agv_loc[vehicle], a) + self.p.load_time, PICKUP, t, vehicle, a)

    def first_servable(self) -> int:
        """Index of the oldest request a vehicle may serve now (-1: none).

        A vehicle may load for a destination that is full now only if the destination empties without AGVs
        (no transport downstream of it): it waits there briefly. Where the destination's parts leave by AGV
        it is sent only when a place is free, and the place is kept for it: vehicles waiting loaded at a full
        buffer while the parts that would empty it wait for a vehicle is a deadlock."""
        for k, (_a, t) in enumerate(self.agv_queue):
            b = self.p.transport_dest[t]
            if self.p.drains_without_agv[b] or self.held[b] + self.reserved[b] < self.p.cap[b]:
                return k
        return -1

    def unload(self, b: int, vehicle: int, part: float, work: list[int]) -> None:
        """The AGV puts its part down at ``b`` and is free again."""
        if self.now > self.p.warmup:
            self.agv_busy += self.now - max(self.agv_since[vehicle], self.p.warmup)
        self.agv_loc[vehicle] = b
        self.agv_free.append(vehicle)
        self.accept(b, part, work)

    # -- stations --------------------------------------------------------------------------------------------
    def start_job(self, s: int, part: float) -> None:
        p = self.p
        cycle = p.cycle[s].next()  # type: ignore[union-attr]
        setup = 0.0
        if p.setup[s] is not None:
            if self.batch_count[s] % p.batch[s] == 0:
                setup = p.setup[s].next()
            self.batch_count[s] += 1
        job = [part, self.now + cycle + setup, setup, 0]
        self.jobs[s].append(job)
        self.n_busy[s] += 1
        self.schedule(job[1], COMPLETE, s, job, 0)

    def pause(self, s: int) -> None:
        self.account(s)
        self.paused[s] += 1
        if self.paused[s] == 1:
            for job in self.jobs[s]:
                job[1] -= self.now  # the time still to go
                job[3] += 1  # its scheduled completion is void
        self.activity(s)

    def resume(self, s: int) -> None:
        self.account(s)
        self.paused[s] -= 1
        if self.paused[s] == 0:
            for job in self.jobs[s]:
                job[1] += self.now
                self.schedule(job[1], COMPLETE, s, job, job[3])
            waiting_parts = self.pending[s]
            self.pending[s] = []
            for part in waiting_parts:
                self.start_job(s, part)
        self.activity(s)

    def shift(self, going_off: bool) -> None:
        if going_off == self.off_shift:
            return
        for s in self.station_ids:
            self.account(s)
        self.off_shift = going_off
        for s in self.station_ids:
            if going_off:
                self.pause(s)
            else:
                self.resume(s)

    # -- statistics --------------------------------------------------------------------------------------------
    def account(self, s: int) -> None:
        """Integrate station ``s``'s state since its last change (call before changing it)."""
        dt = self.now - self.acc_t[s]
        if dt > 0.0:
            st = self.stats[s]
            servers = self.p.servers[s]
            if self.down[s]:
                st.down += dt * servers
            elif self.off_shift:
                st.off_shift += dt * servers
            else:
                busy, blocked = self.n_busy[s], self.n_block[s]
                st.working += busy * dt
                st.blocked += blocked * dt
                st.starved += (servers - busy - blocked) * dt
        self.acc_t[s] = self.now

    def activity(self, s: int) -> None:
        """Track active periods (working, in setup or down) for the bottleneck method.

        A part leaving and the next arriving in the same instant leave no gap: the period goes on."""
        is_active = self.down[s] or (self.n_busy[s] > 0 and self.paused[s] == 0)
        if is_active == self.active[s]:
            return
        self.active[s] = is_active
        if not is_active:
            self.inactive_since[s] = self.now
        elif self.active_since[s] < 0:
            self.active_since[s] = self.now
        elif self.now > self.inactive_since[s]:
            self.close_period(s, self.inactive_since[s])
            self.active_since[s] = self.now

    def close_period(self, s: int, end: float) -> None:
        st = self.stats[s]
        st.active_time += end - self.active_since[s]
        st.active_periods += 1
        st.periods.append((self.active_since[s], end))

    def occupancy(self, i: int, delta: int) -> None:
        self.occ_area[i] += self.held[i] * (self.now - self.occ_t[i])
        self.occ_t[i] = self.now
        self.held[i] += delta

    def wip_change(self, delta: int) -> None:
        self.wip_area += self.wip * (self.now - self.wip_t)
        self.wip_t = self.now
        self.wip += delta

    def finish(self) -> ReplicationResult:
        p = self.p
        self.now = p.duration
        for s in self.station_ids:
            self.account(s)
            if self.active_since[s] >= 0:
                self.close_period(s, self.now if self.active[s] else self.inactive_since[s])
        for d in range(self.n):
            self.occupancy(d, 0)
        self.wip_change(0)
        for vehicle in range(p.fleet_size):
            if vehicle not in self.agv_free and p.duration > p.warmup:
                self.agv_busy += p.duration - max(self.agv_since[vehicle], p.warmup)
        return ReplicationResult(
            horizon=p.duration - p.warmup, produced=self.produced, scrapped=self.scrapped,
            lead_times=self.lead_times, all_sojourns=self.sojourn_sum, departures=self.departures,
            wip_area=self.wip_area, occupancy_area=self.occ_area, stations=self.stats, events=self.events,
            operations=self.operations, agv_busy=self.agv_busy, agv_fleet=p.fleet_size,
            planned_fraction=p.planned_fraction)


def simulate(model: SimModel, duration: float, seed: int | np.random.SeedSequence = 0,
             cancelled: Callable[[], bool] | None = None) -> ReplicationResult:
    """One replication on the reference kernel (pure Python); :func:`viewer.sim.kernel.simulate` runs the
    compiled one where it is built."""
    return Replication(prepare(model, duration, seed), cancelled).run()
