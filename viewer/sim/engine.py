"""One replication of the discrete-event simulation: a specialised event loop over arrays of node state.

Why it is fast (the README's speed table compares it with SimPy on the same line):

- one binary heap of plain tuples ``(time, seq, kind, node, job, epoch)`` and an
  ``if`` chain on ``kind``: no generator per process, no event objects, no callbacks;
- only three things are events: a station finishing a part, a part reaching the end
  of a conveyor, and failures/repairs/shifts. Moving a part into a buffer or a free
  station, blocking and unblocking happen in the same instant without the heap;
- node state lives in flat lists indexed by node (held parts, ready queues, who waits
  for room where), and each statistic is integrated lazily when its value changes;
- random durations are drawn from numpy in blocks per node and stream, then read
  one by one from a Python list.

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
    """Draws from one distribution with one generator, refilled in blocks."""

    __slots__ = ("buf", "dist", "pos", "rng")

    def __init__(self, dist: Distribution, rng: np.random.Generator) -> None:
        self.dist, self.rng = dist, rng
        self.buf: list[float] = []
        self.pos = 0

    def next(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.dist.sample(self.rng, BLOCK).tolist()
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


def children(seq: np.random.SeedSequence, count: int) -> list[np.random.SeedSequence]:
    """The same ``count`` child seeds every time."""
    return [child(seq, j) for j in range(count)]


def node_generators(seq: np.random.SeedSequence, node: int, count: int) -> list[np.random.Generator]:
    """Generators of one node: 0 routing/scrap, 1 cycle, 2 setup or arrivals, 3 failures, 4 repairs.

    The node's seed is built directly (child ``node``), not as the last of ``node + 1`` children: the same
    streams, without the cost quadratic in the node count (682 nodes took 1.4 s of a 2.2 s replication)."""
    return [np.random.default_rng(s) for s in children(child(seq, node), 5)]


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


def simulate(model: SimModel, duration: float, seed: int | np.random.SeedSequence = 0,
             cancelled: Callable[[], bool] | None = None) -> ReplicationResult:
    """Run one replication for ``duration`` seconds (the warm-up included) and return its raw figures."""
    nodes = model.nodes
    n = len(nodes)
    warmup = min(model.warmup, duration)
    seq_root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    # One independent generator per node and purpose: a change at one station leaves the others' draws alone
    # (common random numbers across layouts that differ in one place).

    kind = [nd.kind for nd in nodes]
    is_station = [k == "station" for k in kind]
    is_conveyor = [k == "conveyor" for k in kind]
    is_transport = [k == "transport" for k in kind]
    cap = [UNBOUNDED] * n
    for i, nd in enumerate(nodes):
        if nd.kind == "station":
            cap[i] = nd.servers
        elif nd.kind in ("buffer", "conveyor") and nd.capacity is not None:
            cap[i] = nd.capacity
        elif nd.kind == "transport":
            cap[i] = 0  # nothing waits in a transport: the part stays at its source until an AGV picks it up
    held = [0] * n
    ready: list[deque] = [deque() for _ in range(n)]  # (part, target or -1) ready to leave
    waiting: list[list[int]] = [[] for _ in range(n)]  # nodes blocked for room in this node, in order
    waiting_set: list[set[int]] = [set() for _ in range(n)]
    targets: list[list[int]] = []
    route_cum: list[list[float] | None] = []
    cycle: list[Stream | None] = [None] * n
    setup: list[Stream | None] = [None] * n
    fail: list[Stream | None] = [None] * n
    repair: list[Stream | None] = [None] * n
    arrival: list[Stream | None] = [None] * n
    uniform: list[Stream | None] = [None] * n
    for i, nd in enumerate(nodes):
        g = node_generators(seq_root, i, 5)
        t, probs = _routing_past_empty_buffers(model, i)
        targets.append(t)
        route_cum.append(list(np.cumsum(probs)) if probs is not None and len(t) > 1 else None)
        if route_cum[i] is not None:
            route_cum[i][-1] = 1.0
        uniform[i] = Stream(Distribution("uniform", low=0.0, high=1.0), g[0])
        if nd.cycle is not None:
            cycle[i] = Stream(nd.cycle, g[1])
        if nd.setup is not None:
            setup[i] = Stream(nd.setup, g[2])
        if nd.mtbf is not None and nd.mttr is not None:
            fail[i] = Stream(spread_distribution(nd.failure_dist, nd.mtbf), g[3])
            repair[i] = Stream(spread_distribution(nd.repair_dist, nd.mttr), g[4])
        if nd.interarrival is not None:
            arrival[i] = Stream(nd.interarrival, g[2])
    # AGVs: requests (source node, transport node) in order; the nearest free vehicle takes the oldest,
    # drives there empty, loads, drives, and unloads when the destination has room (it waits there if not).
    fleet = model.agv
    transport_dest = [targets[i][0] if is_transport[i] else -1 for i in range(n)]
    reserved = [0] * n  # places promised to AGVs waiting to unload (counted as taken for everyone else)
    unloading: list[deque] = [deque() for _ in range(n)]  # (vehicle, part) waiting for room, per node
    requested = [False] * n
    agv_queue: deque = deque()
    first_stop = next((nd.source for nd in nodes if nd.kind == "transport"), 0)
    agv_loc = [first_stop] * (fleet.size if fleet else 0)
    agv_free = list(range(fleet.size if fleet else 0))
    agv_since = [0.0] * (fleet.size if fleet else 0)
    agv_busy = 0.0
    scrap_p = [nd.scrap for nd in nodes]
    rework_p = [nd.rework for nd in nodes]
    batch = [nd.batch_size for nd in nodes]
    servers = [nd.servers for nd in nodes]
    transit = [nd.transit for nd in nodes]
    accumulating = [nd.accumulating for nd in nodes]

    # Station state.
    jobs: list[list[list]] = [[] for _ in range(n)]  # in process: [part, end or remaining, setup share, epoch]
    pending: list[list[float]] = [[] for _ in range(n)]  # accepted while paused: start on resume
    paused = [0] * n  # > 0: down and/or off shift
    down = [False] * n
    batch_count = [0] * n
    n_busy = [0] * n
    n_block = [0] * n
    # Conveyor state: the belt clock of non-accumulating conveyors stops while their end part waits.
    raw_route = [-2] * n  # always-available sources: the drawn target of the next raw part (-2 = none yet)
    last_due = [0.0] * n
    stopped_total = [0.0] * n
    stopped_since = [-1.0] * n
    deferred: list[list[tuple[float, float]]] = [[] for _ in range(n)]

    stats = {i: StationStats() for i in range(n) if is_station[i]}
    acc_t = [0.0] * n
    active = [False] * n
    active_since = [-1.0] * n  # start of the open active period; -1 = none
    inactive_since = [0.0] * n
    off_shift = False
    occ_area = [0.0] * n
    occ_t = [0.0] * n
    result = ReplicationResult(horizon=duration - warmup)
    lead_times = result.lead_times
    counting = warmup <= 0.0
    wip = 0
    wip_t = 0.0
    wip_area = 0.0
    produced = scrapped_total = departures = 0
    sojourn_sum = 0.0
    operations = 0

    heap: list[tuple] = []
    seq = 0
    now = 0.0

    def account(s: int) -> None:
        """Integrate station ``s``'s state since its last change (call before changing it)."""
        dt = now - acc_t[s]
        if dt > 0.0:
            st = stats[s]
            if down[s]:
                st.down += dt * servers[s]
            elif off_shift:
                st.off_shift += dt * servers[s]
            else:
                busy, blocked = n_busy[s], n_block[s]
                st.working += busy * dt
                st.blocked += blocked * dt
                st.starved += (servers[s] - busy - blocked) * dt
        acc_t[s] = now

    def activity(s: int) -> None:
        """Track active periods (working, in setup or down) for the bottleneck method.

        A part leaving and the next arriving in the same instant leave no gap: the period goes on.
        """
        is_active = down[s] or (n_busy[s] > 0 and paused[s] == 0)
        if is_active == active[s]:
            return
        active[s] = is_active
        if not is_active:
            inactive_since[s] = now
        elif active_since[s] < 0:
            active_since[s] = now
        elif now > inactive_since[s]:
            close_period(s, inactive_since[s])
            active_since[s] = now

    def close_period(s: int, end: float) -> None:
        st = stats[s]
        st.active_time += end - active_since[s]
        st.active_periods += 1
        st.periods.append((active_since[s], end))

    def occupancy(i: int, delta: int) -> None:
        occ_area[i] += held[i] * (now - occ_t[i])
        occ_t[i] = now
        held[i] += delta

    def start_job(s: int, part: float) -> None:
        nonlocal seq
        duration_ = cycle[s].next()  # type: ignore[union-attr]
        setup_part = 0.0
        if setup[s] is not None:
            if batch_count[s] % batch[s] == 0:
                setup_part = setup[s].next()  # type: ignore[union-attr]
            batch_count[s] += 1
        job = [part, now + duration_ + setup_part, setup_part, 0]
        jobs[s].append(job)
        n_busy[s] += 1
        seq += 1
        heapq.heappush(heap, (job[1], seq, COMPLETE, s, job, 0))

    def accept(d: int, part: float, work: list[int]) -> None:
        """Part arrives in node d (room was checked)."""
        nonlocal seq, wip, wip_area, wip_t, produced, departures, sojourn_sum
        occupancy(d, 1)
        k = kind[d]
        if k == "station":
            account(d)
            if paused[d]:
                pending[d].append(part)
            else:
                start_job(d, part)
                activity(d)
        elif k == "buffer":
            ready[d].append((part, pick(d)))
            work.append(d)
        elif k == "conveyor":
            if accumulating[d]:
                due = max(now + transit[d], last_due[d])
                last_due[d] = due
                seq += 1
                heapq.heappush(heap, (due, seq, CONVEYOR, d, part, 0))
            else:
                belt_now = now - stopped_total[d] - (now - stopped_since[d] if stopped_since[d] >= 0 else 0.0)
                due = max(belt_now + transit[d], last_due[d])  # in belt time
                last_due[d] = due
                seq += 1
                heapq.heappush(heap, (due + stopped_total[d], seq, CONVEYOR, d, part, due))
        else:  # sink
            occupancy(d, -1)
            wip_area += wip * (now - wip_t)
            wip_t = now
            wip -= 1
            if counting:
                produced += 1
                departures += 1
                lead = now - part
                lead_times.append(lead)
                sojourn_sum += lead

    def pick(i: int) -> int:
        """Target chosen by share when the part becomes ready; -1 = whichever has room."""
        t = targets[i]
        if len(t) == 1:
            return t[0]
        cum = route_cum[i]
        if cum is None:
            return -1
        u = uniform[i].next()  # type: ignore[union-attr]
        for j, c in enumerate(cum):
            if u < c:
                return t[j]
        return t[-1]

    def push_out(i: int, work: list[int]) -> None:
        """Move the ready parts of node i onward while their targets have room."""
        nonlocal wip, wip_t, wip_area
        q = ready[i]
        moved = False
        raw = kind[i] == "source" and arrival[i] is None  # raw material always available
        while q or raw:
            if q:
                part, d = q[0]
            else:
                d = raw_route[i]
                if d == -2:
                    d = raw_route[i] = pick(i)
            if d < 0:
                best, best_fill = -1, 2.0
                for t in targets[i]:
                    room_at = transport_dest[t] if is_transport[t] else t  # by AGV: room at its destination
                    if held[room_at] + reserved[room_at] < cap[room_at]:
                        fill = held[room_at] / cap[room_at] if cap[room_at] < UNBOUNDED else 0.0
                        if fill < best_fill:
                            best, best_fill = t, fill
                if best < 0:
                    for t in targets[i]:
                        if i not in waiting_set[t]:
                            waiting_set[t].add(i)
                            waiting[t].append(i)
                    break
                d = best
            if is_transport[d]:
                if not requested[i]:  # the part waits here for an AGV (blocking this node meanwhile)
                    requested[i] = True
                    agv_queue.append((i, d))
                    dispatch()
                break
            if held[d] + reserved[d] >= cap[d]:
                if i not in waiting_set[d]:
                    waiting_set[d].add(i)
                    waiting[d].append(i)
                break
            if q:
                q.popleft()
                occupancy(i, -1)
                if is_station[i]:
                    account(i)
                    n_block[i] -= 1
            else:  # raw material enters the line: from now on it is work in progress
                raw_route[i] = -2
                wip_area += wip * (now - wip_t)
                wip_t = now
                wip += 1
                part = now
            moved = True
            accept(d, part, work)
        if moved and kind[i] != "source":
            room_freed(i, work)
        if is_conveyor[i] and not accumulating[i]:
            belt_state(i)

    def dispatch() -> None:
        """Send free AGVs to the oldest requests whose destination has room."""
        nonlocal seq
        while agv_free and agv_queue:
            a, t = agv_queue.popleft()
            vehicle = min(agv_free, key=lambda v, a=a: fleet.seconds(agv_loc[v], a))  # type: ignore[union-attr]
            agv_free.remove(vehicle)
            agv_since[vehicle] = now
            seq += 1
            due = now + fleet.seconds(agv_loc[vehicle], a) + fleet.load_time  # type: ignore[union-attr]
            heapq.heappush(heap, (due, seq, PICKUP, t, vehicle, a))

    def unload(b: int, vehicle: int, part: float, work: list[int]) -> None:
        """The AGV puts its part down at ``b`` and is free again."""
        nonlocal agv_busy
        if now > warmup:
            agv_busy += now - max(agv_since[vehicle], warmup)
        agv_loc[vehicle] = b
        agv_free.append(vehicle)
        accept(b, part, work)

    def room_freed(i: int, work: list[int]) -> None:
        while unloading[i] and held[i] < cap[i]:  # an AGV waiting at this node unloads first
            vehicle, part = unloading[i].popleft()
            reserved[i] -= 1
            unload(i, vehicle, part, work)
        if agv_queue:
            dispatch()
        if waiting[i]:
            waiters = waiting[i]
            waiting[i] = []
            waiting_set[i].clear()
            work.extend(reversed(waiters))  # the longest-waiting node moves first (work is a stack)

    def belt_state(c: int) -> None:
        """A non-accumulating belt stops while its end part waits, and restarts when it leaves."""
        nonlocal seq
        if ready[c] and stopped_since[c] < 0:
            stopped_since[c] = now
        elif not ready[c] and stopped_since[c] >= 0:
            stopped_total[c] += now - stopped_since[c]
            stopped_since[c] = -1.0
            for due, part in deferred[c]:
                seq += 1
                heapq.heappush(heap, (due + stopped_total[c], seq, CONVEYOR, c, part, due))
            deferred[c] = []

    def settle(first: int) -> None:
        work = [first]
        while work:
            push_out(work.pop(), work)

    def pause(s: int) -> None:
        account(s)
        paused[s] += 1
        if paused[s] == 1:
            for job in jobs[s]:
                job[1] -= now  # the time still to go
                job[3] += 1  # its scheduled completion is void
        activity(s)

    def resume(s: int) -> None:
        nonlocal seq
        account(s)
        paused[s] -= 1
        if paused[s] == 0:
            for job in jobs[s]:
                job[1] += now
                seq += 1
                heapq.heappush(heap, (job[1], seq, COMPLETE, s, job, job[3]))
            waiting_parts = pending[s]
            pending[s] = []
            for part in waiting_parts:
                start_job(s, part)
        activity(s)

    # Initial events: arrivals, failures, shifts, warm-up.
    for i in range(n):
        if arrival[i] is not None:
            seq += 1
            heapq.heappush(heap, (arrival[i].next(), seq, ARRIVAL, i, None, 0))
        if fail[i] is not None:
            seq += 1
            heapq.heappush(heap, (fail[i].next(), seq, FAIL, i, None, 0))
    cal = model.calendar
    if cal is not None and cal.working:
        result.planned_fraction = cal.working_fraction()
        shift_times: list[tuple[float, int]] = []
        periods = math.ceil(duration / cal.period) + 1
        for p in range(periods):
            base = p * cal.period
            for start, end in cal.working:
                shift_times.append((base + start, SHIFT_ON))
                shift_times.append((base + end, SHIFT_OFF))
        # Off from time 0 until the first working period starts.
        if cal.working[0][0] > 0:
            shift_times.append((0.0, SHIFT_OFF))
        for t, k in shift_times:
            if t <= duration:
                seq += 1
                heapq.heappush(heap, (t, -1 if t == 0.0 else seq, k, -1, None, 0))
    if warmup > 0:
        seq += 1
        heapq.heappush(heap, (warmup, seq, WARMUP, -1, None, 0))
    for i in range(n):  # always-available sources fill the line at time 0
        if kind[i] == "source" and arrival[i] is None:
            settle(i)

    events = 0
    pop = heapq.heappop
    while heap:
        if heap[0][0] > duration:
            break
        now, _, ev, i, job, epoch = pop(heap)
        events += 1
        if ev == COMPLETE:
            if job[3] != epoch:
                continue  # paused since: rescheduled on resume
            account(i)
            jobs[i].remove(job)
            n_busy[i] -= 1
            operations += 1
            st = stats[i]
            if counting:
                st.processed += 1
                st.setup += job[2]
            u = uniform[i].next()  # type: ignore[union-attr]
            if u < scrap_p[i]:
                if counting:
                    st.scrapped += 1
                    scrapped_total += 1
                    departures += 1
                    sojourn_sum += now - job[0]
                occupancy(i, -1)
                wip_area += wip * (now - wip_t)
                wip_t = now
                wip -= 1
                activity(i)
                work = [i]
                room_freed(i, work)
                while work:
                    push_out(work.pop(), work)
                continue
            if u < scrap_p[i] + rework_p[i]:
                if counting:
                    st.reworked += 1
                start_job(i, job[0])  # processed again on the same server
                activity(i)
                continue
            n_block[i] += 1
            activity(i)
            ready[i].append((job[0], pick(i)))
            settle(i)
        elif ev == CONVEYOR:
            if not accumulating[i]:
                due_wall = epoch + (stopped_total[i] if stopped_since[i] < 0 else math.inf)
                if due_wall > now:  # the belt stopped since this was scheduled
                    if stopped_since[i] >= 0:
                        deferred[i].append((epoch, job))
                    else:
                        seq += 1
                        heapq.heappush(heap, (due_wall, seq, CONVEYOR, i, job, epoch))
                    continue
            ready[i].append((job, pick(i)))
            settle(i)
        elif ev == PICKUP:  # i: transport node, job: vehicle, epoch: the node it picks up from
            a, vehicle = epoch, job
            requested[a] = False
            if kind[a] == "source" and arrival[a] is None and not ready[a]:
                raw_route[a] = -2  # raw material leaves on the AGV: from now on it is work in progress
                wip_area += wip * (now - wip_t)
                wip_t = now
                wip += 1
                part = now
            else:
                part, _d = ready[a].popleft()
                occupancy(a, -1)
                if is_station[a]:
                    account(a)
                    n_block[a] -= 1
            b = transport_dest[i]
            seq += 1
            heapq.heappush(heap, (now + fleet.seconds(a, b) + fleet.load_time, seq, DROP, i, vehicle, part))  # type: ignore[union-attr]
            work = [a]
            room_freed(a, work)
            while work:
                push_out(work.pop(), work)
        elif ev == DROP:  # i: transport node, job: vehicle, epoch: the part
            b, vehicle = transport_dest[i], job
            if held[b] + reserved[b] >= cap[b]:
                reserved[b] += 1  # the AGV waits here with the part; the next free place is its
                unloading[b].append((vehicle, epoch))
                continue
            work = []
            unload(b, vehicle, epoch, work)
            while work:
                push_out(work.pop(), work)
            dispatch()
        elif ev == ARRIVAL:
            wip_area += wip * (now - wip_t)
            wip_t = now
            wip += 1
            occupancy(i, 1)
            ready[i].append((now, pick(i)))
            seq += 1
            heapq.heappush(heap, (now + arrival[i].next(), seq, ARRIVAL, i, None, 0))  # type: ignore[union-attr]
            settle(i)
        elif ev == FAIL:
            account(i)
            down[i] = True  # before pausing: a failure continues the station's active period
            pause(i)
            if counting:
                stats[i].failures += 1
            seq += 1
            heapq.heappush(heap, (now + repair[i].next(), seq, REPAIR, i, None, 0))  # type: ignore[union-attr]
        elif ev == REPAIR:
            account(i)
            down[i] = False
            resume(i)
            seq += 1
            heapq.heappush(heap, (now + fail[i].next(), seq, FAIL, i, None, 0))  # type: ignore[union-attr]
        elif ev in (SHIFT_OFF, SHIFT_ON):
            going_off = ev == SHIFT_OFF
            if going_off == off_shift:
                continue
            for s in stats:
                account(s)
            off_shift = going_off
            for s in stats:
                if going_off:
                    pause(s)
                else:
                    resume(s)
        elif ev == WARMUP:
            for s in stats:
                account(s)
                stats[s] = StationStats()
                active_since[s] = now if active[s] else -1.0  # periods count from the warm-up on
            for d in range(n):
                occupancy(d, 0)
                occ_area[d] = 0.0
            wip_area += wip * (now - wip_t)
            wip_t = now
            wip_area = 0.0
            counting = True
        if cancelled is not None and events % 4096 == 0 and cancelled():
            raise InterruptedError("simulation cancelled")
    now = duration
    for s in stats:
        account(s)
        if active_since[s] >= 0:
            close_period(s, now if active[s] else inactive_since[s])
    for d in range(n):
        occupancy(d, 0)
    wip_area += wip * (now - wip_t)
    result.produced = produced
    result.scrapped = scrapped_total
    result.departures = departures
    result.all_sojourns = sojourn_sum
    result.wip_area = wip_area
    result.occupancy_area = occ_area
    result.stations = stats
    result.events = events
    result.operations = operations
    for vehicle in range(len(agv_loc)):
        if vehicle not in agv_free and duration > warmup:
            agv_busy += duration - max(agv_since[vehicle], warmup)
    result.agv_busy = agv_busy
    result.agv_fleet = len(agv_loc)
    return result
