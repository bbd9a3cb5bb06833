"""Editing the layout model: drags merge into one undo step, conveyors follow, the simulation sees moves."""

from __future__ import annotations

import dataclasses
import difflib
import json
import random
import shutil
from pathlib import Path

import pytest

from viewer.model.document import (
    ConnectComponents,
    DisconnectComponents,
    EditRefusedError,
    LayoutDocument,
    MoveComponent,
    RemoveComponent,
    SetSectionValue,
    duplicate_of,
)
from viewer.model.layout_io import load_layout


@pytest.fixture
def document(tmp_path: Path, demo_layout_path: Path) -> LayoutDocument:
    folder = tmp_path / "plant"
    shutil.copytree(demo_layout_path.parent, folder)
    path = folder / demo_layout_path.name
    return LayoutDocument(load_layout(path), path)


def test_a_drag_is_one_undo_step_and_a_new_drag_another(document):
    start = tuple(document.layout.component("ST20").position)
    for x in (16.0, 16.5, 17.0, 17.5):
        document.push(MoveComponent("ST20", (x, 4.0, 0.0)), merge=True)
    document.end_merge()
    document.push(MoveComponent("ST20", (18.0, 4.0, 0.0)), merge=True)
    assert document.layout.component("ST20").position == (18.0, 4.0, 0.0)
    document.undo()
    assert document.layout.component("ST20").position == (17.5, 4.0, 0.0)
    assert document.undo_text.startswith("Move")
    document.undo()
    assert tuple(document.layout.component("ST20").position) == start
    assert not document.is_dirty


def line_with_conveyor(tmp_path: Path) -> LayoutDocument:
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "belt",
           "floor": {"origin": [-5, -5], "size": [40, 10]}, "components": [
               {"id": "IN", "kind": "source", "position": [-2, 0, 0]},
               {"id": "A", "kind": "station", "position": [0, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 60}}},
               {"id": "CV", "kind": "conveyor", "position": [2.5, 0, 0],
                "conveyor": {"length": 3.0, "speed": 0.1, "capacity": 20}},
               {"id": "B", "kind": "station", "position": [5, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 10}}},
               {"id": "OUT", "kind": "sink", "position": [8, 0, 0]}],
           "flow": [{"from": "IN", "to": "A"}, {"from": "A", "to": "CV"}, {"from": "CV", "to": "B"},
                    {"from": "B", "to": "OUT"}]}
    path = tmp_path / "belt.json"
    path.write_text(json.dumps(doc))
    return LayoutDocument(load_layout(path), path)


def test_moving_a_station_along_its_conveyor_changes_the_simulated_transit_time(tmp_path):
    from viewer.sim.kernel import simulate
    from viewer.sim.model import model_from_layout

    document = line_with_conveyor(tmp_path)

    def lead_time() -> float:
        result = simulate(model_from_layout(document.layout), 3_600.0, 0)
        return min(result.lead_times)  # the first part meets no queue: A + transit + B

    assert lead_time() == pytest.approx(60 + 3.0 / 0.1 + 10)
    # B moves 3 m further away: the gap the conveyor spans doubles, so does its length and transit time.
    document.push(MoveComponent("B", (8.0, 0.0, 0.0)))
    assert document.layout.component("CV").section("conveyor")["length"] == pytest.approx(6.0)
    assert document.layout.component("CV").position[0] == pytest.approx(4.0)  # it follows the midpoint
    assert lead_time() == pytest.approx(60 + 6.0 / 0.1 + 10)
    document.undo()
    assert document.layout.component("CV").section("conveyor")["length"] == pytest.approx(3.0)
    assert lead_time() == pytest.approx(60 + 3.0 / 0.1 + 10)
    with pytest.raises(EditRefusedError, match="long"):
        document.push(MoveComponent("B", (0.2, 0.0, 0.0)))  # would squash the conveyor to nothing
    assert document.layout.component("B").position == (5.0, 0.0, 0.0)


def test_removing_the_buffer_lowers_simulated_throughput(document):
    from viewer.sim.model import model_from_layout
    from viewer.sim.runner import run

    before = run(model_from_layout(document.layout), hours=8, replications=6, seed=1, workers=1)
    document.push(SetSectionValue("B1", "buffer", "capacity", 0))
    after = run(model_from_layout(document.layout), hours=8, replications=6, seed=1, workers=1)
    # Without the buffer between the CNCs and deburring, every stop of one starves or blocks the other.
    assert after.throughput_per_hour.mean < before.throughput_per_hour.mean


def test_fifty_random_edits_undone_give_back_the_file_byte_for_byte(document):
    document.save()  # the file as the viewer writes it (the demo's source file writes 0 where we write 0.0)
    original = document.path.read_bytes()
    rng = random.Random(4)
    ids = [c.id for c in document.layout.components if c.kind in ("station", "buffer", "robot")]
    done = 0
    while done < 50:
        kind = rng.choice(["move", "param", "dup", "link", "unlink", "delete"])
        cid = rng.choice([i for i in ids if i in document.layout.ids()])
        try:
            if kind == "move":
                x, y = rng.uniform(0, 45), rng.uniform(-6, 6)
                document.push(MoveComponent(cid, (round(x, 2), round(y, 2), 0.0)))
            elif kind == "param":
                document.push(SetSectionValue(cid, "sim", "mttr", rng.choice([300, 600, 900])))
            elif kind == "dup":
                document.push(duplicate_of(document.layout, cid))
            elif kind == "link":
                document.push(ConnectComponents(cid, rng.choice(ids)))
            elif kind == "unlink":
                links = [f for f in document.layout.flow if f.source == cid]
                if not links:
                    continue
                document.push(DisconnectComponents(links[0].source, links[0].target))
            else:
                document.push(RemoveComponent(cid))
        except EditRefusedError:
            continue  # refused edits change nothing and are not counted
        done += 1
    assert document.is_dirty
    while document.undo_text is not None:
        document.undo()
    document.save()
    assert document.path.read_bytes() == original


def test_checks_flag_overlap_reach_flow_and_clearance_and_the_demo_plant_is_clean(document, tmp_path, capsys):
    from viewer.cli import main
    from viewer.geometry.plant import build_plant_geometry
    from viewer.model.checks import check_layout, footprints_from_geometry

    def problems() -> dict[str, list]:
        geometry = build_plant_geometry(document.layout, document.base_dir, strict=False)
        found: dict[str, list] = {}
        for p in check_layout(document.layout, footprints_from_geometry(geometry)):
            found.setdefault(p.code, []).append(p)
        return found

    assert not [p for ps in problems().values() for p in ps if p.severity == "error"]
    st30 = document.layout.component("ST30").position
    document.push(MoveComponent("ST70", (st30[0] + 0.3, st30[1], 0.0)))  # on top of the washer
    found = problems()
    assert any(set(p.components) == {"ST70", "ST30"} for p in found["overlap"])
    document.undo()
    r1 = document.layout.component("R1").position
    document.push(MoveComponent("R1", (r1[0] + 4.0, r1[1], 0.0)))  # the robot walks away from its CNCs
    reach = problems()["robot-reach"]
    assert {p.components for p in reach} >= {("R1", "ST10"), ("R1", "ST11")}
    document.undo()
    document.push(DisconnectComponents("ST90", "R3"))
    assert "no-flow-path" in problems()
    document.undo()
    document.push(duplicate_of(document.layout, "ST20", offset=(0.0, 4.0)))
    assert any(p.components == ("ST20-2",) for p in problems()["not-connected"])
    # Headless, for CI: exit 1 on an error, JSON on request.
    assert main(["check", str(document.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 0
    document.push(MoveComponent("ST70", (st30[0] + 0.3, st30[1], 0.0)))
    document.save(tmp_path / "plant" / "bad.json")
    assert main(["check", str(tmp_path / "plant" / "bad.json")]) == 1
    assert "overlap" in capsys.readouterr().out


def agv_layout(tmp_path: Path, b_x: float, fleet: int) -> LayoutDocument:
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "agv", "floor": {"origin": [-5, -5], "size": [60, 10]},
           "components": [
               {"id": "IN", "kind": "source", "position": [-2, 0, 0]},
               {"id": "A", "kind": "station", "position": [0, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 10}}},
               {"id": "B", "kind": "station", "position": [b_x, 0, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 10}}},
               {"id": "OUT", "kind": "sink", "position": [b_x + 2, 0, 0]},
               {"id": "AGV", "kind": "agv-path", "position": [0, 0, 0],
                "path": {"points": [[0, -1], [50, -1]], "speed": 1.0, "fleet": fleet, "load_time": 5}}],
           "flow": [{"from": "IN", "to": "A"}, {"from": "A", "to": "B"}, {"from": "B", "to": "OUT"}]}
    path = tmp_path / f"agv-{b_x}-{fleet}.json"
    path.write_text(json.dumps(doc))
    return LayoutDocument(load_layout(path), path)


def test_far_stations_are_served_by_agvs_whose_fleet_and_travel_set_the_throughput(tmp_path):
    from viewer.sim.model import model_from_layout
    from viewer.sim.runner import run

    def throughput(b_x: float, fleet: int) -> float:
        model = model_from_layout(agv_layout(tmp_path, b_x, fleet).layout)
        assert any(n.kind == "transport" for n in model.nodes)  # A and B are 20+ m apart: by AGV
        return run(model, hours=10, replications=2, seed=1, workers=1).throughput_per_hour.mean

    # A -> B along the path: 1 m leg + 20 m + 1 m leg = 22 s at 1 m/s. One AGV: load 5, drive 22, unload 5,
    # drive back empty 22 = 54 s a part, far slower than either 10 s station.
    assert throughput(20, 1) == pytest.approx(3600 / 54, rel=0.02)
    # Two AGVs: a vehicle is sent when a part is ready, so A (blocked until it is loaded) needs 10 s of work
    # + 22 s for the empty trip from B + 5 s loading = 37 s a part, and the second AGV sits idle part of the
    # time: 3600 / 37, not twice 3600 / 54. Taking one AGV away (2 -> 1) costs a third of the output.
    assert throughput(20, 2) == pytest.approx(3600 / 37, rel=0.02)
    assert throughput(30, 1) == pytest.approx(3600 / 74, rel=0.02)  # B 10 m further: 20 s more a round trip
    # The report says transport is what limits the line: one AGV busy all the time, two at 54 s of every 74 s.
    one = run(model_from_layout(agv_layout(tmp_path, 20, 1).layout), hours=10, replications=2, seed=1, workers=1)
    two = run(model_from_layout(agv_layout(tmp_path, 20, 2).layout), hours=10, replications=2, seed=1, workers=1)
    assert one.agv_utilisation > 0.97 and any("AGV fleet" in n for n in one.notes)
    assert two.agv_utilisation == pytest.approx(54 / 74, abs=0.02)


def test_near_stations_hand_over_directly_and_a_missing_agv_path_is_reported(tmp_path, demo_layout_path):
    from viewer.sim.model import SimModelError, model_from_layout

    demo = model_from_layout(load_layout(demo_layout_path))
    assert not any(n.kind == "transport" for n in demo.nodes)  # every direct link there is under 6 m
    document = agv_layout(tmp_path, 20, 1)
    document.push(RemoveComponent("AGV"))
    # Without AGV paths a far link is handed over directly (and the checks warn); asked for, it is an error.
    assert not any(n.kind == "transport" for n in model_from_layout(document.layout).nodes)
    document.layout.flow[1] = dataclasses.replace(document.layout.flow[1], transport="agv")
    with pytest.raises(SimModelError, match="no AGV path"):
        model_from_layout(document.layout)


def test_a_walkway_through_a_robots_reach_is_a_safety_error(document):
    from viewer.geometry.plant import build_plant_geometry
    from viewer.model.checks import check_layout, footprints_from_geometry

    def codes() -> set:
        geometry = build_plant_geometry(document.layout, document.base_dir, strict=False)
        return {(p.code, p.components) for p in check_layout(document.layout, footprints_from_geometry(geometry))}

    assert not any(code == "robot-safety" for code, _ in codes())
    r2 = document.layout.component("R2").position
    document.push(MoveComponent("R2", (r2[0], -4.0, 0.0)))  # 1.2 m from the AGV loop, reach 2.4 m
    assert ("robot-safety", ("R2", "AGV1")) in codes()


def test_a_link_that_would_loop_the_flow_is_refused(document):
    flow = list(document.layout.flow)
    with pytest.raises(EditRefusedError, match="loop"):
        document.push(ConnectComponents("ST90", "ST20"))  # ST20 feeds ST90 further down the line
    assert document.layout.flow == flow
    document.push(ConnectComponents("ST20", "ST90"))  # a bypass forward is fine


def test_saving_changes_only_the_lines_of_what_was_edited(tmp_path):
    # Written the way a person writes a layout: whole numbers without ".0", some with, an explicit zero
    # rotation, keys in their own order.
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "Hand written",
           "components": [
               {"kind": "source", "id": "IN", "position": [0, 0, 0], "rotation": [0, 0, 0],
                "sim": {"interarrival": {"dist": "exponential", "mean": 60}}},
               {"id": "A", "position": [2.50, 1.0, 0], "kind": "station", "name": "Saw",
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 30}}},
               {"id": "OUT", "kind": "sink", "position": [6, 0, 0]}],
           "flow": [{"from": "IN", "to": "A"}, {"from": "A", "to": "OUT"}]}
    path = tmp_path / "hand.json"
    original = json.dumps(doc, indent=2) + "\n"
    path.write_text(original)
    document = LayoutDocument(load_layout(path), path)
    document.save()
    assert path.read_text() == original  # nothing edited: the file comes back as it was written
    document.push(MoveComponent("A", (3.0, 1.0, 0.0)))
    document.save()
    changed = [line for line in difflib.ndiff(original.splitlines(), path.read_text().splitlines())
               if line.startswith(("- ", "+ "))]
    assert changed == ["-         2.5,", "+         3,"]  # y stays "1.0" as written


def test_saving_keeps_what_the_file_wrote_even_where_the_model_normalises(tmp_path):
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "Written by hand", "description": "",
           "bindings": [],
           "components": [
               {"id": "IN", "kind": "source", "position": [0, 0, 0], "name": "", "scale": [2, 2, 2],
                "color": "#AABBCC"},
               {"id": "A", "kind": "station", "position": [3, 0, 0], "scale": 1.5,
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 30}}},
               {"id": "B", "kind": "station", "position": [3, 2, 0],
                "sim": {"cycle_time": {"dist": "deterministic", "mean": 30}}},
               {"id": "OUT", "kind": "sink", "position": [6, 0, 0]}],
           "flow": [{"to": "A", "from": "IN", "share": 0.5}, {"from": "IN", "to": "B", "share": 0.5},
                    {"from": "A", "to": "OUT", "share": 1}, {"from": "B", "to": "OUT"}]}
    path = tmp_path / "hand.json"
    original = json.dumps(doc, indent=2) + "\n"
    path.write_text(original)
    document = LayoutDocument(load_layout(path), path)
    document.save()
    assert path.read_text() == original
    document.push(MoveComponent("B", (3.0, 3.0, 0.0)))  # an edit elsewhere leaves every other line alone
    document.save()
    changed = [line for line in difflib.ndiff(original.splitlines(), path.read_text().splitlines())
               if line.startswith(("- ", "+ "))]
    assert changed == ["-         2,", "+         3,"]
