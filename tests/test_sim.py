"""The throughput simulation against closed-form queueing results and Markov chains solved here with numpy.

Each comparison uses the simulation's own 95 % confidence interval over replications, widened to 99 %
(×1.35) so a fixed seed is not one unlucky draw away from failing; the expected values are derived in the
test (formulas or a generator matrix), never copied from a run.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from viewer.sim.kernel import simulate
from viewer.sim.model import Distribution as D  # noqa: N817 - short in the model tables below
from viewer.sim.model import Node, SimModel, SimModelError
from viewer.sim.runner import Estimate, run
from viewer.telemetry.virtual_plant import default_layout as demo_layout_path

WIDEN_TO_99 = 1.35  # t(0.995)/t(0.975) for 10-20 replications is 1.30-1.35


def within(est: Estimate, exact: float) -> bool:
    return abs(est.mean - exact) <= WIDEN_TO_99 * est.half_width


def line(*nodes: Node) -> SimModel:
    model = SimModel(list(nodes))
    for a, b in itertools.pairwise(nodes):
        model.link(a.id, b.id)
    return model


def test_mm1_utilisation_queue_length_and_time_in_system():
    lam, mu = 1 / 10, 1 / 8
    rho = lam / mu
    model = line(Node("IN", "source", interarrival=D.exponential(1 / lam)),
                 Node("M", "station", cycle=D.exponential(1 / mu)), Node("OUT", "sink"))
    model.warmup = 5_000
    report = run(model, hours=60, replications=12, seed=3, workers=1)
    station = report.stations[0]
    assert abs(station.working - rho) < 0.02
    assert within(report.throughput_per_hour, lam * 3600)
    assert within(report.wip, rho / (1 - rho))  # L: the queue waits at the source, the part in service at M
    assert within(report.lead_time_s, 1 / (mu - lam))  # W
    lq = report.wip.mean - station.working
    assert abs(lq - rho ** 2 / (1 - rho)) < WIDEN_TO_99 * report.wip.half_width + 0.05


def erlang_c(c: int, offered: float) -> float:
    """Probability an arrival waits in M/M/c (offered load a = lambda/mu)."""
    rho = offered / c
    head = sum(offered ** k / math.factorial(k) for k in range(c))
    tail = offered ** c / math.factorial(c) / (1 - rho)
    return tail / (head + tail)


def test_mmc_matches_erlang_c():
    lam, mu, c = 1 / 4, 1 / 10, 3
    a, rho = lam / mu, lam / (c * mu)
    p_wait = erlang_c(c, a)
    lq = p_wait * rho / (1 - rho)
    w = lq / lam + 1 / mu
    model = line(Node("IN", "source", interarrival=D.exponential(1 / lam)),
                 Node("M", "station", servers=c, cycle=D.exponential(1 / mu)), Node("OUT", "sink"))
    model.warmup = 5_000
    report = run(model, hours=40, replications=12, seed=5, workers=1)
    assert abs(report.stations[0].working - rho) < 0.02
    assert within(report.wip, lq + a)
    assert within(report.lead_time_s, w)


def test_jackson_tandem_line_throughput_and_per_station_sojourn():
    lam = 1 / 10
    means = {"A": 6.0, "B": 8.0, "C": 7.0}
    nodes = [Node("IN", "source", interarrival=D.exponential(1 / lam))]
    for name, mean in means.items():
        if name != "A":
            nodes.append(Node(f"Q{name}", "buffer", capacity=None))  # infinite buffers: a Jackson network
        nodes.append(Node(name, "station", cycle=D.exponential(mean)))
    nodes.append(Node("OUT", "sink"))
    model = line(*nodes)
    model.warmup = 5_000
    duration = model.warmup + 40 * 3600
    results = [simulate(model, duration, np.random.SeedSequence(9).spawn(12)[i]) for i in range(12)]
    throughput = Estimate.of([r.produced / r.horizon for r in results])
    assert within(throughput, lam)
    for name, mean in means.items():
        queue = model.index("IN" if name == "A" else f"Q{name}")  # where parts wait for this station
        station = model.index(name)
        sojourn = Estimate.of([(r.occupancy_area[queue] + r.occupancy_area[station]) / r.horizon
                               / (r.produced / r.horizon) for r in results])  # Little: W_i = L_i / lambda
        assert within(sojourn, 1 / (1 / mean - lam)), name
    total = Estimate.of([float(np.mean(r.lead_times)) for r in results])
    assert within(total, sum(1 / (1 / m - lam) for m in means.values()))


def birth_death_two_station_throughput(mu1: float, mu2: float, buffer: int) -> float:
    """Saturated M1 -> buffer of ``buffer`` -> M2, exponential, blocking after service.

    k = parts past M1 (buffer + M2 + the part M1 holds blocked), 0..buffer+2.
    """
    states = buffer + 3
    q = np.zeros((states, states))
    for k in range(states):
        if k <= buffer + 1:
            q[k, k + 1] = mu1
        if k >= 1:
            q[k, k - 1] = mu2
        q[k, k] = -q[k].sum()
    pi = stationary(q)
    return mu2 * (1 - pi[0])


def stationary(q: np.ndarray) -> np.ndarray:
    """pi Q = 0, sum pi = 1."""
    n = len(q)
    a = np.vstack([q.T, np.ones(n)])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


@pytest.mark.parametrize("buffer", [0, 3])
def test_two_station_line_with_a_finite_buffer_matches_the_markov_chain(buffer):
    mu1, mu2 = 1 / 10, 1 / 11
    exact = birth_death_two_station_throughput(mu1, mu2, buffer)
    model = line(Node("IN", "source"), Node("M1", "station", cycle=D.exponential(1 / mu1)),
                 Node("B", "buffer", capacity=buffer), Node("M2", "station", cycle=D.exponential(1 / mu2)),
                 Node("OUT", "sink"))
    model.warmup = 2_000
    report = run(model, hours=40, replications=12, seed=11, workers=1)
    assert within(report.throughput_per_hour, exact * 3600)
    # With no buffer M1 spends a real share of its time blocked; the chain says how much.
    assert report.stations[0].blocked > 0.05


def unreliable_two_machine_throughput(mu: tuple[float, float], fail: tuple[float, float],
                                      repair: tuple[float, float], buffer: int) -> float:
    """Buzacott-style two-machine line, exponential processing, time-based failures, blocking after service.

    State (k, up1, up2): k as in the reliable chain; a machine fails at its rate whatever it is doing and
    resumes an interrupted part where it stopped (memoryless, so the chain needs no remaining work).
    """
    ks = range(buffer + 3)
    index = {s: i for i, s in enumerate(itertools.product(ks, (0, 1), (0, 1)))}
    q = np.zeros((len(index), len(index)))
    for (k, up1, up2), i in index.items():
        def add(target, rate, i=i):
            q[i, index[target]] += rate
        add((k, 1 - up1, up2), fail[0] if up1 else repair[0])
        add((k, up1, 1 - up2), fail[1] if up2 else repair[1])
        if up1 and k <= buffer + 1:
            add((k + 1, up1, up2), mu[0])
        if up2 and k >= 1:
            add((k - 1, up1, up2), mu[1])
    np.fill_diagonal(q, -q.sum(axis=1))
    pi = stationary(q)
    busy2 = sum(pi[i] for (k, _u1, up2), i in index.items() if up2 and k >= 1)
    return mu[1] * busy2


def test_two_unreliable_machines_with_a_buffer_match_the_markov_chain():
    mu, mtbf, mttr, buffer = (1 / 10, 1 / 10), (600.0, 900.0), (60.0, 120.0), 4
    exact = unreliable_two_machine_throughput(mu, (1 / mtbf[0], 1 / mtbf[1]), (1 / mttr[0], 1 / mttr[1]), buffer)
    machines = [Node(f"M{i + 1}", "station", cycle=D.exponential(1 / mu[i]), mtbf=mtbf[i], mttr=mttr[i])
                for i in range(2)]
    model = line(Node("IN", "source"), machines[0], Node("B", "buffer", capacity=buffer), machines[1],
                 Node("OUT", "sink"))
    model.warmup = 5_000
    report = run(model, hours=60, replications=16, seed=13, workers=1)
    assert within(report.throughput_per_hour, exact * 3600)
    # Time-based failures: the down share is MTTR / (MTBF + MTTR) whatever the machine was doing.
    for station, f, r in zip(report.stations, mtbf, mttr, strict=True):
        assert abs(station.down - r / (f + r)) < 0.02
        assert abs(station.availability - f / (f + r)) < 0.02


def test_a_failure_pauses_the_part_in_process_and_it_resumes_after_the_repair():
    # Worked by hand: cycle 10 s; failure 27 s after start or repair, repairs of 5 s. Parts finish at
    # 10, 20, 35 (3 s left at the failure at 27, resumed at 32), 45, 55, 70 (failure at 59 with 6 s left,
    # resumed at 64), 80, 90; the failure at 91 leaves the ninth part unfinished at 100.
    station = Node("M", "station", cycle=D.fixed(10), mtbf=27, mttr=5, failure_dist="deterministic",
                   repair_dist="deterministic")
    model = line(Node("IN", "source"), station, Node("OUT", "sink"))
    result = simulate(model, 100.0, 0)
    assert result.produced == 8
    assert sorted(round(t) for t in result.lead_times) == [10, 10, 10, 10, 10, 10, 15, 15]
    stats = result.stations[1]
    assert stats.failures == 3  # at 27, 59 and 91
    assert stats.down == pytest.approx(15.0)
    assert stats.working == pytest.approx(85.0)


def test_lead_time_through_a_conveyor_and_a_station_is_transit_plus_cycle():
    model = line(Node("IN", "source", interarrival=D.fixed(100)), Node("CV", "conveyor", capacity=4, transit=10.0),
                 Node("M", "station", cycle=D.fixed(20)), Node("OUT", "sink"))
    result = simulate(model, 1_000.0, 0)
    assert result.produced == 9  # parts arrive at 100, 200, ... 900 and leave 30 s later
    assert result.lead_times == pytest.approx([30.0] * 9)


def test_blocking_after_service_holds_the_finished_part_at_the_upstream_station():
    # M1 (5 s) feeds M2 (20 s) with no buffer: M1 works 5 s of every 20 and holds its finished part for 15.
    model = line(Node("IN", "source"), Node("M1", "station", cycle=D.fixed(5)), Node("B", "buffer", capacity=0),
                 Node("M2", "station", cycle=D.fixed(20)), Node("OUT", "sink"))
    result = simulate(model, 20_000.0, 0)
    m1 = result.stations[1]
    assert m1.working / result.horizon == pytest.approx(0.25, abs=0.01)
    assert m1.blocked / result.horizon == pytest.approx(0.75, abs=0.01)
    assert result.produced == pytest.approx(20_000 / 20, abs=2)


def test_scrap_and_routing_shares_split_the_flow():
    model = SimModel([Node("IN", "source", interarrival=D.exponential(10)),
                      Node("A", "station", cycle=D.exponential(4), scrap=0.1), Node("X", "sink"),
                      Node("Y", "sink")])
    model.link("IN", "A").link("A", "X", 0.25).link("A", "Y", 0.75)
    results = [simulate(model, 200_000.0, s) for s in range(4)]
    arrivals = 200_000 / 10
    scrapped = sum(r.stations[1].scrapped for r in results) / 4
    assert scrapped == pytest.approx(0.1 * arrivals, rel=0.08)
    produced = sum(r.produced for r in results) / 4
    assert produced == pytest.approx(0.9 * arrivals, rel=0.03)


def test_littles_law_holds_on_every_run_of_the_demo_plant():
    from viewer.model.layout_io import load_layout
    from viewer.sim.model import model_from_layout

    model = model_from_layout(load_layout(demo_layout_path()))
    report = run(model, hours=40, replications=4, seed=2, workers=1)
    assert report.little_gap < 0.03  # WIP vs throughput x time in system, worst replication
    assert report.bottleneck is not None
    assert report.throughput_per_hour.mean > 0


def test_the_same_seed_gives_the_same_report_in_one_process_or_many():
    model = line(Node("IN", "source"), Node("M1", "station", cycle=D("lognormal", 30, 0.3), mtbf=3600, mttr=300),
                 Node("B", "buffer", capacity=3), Node("M2", "station", cycle=D.exponential(28)), Node("OUT", "sink"))
    one = run(model, hours=4, replications=4, seed=7, workers=1)
    again = run(model, hours=4, replications=4, seed=7, workers=1)

    with ProcessPoolExecutor(2) as pool:
        pooled = run(model, hours=4, replications=4, seed=7, executor=pool)
    other = run(model, hours=4, replications=4, seed=8, workers=1)
    assert one.throughput_per_hour == again.throughput_per_hour == pooled.throughput_per_hour
    assert one.throughput_per_hour != other.throughput_per_hour


def test_bottleneck_is_the_station_whose_improvement_raises_output_not_the_busiest():
    # M1 works 30 s a part and is the busiest. M2 needs only 20 s but is down half the time (MTBF = MTTR =
    # 10 min), so it manages 40 s a part on average: it limits the line, though its working share is lower.
    def build(m1_cycle: float, m2_mttr: float) -> SimModel:
        return line(Node("IN", "source"), Node("M1", "station", cycle=D("lognormal", m1_cycle, 0.2)),
                    Node("B", "buffer", capacity=30),
                    Node("M2", "station", cycle=D("lognormal", 20, 0.2), mtbf=600, mttr=m2_mttr),
                    Node("OUT", "sink"))

    report = run(build(30, 600), hours=24, replications=6, seed=1, workers=1)
    working = {s.id: s.working for s in report.stations}
    assert working["M1"] > working["M2"]  # "highest utilisation" would blame M1
    assert report.bottleneck == "M2"
    # What the method stands for: a 10 % better M2 raises output more than a 10 % faster M1 (same seeds).
    base = report.throughput_per_hour.mean
    faster_m1 = run(build(27, 600), hours=24, replications=6, seed=1, workers=1).throughput_per_hour.mean
    better_m2 = run(build(30, 540), hours=24, replications=6, seed=1, workers=1).throughput_per_hour.mean
    assert better_m2 - base > 2 * (faster_m1 - base) > 0


def test_a_layout_that_cannot_be_simulated_names_each_component_and_why(tmp_path):
    from viewer.model.layout import Layout
    from viewer.sim.model import model_from_layout

    layout = Layout.from_dict({"name": "bad", "components": [
        {"id": "IN", "kind": "source", "position": [0, 0, 0]},
        {"id": "M", "kind": "station", "position": [1, 0, 0]},
        {"id": "P", "kind": "prop", "position": [2, 0, 0]},
    ], "flow": [{"from": "IN", "to": "M"}, {"from": "M", "to": "P"}]})
    with pytest.raises(SimModelError) as err:
        model_from_layout(layout)
    problems = dict(err.value.problems)
    assert "cycle_time" in problems["M"]
    assert "cannot carry material" in problems["P"]
    with pytest.raises(SimModelError) as err:
        model_from_layout(Layout.from_dict({"name": "empty", "components": []}))
    assert "no material flow" in str(err.value)


def test_simulate_command_prints_json_and_a_table(tmp_path, capsys):
    from viewer.cli import main

    assert main(["simulate", str(demo_layout_path()), "--hours", "2", "--replications", "3", "--json",
                 "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replications"] == 3 and report["throughput_per_hour"]["mean"] > 0
    assert {s["id"] for s in report["stations"]} >= {"ST10", "ST60", "R1"}
    assert main(["simulate", str(demo_layout_path()), "--hours", "1", "--replications", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "Throughput" in out and "Bottleneck" in out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "twin-viewer-layout", "version": 1, "name": "x", "components": [
        {"id": "IN", "kind": "source", "position": [0, 0, 0]}, {"id": "M", "kind": "station", "position": [1, 0, 0]},
    ], "flow": [{"from": "IN", "to": "M"}]}))
    assert main(["simulate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "M: a station in the flow needs sim.cycle_time" in err


@pytest.mark.parametrize("arrivals", [False, True], ids=["saturated", "poisson-arrivals"])
def test_the_vectorised_serial_line_path_gives_the_event_loops_figures(arrivals):
    """Same seeds, same draws: the max-plus recursion must reproduce the event loop part for part."""
    from viewer.sim.serial import eligible, simulate_batch

    source = Node("IN", "source", interarrival=D.exponential(50) if arrivals else None)
    model = line(source, Node("M1", "station", cycle=D("lognormal", 40, 0.3), mtbf=1800, mttr=300),
                 Node("B1", "buffer", capacity=2), Node("M2", "station", cycle=D.exponential(42)),
                 Node("M3", "station", cycle=D("gamma", 38, 0.5), mtbf=3600, mttr=600),  # no buffer before M3
                 Node("B3", "buffer", capacity=4), Node("M4", "station", cycle=D.fixed(30), mtbf=900, mttr=60,
                                                        failure_dist="deterministic"),
                 Node("OUT", "sink"))
    model.warmup = 1_800
    assert eligible(model)
    seeds = np.random.SeedSequence(21).spawn(4)
    duration = model.warmup + 12 * 3600
    batch = simulate_batch(model, duration, seeds)
    for seq, fast in zip(seeds, batch, strict=True):
        slow = simulate(model, duration, seq)
        assert fast.produced == slow.produced > 0
        np.testing.assert_allclose(fast.lead_times, slow.lead_times, rtol=1e-9)
        assert fast.wip_area == pytest.approx(slow.wip_area, rel=1e-9)
        np.testing.assert_allclose(fast.occupancy_area, slow.occupancy_area, rtol=1e-9, atol=1e-6)
        assert fast.operations == slow.operations
        for i, expected in slow.stations.items():
            got = fast.stations[i]
            for key in ("working", "blocked", "starved", "down", "active_time"):
                assert getattr(got, key) == pytest.approx(getattr(expected, key), rel=1e-9, abs=1e-6), key
            assert (got.processed, got.failures, got.active_periods) == (
                expected.processed, expected.failures, expected.active_periods)


def test_models_the_serial_path_cannot_take_go_to_the_event_loop():
    from viewer.sim.serial import eligible

    base = [Node("IN", "source"), Node("M1", "station", cycle=D.fixed(10)), Node("OUT", "sink")]
    assert eligible(line(*base))
    assert not eligible(line(base[0], Node("M1", "station", servers=2, cycle=D.fixed(10)), base[2]))
    assert not eligible(line(base[0], Node("M1", "station", cycle=D.fixed(10), scrap=0.1), base[2]))
    assert not eligible(line(base[0], Node("CV", "conveyor", capacity=3, transit=5), base[1], base[2]))
    split = SimModel([Node("IN", "source"), Node("A", "station", cycle=D.fixed(5)), Node("X", "sink"),
                      Node("Y", "sink")])
    split.link("IN", "A").link("A", "X").link("A", "Y")
    assert not eligible(split)


def test_stations_pause_outside_the_shift_calendar():
    from viewer.sim.model import Calendar

    # Working 500 s of every 1000 s; a 60 s cycle interrupted at a shift's end resumes at the next start.
    model = line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(60)), Node("OUT", "sink"))
    model.calendar = Calendar(period=1000, working=[(0, 500)])
    result = simulate(model, 10_000.0, 0)
    assert result.produced == 5_000 // 60  # 5,000 s of work time in 10 shifts
    stats = result.stations[1]
    assert stats.off_shift == pytest.approx(5_000)
    assert stats.working == pytest.approx(5_000)


def test_setup_before_each_batch_and_rework_cost_capacity():
    # 10 s cycles, a 50 s setup before every batch of 10: 150 s per 10 parts, a third of the time in setup.
    setup_line = line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(10), setup=D.fixed(50), batch_size=10),
                      Node("OUT", "sink"))
    report = run(setup_line, hours=15_000 / 3600, replications=2, seed=1, workers=1)
    assert report.throughput_per_hour.mean == pytest.approx(3600 * 10 / 150, rel=0.01)
    assert report.stations[0].setup == pytest.approx(1 / 3, abs=0.01)
    # Rework: a part goes round again with probability 0.2, so a good part takes 10 / 0.8 = 12.5 s on average.
    rework_line = line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(10), rework=0.2),
                       Node("OUT", "sink"))
    produced = np.mean([simulate(rework_line, 200_000.0, s).produced for s in range(3)])
    assert produced == pytest.approx(200_000 / 12.5, rel=0.02)


def test_a_layout_carries_its_warm_up_and_calendar_into_the_model():
    from viewer.model.layout import Layout
    from viewer.sim.model import model_from_layout

    layout = Layout.from_dict({"name": "two shifts", "components": [
        {"id": "IN", "kind": "source", "position": [0, 0, 0]},
        {"id": "M", "kind": "robot", "position": [1, 0, 0],
         "sim": {"cycle_time": {"dist": "deterministic", "mean": 30}}},
        {"id": "OUT", "kind": "sink", "position": [2, 0, 0]},
    ], "flow": [{"from": "IN", "to": "M"}, {"from": "M", "to": "OUT"}],
        "simulation": {"warmup": 600, "calendar": {"period": 86400, "working": [[21600, 50400], [50400, 79200]]}}})
    model = model_from_layout(layout)
    assert model.warmup == 600
    assert model.calendar is not None and model.calendar.working_fraction() == pytest.approx(2 / 3)
    assert model.nodes[1].kind == "station"  # robots are stations


def test_optimise_spends_the_budget_on_the_constraint_and_any_executor_gives_the_same_answer():
    from viewer.sim.optimise import optimise

    # M2 (30 s) limits the line to 120 parts/h; a second M2 server (cost 10) lifts it to 240/h, where M1
    # (10 s, 360/h) is still faster; buffer places cannot raise output past M2's rate.
    model = line(Node("IN", "source"), Node("M1", "station", cycle=D("lognormal", 10, 0.1)),
                 Node("B", "buffer", capacity=1), Node("M2", "station", cycle=D("lognormal", 30, 0.1)),
                 Node("OUT", "sink"))
    result = optimise(model, budget=12, hours=2, replications=3, seed=4, server_cost=10)
    best = result.best[0]
    assert dict(best.design.servers) == {"M2": 2}
    assert result.base.throughput.mean == pytest.approx(120, rel=0.03)
    assert best.throughput.mean == pytest.approx(240, rel=0.03)
    assert best.cost <= 12
    with ProcessPoolExecutor(2) as pool:
        pooled = optimise(model, budget=12, hours=2, replications=3, seed=4, server_cost=10, executor=pool)
    assert [(c.design, c.throughput) for c in pooled.best] == [(c.design, c.throughput) for c in result.best]


def test_optimise_command_reports_and_saves_the_best_layout(tmp_path, capsys):
    import shutil

    from viewer.cli import main
    from viewer.model.layout_io import load_layout

    folder = tmp_path / "plant"
    shutil.copytree(demo_layout_path().parent, folder)
    layout = folder / "demo_plant.json"
    assert main(["optimise", str(layout), "--budget", "10", "--hours", "2", "--replications", "2",
                 "--workers", "1", "--save", str(folder / "best.json")]) == 0
    out = capsys.readouterr().out
    assert "parts/h as laid out" in out and "1. " in out
    best = load_layout(folder / "best.json")
    original = load_layout(layout)
    changed = [c.id for c in best.components if c.sections != original.component(c.id).sections]
    assert len(changed) == 1  # one extra server bought with the whole budget
    assert main(["optimise", str(layout), "--budget", "5", "--save", str(tmp_path / "elsewhere.json")]) == 2


def test_the_job_runner_delivers_only_the_newest_request_and_cancels_in_flight():
    import threading as th

    from viewer.sim.jobs import SimRequest, SimulationJobRunner

    got: list = []
    arrived = th.Event()

    def on_result(generation, result, superseded):
        got.append((generation, result, superseded))
        arrived.set()

    def line_of(cycle: float) -> SimModel:
        return line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(cycle)), Node("OUT", "sink"))

    runner = SimulationJobRunner(on_result)
    try:
        slow = SimRequest(line_of(0.05), hours=200, replications=2)  # minutes of work
        runner.submit(slow)
        runner.submit(SimRequest(line_of(30), hours=1, replications=2))  # waits, then is replaced
        time.sleep(3)  # the slow run is now stale and long: the next request stops it
        newest = runner.submit(SimRequest(line_of(60), hours=1, replications=2))
        assert arrived.wait(60)
        assert len(got) == 1 and got[0][0] == newest and not got[0][2]
        assert got[0][1].throughput_per_hour.mean == pytest.approx(60, abs=1)  # one part a minute
        arrived.clear()
        runner.submit(slow)
        runner.cancel()  # the long run is stopped, nothing is delivered
        assert not arrived.wait(1.0) and not runner.busy
        bad = runner.submit(SimRequest(SimModel([Node("IN", "source")]), hours=1, replications=2))
        assert arrived.wait(60)
        assert got[-1][0] == bad and "SimModelError" in got[-1][1]  # errors come back as text
    finally:
        runner.close()


def test_compare_command_shows_both_layouts_and_the_direction_of_the_change(tmp_path, capsys):
    from viewer.cli import main

    doc = json.loads(demo_layout_path().read_text())
    for comp in doc["components"]:
        if comp["id"] == "ST60":
            comp["sim"]["servers"] = 2  # the bottleneck doubled
    second = tmp_path / "doubled.json"  # the demo's meshes are built-in assets: it opens from anywhere
    second.write_text(json.dumps(doc))
    assert main(["compare", str(demo_layout_path()), str(second), "--hours", "4", "--replications", "4",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["throughput"][1] > result["throughput"][0]
    assert {s["id"] for s in result["stations"]} >= {"ST60", "ST10"}


def test_a_nodes_random_streams_are_its_seed_childs_built_directly():
    """The streams of node n are those of SeedSequence(entropy, spawn_key=(..., n, k)): built directly, so a
    replication's set-up is linear in the node count (it built n + 1 seeds to keep the last one)."""
    import numpy as np

    from viewer.sim.engine import node_generators

    seq = np.random.SeedSequence(2024, spawn_key=(3,))
    for node in (0, 5, 681):
        ours = node_generators(seq, node, 5)
        for k, generator in enumerate(ours):
            expected = np.random.default_rng(np.random.SeedSequence(2024, spawn_key=(3, node, k)))
            assert (generator.random(8) == expected.random(8)).all(), (node, k)


def _shares_by_sweep(periods, start, end):
    """The momentary-bottleneck shares by an event sweep with a heap (the original implementation), as the
    oracle for the vectorised one."""
    import heapq
    import itertools

    items = sorted((a, b, s) for s, spans in periods.items() for a, b in spans if b > a)
    if not items or end <= start:
        return {}
    shares, covering, k = {}, [], 0
    bounds = sorted({start, end, *(a for a, _, _ in items), *(b for _, b, _ in items)})
    for left, right in itertools.pairwise(bounds):
        if right <= start or left >= end:
            continue
        while k < len(items) and items[k][0] <= left:
            a, b, s = items[k]
            heapq.heappush(covering, (a - b, b, s))
            k += 1
        while covering and covering[0][1] <= left:
            heapq.heappop(covering)
        if covering:
            s = covering[0][2]
            shares[s] = shares.get(s, 0.0) + (right - left)
    return {s: v / (end - start) for s, v in shares.items()}


@pytest.mark.parametrize("implementation", ["numpy", "compiled"])
def test_momentary_bottleneck_shares_match_the_event_sweep(implementation):
    import random

    from viewer.sim import kernel
    from viewer.sim.runner import momentary_bottleneck_shares

    if implementation == "compiled":
        if kernel._compiled is None:
            pytest.skip("the compiled kernel is not built here")
        momentary_bottleneck_shares = kernel._compiled.bottleneck_shares

    rng = random.Random(4)
    for _ in range(200):
        periods = {}
        for station in range(rng.randint(1, 6)):
            t, spans = rng.uniform(-5, 5), []
            for _ in range(rng.randint(0, 30)):
                a = t + rng.choice([0.0, rng.uniform(0, 3)])
                b = a + rng.choice([rng.uniform(0, 5), float(rng.randint(0, 3))])  # equal lengths happen
                spans.append((round(a, 1), round(b, 1)))
                t = b
            periods[station] = spans
        start, end = rng.uniform(-5, 10), rng.uniform(0, 80)
        ours, oracle = momentary_bottleneck_shares(periods, start, end), _shares_by_sweep(periods, start, end)
        assert ours.keys() == oracle.keys() and all(abs(ours[k] - oracle[k]) < 1e-9 for k in ours), (ours, oracle)


def test_a_planner_editing_without_pause_still_gets_kpis_marked_as_an_earlier_edits():
    """An edit every 0.15 s outpaces a run of about 0.5 s: instead of stopping every stale run (no result ever),
    the runner lets one of the usual length finish once nothing was delivered for STARVATION_S, and delivers
    it marked superseded; the newest edit's result follows when the editing stops."""
    import threading as th

    from viewer.sim.jobs import SimRequest, SimulationJobRunner

    got: list = []
    lock = th.Lock()

    def on_result(generation, result, superseded):
        with lock:
            got.append((generation, superseded))

    def model(cycle: float) -> SimModel:
        return line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(cycle)), Node("OUT", "sink"))

    # Runs of about 0.5 s whichever kernel is built: the horizon is scaled from a timed run.
    t0 = time.perf_counter()
    run(model(0.5), hours=2, replications=2, workers=1)
    hours = min(2 * 0.5 / max(time.perf_counter() - t0, 1e-3), 500.0)

    def request(cycle: float) -> SimRequest:
        return SimRequest(model(cycle), hours=hours, replications=2)

    runner = SimulationJobRunner(on_result)
    try:
        runner.submit(request(0.5))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for _g, old in got if old) < 2:
            runner.submit(request(0.5))  # the planner keeps dragging
            time.sleep(0.15)
        assert sum(1 for _g, old in got if old) >= 2  # KPIs kept arriving, marked as an earlier edit's
        last = runner.submit(request(1.0))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(g == last for g, _old in got):
            time.sleep(0.05)
        assert (last, False) in got  # then the newest, not marked
    finally:
        runner.close()


def test_a_first_estimate_arrives_before_the_full_result():
    """run() hands the summary of its first two replications to first_estimate; the job runner delivers it for
    the newest request before the result of all ten."""
    import threading as th

    from viewer.sim.jobs import SimRequest, SimulationJobRunner
    from viewer.sim.runner import run

    model = line(Node("IN", "source"), Node("M", "station", cycle=D.exponential(30.0), servers=2),
                 Node("OUT", "sink"))
    early: list = []
    full = run(model, hours=2, replications=6, seed=3, workers=1, first_estimate=early.append)
    assert len(early) == 1 and early[0].replications == 2 and early[0].first_estimate
    assert full.replications == 6 and not full.first_estimate
    by_hand = run(model, hours=2, replications=2, seed=3, workers=1)  # the same first two replications
    assert early[0].throughput_per_hour.mean == pytest.approx(by_hand.throughput_per_hour.mean)

    got: list = []
    done = th.Event()

    def on_result(generation, result, superseded):
        got.append((result.replications, result.first_estimate))
        if not result.first_estimate:
            done.set()

    runner = SimulationJobRunner(on_result)
    try:
        runner.submit(SimRequest(model, hours=4, replications=10, tight=None))
        assert done.wait(120)
        assert got == [(2, True), (10, False)]
    finally:
        runner.close()


def test_replications_stop_early_once_the_throughput_interval_is_tight():
    from viewer.sim.runner import run

    # two servers: the general event loop, one replication after another (a plain line is batched at once)
    model = line(Node("IN", "source"), Node("M", "station", cycle=D.fixed(30.0), servers=2), Node("OUT", "sink"))
    # fixed times: every replication makes the same count, the interval is zero after the minimum of four
    report = run(model, hours=2, replications=10, seed=3, workers=1, tight=0.02)
    assert report.replications == 4 and report.stopped_early
    noisy = line(Node("IN", "source"), Node("M", "station", cycle=D.exponential(30.0), servers=2),
                 Node("OUT", "sink"))
    loose = run(noisy, hours=0.5, replications=6, seed=3, workers=1, tight=0.0001)  # never that tight
    assert loose.replications == 6 and not loose.stopped_early


def test_explain_change_names_links_that_moved_to_agv_and_a_fleet_at_its_limit(demo_layout_path):
    import copy
    import dataclasses

    from viewer.model.layout_io import load_layout
    from viewer.sim.compare import explain_change

    saved = load_layout(demo_layout_path)
    edited = copy.deepcopy(saved)
    i = next(k for k, f in enumerate(edited.flow) if (f.source, f.target) == ("ST20", "ST30"))
    edited.flow[i] = dataclasses.replace(edited.flow[i], transport="agv")
    del edited.flow[next(k for k, f in enumerate(edited.flow) if (f.source, f.target) == ("R3", "SHIP"))]
    names = {c.id: c.display_name for c in saved.components}

    class Report:  # only the fields explain_change reads
        def __init__(self, bottleneck, agv):
            self.bottleneck, self.agv_utilisation = bottleneck, agv

    lines = explain_change(saved, edited, Report("ST30", None), Report("ST20", 0.97))
    assert lines == [f"{names['ST20']} → {names['ST30']} now goes by AGV (its ends are far apart or it says so)",
                     f"link {names['R3']} → {names['SHIP']} removed",
                     "the bottleneck moved from ST30 to ST20",
                     "the AGV fleet is now the limit: busy 97% of the time"]
    assert explain_change(saved, copy.deepcopy(saved), Report("ST30", None), Report("ST30", None)) == []
