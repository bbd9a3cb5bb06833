"""Throughput simulation speed, side by side with SimPy on the same line.

The line: a saturated source, 10 stations in series (lognormal cycle times of 36-45 s, cv 0.25), buffers
of 5 between them, time-based exponential failures (MTBF 2 h, MTTR 5 min) that pause the part in process,
blocking after service, a sink. The SimPy model is written the way the SimPy documentation writes
machine shops (a process per station, ``Store`` buffers, failures as ``Interrupt``), with the same
distributions, horizon, warm-up and replication count. Both report throughput with a 95 % interval (they must
agree) and their speed in station cycles per wall-clock second: ``speedup_vs_simpy`` is the ratio.

``shift_sim_ms``: one 8-hour shift (plus 30 min warm-up) of a 20-station version of the line, one
replication, median wall time.

    python benchmarks/sim_vs_simpy.py [--quick]

SimPy is a benchmark peer only: ``pip install simpy`` (or ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import emit

from viewer.sim.engine import simulate
from viewer.sim.model import Distribution, Node, SimModel
from viewer.sim.runner import Estimate
from viewer.sim.serial import simulate_batch

MTBF, MTTR, BUFFER, CV = 7200.0, 300.0, 5, 0.25
WARMUP = 1800.0


def cycle_means(stations: int) -> list[float]:
    return [36.0 + 9.0 * ((i * 7) % stations) / max(stations - 1, 1) for i in range(stations)]


def our_model(stations: int) -> SimModel:
    nodes = [Node("IN", "source")]
    for i, mean in enumerate(cycle_means(stations)):
        if i:
            nodes.append(Node(f"B{i}", "buffer", capacity=BUFFER))
        nodes.append(Node(f"S{i + 1}", "station", cycle=Distribution("lognormal", mean, CV), mtbf=MTBF, mttr=MTTR))
    nodes.append(Node("OUT", "sink"))
    model = SimModel(nodes, warmup=WARMUP)
    for a, b in itertools.pairwise(nodes):
        model.link(a.id, b.id)
    model.check()
    return model


def simpy_run(stations: int, duration: float, seed: int) -> tuple[int, int]:
    """(parts out after the warm-up, station cycles) of one SimPy replication."""
    import simpy

    rng = np.random.default_rng(seed)
    means = cycle_means(stations)
    s2 = math.log1p(CV * CV)
    env = simpy.Environment()
    buffers = [simpy.Store(env, capacity=BUFFER) for _ in range(stations - 1)]
    counts = {"out": 0, "cycles": 0}

    class Station:
        def __init__(self, i: int) -> None:
            self.i = i
            self.broken = False
            self.working = False
            self.repaired = env.event()
            self.process = env.process(self.run())
            env.process(self.breakdowns())

        def run(self):
            i = self.i
            while True:
                if i > 0:
                    part = yield buffers[i - 1].get()
                else:
                    part = env.now  # raw material is always there
                remaining = rng.lognormal(math.log(means[i]) - s2 / 2, math.sqrt(s2))
                while remaining > 1e-12:
                    if self.broken:
                        yield self.repaired
                    self.working = True
                    start = env.now
                    try:
                        yield env.timeout(remaining)
                        remaining = 0.0
                    except simpy.Interrupt:
                        remaining -= env.now - start
                    self.working = False
                counts["cycles"] += 1
                if i < stations - 1:
                    yield buffers[i].put(part)  # blocks while the buffer is full: blocking after service
                elif env.now >= WARMUP:
                    counts["out"] += 1

        def breakdowns(self):
            while True:
                yield env.timeout(rng.exponential(MTBF))
                self.broken = True
                if self.working:
                    self.process.interrupt()
                yield env.timeout(rng.exponential(MTTR))
                self.broken = False
                self.repaired.succeed()
                self.repaired = env.event()

    for i in range(stations):
        Station(i)
    env.run(until=duration)
    return counts["out"], counts["cycles"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter horizon and fewer replications")
    args = parser.parse_args()
    hours = 24.0 if args.quick else 100.0
    reps = 10 if args.quick else 20
    duration = WARMUP + hours * 3600
    model = our_model(10)
    seeds = np.random.SeedSequence(1).spawn(reps)

    # What `twin-viewer simulate` runs for this line: every replication at once on the serial-line path.
    # Median of three runs (the first also pays for first-touching its arrays: reported beside it).
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        results = simulate_batch(model, duration, seeds)
        walls.append(time.perf_counter() - t0)
    ours_wall = statistics.median(walls)
    ours = Estimate.of([r.produced / hours for r in results])
    ours_ops = sum(r.operations for r in results)
    ours_rate = ours_ops / ours_wall
    print(f"this engine: {ours.mean:.2f} ± {ours.half_width:.2f} parts/h, {ours_ops:,} cycles in {ours_wall:.2f} s "
          f"= {ours_rate:,.0f} cycles/s (serial-line path, {reps} replications together; first run {walls[0]:.2f} s)",
          file=sys.stderr)
    # The general event loop on the same line, for the record (it runs any layout).
    t0 = time.perf_counter()
    event_ops = sum(simulate(model, duration, seq).operations for seq in seeds[:3])
    event_rate = event_ops / (time.perf_counter() - t0)
    print(f"event loop:  {event_rate:,.0f} cycles/s", file=sys.stderr)

    figures = []
    try:
        import simpy  # noqa: F401
    except ImportError:
        print("SimPy is not installed (pip install simpy): no peer, no speed-up figure", file=sys.stderr)
        simpy_rate = None
    else:
        simpy_tp, simpy_ops, simpy_wall = [], 0, 0.0
        for seed in range(reps):
            t0 = time.perf_counter()
            out, ops = simpy_run(10, duration, 1000 + seed)
            simpy_wall += time.perf_counter() - t0
            simpy_tp.append(out / hours)
            simpy_ops += ops
        peer = Estimate.of(simpy_tp)
        simpy_rate = simpy_ops / simpy_wall
        agree = abs(ours.mean - peer.mean) <= math.hypot(ours.half_width, peer.half_width)
        print(f"SimPy:       {peer.mean:.2f} ± {peer.half_width:.2f} parts/h, {simpy_ops:,} cycles in "
              f"{simpy_wall:.2f} s = {simpy_rate:,.0f} cycles/s; throughputs agree within their intervals: {agree}",
              file=sys.stderr)
        figures.append({"figure": "speedup_vs_simpy", "value": round(ours_rate / simpy_rate, 1), "unit": "x",
                        "goal": 10, "higher_is_better": True, "peer": "SimPy 10-station line",
                        "peer_value": round(simpy_rate), "note": (
                            f"station cycles/s, ours {ours_rate:,.0f} (serial-line path, median of 3, first run "
                            f"{ours_ops / walls[0]:,.0f}; general event loop "
                            f"{event_rate:,.0f}, {event_rate / simpy_rate:.1f}x) vs SimPy {simpy_rate:,.0f}; "
                            f"{reps} replications "
                            f"of {hours:g} h; throughput ours {ours.mean:.2f}±{ours.half_width:.2f}/h, SimPy "
                            f"{peer.mean:.2f}±{peer.half_width:.2f}/h, agree: {agree}"
                            + ("; --quick" if args.quick else ""))})

    shift = our_model(20)
    times = []
    for seed in range(5 if args.quick else 15):
        t0 = time.perf_counter()
        result = simulate(shift, WARMUP + 8 * 3600, seed)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"20-station 8 h shift: median {statistics.median(times):.1f} ms ({result.events:,} events)", file=sys.stderr)
    figures.append({"figure": "shift_sim_ms", "value": round(statistics.median(times), 1), "unit": "ms",
                    "goal": 100, "higher_is_better": False,
                    "note": f"one replication, 20 stations, 8 h + 30 min warm-up, {result.events:,} events"})
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
