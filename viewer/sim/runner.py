"""Replications, confidence intervals and the KPIs a planner reads: throughput, utilisation, WIP, OEE, bottleneck.

``run(model, hours=8, replications=20, seed=1)`` runs independent seeded
replications (in parallel on all cores when there are enough of them) and returns a
:class:`SimReport`. Each replication gets its own child of ``SeedSequence(seed)``,
so a run is reproducible whatever the number of workers.

The bottleneck is found by the shifting-bottleneck (active-period) method of Roser,
Nakano & Tanaka (2002): a station is *active* while it works, sets up or is being
repaired (blocked and starved time are the other stations' doing); at each instant
the station with the longest current active period is the momentary bottleneck, and
the station that is so for the largest share of the time is reported. Unlike
"highest utilisation" it finds a station that fails often but works fast, and unlike
the average active period it is not fooled by short blips of starvation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from viewer.sim.engine import ReplicationResult
from viewer.sim.kernel import compiled_kernel, kernel_name, simulate
from viewer.sim.model import SimModel
from viewer.sim.serial import eligible, simulate_batch

# Student t 97.5 % quantiles for 1..30 degrees of freedom (two-sided 95 % intervals).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
PARALLEL_MIN_EVENTS = 200_000  # below this much work, starting worker processes costs more than it saves


def t_quantile_975(dof: int) -> float:
    """Two-sided 95 % Student t quantile (table to 30, then the Cornish–Fisher expansion)."""
    if dof < 1:
        return math.inf
    if dof <= len(_T975):
        return _T975[dof - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * dof ** 2)


@dataclass
class Estimate:
    """Mean over replications with a 95 % confidence half-width."""

    mean: float
    half_width: float
    n: int

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> Estimate:
        a = np.asarray(values, dtype=float)
        if len(a) == 0:
            return cls(math.nan, math.nan, 0)
        if len(a) == 1:
            return cls(float(a[0]), math.inf, 1)
        return cls(float(a.mean()), t_quantile_975(len(a) - 1) * float(a.std(ddof=1)) / math.sqrt(len(a)), len(a))

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci95": self.half_width if math.isfinite(self.half_width) else None}


@dataclass
class StationReport:
    """Per-station figures, means over replications; state fractions of the station's server time."""

    id: str
    name: str
    servers: int
    working: float
    setup: float
    blocked: float
    starved: float
    down: float
    off_shift: float
    availability: float
    performance: float
    quality: float
    oee: float
    processed_per_hour: float
    scrap: float
    mean_active_period_s: float
    bottleneck_share: float  # of the time it was the momentary bottleneck (shifting-bottleneck method)


@dataclass
class SimReport:
    """What ``twin-viewer simulate`` and the editor show."""

    hours: float
    warmup_s: float
    replications: int
    seed: int
    throughput_per_hour: Estimate
    scrap_per_hour: Estimate
    wip: Estimate
    lead_time_s: Estimate  # mean lead time of good parts
    lead_time_percentiles_s: dict[str, float]  # pooled over replications
    little_gap: float  # worst |WIP - throughput x time in system| / WIP over replications
    buffers: dict[str, float]  # mean parts held, buffers and conveyors
    buffer_fill: dict[str, float]  # mean fill, 0..1
    stations: list[StationReport]
    line_oee: Estimate
    bottleneck: str | None
    events: int
    operations: int
    agv_utilisation: float | None = None  # share of the AGV fleet's time spent on transport jobs
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    first_estimate: bool = False  # the summary of the first replications only, handed out while the rest run
    stopped_early: bool = False  # fewer replications than asked: the throughput interval was already tight
    kernel: str = ""  # which ran: 'serial' (vectorised line), 'compiled' or 'python' (viewer.sim.kernel)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("throughput_per_hour", "scrap_per_hour", "wip", "lead_time_s", "line_oee"):
            out[key] = getattr(self, key).to_dict()
        return out

    def format(self) -> str:
        """A plain-text report for the terminal."""
        tp = self.throughput_per_hour
        lines = [f"Throughput  {tp.mean:,.1f} parts/h  (95 % CI {tp.low:,.1f} to {tp.high:,.1f}, "
                 f"{self.replications} replications of {self.hours:g} h, warm-up {self.warmup_s:g} s)",
                 f"Scrap       {self.scrap_per_hour.mean:,.2f} parts/h",
                 f"WIP         {self.wip.mean:,.2f} parts   lead time {self.lead_time_s.mean / 60:,.1f} min "
                 f"(p50 {self.lead_time_percentiles_s.get('p50', math.nan) / 60:,.1f}, "
                 f"p90 {self.lead_time_percentiles_s.get('p90', math.nan) / 60:,.1f}, "
                 f"p99 {self.lead_time_percentiles_s.get('p99', math.nan) / 60:,.1f} min)",
                 f"Line OEE    {self.line_oee.mean:.1%}",
                 f"Bottleneck  {self.bottleneck or '-'}"
                 + (f"   AGV fleet busy {self.agv_utilisation:.0%}" if self.agv_utilisation is not None else ""),
                 "",
                 f"{'station':<10} {'work':>6} {'setup':>6} {'block':>6} {'starve':>6} {'down':>6} "
                 f"{'avail':>6} {'perf':>6} {'qual':>6} {'OEE':>6} {'act.per':>8} {'bottl.':>6}"]
        for s in self.stations:
            lines.append(f"{s.id:<10} {s.working:>6.1%} {s.setup:>6.1%} {s.blocked:>6.1%} {s.starved:>6.1%} "
                         f"{s.down:>6.1%} {s.availability:>6.1%} {s.performance:>6.1%} {s.quality:>6.1%} "
                         f"{s.oee:>6.1%} {s.mean_active_period_s:>7.0f}s {s.bottleneck_share:>6.0%}")
        if self.buffers:
            lines.append("")
            lines.append("buffer / conveyor: mean parts (fill)")
            for key, value in self.buffers.items():
                lines.append(f"  {key:<10} {value:6.2f}  ({self.buffer_fill[key]:.0%})")
        lines += [""] + [f"note: {n}" for n in self.notes]
        lines.append(f"{self.events:,} events, {self.wall_s * 1000:,.0f} ms"
                     + (f" ({self.kernel} kernel)" if self.kernel else ""))
        return "\n".join(lines).rstrip() + "\n"


def _one(args: tuple[SimModel, float, np.random.SeedSequence]) -> ReplicationResult:
    model, duration, seed = args
    return simulate(model, duration, seed)


def run(model: SimModel, hours: float = 8.0, replications: int = 20, seed: int = 1,
        executor: Executor | None = None, workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        first_estimate: Callable[[SimReport], None] | None = None, first_after: int = 2,
        tight: float | None = None, min_replications: int = 4) -> SimReport:
    """Simulate ``replications`` runs of ``hours`` (after the model's warm-up) and summarise them.

    ``executor``: any ``concurrent.futures.Executor`` (a Dask or Ray executor works the same way); by
    default a local process pool when the work is big enough to pay for it, else in this process.
    ``first_estimate``: called once with the summary of the first ``first_after`` replications (when they run
    one after another in this process), so a planner sees a first, wider estimate at once.
    ``tight``: stop after ``min_replications`` or more once the throughput's 95 % half-width is at most this
    share of its mean (the editor's rule, 0.02; the command line keeps its fixed count).
    """
    import time

    model.check()
    if hours <= 0 or replications < 1:
        raise ValueError("hours must be > 0 and replications >= 1")
    duration = model.warmup + hours * 3600.0
    seeds = np.random.SeedSequence(seed).spawn(replications)
    jobs = [(model, duration, s) for s in seeds]
    t0 = time.perf_counter()
    results: list[ReplicationResult] = []
    stopped_early = False
    cpus = workers if workers is not None else (os.cpu_count() or 1)
    estimate = replications * _events_guess(model, duration)
    vectorised = executor is None and replications >= 2 and kernel_name() == "python" and eligible(model)
    if vectorised:
        # No compiled kernel: a plain serial line runs every replication at once on the vectorised path
        # (viewer.sim.serial; the compiled kernel is faster still, so it runs wherever it is built).
        if cancelled is not None and cancelled():
            raise InterruptedError("simulation cancelled")
        results = simulate_batch(model, duration, seeds)
        if progress is not None:
            progress(replications, replications)
    elif executor is None and (cpus <= 1 or replications < 2 or estimate < PARALLEL_MIN_EVENTS):
        for i, job in enumerate(jobs):
            if cancelled is not None and cancelled():
                raise InterruptedError("simulation cancelled")
            results.append(simulate(job[0], job[1], job[2], cancelled))
            if progress is not None:
                progress(i + 1, replications)
            if first_estimate is not None and i + 1 == first_after < replications:
                early = summarise(model, hours, seed, list(results))
                early.wall_s = time.perf_counter() - t0
                early.first_estimate = True
                first_estimate(early)
            if tight is not None and min_replications <= i + 1 < replications:
                throughput = Estimate.of([r.produced / hours for r in results])
                if throughput.mean > 0 and throughput.half_width <= tight * throughput.mean:
                    stopped_early = True
                    break
    else:
        own = executor is None
        pool = executor or _process_pool(min(cpus, replications))
        try:
            futures = [pool.submit(_one, job) for job in jobs]
            for i, fut in enumerate(futures):
                while True:
                    try:
                        results.append(fut.result(timeout=0.1))
                        break
                    except TimeoutError:
                        if cancelled is not None and cancelled():
                            for f in futures:
                                f.cancel()
                            raise InterruptedError("simulation cancelled") from None
                if progress is not None:
                    progress(i + 1, replications)
        finally:
            if own:
                pool.shutdown(wait=False, cancel_futures=True)
    report = summarise(model, hours, seed, results)
    report.wall_s = time.perf_counter() - t0
    report.stopped_early = stopped_early
    report.kernel = "vectorised serial" if vectorised else kernel_name()
    return report


def _process_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    # spawn, not fork: the viewer's process has Qt and VTK threads that a fork would copy half-alive.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _events_guess(model: SimModel, duration: float) -> float:
    """Rough event count of one replication: one per station cycle and conveyor pass."""
    total = 0.0
    for node in model.nodes:
        if node.kind == "station" and node.cycle is not None:
            total += duration / max(node.ideal_cycle, 1e-9)
    return total


def summarise(model: SimModel, hours: float, seed: int, results: list[ReplicationResult]) -> SimReport:
    """Means, confidence intervals, OEE and the bottleneck from the replications' raw figures."""
    horizon_h = hours
    per_h = [r.produced / horizon_h for r in results]
    scrap_h = [r.scrapped / horizon_h for r in results]
    wip = [r.wip for r in results]
    lead = [float(np.mean(r.lead_times)) for r in results if r.lead_times]
    pooled = np.concatenate([np.asarray(r.lead_times) for r in results]) if results else np.zeros(0)
    percentiles = ({f"p{q}": float(np.percentile(pooled, q)) for q in (10, 50, 90, 99)} | {"max": float(pooled.max())}
                   if len(pooled) else {})
    little = []
    for r in results:
        if r.departures and r.wip > 0:
            throughput = r.departures / r.horizon
            little.append(abs(r.wip - throughput * r.all_sojourns / r.departures) / r.wip)
    buffers: dict[str, float] = {}
    fill: dict[str, float] = {}
    for i, node in enumerate(model.nodes):
        if node.kind in ("buffer", "conveyor"):
            mean = float(np.mean([r.occupancy_area[i] / r.horizon for r in results]))
            buffers[node.id] = mean
            fill[node.id] = mean / node.capacity if node.capacity else 0.0
    stations: list[StationReport] = []
    # Bottleneck: time share as the momentary bottleneck, averaged over replications.
    shares: dict[int, float] = {}
    compiled = compiled_kernel()  # the same rule as one heap sweep (7x faster on the 1,013-component plant)
    shares_of = compiled.bottleneck_shares if compiled is not None else momentary_bottleneck_shares  # type: ignore[attr-defined]
    for r in results:
        for s_, v in shares_of({i: st.periods for i, st in r.stations.items()},
                                                 model.warmup, model.warmup + r.horizon).items():
            shares[s_] = shares.get(s_, 0.0) + v / len(results)
    line_oee: list[float] = []
    notes: list[str] = []
    for i, node in enumerate(model.nodes):
        if node.kind != "station":
            continue
        per = [r.stations[i] for r in results]
        total = [node.servers * r.horizon for r in results]
        frac = {k: float(np.mean([getattr(s, k) / t for s, t in zip(per, total, strict=True)]))
                for k in ("working", "setup", "blocked", "starved", "down", "off_shift")}
        # Setup time sits inside the busy time the engine integrates; report it apart.
        frac["working"] = max(frac["working"] - frac["setup"], 0.0)
        planned = [t - s.off_shift for s, t in zip(per, total, strict=True)]
        run_time = [p - s.down for s, p in zip(per, planned, strict=True)]
        availability = _ratio(sum(run_time), sum(planned))
        processed = sum(s.processed for s in per)
        performance = _ratio(processed * node.cycle.expected if node.cycle else 0.0, sum(run_time))
        quality = _ratio(processed - sum(s.scrapped for s in per) - sum(s.reworked for s in per), processed)
        active = [_mean_active(s) for s in per]
        stations.append(StationReport(
            node.id, node.name or node.id, node.servers, frac["working"], frac["setup"], frac["blocked"],
            frac["starved"], frac["down"], frac["off_shift"], availability, performance, quality,
            availability * performance * quality, processed / len(results) / horizon_h,
            sum(s.scrapped for s in per) / len(results) / horizon_h, float(np.mean(active)),
            shares.get(i, 0.0)))
    bottleneck = model.nodes[max(shares, key=shares.__getitem__)].id if shares else None
    ideal = ideal_line_cycle(model)
    for r in results:
        planned_s = r.horizon * r.planned_fraction
        line_oee.append(r.produced * ideal / planned_s if planned_s > 0 else 0.0)
    if any(r.produced == 0 for r in results):
        notes.append("some replications produced nothing: check the flow, the horizon and the warm-up")
    if model.warmup == 0:
        notes.append("no warm-up: the statistics include the empty line filling up (set simulation.warmup)")
    agv_utilisation = None
    if model.agv is not None and results:
        agv_utilisation = float(np.mean([r.agv_busy / (r.agv_fleet * r.horizon) for r in results
                                         if r.agv_fleet and r.horizon > 0]))
        if agv_utilisation > 0.9:
            notes.append(f"the AGV fleet is busy {agv_utilisation:.0%} of the time: transport limits the line")
    return SimReport(hours, model.warmup, len(results), seed, Estimate.of(per_h), Estimate.of(scrap_h),
                     Estimate.of(wip), Estimate.of(lead), percentiles, max(little, default=0.0), buffers, fill,
                     stations, Estimate.of(line_oee), bottleneck, sum(r.events for r in results),
                     sum(r.operations for r in results), agv_utilisation, notes=notes)


def visit_ratios(model: SimModel, source_weights: dict[int, float] | None = None) -> np.ndarray:
    """Expected visits of each node per part that enters the line (traffic equations v = e + P^T v).

    Parts enter evenly over the sources unless ``source_weights`` (node index -> share) says otherwise.
    Routing without shares counts as an even split; scrap removes parts, rework sends them round again.
    """
    n = len(model.nodes)
    transfer = np.zeros((n, n))
    entry = np.zeros(n)
    sources = [i for i, node in enumerate(model.nodes) if node.kind == "source"]
    for i in sources:
        entry[i] = source_weights[i] if source_weights is not None else 1.0 / len(sources)
    for i, node in enumerate(model.nodes):
        targets, probs = model.routing(i)
        if not targets:
            continue
        probs = probs if probs is not None else [1.0 / len(targets)] * len(targets)
        passed = 1.0 - node.scrap - node.rework
        for t, p in zip(targets, probs, strict=True):
            transfer[i, t] += passed * p
        transfer[i, i] += node.rework
    try:
        return np.linalg.solve(np.eye(n) - transfer.T, entry)
    except np.linalg.LinAlgError:
        return np.ones(n)  # a routing loop that never lets parts out: no meaningful ratio


def ideal_line_cycle(model: SimModel) -> float:
    """Seconds per good part at the line's ideal rate: the most loaded station at full speed, no losses."""
    visits = visit_ratios(model)
    good = sum(visits[i] for i, node in enumerate(model.nodes) if node.kind == "sink")
    loads = [visits[i] * node.cycle.expected / node.servers for i, node in enumerate(model.nodes)
             if node.kind == "station" and node.cycle is not None]
    return max(loads, default=0.0) / good if good > 0 else 0.0


def momentary_bottleneck_shares(periods: dict[int, list[tuple[float, float]]], start: float,
                                end: float) -> dict[int, float]:
    """Share of [start, end] during which each station is the momentary bottleneck (Roser, Nakano & Tanaka,
    2002): at each instant, the station whose current active period is the longest (ties: the period that ends
    first, then the lower station). Time-weighted, so short blips of starvation at the true bottleneck do not
    hide it the way they drag down an average period.

    Vectorised per station (a station's periods do not overlap): the time axis is cut at every period's ends,
    and for each piece the longest covering period is kept in numpy arrays, one station at a time.
    """
    import numpy as np

    spans = {}
    for st, sp in periods.items():
        arr = np.asarray(sp, dtype=float).reshape(-1, 2)
        arr = arr[arr[:, 1] > arr[:, 0]]
        if len(arr):
            spans[st] = arr[np.argsort(arr[:, 0], kind="stable")]
    if not spans or end <= start:
        return {}
    cuts = np.unique(np.concatenate([[start, end], *(sp.ravel() for sp in spans.values())]))
    cuts = cuts[(cuts >= start) & (cuts <= end)]
    left, width = cuts[:-1], np.diff(cuts)
    best_len = np.full(len(left), -1.0)
    best_end = np.full(len(left), np.inf)
    best_station = np.full(len(left), -1, dtype=np.int64)
    for station in sorted(spans):
        sp = spans[station]
        i = np.searchsorted(sp[:, 0], left, side="right") - 1
        valid = i >= 0
        j = np.where(valid, i, 0)
        covered = valid & (left < sp[j, 1])
        length = np.where(covered, sp[j, 1] - sp[j, 0], -1.0)
        ends = np.where(covered, sp[j, 1], np.inf)
        better = covered & ((length > best_len) | ((length == best_len) & (ends < best_end)))
        best_len = np.where(better, length, best_len)
        best_end = np.where(better, ends, best_end)
        best_station = np.where(better, station, best_station)
    owned = best_station >= 0
    totals = np.bincount(np.searchsorted(sorted(spans), best_station[owned]), weights=width[owned],
                         minlength=len(spans))
    return {st: float(v) / (end - start) for st, v in zip(sorted(spans), totals, strict=True) if v > 0}


def _mean_active(stats: Any) -> float:
    return stats.active_time / stats.active_periods if stats.active_periods else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0
