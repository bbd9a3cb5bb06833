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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_common import emit
from sim_models import GENERAL_BUFFER, GENERAL_CV, GENERAL_STATIONS, general_network

from viewer.sim.kernel import kernel_name, simulate
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


class SimpyMachine:
    """A SimPy station that fails, written as the SimPy documentation writes machine shops: its servers work
    through :meth:`work`; a breakdown interrupts every working server, which resumes the part where it stopped
    after the repair (time-based failures: the clock runs whatever the station does)."""

    def __init__(self, env, rng) -> None:
        self.env, self.rng = env, rng
        self.broken = False
        self.repaired = env.event()
        self.working: set = set()

    def start_breakdowns(self, mtbf: float, mttr: float) -> None:
        self.env.process(self.breakdowns(mtbf, mttr))

    def work(self, remaining: float):
        import simpy

        env, me = self.env, self.env.active_process
        while remaining > 1e-12:
            if self.broken:
                yield self.repaired
            self.working.add(me)
            start = env.now
            try:
                yield env.timeout(remaining)
                remaining = 0.0
            except simpy.Interrupt:
                remaining -= env.now - start
            self.working.discard(me)

    def breakdowns(self, mtbf: float, mttr: float):
        while True:
            yield self.env.timeout(self.rng.exponential(mtbf))
            self.broken = True
            for process in list(self.working):
                process.interrupt()
            yield self.env.timeout(self.rng.exponential(mttr))
            self.broken = False
            self.repaired.succeed()
            self.repaired = self.env.event()


def simpy_run(stations: int, duration: float, seed: int) -> tuple[int, int]:
    """(parts out after the warm-up, station cycles) of one SimPy replication."""
    import simpy

    rng = np.random.default_rng(seed)
    means = cycle_means(stations)
    s2 = math.log1p(CV * CV)
    env = simpy.Environment()
    buffers = [simpy.Store(env, capacity=BUFFER) for _ in range(stations - 1)]
    counts = {"out": 0, "cycles": 0}

    class Station(SimpyMachine):
        def __init__(self, i: int) -> None:
            super().__init__(env, rng)
            self.i = i
            env.process(self.run())
            self.start_breakdowns(MTBF, MTTR)

        def run(self):
            i = self.i
            while True:
                if i > 0:
                    part = yield buffers[i - 1].get()
                else:
                    part = env.now  # raw material is always there
                yield from self.work(rng.lognormal(math.log(means[i]) - s2 / 2, math.sqrt(s2)))
                counts["cycles"] += 1
                if i < stations - 1:
                    yield buffers[i].put(part)  # blocks while the buffer is full: blocking after service
                elif env.now >= WARMUP:
                    counts["out"] += 1

    for i in range(stations):
        Station(i)
    env.run(until=duration)
    return counts["out"], counts["cycles"]


def simpy_general_run(duration: float, warmup: float, seed: int) -> tuple[int, int]:
    """(parts out after the warm-up, station cycles) of one SimPy replication of the general network.

    Same semantics as the engine: a ``Store`` of GENERAL_BUFFER parts per buffer, a process per server that
    takes a part, works it (a failure of its station pauses the work; the failure clock is time-based), draws
    its output by share and waits to put it there (blocking after service holds the server); the merge is two
    stations putting into one ``Store`` (longest-waiting first, as the engine wakes them)."""
    import simpy

    rng = np.random.default_rng(seed)
    s2 = math.log1p(GENERAL_CV * GENERAL_CV)
    env = simpy.Environment()
    stores = {}
    for _sid, _mean, _servers, _mtbf, _mttr, _inp, outs in GENERAL_STATIONS:
        for target, _share in outs:
            if target != "OUT" and target not in stores:
                stores[target] = simpy.Store(env, capacity=GENERAL_BUFFER)
    counts = {"out": 0, "cycles": 0}

    class Station(SimpyMachine):
        def __init__(self, mean, servers, mtbf, mttr, inp, outs) -> None:
            super().__init__(env, rng)
            self.mu = math.log(mean) - s2 / 2
            self.inp = stores[inp] if inp else None
            self.outs = [(stores.get(t), t == "OUT") for t, _ in outs]
            shares = [sh for _, sh in outs]
            self.cum = list(np.cumsum(shares)) if len(outs) > 1 else None
            for _ in range(servers):
                env.process(self.serve())
            if mtbf is not None:
                self.start_breakdowns(mtbf, mttr)

        def serve(self):
            while True:
                part = (yield self.inp.get()) if self.inp is not None else env.now
                yield from self.work(rng.lognormal(self.mu, math.sqrt(s2)))
                counts["cycles"] += 1
                j = 0
                if self.cum is not None:
                    u = rng.random()
                    j = next((k for k, c in enumerate(self.cum) if u < c), len(self.cum) - 1)
                store, to_sink = self.outs[j]
                if to_sink:
                    if env.now >= warmup:
                        counts["out"] += 1
                else:
                    yield store.put(part)

    for _sid, mean, servers, mtbf, mttr, inp, outs in GENERAL_STATIONS:
        Station(mean, servers, mtbf, mttr, inp, outs)
    env.run(until=duration)
    return counts["out"], counts["cycles"]


def general_figure(quick: bool) -> dict | None:
    """``speedup_vs_simpy_general``: station cycles per CPU-second, this engine's event kernel against SimPy on
    the 12-station network (tests/sim_models.py), alternating runs in one process, medians of the rates."""
    try:
        import simpy  # noqa: F401
    except ImportError:
        print("SimPy is not installed: no speedup_vs_simpy_general", file=sys.stderr)
        return None
    model = general_network()
    hours = 24.0 if quick else 100.0
    reps = 6 if quick else 12
    duration = model.warmup + hours * 3600
    seeds = np.random.SeedSequence(7).spawn(reps)
    ours_tp, peer_tp, ours_rates, peer_rates = [], [], [], []
    for r in range(reps):  # alternate, so both see the same machine load
        t0 = time.process_time()
        result = simulate(model, duration, seeds[r])
        ours_rates.append(result.operations / (time.process_time() - t0))
        ours_tp.append(result.produced / hours)
        t0 = time.process_time()
        out, ops = simpy_general_run(duration, model.warmup, 5000 + r)
        peer_rates.append(ops / (time.process_time() - t0))
        peer_tp.append(out / hours)
    ours, peer = Estimate.of(ours_tp), Estimate.of(peer_tp)
    agree = abs(ours.mean - peer.mean) <= math.hypot(ours.half_width, peer.half_width)
    ours_rate, peer_rate = statistics.median(ours_rates), statistics.median(peer_rates)
    print(f"general network, {kernel_name()} kernel: {ours.mean:.2f} ± {ours.half_width:.2f} parts/h, "
          f"{ours_rate:,.0f} cycles/CPU-s; SimPy {peer.mean:.2f} ± {peer.half_width:.2f} parts/h, "
          f"{peer_rate:,.0f} cycles/CPU-s; throughputs agree within their intervals: {agree}", file=sys.stderr)
    return {"figure": "speedup_vs_simpy_general", "value": round(ours_rate / peer_rate, 1), "unit": "x", "goal": 10,
            "higher_is_better": True, "peer": "SimPy 12-station split/merge network", "peer_value": round(peer_rate),
            "note": (f"station cycles per CPU-second, {kernel_name()} kernel {ours_rate:,.0f} vs SimPy "
                     f"{peer_rate:,.0f} (medians of {reps} alternating replications of {hours:g} h); throughput "
                     f"ours {ours.mean:.2f}±{ours.half_width:.2f}/h, SimPy {peer.mean:.2f}±{peer.half_width:.2f}/h, "
                     f"agree: {agree}" + ("; --quick" if quick else ""))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter horizon and fewer replications")
    args = parser.parse_args()
    hours = 24.0 if args.quick else 100.0
    reps = 10 if args.quick else 20
    duration = WARMUP + hours * 3600
    model = our_model(10)
    seeds = np.random.SeedSequence(1).spawn(reps)

    # What `twin-viewer simulate` runs for this line: the compiled kernel where it is built (one replication
    # after another), else every replication at once on the vectorised serial-line path. Median of three runs.
    compiled = kernel_name() == "compiled"
    path = "compiled kernel" if compiled else "vectorised serial-line path"
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        results = [simulate(model, duration, s) for s in seeds] if compiled else simulate_batch(model, duration, seeds)
        walls.append(time.perf_counter() - t0)
    ours_wall = statistics.median(walls)
    ours = Estimate.of([r.produced / hours for r in results])
    ours_ops = sum(r.operations for r in results)
    ours_rate = ours_ops / ours_wall
    print(f"this engine: {ours.mean:.2f} ± {ours.half_width:.2f} parts/h, {ours_ops:,} cycles in {ours_wall:.2f} s "
          f"= {ours_rate:,.0f} cycles/s ({path}, {reps} replications; first run {walls[0]:.2f} s)", file=sys.stderr)
    # The other path on the same line, for the record.
    t0 = time.perf_counter()
    other = simulate_batch(model, duration, seeds) if compiled else [simulate(model, duration, s) for s in seeds[:3]]
    other_rate = sum(r.operations for r in other) / (time.perf_counter() - t0)
    other_path = "vectorised serial-line path" if compiled else "python kernel"
    print(f"{other_path}: {other_rate:,.0f} cycles/s", file=sys.stderr)

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
                            f"station cycles/s, ours {ours_rate:,.0f} ({path}, median of 3, first run "
                            f"{ours_ops / walls[0]:,.0f}; {other_path} "
                            f"{other_rate:,.0f}, {other_rate / simpy_rate:.1f}x) vs SimPy {simpy_rate:,.0f}; "
                            f"{reps} replications "
                            f"of {hours:g} h; throughput ours {ours.mean:.2f}±{ours.half_width:.2f}/h, SimPy "
                            f"{peer.mean:.2f}±{peer.half_width:.2f}/h, agree: {agree}"
                            + ("; --quick" if args.quick else ""))})

    general = general_figure(args.quick)
    if general is not None:
        figures.append(general)

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
