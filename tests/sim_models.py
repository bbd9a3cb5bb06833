"""Simulation models that between them use every feature of the kernels (tests and benchmarks share them).

``general_network`` is the layout of ``speedup_vs_simpy_general`` (benchmarks/sim_vs_simpy.py): a split by
shares, a merge, parallel servers, finite buffers and a failing station, 12 stations."""

from __future__ import annotations

import itertools
from pathlib import Path

from viewer.sim.model import AgvFleet, Calendar, Node, SimModel
from viewer.sim.model import Distribution as D  # noqa: N817

ROOT = Path(__file__).resolve().parents[1]

# The general network, one table: id, cycle mean s, servers, mtbf s, mttr s, input buffer (None: raw material),
# outputs [(buffer or "OUT", share)]. Buffers hold GENERAL_BUFFER parts; a station's finished part waits in it
# (blocking after service) until its chosen output has room; the split is drawn when the part is finished.
GENERAL_STATIONS = [
    ("S1", 30.0, 1, None, None, None, [("Q1", None)]),
    ("S2", 28.0, 1, None, None, "Q1", [("QA", 0.6), ("QB", 0.4)]),  # split by shares
    ("A1", 50.0, 2, None, None, "QA", [("QA1", None)]),
    ("A2", 45.0, 1, 3600.0, 300.0, "QA1", [("QA2", None)]),
    ("A3", 48.0, 2, None, None, "QA2", [("QM", None)]),
    ("B1", 60.0, 2, None, None, "QB", [("QB1", None)]),
    ("B2", 65.0, 2, None, None, "QB1", [("QB2", None)]),
    ("B3", 70.0, 2, 5400.0, 600.0, "QB2", [("QM", None)]),  # merge: A3 and B3 both feed QM
    ("M1", 26.0, 1, None, None, "QM", [("QM1", None)]),
    ("M2", 27.0, 1, 7200.0, 240.0, "QM1", [("QM2", None)]),
    ("M3", 25.0, 1, None, None, "QM2", [("QM3", None)]),
    ("M4", 24.0, 1, None, None, "QM3", [("OUT", None)]),
]
GENERAL_BUFFERS = ["Q1", "QA", "QB", "QA1", "QA2", "QB1", "QB2", "QM", "QM1", "QM2", "QM3"]
GENERAL_CV = 0.3  # lognormal cycle times
GENERAL_BUFFER = 4


def general_network(warmup: float = 1800.0) -> SimModel:
    """The 12-station network of GENERAL_STATIONS: a split 60/40 after S2, two branches with parallel servers
    and failing stations, a merge into QM, a serial tail; exponential failures and repairs (time-based)."""
    nodes = [Node("IN", "source")]
    for sid, mean, servers, mtbf, mttr, _inp, _outs in GENERAL_STATIONS:
        nodes.append(Node(sid, "station", cycle=D("lognormal", mean, GENERAL_CV), servers=servers, mtbf=mtbf,
                          mttr=mttr))
    nodes += [Node(b, "buffer", capacity=GENERAL_BUFFER) for b in GENERAL_BUFFERS]
    nodes.append(Node("OUT", "sink"))
    model = SimModel(nodes, warmup=warmup)
    for sid, _mean, _servers, _mtbf, _mttr, inp, outs in GENERAL_STATIONS:
        model.link(inp or "IN", sid)
        for target, share in outs:
            model.link(sid, target, share)
    model.check()
    return model


def line(*nodes: Node, warmup: float = 0.0) -> SimModel:
    model = SimModel(list(nodes), warmup=warmup)
    for a, b in itertools.pairwise(nodes):
        model.link(a.id, b.id)
    return model


def feature_models() -> dict[str, SimModel]:
    """Name -> model; together they reach every branch of the kernels."""
    from viewer.model.layout_io import load_layout
    from viewer.sim.model import model_from_layout

    models: dict[str, SimModel] = {"general network": general_network()}
    models["arrivals, unbounded buffer, parallel servers, scrap and rework"] = line(
        Node("IN", "source", interarrival=D.exponential(20)), Node("Q", "buffer"),
        Node("M", "station", servers=2, cycle=D("gamma", 35, 0.5), scrap=0.05, rework=0.1, mtbf=2000, mttr=200,
             failure_dist="gamma", repair_dist="lognormal"),
        Node("OUT", "sink"), warmup=500)
    models["setups per batch, triangular and uniform cycles"] = line(
        Node("IN", "source"), Node("M1", "station", cycle=D("triangular", low=8, mode=10, high=15),
                                   setup=D.fixed(40), batch_size=5),
        Node("B", "buffer", capacity=2), Node("M2", "station", cycle=D("uniform", low=9, high=14)), Node("OUT", "sink"))
    conveyors = SimModel([
        Node("IN", "source"), Node("M1", "station", cycle=D.exponential(10)),
        Node("C1", "conveyor", capacity=3, transit=25.0, accumulating=False),
        Node("M2", "station", cycle=D.exponential(12), mtbf=900, mttr=120),
        Node("C2", "conveyor", capacity=2, transit=15.0),
        Node("M3", "station", cycle=D("normal", 11, 0.4)), Node("OUT", "sink")])
    for a, b in [("IN", "M1"), ("M1", "C1"), ("C1", "M2"), ("M2", "C2"), ("C2", "M3"), ("M3", "OUT")]:
        conveyors.link(a, b)
    models["accumulating and stopping conveyors"] = conveyors
    rooms = SimModel([
        Node("IN", "source", interarrival=D.exponential(8)), Node("Z", "buffer", capacity=0),
        Node("P1", "station", cycle=D.exponential(20)), Node("P2", "station", cycle=D.exponential(15)),
        Node("P3", "station", cycle=D("empirical", values=(10.0, 20.0, 30.0))), Node("OUT", "sink")],
        warmup=300, calendar=Calendar(period=3600, working=[(600, 2400), (2700, 3300)]))
    for a, b in [("IN", "Z"), ("Z", "P1"), ("Z", "P2"), ("Z", "P3"), ("P1", "OUT"), ("P2", "OUT"), ("P3", "OUT")]:
        rooms.link(a, b)
    models["whichever has room past a zero buffer, shift calendar"] = rooms
    agv = SimModel([
        Node("IN", "source"), Node("M1", "station", cycle=D.exponential(30)), Node("T1", "transport", source=1),
        Node("B", "buffer", capacity=1), Node("M2", "station", cycle=D.exponential(40), servers=2),
        Node("T2", "transport", source=4), Node("M3", "station", cycle=D.exponential(25)), Node("OUT", "sink")],
        warmup=200)
    for a, b in [("IN", "M1"), ("M1", "T1"), ("T1", "B"), ("B", "M2"), ("M2", "T2"), ("T2", "M3"), ("M3", "OUT")]:
        agv.link(a, b)
    stops = [1, 3, 4, 6]
    agv.agv = AgvFleet(size=3, load_time=5.0,
                       travel={(a, b): 4.0 * abs(a - b) + 3.0 for a in stops for b in stops if a != b})
    models["AGV transport into a small buffer"] = agv
    for name in ("demo_plant", "large_plant"):
        path = ROOT / "layouts" / name / f"{name}.json"
        models[name] = model_from_layout(load_layout(path))
    return models
