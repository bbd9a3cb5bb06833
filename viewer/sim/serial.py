"""Serial lines, all replications at once: a max-plus recursion on numpy arrays instead of an event loop.

For a line source -> station -> buffer -> station ... -> sink with single-server stations, blocking after
service and time-based failures, the times of every part at every station follow a recursion (part k,
station i, buffer ``b_i`` after station i, ``U_i`` the station's cumulative up-time):

    start      S_i(k) = max(D_{i-1}(k), D_i(k-1))          arrived, and the previous part has left
    completion C_i(k) = U_i^-1(U_i(S_i(k)) + w_i(k))       w of work, progressing only while up
    departure  D_i(k) = max(C_i(k), D_{i+1}(k - b_i - 1))  room downstream (blocking after service)

Cell (k, i) needs (k, i-1), (k-1, i) and (k-b-1, i+1), so all cells on a wavefront ``2k + i = const`` are
independent: each step computes one wavefront for every replication in a handful of numpy operations. The
random draws are the event engine's own streams (same seeds, same order), so both give the same figures
to rounding, which a test checks; :func:`eligible` says when a model qualifies (otherwise the event engine
in :mod:`viewer.sim.engine` runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from viewer.sim.engine import BLOCK, ReplicationResult, StationStats, node_generators
from viewer.sim.model import Distribution, Node, SimModel, spread_distribution


def chain(model: SimModel) -> tuple[list[int], list[int]] | None:
    """(station node indices in order, buffer capacity after each) when the model is a plain serial line."""
    nodes = model.nodes
    sources = [i for i, n in enumerate(nodes) if n.kind == "source"]
    if len(sources) != 1 or model.calendar is not None:
        return None
    stations: list[int] = []
    buffers: list[int] = []
    i = sources[0]
    seen = {i}
    while True:
        outs = nodes[i].outputs
        if len(outs) != 1:
            return None
        j = outs[0][0]
        if j in seen:
            return None
        seen.add(j)
        node = nodes[j]
        if node.kind == "sink":
            break
        if node.kind == "buffer":
            if not stations or node.capacity is None:
                return None  # a buffer before the first station, or an unbounded one: not this path
            buffers[-1] += node.capacity
        elif node.kind == "station":
            if node.servers != 1 or node.setup is not None or node.scrap or node.rework:
                return None
            stations.append(j)
            buffers.append(0)
        else:
            return None
        i = j
    if not stations or len(seen) != len(nodes):
        return None
    return stations, buffers


def eligible(model: SimModel) -> bool:
    """True when :func:`simulate_batch` can run this model."""
    return chain(model) is not None


def _draws(dist: Distribution, rng: np.random.Generator, count: int) -> np.ndarray:
    """The first ``count`` values of the engine's block-wise stream."""
    blocks = [dist.sample(rng, BLOCK) for _ in range(max(1, math.ceil(count / BLOCK)))]
    return np.concatenate(blocks)[:count]


def _down_intervals(node: Node, fail_rng: np.random.Generator, repair_rng: np.random.Generator,
                    until: float) -> list[tuple[float, float]]:
    if node.mtbf is None or node.mttr is None:
        return []
    fail = spread_distribution(node.failure_dist, node.mtbf)
    repair = spread_distribution(node.repair_dist, node.mttr)
    out: list[tuple[float, float]] = []
    t = 0.0
    fails: list[float] = []
    repairs: list[float] = []
    while t <= until:
        if not fails:
            fails = fail.sample(fail_rng, BLOCK).tolist()[::-1]
        if not repairs:
            repairs = repair.sample(repair_rng, BLOCK).tolist()[::-1]
        start = t + fails.pop()
        end = start + repairs.pop()
        out.append((start, end))
        t = end
    return out


class _Uptime:
    """Cumulative up-time of every (replication, station) as one piecewise-linear function on offset axes."""

    def __init__(self, timelines: list[list[tuple[float, float]]], span: float) -> None:
        self.span = span
        xs, us, slopes, offsets, uoffsets = [], [], [], [], []
        u_base = 0.0
        for row, downs in enumerate(timelines):
            off = row * span
            offsets.append(off)
            uoffsets.append(u_base)
            x, u = [off], [u_base]
            slope = []
            up_total = 0.0
            last = 0.0
            for a, b in downs:
                if a >= span / 2:
                    break
                up_total += a - last
                x.append(off + a)
                u.append(u_base + up_total)
                slope.append(1.0)
                b = min(b, span / 2)
                x.append(off + b)
                u.append(u_base + up_total)
                slope.append(0.0)
                last = b
            up_total += span - last  # up until the end of this row's axis
            x.append(off + span)
            u.append(u_base + up_total)
            slope.append(1.0)
            slope.append(1.0)  # past the last point (never used)
            xs += x
            us += u
            slopes += slope
            u_base += up_total
        self.x = np.asarray(xs)
        self.u = np.asarray(us)
        self.slope = np.asarray(slopes)
        self.offset = np.asarray(offsets)
        self.uoffset = np.asarray(uoffsets)

    def up(self, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """U(t) for each (time, row)."""
        x = t + self.offset[rows]
        k = np.searchsorted(self.x, x, side="right") - 1
        return self.u[k] + self.slope[k] * (x - self.x[k]) - self.uoffset[rows]

    def when(self, u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The first time the up-time reaches u, for each (value, row)."""
        g = u + self.uoffset[rows]
        k = np.searchsorted(self.u, g, side="left")
        return self.x[k - 1] + (g - self.u[k - 1]) - self.offset[rows]


@dataclass
class _Line:
    """What the recursion and the statistics share about one serial line and run."""

    model: SimModel
    duration: float
    warmup: float
    stations: list[int]
    buffers: list[int]
    source: int
    arrival: Distribution | None


def simulate_batch(model: SimModel, duration: float, seeds: list[np.random.SeedSequence]) -> list[ReplicationResult]:
    """Every replication of a serial line at once; results as :func:`viewer.sim.engine.simulate` gives them."""
    found = chain(model)
    if found is None:
        raise ValueError("not a plain serial line: use viewer.sim.engine.simulate")
    stations, buffers = found
    nodes = model.nodes
    src = next(i for i, n in enumerate(nodes) if n.kind == "source")
    line = _Line(model, duration, min(model.warmup, duration), stations, buffers, src, nodes[src].interarrival)
    slowest = max(nodes[i].cycle.expected for i in stations)  # type: ignore[union-attr]
    if line.arrival is not None:
        slowest = max(slowest, line.arrival.expected)
    parts = int(duration / max(slowest, 1e-9) * 1.25) + 64
    while True:
        out = _run(line, seeds, parts)
        if out is not None:
            return out
        parts *= 2  # some replication got through more parts than guessed: again with room for more


def _run(line: _Line, seeds: list[np.random.SeedSequence], parts: int) -> list[ReplicationResult] | None:
    """All replications for ``parts`` parts; None when some replication would need more parts."""
    nodes, stations, buffers, arrival = line.model.nodes, line.stations, line.buffers, line.arrival
    src, duration = line.source, line.duration
    n_st, n_rep, K = len(stations), len(seeds), parts  # noqa: N806 - K parts, as in the recursion
    span = 4.0 * duration + 1e6
    work = np.empty((n_rep, n_st, K))
    arrivals = np.full((n_rep, K), -np.inf)
    timelines: list[list[tuple[float, float]]] = []
    for r, seq in enumerate(seeds):
        if arrival is not None:
            g = node_generators(seq, src, 5)
            arrivals[r] = np.cumsum(_draws(arrival, g[2], K))
        for s, i in enumerate(stations):
            g = node_generators(seq, i, 5)
            work[r, s] = _draws(nodes[i].cycle, g[1], K)
            timelines.append(_down_intervals(nodes[i], g[3], g[4], duration))
    uptime = _Uptime(timelines, span)
    # Wavefronts: cell (k, s) depends on (k, s-1), (k-1, s) and (k-b-1, s+1); with every buffer >= 1 the
    # diagonals k + s are independent (twice the cells per step), else 2k + s.
    skew = 1 if min(buffers[:-1], default=1) >= 1 else 2
    kk, ss = np.meshgrid(np.arange(K), np.arange(n_st))
    kk, ss = kk.ravel(), ss.ravel()  # cell = s * K + k
    wave = skew * kk + ss
    order = np.argsort(wave, kind="stable")
    bounds = np.searchsorted(wave[order], np.arange(wave.max() + 2))
    kk, ss = kk[order], ss[order]
    neg_col, zero_col, arr_col = n_st * K, n_st * K + 1, n_st * K + 2
    # Flat table of departures (+ a -inf column, a 0 column and the arrival times) gathered by index.
    came_idx = np.where(ss > 0, (ss - 1) * K + kk, arr_col + kk if arrival is not None else zero_col)
    freed_idx = np.where(kk > 0, ss * K + kk - 1, neg_col)
    b = np.asarray(buffers)[ss]
    ahead = kk - b - 1
    room_idx = np.where((ss == n_st - 1) | (ahead < 0), neg_col, (ss + 1) * K + np.maximum(ahead, 0))
    cell_idx = ss * K + kk
    # Rows = (station, part) cells, columns = replications: a gather reads whole contiguous rows.
    table = np.empty((n_st * K + 2 + K, n_rep))
    table[neg_col] = -np.inf
    table[zero_col] = 0.0
    table[arr_col:] = arrivals.T if arrival is not None else 0.0
    offsets = (np.arange(n_rep)[None, :] * n_st + ss[:, None]) * span  # each (replication, station) axis
    work_w = work.reshape(n_rep, n_st * K)[:, cell_idx].T.copy()
    start_w = np.empty((len(cell_idx), n_rep))
    done_w = np.empty((len(cell_idx), n_rep))
    # U(x) = slope * x + intercept on the segment that starts at or before x; the inverse on the segment that
    # ends at or after u is x = u + (x_k - u_k) (there the slope is 1). Precomputed so a step gathers less.
    ux, uu = uptime.x, uptime.u
    intercept = uu - uptime.slope * ux
    slope = uptime.slope
    back = ux - uu
    arrive_idx = np.stack([came_idx, freed_idx])
    for w in range(len(bounds) - 1):
        a, z = bounds[w], bounds[w + 1]
        if a == z:
            continue
        s_time = table[arrive_idx[:, a:z]].max(axis=0)
        off = offsets[a:z]
        x = s_time + off
        j = np.searchsorted(ux, x, side="right") - 1
        g = slope[j] * x + intercept[j] + work_w[a:z]  # up-time reached when the work is done
        c_time = g + back[np.searchsorted(uu, g, side="left") - 1] - off
        start_w[a:z] = s_time
        done_w[a:z] = c_time
        table[cell_idx[a:z]] = np.maximum(c_time, table[room_idx[a:z]])
    if (table[(n_st - 1) * K + K - 1] <= duration).any():
        return None
    start = np.empty((n_st * K, n_rep))
    done = np.empty((n_st * K, n_rep))
    start[cell_idx] = start_w
    done[cell_idx] = done_w
    start = start.T.reshape(n_rep, n_st, K)
    done = done.T.reshape(n_rep, n_st, K)
    depart = table[: n_st * K].T.reshape(n_rep, n_st, K)
    return [_result(line, _Times(start[r], done[r], depart[r], arrivals[r]), uptime, r * n_st,
                    timelines[r * n_st:(r + 1) * n_st]) for r in range(n_rep)]


def _overlap(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)


@dataclass
class _Times:
    """One replication's times per (station, part): start, completion, departure; and the arrivals."""

    start: np.ndarray
    done: np.ndarray
    depart: np.ndarray
    arrivals: np.ndarray


def _result(line: _Line, times: _Times, uptime: _Uptime, row0: int,
            timelines: list[list[tuple[float, float]]]) -> ReplicationResult:
    model, stations, src, arrival = line.model, line.stations, line.source, line.arrival
    start, done, depart, arrivals = times.start, times.done, times.depart, times.arrivals
    nodes = model.nodes
    n_st = len(stations)
    lo, hi = line.warmup, line.duration
    result = ReplicationResult(horizon=hi - lo)
    entry = arrivals if arrival is not None else start[0]
    exit_ = depart[-1]
    counted = (exit_ >= lo) & (exit_ <= hi) & (entry <= hi)
    result.produced = int(counted.sum())
    result.lead_times = (exit_[counted] - entry[counted]).tolist()
    result.departures = result.produced
    result.all_sojourns = float(np.sum(exit_[counted] - entry[counted]))
    valid = entry <= hi
    result.wip_area = float(_overlap(entry[valid], exit_[valid], lo, hi).sum())
    occupancy = [0.0] * len(nodes)
    if arrival is not None:
        occupancy[src] = float(_overlap(arrivals, start[0], lo, hi).sum())
    buffer_nodes = _buffer_nodes(model, stations)
    for s, i in enumerate(stations):
        occupancy[i] = float(_overlap(start[s], depart[s], lo, hi).sum())
        if s + 1 < n_st and buffer_nodes[s]:
            occupancy[buffer_nodes[s][0]] = float(_overlap(depart[s], start[s + 1], lo, hi).sum())
    result.occupancy_area = occupancy
    events = 0
    operations = 0
    for s, i in enumerate(stations):
        rows = np.full(start.shape[1], row0 + s)
        st = StationStats()

        def up_between(a: np.ndarray, b: np.ndarray, rows: np.ndarray = rows) -> np.ndarray:
            a2, b2 = np.clip(a, lo, hi), np.clip(b, lo, hi)
            return np.clip(uptime.up(b2, rows[: len(b2)]) - uptime.up(a2, rows[: len(a2)]), 0.0, None)

        ok = start[s] <= hi
        st.working = float(up_between(start[s][ok], done[s][ok]).sum())
        st.blocked = float(up_between(done[s][ok], depart[s][ok]).sum())
        whole = np.array([lo]), np.array([hi])
        st.down = float((hi - lo) - up_between(*whole)[0])
        st.starved = max((hi - lo) - st.working - st.blocked - st.down, 0.0)
        st.processed = int(((done[s] >= lo) & (done[s] <= hi)).sum())
        operations += int((done[s] <= hi).sum())
        downs = timelines[s]
        st.failures = sum(1 for a, _ in downs if lo <= a <= hi)
        events += st.failures * 2
        p_start, p_end = _active_periods(start[s][ok], done[s][ok], downs, lo, hi)
        st.periods = list(zip(p_start.tolist(), p_end.tolist(), strict=True))
        st.active_periods = len(p_start)
        st.active_time = float((p_end - p_start).sum())
        result.stations[i] = st
    result.events = events + operations
    result.operations = operations
    return result


def _buffer_nodes(model: SimModel, stations: list[int]) -> list[list[int]]:
    """The buffer nodes after each station (occupancy is credited to the first)."""
    out = []
    for i in stations:
        found = []
        j = model.nodes[i].outputs[0][0]
        while model.nodes[j].kind == "buffer":
            found.append(j)
            j = model.nodes[j].outputs[0][0]
        out.append(found)
    return out


def _active_periods(starts: np.ndarray, ends: np.ndarray, downs: list[tuple[float, float]], lo: float,
                    hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Working or down, merged where they touch or overlap, clipped to [lo, hi]."""
    a = np.concatenate([starts, np.array([d[0] for d in downs])])
    b = np.concatenate([ends, np.array([d[1] for d in downs])])
    a, b = np.clip(a, lo, hi), np.clip(b, lo, hi)
    keep = b > a
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return a, b
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    reach = np.maximum.accumulate(b)
    new = np.ones(len(a), dtype=bool)
    new[1:] = a[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:] - 1, len(a) - 1)
    return a[firsts], reach[lasts]
