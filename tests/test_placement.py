"""The placement search (``twin-viewer optimise --placement``): expected moves and AGV distances are worked
out here from the geometry (AGV metres = leg to the path + along it + leg back), not taken from the code."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from viewer.model.layout_io import load_layout
from viewer.sim.placement import agv_travel_m, default_movable, optimise_placement

PATH_Y = -3.0  # the AGV runs along y = -3; stations sit on y = 0, so every AGV trip has two 3 m legs
MAIN_SHARE = (1 / 45) / (1 / 45 + 1 / 600)  # parts from IN (one per 45 s) among all entering (IN2: per 600 s)


def leg_and_run(x_from: float, x_to: float) -> float:
    return abs(PATH_Y) + abs(x_to - x_from) + abs(PATH_Y)


def line(tmp_path: Path, b_x: float = 40.0) -> Path:
    """IN (x=0) -> A (x=2) -> B (far) -> OUT (x=13); links over 6 m go by AGV (one slow AGV: the bottleneck);
    beside it a short line IN2 -> C -> OUT2 around x=7.5."""
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "AGV line",
           "floor": {"origin": [-5, -10], "size": [60, 20]},
           "components": [
               {"id": "IN", "kind": "source", "position": [0, 0, 0],
                "sim": {"interarrival": {"dist": "deterministic", "mean": 45}}},
               {"id": "A", "kind": "station", "position": [2, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 40}}},
               {"id": "B", "kind": "station", "position": [b_x, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 40}}},
               {"id": "OUT", "kind": "sink", "position": [13, 0, 0]},
               # A second, short line (no AGV) whose station C stands where B would be best of all.
               {"id": "IN2", "kind": "source", "position": [7.5, 3, 0],
                "sim": {"interarrival": {"dist": "deterministic", "mean": 600}}},
               {"id": "C", "kind": "station", "position": [7.5, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 40}}},
               {"id": "OUT2", "kind": "sink", "position": [7.5, 5.5, 0]},
               {"id": "AGV", "kind": "agv-path", "position": [0, 0, 0],
                "path": {"points": [[-2, PATH_Y], [50, PATH_Y]], "speed": 0.5, "fleet": 1, "load_time": 10}}],
           "flow": [{"from": "IN", "to": "A"}, {"from": "A", "to": "B"}, {"from": "B", "to": "OUT"},
                    {"from": "IN2", "to": "C"}, {"from": "C", "to": "OUT2"}]}
    path = tmp_path / "line.json"
    path.write_text(json.dumps(doc))
    return path


def test_loaded_agv_travel_is_the_sum_over_agv_links_of_path_distances(tmp_path):
    layout = load_layout(line(tmp_path))
    # A -> B (38 m apart) and B -> OUT (27 m) go by AGV; IN -> A (2 m) is direct.
    assert agv_travel_m(layout) == pytest.approx(MAIN_SHARE * (leg_and_run(2, 40) + leg_and_run(40, 13)))
    assert default_movable(layout) == ["A", "B"]


def test_the_search_moves_the_far_station_into_the_near_free_slot_and_never_onto_a_machine(tmp_path):
    path = line(tmp_path)
    layout = load_layout(path)
    # B at (7.5, 0) would need no AGV at all (5.5 m from A and from OUT), but C stands there: refused.
    slots = [(25.0, 0.0), (10.0, 0.0), (7.5, 0.0)]
    result = optimise_placement(layout, path.parent, slots, hours=4, replications=5, seed=3)
    best = result.best[0]
    assert best.moves == {"B": (10.0, 0.0)}
    # B at x=10: A -> B is 8 m (still AGV), B -> OUT 3 m (direct now).
    assert best.travel_m == pytest.approx(MAIN_SHARE * leg_and_run(2, 10))
    assert result.base.travel_m == pytest.approx(MAIN_SHARE * (leg_and_run(2, 40) + leg_and_run(40, 13)))
    base = result.base.throughput
    assert best.throughput.mean > base.mean + base.half_width  # the AGV was the bottleneck: clearly more
    assert result.refused >= 1 and all((7.5, 0.0) not in p.moves.values() for p in result.best)
    # The best layout is the original with B moved (everything else as it was), ready to save and open.
    moved = best.layout.component("B").position
    assert tuple(moved) == (10.0, 0.0, 0.0) and best.layout.component("A").position == layout.component("A").position


def test_a_layout_already_best_placed_is_left_as_it_is(tmp_path):
    path = line(tmp_path, b_x=10.0)
    layout = load_layout(path)
    result = optimise_placement(layout, path.parent, [(40.0, 0.0), (25.0, 0.0)], hours=4, replications=5, seed=3)
    assert result.best[0].moves == {} and "stop" in result.rounds[-1]


def test_the_command_line_reports_the_best_placement_and_saves_it_for_the_viewer(tmp_path):
    import subprocess
    import sys

    path = line(tmp_path)
    out = tmp_path / "best.json"
    result = subprocess.run([sys.executable, "-m", "viewer", "optimise", str(path), "--placement", "--slot", "25,0",
                             "--slot", "10,0", "--hours", "4", "--replications", "5", "--workers", "1", "--json",
                             "--save", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["best"][0]["moves"] == {"B": [10.0, 0.0]}
    assert report["best"][0]["agv_m_per_part"] < report["base"]["agv_m_per_part"]
    assert load_layout(out).component("B").position == (10.0, 0.0, 0.0)
    usage = subprocess.run([sys.executable, "-m", "viewer", "optimise", str(path), "--placement"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "--slot" in usage.stderr
    mixed = subprocess.run([sys.executable, "-m", "viewer", "optimise", str(path), "--budget", "3", "--slot", "1,1"],
                           capture_output=True, text=True, timeout=60)
    assert mixed.returncode == 2 and "--placement" in mixed.stderr


def test_stops_joined_to_the_same_piece_of_path_are_linked_through_each_other():
    from viewer.sim.agv import PathNetwork

    net = PathNetwork()
    a, b = net._vertex((0.0, 0.0)), net._vertex((50.0, 0.0))
    net._edge(a, b)
    net._segments.append((a, b))
    first = net.join((10.0, 2.0))
    second = net.join((30.0, 3.0))  # joins the piece between the first stop's join point and the end
    assert net.distance(first, second) == pytest.approx(2.0 + 20.0 + 3.0)
    third = net.join((20.0, -1.0))  # and one between those two
    assert net.distance(first, third) == pytest.approx(2.0 + 10.0 + 1.0)
    assert net.distance(third, second) == pytest.approx(1.0 + 10.0 + 3.0)


def test_a_path_that_runs_out_and_back_is_one_corridor_for_the_stops_on_it(tmp_path):
    import math

    from viewer.sim.agv import PathNetwork

    doc = json.loads(line(tmp_path).read_text())
    agv = next(c for c in doc["components"] if c["id"] == "AGV")
    agv["path"]["points"] = [[0, 0], [40, 30], [0, 0]]  # out along a diagonal corridor (50 m) and back
    path = tmp_path / "out_and_back.json"
    path.write_text(json.dumps(doc))
    net = PathNetwork.from_layout(load_layout(path))
    rng = random.Random(7)
    points = [(rng.uniform(2.0, 38.0), rng.uniform(2.0, 28.0)) for _ in range(40)]
    stops = [net.join(p) for p in points]
    ux, uy = 0.8, 0.6  # the corridor's direction

    def along_and_off(p: tuple[float, float]) -> tuple[float, float]:
        t = min(max(p[0] * ux + p[1] * uy, 0.0), 50.0)
        return t, math.dist(p, (t * ux, t * uy))

    for i, a in enumerate(points):
        for j, b in enumerate(points):
            (ta, da), (tb, db) = along_and_off(a), along_and_off(b)
            expected = da + abs(ta - tb) + db if i != j else 0.0
            assert net.distance(stops[i], stops[j]) == pytest.approx(expected), (a, b)
