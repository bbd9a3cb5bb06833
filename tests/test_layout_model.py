"""The layout model without a display: files, schema, mesh library, plant geometry and the editable document.

Real files only (written to ``tmp_path``; meshes made with trimesh); expected values are
worked out by hand or from the objects the test itself wrote, never read back from the
code under test.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import random
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from viewer.geometry.mesh_library import MeshLibrary, MeshLimits
from viewer.geometry.plant import build_plant_geometry, component_matrix
from viewer.geometry.validate import validate_layout_file
from viewer.model.document import (
    AddComponent,
    ConnectComponents,
    LayoutDocument,
    MoveComponent,
    RemoveComponent,
    SetComponentField,
)
from viewer.model.errors import Cancelled, LayoutError, MeshError, Problem
from viewer.model.layout import Component, FlowLink, Layout
from viewer.model.layout_io import load_layout, save_layout

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "layouts" / "demo_plant" / "demo_plant.json"
LARGE = ROOT / "layouts" / "large_plant" / "large_plant.json"


# --------------------------------------------------------------------------- helpers


def base_doc() -> dict[str, Any]:
    """A small valid layout document: a source feeding two stations feeding a sink."""
    return {
        "format": "twin-viewer-layout",
        "version": 1,
        "name": "Test cell",
        "components": [
            {"id": "A", "kind": "source", "position": [0, 0, 0]},
            {"id": "B", "kind": "station", "position": [3, 1, 0]},
            {"id": "C", "kind": "station", "position": [3, -1, 0]},
            {"id": "D", "kind": "sink", "position": [6, 0, 0]},
        ],
        "flow": [
            {"from": "A", "to": "B", "share": 0.5},
            {"from": "A", "to": "C", "share": 0.5},
            {"from": "B", "to": "D"},
            {"from": "C", "to": "D"},
        ],
    }


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    """The problems ``load_layout`` reports; fails the test if it loads."""
    with pytest.raises(LayoutError) as info:
        load_layout(path)
    assert info.value.problems, "a LayoutError must list at least one problem"
    return info.value.problems


def has_problem(problems: list[Problem], path: str, fragment: str) -> bool:
    return any(p.path == path and fragment in p.message for p in problems)


def box_mesh() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(1.0, 1.0, 1.0))


def write_mesh(path: Path, mesh: trimesh.Trimesh | trimesh.Scene, file_type: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = mesh.export(file_type=file_type)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("source", [DEMO, LARGE], ids=["demo", "large"])
def test_save_then_load_gives_an_equal_model(source: Path, tmp_path: Path) -> None:
    original = load_layout(source)
    first = tmp_path / "first.json"
    save_layout(original, first)
    reloaded = load_layout(first)
    assert reloaded == original

    # Nothing in the file was lost or added on the way through the model: unchanged values are written as
    # the file had them (an explicit zero rotation included), in the file's key order.
    raw = json.loads(source.read_text(encoding="utf-8"))
    written = json.loads(first.read_text(encoding="utf-8"))
    assert written == raw
    assert list(written) == list(raw)
    assert [list(c) for c in written["components"]] == [list(c) for c in raw["components"]]

    # Saving is deterministic: the same model twice, and the reloaded model, give the same bytes.
    second = tmp_path / "second.json"
    third = tmp_path / "third.json"
    save_layout(original, second)
    save_layout(reloaded, third)
    assert first.read_bytes() == second.read_bytes() == third.read_bytes()
    assert first.read_bytes().endswith(b"\n")


def test_round_trip_keeps_non_ascii_text_readable(tmp_path: Path) -> None:
    doc = base_doc()
    doc["components"][1]["name"] = "Bad 60 °C – Prüfstand"
    layout = load_layout(write_json(tmp_path / "in.json", doc))
    save_layout(layout, tmp_path / "out.json")
    text = (tmp_path / "out.json").read_text(encoding="utf-8")
    assert "Bad 60 °C – Prüfstand" in text
    assert load_layout(tmp_path / "out.json").component("B").name == "Bad 60 °C – Prüfstand"


def test_save_refuses_an_invalid_model_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "plant.json"
    layout = load_layout(write_json(target, base_doc()))
    before = target.read_bytes()
    layout.components.append(Component(id="B", kind="sink", position=(9.0, 0.0, 0.0)))
    with pytest.raises(LayoutError) as info:
        save_layout(layout, target)
    assert has_problem(info.value.problems, "$.components[4].id", "duplicate id 'B'")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plant.json"], "no temporary file may be left behind"


# --------------------------------------------------------------------------- schema and semantic errors


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    # The comma after "Cell" is missing: the decoder stops at the quote opening line 5's key.
    path.write_text(
        '{\n  "format": "twin-viewer-layout",\n  "version": 1,\n  "name": "Cell"\n  "components": []\n}\n',
        encoding="utf-8",
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].path == "$"
    assert "malformed JSON" in problems[0].message
    assert "line 5, column 3" in problems[0].message


def test_missing_file_is_a_layout_error(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "nowhere.json")
    assert problems == [Problem("$", "file not found")]


def _set(*keys: Any, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _drop(*keys: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


def _append(key: str, item: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        doc.setdefault(key, []).append(item)
    return change


SINGLE_FAULTS = [
    ("wrong-format", _set("format", value="factory-plan"), "$.format", "not a twin-viewer layout"),
    ("future-version", _set("version", value=99), "$.version", "written by a newer viewer"),
    ("string-version", _set("version", value="1"), "$.version", "must be an integer"),
    ("float-version", _set("version", value=1.5), "$.version", "must be an integer"),
    ("missing-position", _drop("components", 1, "position"), "$.components[1]",
     "'position' is a required property"),
    ("short-position", _set("components", 2, "position", value=[1, 2]), "$.components[2].position", "too short"),
    ("unknown-kind", _set("components", 1, "kind", value="crane"), "$.components[1].kind",
     "'crane' is not one of"),
    ("bad-colour", _set("components", 1, "color", value="red"), "$.components[1].color", "'red' does not match"),
    ("short-colour", _set("components", 1, "color", value="#12345"), "$.components[1].color",
     "'#12345' does not match"),
    ("extra-property", _set("components", 3, "colour", value="#123456"), "$.components[3]",
     "'colour' was unexpected"),
    ("mesh-and-primitive",
     lambda d: d["components"][1].update(mesh="meshes/b.stl", primitive={"type": "box"}),
     "$.components[1]", "either 'mesh' or 'primitive', not both"),
    ("mqtt-password", _set("mqtt", value={"host": "broker", "username": "hmi", "password": "hunter2"}),
     "$.mqtt", "password may not be stored in a layout file"),
    ("duplicate-id", _append("components", {"id": "B", "kind": "prop", "position": [9, 9, 0]}),
     "$.components[4].id", "duplicate id 'B'"),
    ("flow-to-unknown", _append("flow", {"from": "D", "to": "GHOST"}), "$.flow[4].to",
     "no component with id 'GHOST'"),
    ("flow-from-unknown", _append("flow", {"from": "GHOST", "to": "A"}), "$.flow[4].from",
     "no component with id 'GHOST'"),
    ("shares-over-one", lambda d: d["flow"][0].update(share=0.6), "$.flow",
     "routing shares out of 'A' add up to 1.1 > 1"),
    ("secret-in-properties", _set("components", 1, "properties", value={"PLC_Password": "x"}),
     "$.components[1].properties.PLC_Password", "secrets may not be stored"),
    ("binding-unknown-component",
     _set("bindings", value=[{"topic": "plant/ghost/state", "signal": "state", "component": "GHOST"}]),
     "$.bindings[0].component", "no component with id 'GHOST'"),
]


@pytest.mark.parametrize(("change", "json_path", "fragment"), [f[1:] for f in SINGLE_FAULTS],
                         ids=[f[0] for f in SINGLE_FAULTS])
def test_each_fault_is_reported_with_its_json_path(tmp_path: Path, change: Any, json_path: str,
                                                   fragment: str) -> None:
    doc = base_doc()
    change(doc)
    problems = problems_of(write_json(tmp_path / "bad.json", doc))
    assert has_problem(problems, json_path, fragment), problems
    assert len(problems) == 1, f"one fault, one problem: {problems}"


def test_the_base_document_itself_is_valid(tmp_path: Path) -> None:
    # The control for the table above: every fault there is the only thing wrong.
    layout = load_layout(write_json(tmp_path / "good.json", base_doc()))
    assert layout.ids() == ["A", "B", "C", "D"]
    assert layout.flow[0] == FlowLink("A", "B", 0.5)


def test_a_password_is_never_echoed_in_the_error(tmp_path: Path) -> None:
    doc = base_doc()
    doc["mqtt"] = {"host": "broker", "password": "hunter2"}
    with pytest.raises(LayoutError) as info:
        load_layout(write_json(tmp_path / "bad.json", doc))
    assert "hunter2" not in str(info.value)
    assert "password_env" in str(info.value)


def test_a_password_does_not_hide_other_unknown_mqtt_keys(tmp_path: Path) -> None:
    doc = base_doc()
    doc["mqtt"] = {"host": "broker", "password": "hunter2", "hostname": "typo"}
    problems = problems_of(write_json(tmp_path / "bad.json", doc))
    assert has_problem(problems, "$.mqtt", "password may not be stored in a layout file")
    assert has_problem(problems, "$.mqtt", "'hostname'"), problems
    assert "hunter2" not in " ".join(p.message for p in problems)


def test_several_schema_faults_are_all_reported(tmp_path: Path) -> None:
    doc = base_doc()
    doc["components"][0]["kind"] = "crane"
    doc["components"][1]["color"] = "blue"
    del doc["components"][2]["position"]
    doc["components"][3]["position"] = [1, 2]
    with pytest.raises(LayoutError) as info:
        load_layout(write_json(tmp_path / "bad.json", doc))
    problems = info.value.problems
    assert has_problem(problems, "$.components[0].kind", "'crane' is not one of")
    assert has_problem(problems, "$.components[1].color", "'blue' does not match")
    assert has_problem(problems, "$.components[2]", "'position' is a required property")
    assert has_problem(problems, "$.components[3].position", "too short")
    assert len(problems) == 4
    message = str(info.value)
    assert "4 problem(s)" in message
    assert str(tmp_path / "bad.json") in message


def test_several_semantic_faults_are_all_reported(tmp_path: Path) -> None:
    doc = base_doc()
    doc["components"].append({"id": "B", "kind": "sink", "position": [9, 0, 0]})
    doc["flow"][1]["share"] = 0.8
    doc["flow"].append({"from": "D", "to": "GHOST"})
    doc["bindings"] = [
        {"topic": "plant/+/state", "component": "{1}", "signal": "state"},  # a wildcard, not an id: fine
        {"topic": "plant/x/state", "component": "NOPE", "signal": "state"},
    ]
    problems = problems_of(write_json(tmp_path / "bad.json", doc))
    assert has_problem(problems, "$.components[4].id", "duplicate id 'B'")
    assert has_problem(problems, "$.flow", "add up to 1.3 > 1")
    assert has_problem(problems, "$.flow[4].to", "no component with id 'GHOST'")
    assert has_problem(problems, "$.bindings[1].component", "no component with id 'NOPE'")
    assert len(problems) == 4


# --------------------------------------------------------------------------- mesh paths


@pytest.fixture
def plant_dir(tmp_path: Path) -> Path:
    """A layout folder ``plant/`` with a real mesh inside and real mesh files *outside* it to lure escapes."""
    plant = tmp_path / "plant"
    write_mesh(plant / "meshes" / "part.stl", box_mesh(), "stl")
    write_mesh(tmp_path / "outside.stl", box_mesh(), "stl")
    write_mesh(tmp_path / "x.stl", box_mesh(), "stl")
    (tmp_path / "assets").mkdir()
    return plant


ESCAPES = [
    ("../outside.stl", "escapes the layout's folder"),
    ("sub/../../x.stl", "escapes the layout's folder"),
    ("meshes/../../outside.stl", "escapes the layout's folder"),
    ("..\\outside.stl", "escapes the layout's folder"),
    ("/etc/passwd", "absolute paths are refused"),
    (str(Path(__file__).resolve()), "absolute paths are refused"),
    ("asset:../x.stl", "escapes the layout's folder"),
    ("http://host/x.stl", "not URLs"),
    ("file:///etc/passwd", "not URLs"),
]


@pytest.mark.parametrize(("reference", "fragment"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_mesh_references_that_leave_the_folder_are_refused(plant_dir: Path, reference: str, fragment: str) -> None:
    doc = base_doc()
    doc["components"][1]["mesh"] = reference
    problems = problems_of(write_json(plant_dir / "plant.json", doc))
    assert has_problem(problems, "$.components[1].mesh", fragment), problems

    library = MeshLibrary(asset_dir=plant_dir.parent / "assets")
    with pytest.raises(MeshError, match=re.escape(fragment)):
        library.resolve(reference, plant_dir)
    assert library.files_parsed == 0


def test_a_symlink_to_a_mesh_outside_the_folder_is_refused(plant_dir: Path) -> None:
    secret = plant_dir.parent / "secret"
    real = write_mesh(secret / "real.stl", box_mesh(), "stl")
    os.symlink(real, plant_dir / "meshes" / "link.stl")
    os.symlink(secret, plant_dir / "linked_dir", target_is_directory=True)
    library = MeshLibrary(asset_dir=plant_dir.parent / "assets")
    for reference in ("meshes/link.stl", "linked_dir/real.stl"):
        with pytest.raises(MeshError, match="resolves outside"):
            library.resolve(reference, plant_dir)

    # The reference text looks harmless, so the file loads as a layout, but validation opens the mesh and refuses.
    doc = base_doc()
    doc["components"][1]["mesh"] = "meshes/link.stl"
    path = write_json(plant_dir / "plant.json", doc)
    load_layout(path)
    problems = validate_layout_file(path)
    assert len(problems) == 1
    assert problems[0].path == "$.components[1].mesh"
    assert "resolves outside" in problems[0].message


def test_a_symlink_that_stays_inside_the_folder_is_fine(plant_dir: Path) -> None:
    os.symlink(plant_dir / "meshes" / "part.stl", plant_dir / "alias.stl")
    library = MeshLibrary(asset_dir=plant_dir.parent / "assets")
    assert library.resolve("alias.stl", plant_dir) == (plant_dir / "meshes" / "part.stl").resolve()


def test_a_mesh_inside_the_folder_loads(plant_dir: Path) -> None:
    doc = base_doc()
    doc["components"][1]["mesh"] = "meshes/part.stl"
    path = write_json(plant_dir / "plant.json", doc)
    assert load_layout(path).component("B").mesh == "meshes/part.stl"
    assert validate_layout_file(path) == []
    library = MeshLibrary(asset_dir=plant_dir.parent / "assets")
    resolved = library.resolve("meshes/part.stl", plant_dir)
    assert resolved == (plant_dir / "meshes" / "part.stl").resolve()
    assert library.load(resolved).n_triangles == 12  # a box: 6 sides of 2 triangles


def test_asset_references_load_from_the_asset_folder(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    write_mesh(assets / "bench.ply", box_mesh(), "ply")
    library = MeshLibrary(asset_dir=assets)
    resolved = library.resolve("asset:bench.ply", tmp_path / "elsewhere")
    assert resolved == (assets / "bench.ply").resolve()
    assert library.load(resolved).n_triangles == 12


# --------------------------------------------------------------------------- mesh loading


def _two_part_scene() -> tuple[trimesh.Scene, int]:
    parts = [trimesh.creation.box(extents=(2, 1, 1)), trimesh.creation.icosphere(subdivisions=1)]
    parts[1].apply_translation((3, 0, 0))
    return trimesh.Scene(parts), sum(len(p.faces) for p in parts)


@pytest.mark.parametrize(
    ("name", "file_type"),
    [("part.stl", "stl"), ("part_ascii.stl", "stl_ascii"), ("part.obj", "obj"), ("part.ply", "ply"),
     ("part.glb", "glb")],
    ids=["binary-stl", "ascii-stl", "obj", "ply", "glb"],
)
def test_mesh_formats_load_with_the_right_triangle_count(tmp_path: Path, name: str, file_type: str) -> None:
    if file_type == "glb":
        source, expected = _two_part_scene()
        lo, hi = np.array([-1.0, -1.0, -1.0]), np.array([4.0, 1.0, 1.0])  # box from x=-1, sphere to x=3+1
    else:
        source = trimesh.creation.icosphere(subdivisions=2, radius=2.0)
        expected = len(source.faces)
        lo, hi = source.bounds
    path = write_mesh(tmp_path / name, source, file_type)
    if file_type == "stl_ascii":
        assert path.read_bytes().lstrip().startswith(b"solid")
    mesh = MeshLibrary(asset_dir=tmp_path).load(path)
    assert mesh.n_triangles == expected
    assert mesh.vertices.dtype == np.float32 and mesh.vertices.shape[1] == 3
    assert mesh.faces.dtype == np.int32 and mesh.faces.shape == (expected, 3)
    got_lo, got_hi = mesh.bounds
    np.testing.assert_allclose(got_lo, lo, atol=1e-4)
    np.testing.assert_allclose(got_hi, hi, atol=1e-4)


def test_shared_mesh_files_are_parsed_once(tmp_path: Path) -> None:
    source = trimesh.creation.icosphere(subdivisions=2)
    write_mesh(tmp_path / "meshes" / "part.stl", source, "stl")
    refs = ["meshes/part.stl", "meshes/part.stl", "./meshes/part.stl", "meshes/part.stl", "meshes/../meshes/part.stl"]
    doc = {
        "format": "twin-viewer-layout", "version": 1, "name": "shared",
        "components": [{"id": f"S{i}", "kind": "station", "position": [3 * i, 0, 0], "mesh": ref}
                       for i, ref in enumerate(refs)]
        + [{"id": "BOX", "kind": "prop", "position": [0, 5, 0], "primitive": {"type": "box", "size": [1, 1, 1]}}],
    }
    path = write_json(tmp_path / "shared.json", doc)
    library = MeshLibrary(asset_dir=tmp_path)
    geometry = build_plant_geometry(load_layout(path), path.parent, library)
    assert library.files_parsed == 1
    assert geometry.n_triangles == 5 * len(source.faces) + 12

    # A file that changes on disk is read again (the cache is keyed on size and time, not on the name only).
    write_mesh(tmp_path / "meshes" / "part.stl", box_mesh(), "stl")
    os.utime(tmp_path / "meshes" / "part.stl", ns=(1, 1))
    geometry = build_plant_geometry(load_layout(path), path.parent, library)
    assert library.files_parsed == 2
    assert geometry.n_triangles == 5 * 12 + 12


@pytest.mark.parametrize(("name", "file_type"), [("big.stl", "stl"), ("big.ply", "ply"), ("big.obj", "obj")])
def test_a_mesh_over_the_triangle_limit_is_refused(tmp_path: Path, name: str, file_type: str) -> None:
    source = trimesh.creation.icosphere(subdivisions=2)  # 20 * 4**2 = 320 triangles
    assert len(source.faces) == 320
    path = write_mesh(tmp_path / name, source, file_type)
    library = MeshLibrary(asset_dir=tmp_path, limits=MeshLimits(max_triangles=100))
    with pytest.raises(MeshError) as info:
        library.load(path)
    message = str(info.value)
    assert name in message
    assert "320" in message and "100" in message
    assert library.files_parsed == 0
    # Exactly at the limit is fine.
    assert MeshLibrary(asset_dir=tmp_path, limits=MeshLimits(max_triangles=320)).load(path).n_triangles == 320


def test_a_mesh_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    path = write_mesh(tmp_path / "big.stl", trimesh.creation.icosphere(subdivisions=2), "stl")
    size = path.stat().st_size
    assert size == 84 + 50 * 320  # binary STL: header, count, 50 bytes per triangle
    library = MeshLibrary(asset_dir=tmp_path, limits=MeshLimits(max_bytes=1000))
    with pytest.raises(MeshError) as info:
        library.load(path)
    message = str(info.value)
    assert "big.stl" in message
    assert f"{size:,}" in message, message
    assert "1,000" in message, message
    assert library.files_parsed == 0


def test_a_megabyte_scale_limit_is_stated_exactly(tmp_path: Path) -> None:
    path = write_mesh(tmp_path / "big.stl", trimesh.creation.icosphere(subdivisions=2), "stl")
    limit = 10_000  # a limit that rounds badly in MiB (0.0095...) must still be stated as given
    with pytest.raises(MeshError) as info:
        MeshLibrary(asset_dir=tmp_path, limits=MeshLimits(max_bytes=limit)).load(path)
    assert "10,000" in str(info.value)


@pytest.mark.parametrize("name", ["noise.stl", "noise.ply", "noise.obj", "noise.glb", "empty.stl", "truncated.stl"])
def test_a_corrupt_mesh_file_is_a_mesh_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.startswith("noise"):
        path.write_bytes(np.random.default_rng(20240501).bytes(4096))
    elif name.startswith("empty"):
        path.write_bytes(b"")
    else:
        whole = trimesh.creation.icosphere(subdivisions=2).export(file_type="stl")
        path.write_bytes(whole[: 84 + 50 * 100 + 17])  # header says 320 triangles, the file ends mid-way
    library = MeshLibrary(asset_dir=tmp_path)
    with pytest.raises(MeshError) as info:
        library.load(path)
    assert name in str(info.value)
    assert library.files_parsed == 0


def test_a_missing_or_unsupported_mesh_file_is_a_clear_error(tmp_path: Path) -> None:
    library = MeshLibrary(asset_dir=tmp_path / "assets")
    with pytest.raises(MeshError, match=r"'meshes/gone\.stl': file not found in the layout's folder"):
        library.resolve("meshes/gone.stl", tmp_path)
    with pytest.raises(MeshError, match=r"'asset:gone\.stl': file not found in the asset library"):
        library.resolve("asset:gone.stl", tmp_path)
    (tmp_path / "part.fbx").write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(MeshError, match=r"unsupported mesh format '\.fbx'"):
        library.resolve("part.fbx", tmp_path)
    with pytest.raises(MeshError, match="cannot read"):
        library.load(tmp_path / "vanished.stl")


def test_validate_layout_file_reports_bad_meshes_with_their_json_path(tmp_path: Path) -> None:
    write_mesh(tmp_path / "meshes" / "good.stl", box_mesh(), "stl")
    (tmp_path / "meshes" / "corrupt.ply").write_bytes(np.random.default_rng(7).bytes(2048))
    doc = base_doc()
    doc["components"][0]["primitive"] = {"type": "box", "size": [1, 1, 1]}
    doc["components"][1]["mesh"] = "meshes/missing.stl"
    doc["components"][2]["mesh"] = "meshes/corrupt.ply"
    doc["components"][3]["mesh"] = "meshes/good.stl"
    doc["components"].append({"id": "E", "kind": "prop", "position": [0, 4, 0], "mesh": "meshes/corrupt.ply"})
    path = write_json(tmp_path / "plant.json", doc)

    load_layout(path)  # the references themselves are acceptable
    problems = validate_layout_file(path)
    assert [p.path for p in problems] == ["$.components[1].mesh", "$.components[2].mesh", "$.components[4].mesh"]
    assert "file not found" in problems[0].message
    assert "corrupt.ply" in problems[1].message and "PLY" in problems[1].message
    assert problems[2].message == problems[1].message

    # Without opening meshes only the missing file can be seen.
    quick = validate_layout_file(path, open_meshes=False)
    assert [p.path for p in quick] == ["$.components[1].mesh"]


def test_validate_layout_file_passes_schema_problems_through(tmp_path: Path) -> None:
    doc = base_doc()
    doc["components"][1]["mesh"] = "../outside.stl"
    problems = validate_layout_file(write_json(tmp_path / "plant.json", doc))
    assert len(problems) == 1
    assert problems[0].path == "$.components[1].mesh"
    assert "escapes the layout's folder" in problems[0].message


def test_geometry_with_a_bad_mesh_is_strict_or_a_placeholder(tmp_path: Path) -> None:
    (tmp_path / "corrupt.stl").write_bytes(b"solid nothing\nendsolid nothing\n")
    doc = base_doc()
    doc["components"][2]["mesh"] = "corrupt.stl"
    path = write_json(tmp_path / "plant.json", doc)
    layout = load_layout(path)
    with pytest.raises(MeshError, match="component 'C'"):
        build_plant_geometry(layout, tmp_path, MeshLibrary(asset_dir=tmp_path))
    geometry = build_plant_geometry(layout, tmp_path, MeshLibrary(asset_dir=tmp_path), strict=False)
    assert len(geometry.problems) == 1 and "component 'C'" in geometry.problems[0]
    start, stop = geometry.face_ranges[2]
    assert stop - start == 12  # a unit placeholder box
    np.testing.assert_allclose(geometry.bounds[2], [2.5, 3.5, -1.5, -0.5, 0.0, 1.0], atol=1e-5)


# --------------------------------------------------------------------------- geometry


def tiny_layout() -> Layout:
    return Layout(
        name="tiny",
        components=[
            Component(id="BOX", kind="prop", position=(10.0, 5.0, 0.0), rotation=(0.0, 0.0, 90.0),
                      primitive={"type": "box", "size": [2, 1, 1]}, color="#12ab34"),
            Component(id="CYL", kind="prop", position=(0.0, 0.0, 0.0),
                      primitive={"type": "cylinder", "radius": 0.5, "height": 2.0}),
            Component(id="ST", kind="station", position=(-4.0, 0.0, 0.0), color="#ff8000"),
        ],
    )


def test_a_rotated_box_lands_where_worked_out_by_hand(tmp_path: Path) -> None:
    geometry = build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path))
    # A 2 x 1 x 1 box stands on z = 0 centred on its position: x in [-1, 1], y in [-0.5, 0.5].
    # 90 degrees about z maps (x, y) to (-y, x): x in [-0.5, 0.5], y in [-1, 1]; then shift by (10, 5, 0).
    np.testing.assert_allclose(geometry.bounds[0], [9.5, 10.5, 4.0, 6.0, 0.0, 1.0], atol=1e-5)
    assert geometry.component_ids == ["BOX", "CYL", "ST"]
    np.testing.assert_allclose(geometry.component_center(0), [10.0, 5.0, 0.5], atol=1e-5)


def test_faces_carry_the_layout_colour(tmp_path: Path) -> None:
    geometry = build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path))
    start, stop = geometry.face_ranges[0]
    assert stop - start == 12
    assert geometry.face_rgb.dtype == np.uint8
    assert (geometry.face_rgb[start:stop] == [0x12, 0xAB, 0x34]).all()
    start, stop = geometry.face_ranges[2]
    assert (geometry.face_rgb[start:stop] == [255, 128, 0]).all()


def test_face_ranges_partition_all_faces(tmp_path: Path) -> None:
    geometry = build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path))
    ranges = geometry.face_ranges
    assert ranges.shape == (3, 2)
    assert ranges[0, 0] == 0
    assert ranges[-1, 1] == geometry.n_triangles == len(geometry.faces) == len(geometry.face_rgb)
    assert (ranges[1:, 0] == ranges[:-1, 1]).all(), "ranges must be contiguous"
    assert (ranges[:, 1] > ranges[:, 0]).all(), "every component has faces"
    for index, (start, stop) in enumerate(ranges):
        assert (geometry.face_component[start:stop] == index).all()
    assert geometry.faces.min() >= 0 and geometry.faces.max() < len(geometry.vertices)


def _rx(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_component_matrix_rotates_x_then_y_then_z() -> None:
    comp = Component(id="R", kind="prop", position=(1.0, 2.0, 3.0), rotation=(30.0, 45.0, 60.0),
                     scale=(1.0, 2.0, 3.0))
    expected = np.eye(4)
    expected[:3, :3] = _rz(60) @ _ry(45) @ _rx(30) @ np.diag([1.0, 2.0, 3.0])
    expected[:3, 3] = (1.0, 2.0, 3.0)
    np.testing.assert_allclose(component_matrix(comp), expected, atol=1e-12)
    wrong_order = _rx(30) @ _ry(45) @ _rz(60) @ np.diag([1.0, 2.0, 3.0])
    assert not np.allclose(component_matrix(comp)[:3, :3], wrong_order)

    # By hand: 90 about x takes +z to -y, then 90 about z takes -y to +x.
    quarter = Component(id="Q", kind="prop", position=(0.0, 0.0, 0.0), rotation=(90.0, 0.0, 90.0))
    np.testing.assert_allclose(component_matrix(quarter) @ [0, 0, 1, 1], [1, 0, 0, 1], atol=1e-12)


def test_a_set_cancel_event_stops_the_build(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path), cancel=cancel)


def test_cancel_during_the_build_stops_it(tmp_path: Path) -> None:
    cancel = threading.Event()
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        cancel.set()  # the user presses Cancel as soon as the first progress arrives

    with pytest.raises(Cancelled):
        build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path), progress=progress,
                             cancel=cancel)
    assert calls and 1.0 not in calls, "the build must stop before it reports completion"


def test_progress_runs_from_zero_to_one(tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    build_plant_geometry(tiny_layout(), tmp_path, MeshLibrary(asset_dir=tmp_path),
                         progress=lambda f, m: seen.append((f, m)), cancel=threading.Event())
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert all(a < b for a, b in itertools.pairwise(fractions)), fractions
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(isinstance(m, str) and m for _, m in seen)


def test_the_demo_plant_builds(demo_layout_path: Path) -> None:
    layout = load_layout(demo_layout_path)
    library = MeshLibrary()
    geometry = build_plant_geometry(layout, demo_layout_path.parent, library)
    assert geometry.component_ids == layout.ids()
    assert geometry.problems == []
    distinct = {c.mesh for c in layout.components if c.mesh}
    assert library.files_parsed == len(distinct)
    # A component's position is the centre of its footprint, so it lies inside its own bounds (on x and y).
    for index, comp in enumerate(layout.components):
        if comp.kind == "agv-path":  # a floor marking placed by its points, not by its position
            continue
        xmin, xmax, ymin, ymax, _, _ = geometry.bounds[index]
        x, y, _ = comp.position
        assert xmin - 0.01 <= x <= xmax + 0.01, comp.id
        assert ymin - 0.01 <= y <= ymax + 0.01, comp.id


# --------------------------------------------------------------------------- LayoutDocument


EVENT_NAMES = ("component_added", "component_removed", "component_changed", "flow_changed", "dirty_changed",
               "history_changed")


@pytest.fixture
def doc_path(tmp_path: Path) -> Path:
    path = tmp_path / "demo_plant.json"
    path.write_bytes(DEMO.read_bytes())
    return path


@pytest.fixture
def document(doc_path: Path) -> LayoutDocument:
    return LayoutDocument(load_layout(doc_path), doc_path)


def record(document: LayoutDocument) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = []
    for name in EVENT_NAMES:
        getattr(document.events, name).connect(lambda *args, _name=name: events.append((_name, *args)))
    return events


def test_move_component_undo_redo(document: LayoutDocument) -> None:
    events = record(document)
    before = document.layout.component("ST10").position
    assert before == (6.0, 2.5, 0.0)
    document.push(MoveComponent("ST10", (7, 3.5, 0), document.layout.component("ST10").display_name))
    assert document.layout.component("ST10").position == (7.0, 3.5, 0.0)
    assert document.undo_text == "Move ST10 CNC milling A"
    assert document.redo_text is None
    # The machine's vibration sensor (its child) moves with it, by the same offset.
    assert document.layout.component("S-ST10-VIB").position == (6.2, 3.0, 1.1)
    assert events == [("component_changed", "ST10", "position"), ("component_changed", "S-ST10-VIB", "position"),
                      ("dirty_changed", True), ("history_changed",)]

    events.clear()
    document.undo()
    assert document.layout.component("ST10").position == before
    assert document.layout.component("S-ST10-VIB").position == (5.2, 2.0, 1.1)
    assert document.undo_text is None
    assert document.redo_text == "Move ST10 CNC milling A"
    assert events == [("component_changed", "S-ST10-VIB", "position"), ("component_changed", "ST10", "position"),
                      ("dirty_changed", False), ("history_changed",)]

    events.clear()
    document.redo()
    assert document.layout.component("ST10").position == (7.0, 3.5, 0.0)
    assert events == [("component_changed", "ST10", "position"), ("component_changed", "S-ST10-VIB", "position"),
                      ("dirty_changed", True), ("history_changed",)]

    events.clear()
    document.redo()  # nothing to redo: no change, no events
    document.undo()
    document.undo()  # nothing more to undo
    assert events == [("component_changed", "S-ST10-VIB", "position"), ("component_changed", "ST10", "position"),
                      ("dirty_changed", False), ("history_changed",)]


def test_set_component_field_for_fields_and_sections(document: LayoutDocument) -> None:
    events = record(document)
    document.push(SetComponentField("ST20", "color", "#d04040"))
    assert document.undo_text == "Change color of ST20 Deburring"
    document.push(SetComponentField("ST20", "sim", {"cycle_time": {"dist": "deterministic", "mean": 30}}))
    document.push(SetComponentField("ST20", "properties", None, text="Clear properties of ST20"))
    comp = document.layout.component("ST20")
    assert comp.color == "#d04040"
    assert comp.section("sim") == {"cycle_time": {"dist": "deterministic", "mean": 30}}
    assert "properties" not in comp.sections
    assert document.undo_text == "Clear properties of ST20"
    assert [e for e in events if e[0] == "component_changed"] == [
        ("component_changed", "ST20", "color"), ("component_changed", "ST20", "sim"),
        ("component_changed", "ST20", "properties")]

    for _ in range(3):
        document.undo()
    comp = document.layout.component("ST20")
    assert comp.color is None
    assert comp.section("sim")["cycle_time"] == {"dist": "lognormal", "mean": 45, "cv": 0.15}
    assert comp.section("properties") == {"asset_no": "DB-2001"}
    assert document.layout == load_layout(document.path)
    assert not document.is_dirty


def test_add_component_undo_redo(document: LayoutDocument) -> None:
    events = record(document)
    n = len(document.layout.components)
    new = Component(id="ST25", kind="station", name="ST25 Brushing", position=(16.6, 0.0, 0.0))
    document.push(AddComponent(new, index=8))
    assert document.layout.ids()[8] == "ST25"
    assert len(document.layout.components) == n + 1
    assert document.undo_text == "Add ST25 Brushing"
    new.name = "changed by the caller afterwards"
    assert document.layout.component("ST25").name == "ST25 Brushing", "the document keeps its own copy"

    document.push(AddComponent(Component(id="X1", kind="prop", position=(0.0, 9.0, 0.0))))
    assert document.layout.ids()[-1] == "X1"
    assert events == [("component_added", "ST25"), ("dirty_changed", True), ("history_changed",),
                      ("component_added", "X1"), ("history_changed",)]

    events.clear()
    document.undo()
    document.undo()
    assert "ST25" not in document.layout.ids() and "X1" not in document.layout.ids()
    assert len(document.layout.components) == n
    assert events == [("component_removed", "X1"), ("history_changed",),
                      ("component_removed", "ST25"), ("dirty_changed", False), ("history_changed",)]


def test_adding_a_duplicate_id_is_refused_without_touching_history(document: LayoutDocument) -> None:
    events = record(document)
    with pytest.raises(ValueError, match="ST10"):
        document.push(AddComponent(Component(id="ST10", kind="station", position=(0.0, 0.0, 0.0))))
    assert events == []
    assert document.undo_text is None
    assert not document.is_dirty
    assert document.layout.ids().count("ST10") == 1


def test_remove_component_takes_its_links_and_undo_restores_them_in_order(document: LayoutDocument) -> None:
    events = record(document)
    original_ids = document.layout.ids()
    original_flow = list(document.layout.flow)
    # ST20 is fed by B1 (flow[7]) and feeds ST30 (flow[8]).
    assert document.layout.links_touching("ST20") == [FlowLink("B1", "ST20"), FlowLink("ST20", "ST30")]
    document.push(RemoveComponent("ST20"))
    assert "ST20" not in document.layout.ids()
    assert document.layout.links_touching("ST20") == []
    assert len(document.layout.flow) == len(original_flow) - 2
    assert document.undo_text == "Delete ST20 Deburring"
    assert events == [("component_removed", "ST20"), ("flow_changed",), ("dirty_changed", True),
                      ("history_changed",)]

    events.clear()
    document.undo()
    assert document.layout.ids() == original_ids
    assert document.layout.flow == original_flow
    assert events == [("component_added", "ST20"), ("flow_changed",), ("dirty_changed", False),
                      ("history_changed",)]


def test_remove_with_links_far_apart_restores_the_original_order(document: LayoutDocument) -> None:
    original_flow = list(document.layout.flow)
    touching = [i for i, f in enumerate(original_flow) if "ST10" in (f.source, f.target)]
    assert touching == [2, 4]  # R1 -> ST10 and ST10 -> CV02, with R1 -> ST11 between them
    document.push(RemoveComponent("ST10"))
    assert document.layout.flow == [f for i, f in enumerate(original_flow) if i not in touching]
    document.undo()
    assert document.layout.flow == original_flow
    document.redo()
    assert document.layout.flow == [f for i, f in enumerate(original_flow) if i not in touching]


def test_removing_a_parent_or_a_bound_component_keeps_the_document_saveable(document: LayoutDocument,
                                                                           tmp_path: Path) -> None:
    original = copy.deepcopy(document.layout)
    events = record(document)
    # ST10 (no parent of its own) is the parent of the sensor S-ST10-VIB, which a binding names.
    assert document.layout.component("S-ST10-VIB").parent == "ST10"
    expected_left = [b for b in document.layout.bindings if b.get("component") != "S-ST10-VIB"]
    assert len(expected_left) < len(document.layout.bindings)
    document.push(RemoveComponent("ST10"))
    assert document.problems() == []
    assert document.layout.component("S-ST10-VIB").parent is None
    assert events[:3] == [("component_removed", "ST10"), ("component_changed", "S-ST10-VIB", "parent"),
                          ("flow_changed",)]
    document.push(RemoveComponent("S-ST10-VIB"))
    assert document.problems() == []
    assert document.layout.bindings == expected_left
    out = tmp_path / "edited.json"
    document.save(out)
    reloaded = load_layout(out)
    assert reloaded == document.layout
    assert "ST10" not in reloaded.ids() and "S-ST10-VIB" not in reloaded.ids()

    document.undo()
    document.undo()
    assert document.layout == original


def test_removing_a_middle_parent_hands_its_children_to_the_grandparent() -> None:
    layout = Layout(name="tree", components=[
        Component(id="CELL", kind="prop", position=(0.0, 0.0, 0.0)),
        Component(id="M", kind="station", position=(1.0, 0.0, 0.0), parent="CELL"),
        Component(id="S1", kind="sensor", position=(1.0, 0.5, 1.0), parent="M"),
        Component(id="S2", kind="sensor", position=(1.0, -0.5, 1.0), parent="M"),
    ])
    document = LayoutDocument(layout)
    document.push(RemoveComponent("M"))
    assert [(c.id, c.parent) for c in document.layout.components] == [("CELL", None), ("S1", "CELL"),
                                                                       ("S2", "CELL")]
    document.undo()
    assert [(c.id, c.parent) for c in document.layout.components] == [("CELL", None), ("M", "CELL"),
                                                                       ("S1", "M"), ("S2", "M")]


def test_connect_components_undo_redo(document: LayoutDocument) -> None:
    events = record(document)
    document.push(ConnectComponents("ST20", "SHIP"))
    assert document.layout.flow[-1] == FlowLink("ST20", "SHIP")
    assert document.undo_text == "Connect ST20 to SHIP"
    assert events == [("flow_changed",), ("dirty_changed", True), ("history_changed",)]
    document.undo()
    assert FlowLink("ST20", "SHIP") not in document.layout.flow
    document.redo()
    assert document.layout.flow[-1] == FlowLink("ST20", "SHIP")


@pytest.mark.parametrize(("source", "target"), [("ST20", "GHOST"), ("GHOST", "ST20"), ("ST20", "ST20"),
                                                ("RAW", "CV01")],
                         ids=["unknown-target", "unknown-source", "self-link", "existing-link"])
def test_connect_refuses_links_the_file_could_not_hold(document: LayoutDocument, source: str, target: str) -> None:
    events = record(document)
    flow = list(document.layout.flow)
    with pytest.raises(ValueError):
        document.push(ConnectComponents(source, target))
    assert document.layout.flow == flow
    assert events == []
    assert not document.is_dirty


def test_an_invalid_edit_is_refused_with_the_reason_and_changes_nothing(document: LayoutDocument) -> None:
    from viewer.model.document import EditRefusedError, SetSectionValue

    before = document.layout.to_dict()
    document.push(ConnectComponents("R1", "ST20", share=0.7))
    with pytest.raises(EditRefusedError, match="routing shares out of 'R1'"):
        document.push(ConnectComponents("R1", "ST30", share=0.6))  # 0.7 + 0.6 of R1's parts: impossible
    assert [f for f in document.layout.flow if f.source == "R1" and f.target == "ST30"] == []
    with pytest.raises(EditRefusedError):
        document.push(SetSectionValue("ST10", "sim", "cycle_time", {"dist": "lognormal", "mean": -5, "cv": 0.1}))
    assert document.layout.component("ST10").section("sim")["cycle_time"]["mean"] == 95
    with pytest.raises(EditRefusedError, match="outside the floor"):
        document.push(MoveComponent("ST10", (500.0, 0.0, 0.0)))
    assert list(document.layout.component("ST10").position) == before["components"][3]["position"]
    document.undo()  # the one accepted edit
    assert document.layout.to_dict() == before
    assert not document.is_dirty


def test_dirty_tracking(document: LayoutDocument, tmp_path: Path) -> None:
    dirty: list[bool] = []
    document.events.dirty_changed.connect(dirty.append)
    assert not document.is_dirty
    document.push(MoveComponent("B1", (12.0, 1.0, 0.0)))
    assert document.is_dirty
    document.undo()
    assert not document.is_dirty, "back at the state that was opened"
    document.redo()
    assert document.is_dirty
    document.push(MoveComponent("B1", (12.0, 2.0, 0.0)))
    document.save()
    assert not document.is_dirty
    document.undo()
    assert document.is_dirty, "undo past the save point"
    document.redo()
    assert not document.is_dirty
    document.undo()
    document.undo()
    assert document.is_dirty
    document.push(MoveComponent("B2", (30.0, 1.0, 0.0)))
    # The saved state is on the discarded redo branch: no amount of undo reaches it again.
    document.undo()
    assert document.is_dirty
    assert dirty == [True, False, True, False, True, False, True]
    save_as = tmp_path / "copy.json"
    document.save(save_as)
    assert not document.is_dirty
    assert document.path == save_as
    assert dirty[-1] is False


def test_save_without_a_path_needs_save_as() -> None:
    document = LayoutDocument(Layout(name="new", components=[Component(id="A", kind="prop",
                                                                       position=(0.0, 0.0, 0.0))]))
    with pytest.raises(ValueError, match="Save As"):
        document.save()


def test_a_typical_session_emits_exactly_these_events(document: LayoutDocument) -> None:
    events = record(document)
    document.push(MoveComponent("ST30", (18.4, 0.5, 0.0)))
    document.save()
    document.undo()
    document.redo()
    child = ("component_changed", "S-ST30-TEMP", "position")  # the bath's sensor moves with it
    assert events == [
        ("component_changed", "ST30", "position"), child, ("dirty_changed", True), ("history_changed",),
        ("dirty_changed", False), ("history_changed",),
        child, ("component_changed", "ST30", "position"), ("dirty_changed", True), ("history_changed",),
        ("component_changed", "ST30", "position"), child, ("dirty_changed", False), ("history_changed",),
    ]


def test_an_edited_document_round_trips(document: LayoutDocument, tmp_path: Path) -> None:
    document.push(MoveComponent("ST20", (15.0, 0.5, 0.0)))
    document.push(SetComponentField("ST20", "rotation", (0.0, 0.0, 90.0)))
    document.push(SetComponentField("ST20", "scale", (1.5, 1.5, 1.5)))
    document.push(SetComponentField("ST20", "color", "#aa3311"))
    document.push(AddComponent(Component(id="ST25", kind="station", name="ST25 Brushing", position=(16.5, 2, 0),
                                          primitive={"type": "cylinder", "radius": 0.4, "height": 1.2})))
    document.push(ConnectComponents("ST20", "ST25"))
    document.push(RemoveComponent("CV04"))
    document.push(ConnectComponents("ST70", "ST80"))
    out = tmp_path / "edited.json"
    document.save(out)
    reloaded = load_layout(out)
    assert reloaded == document.layout
    st20 = reloaded.component("ST20")
    assert st20.position == (15.0, 0.5, 0.0)
    assert st20.rotation == (0.0, 0.0, 90.0)
    assert st20.scale == (1.5, 1.5, 1.5)
    assert json.loads(out.read_text(encoding="utf-8"))["components"][reloaded.index_of("ST20")]["scale"] == 1.5
    assert FlowLink("ST70", "ST80") in reloaded.flow and "CV04" not in reloaded.ids()
    # The edited plant still builds.
    geometry = build_plant_geometry(reloaded, out.parent, MeshLibrary())
    assert geometry.component_ids == reloaded.ids()


def test_edits_are_named_after_the_component_without_help(document: LayoutDocument) -> None:
    document.push(MoveComponent("ST10", (7.0, 3.5, 0.0)))
    assert document.undo_text == "Move ST10 CNC milling A"


def test_an_id_is_not_a_field_to_edit(document: LayoutDocument) -> None:
    with pytest.raises(ValueError, match="identity"):
        document.push(SetComponentField("ST10", "id", "ST99"))
    assert document.layout.component("ST10").id == "ST10"
    assert document.undo_text is None


def test_a_parent_cycle_is_reported_on_each_member(tmp_path: Path) -> None:
    doc = base_doc()
    doc["components"][1]["parent"] = "C"
    doc["components"][2]["parent"] = "B"
    problems = problems_of(write_json(tmp_path / "cycle.json", doc))
    assert problems == [Problem("$.components[1].parent", "parents form a cycle"),
                        Problem("$.components[2].parent", "parents form a cycle")]


def _signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Divergence theorem, written out here rather than taken from trimesh."""
    a, b, c = (vertices[faces[:, i]].astype(float) for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def test_inside_out_closed_meshes_are_turned_outward(tmp_path: Path) -> None:
    from viewer.geometry.mesh_library import orient_faces

    box = box_mesh()
    inverted = np.asarray(box.faces)[:, ::-1]
    assert _signed_volume(np.asarray(box.vertices), inverted) < 0  # the control: really inside out
    fixed, two_sided = orient_faces(np.asarray(box.vertices), inverted)
    assert len(fixed) == len(inverted) and not two_sided
    assert _signed_volume(np.asarray(box.vertices), fixed) == pytest.approx(1.0)


def test_open_meshes_are_flagged_two_sided_not_doubled(tmp_path: Path) -> None:
    from viewer.geometry.mesh_library import orient_faces

    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    kept, two_sided = orient_faces(vertices, faces)
    assert two_sided and np.array_equal(kept, faces)  # drawn without culling, each triangle once


# --------------------------------------------------------------------------- review findings: hostile numbers


@pytest.mark.parametrize(("text", "fragment"), [
    ('"position": [NaN, 0, 0]', "NaN"),
    ('"position": [Infinity, 0, 0]', "Infinity"),
    ('"position": [-Infinity, 0, 0]', "-Infinity"),
])
def test_nan_and_infinity_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    raw = ('{"format": "twin-viewer-layout", "version": 1, "name": "n", "components": '
           '[{"id": "A", "kind": "station", ' + text + '}]}')
    path = tmp_path / "nan.json"
    path.write_text(raw)
    problems = problems_of(path)
    assert any(fragment in p.message and "refused" in p.message for p in problems), problems


def test_overflowing_numbers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "inf.json"
    path.write_text('{"format": "twin-viewer-layout", "version": 1, "name": "n", "components": '
                    '[{"id": "A", "kind": "station", "position": [1e400, 0, 0]}]}')
    assert any("not a finite number" in p.message for p in problems_of(path))


@pytest.mark.parametrize(("change", "json_path", "fragment"), [
    (_set("components", 1, "position", value=[1e9, 1e9, 0]), "$.components[1].position", "millimetres"),
    (_set("components", 1, "scale", value=1e30), "$.components[1].scale", "scale above"),
    (_set("components", 1, "primitive", value={"type": "box", "size": [1e6, 1, 1]}),
     "$.components[1].primitive.size", "longer than"),
    (_set("floor", value={"size": [1e9, 1e9]}), "$.floor.size", "larger than"),
    (_append("components", {"id": "P", "kind": "agv-path", "position": [0, 0, 0]}), "$.components[4]", "path"),
    (_append("components", {"id": "Q", "kind": "buffer", "position": [0, 0, 0]}), "$.components[4]", "buffer"),
    (_set("components", 1, "mesh", value="meshes/a\x00b.stl"), "$.components[1].mesh", "control characters"),
])
def test_values_no_plant_can_have_are_refused(tmp_path: Path, change: Any, json_path: str, fragment: str) -> None:
    doc = base_doc()
    change(doc)
    problems = problems_of(write_json(tmp_path / "bad.json", doc))
    assert has_problem(problems, json_path, fragment), problems


def test_the_whole_plant_has_a_triangle_limit(tmp_path: Path) -> None:
    mesh = box_mesh()
    write_mesh(tmp_path / "m.stl", mesh, "stl")
    doc = base_doc()
    for comp in doc["components"]:
        comp["mesh"] = "m.stl"
    layout = load_layout(write_json(tmp_path / "many.json", doc))
    per_file = len(mesh.faces)
    limits = MeshLimits(max_plant_triangles=3 * per_file)  # four components need four times that
    with pytest.raises(MeshError, match=r"more than 36 triangles.*'D', 4 of 4"):
        build_plant_geometry(layout, tmp_path, MeshLibrary(limits=limits))
    assert build_plant_geometry(layout, tmp_path, MeshLibrary(limits=MeshLimits(max_plant_triangles=4 * per_file)))



def test_saving_keeps_the_files_mode_and_a_new_file_gets_the_umasks(tmp_path: Path) -> None:
    import os
    import stat

    layout = load_layout(DEMO)
    shared = tmp_path / "shared.json"
    save_layout(layout, shared)
    os.chmod(shared, 0o664)  # a planner's file the operators' group may read
    save_layout(layout, shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664
    previous = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.json"
        save_layout(layout, fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0666 less the umask, as any editor's new file
    finally:
        os.umask(previous)


def _numeric_leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numeric_leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numeric_leaves(item, (*path, i))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path


def _json_path(path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@pytest.mark.parametrize("extreme", [10**400, -(10**400), 1e308, -1e308],
                         ids=["400-digit", "-400-digit", "1e308", "-1e308"])
def test_an_extreme_number_anywhere_is_a_clear_error_at_its_path(tmp_path: Path, extreme) -> None:
    """Every number of the demo plant, one at a time: a clear LayoutError naming its JSON path, never a
    traceback (400-digit integers cannot become floats; 1e308 m builds no geometry)."""
    doc = json.loads(DEMO.read_text())
    leaves = [p for p in _numeric_leaves(doc) if p[0] != "version"]
    assert len(leaves) > 200
    rng = random.Random(7 if isinstance(extreme, int) else 8)
    for path in rng.sample(leaves, 60):
        bad = copy.deepcopy(doc)
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = extreme
        file = tmp_path / "extreme.json"
        file.write_text(json.dumps(bad))
        with pytest.raises(LayoutError) as caught:
            load_layout(file)
        where = _json_path(path)
        assert any(where.startswith(p.path) or p.path.startswith(where) for p in caught.value.problems), (
            path, caught.value.problems)


def test_an_integer_of_5000_digits_is_refused_with_its_place(tmp_path: Path) -> None:
    text = DEMO.read_text()
    at = text.index('"position": [') + len('"position": [')
    file = tmp_path / "huge.json"
    file.write_text(text[:at] + "9" * 5000 + text[text.index(",", at):])
    with pytest.raises(LayoutError, match=r"more than 4,300 digits at line \d+, column \d+"):
        load_layout(file)


def _grid_mesh(n: int) -> trimesh.Trimesh:
    """An open, single-sided grid of 2 n^2 triangles (a panel: made two-sided when loaded)."""
    xs, ys = np.meshgrid(np.arange(n + 1, dtype=float), np.arange(n + 1, dtype=float))
    vertices = np.c_[xs.ravel(), ys.ravel(), np.zeros(xs.size)]
    faces = []
    for i in range(n):
        for j in range(n):
            a = i * (n + 1) + j
            faces += [[a, a + 1, a + n + 2], [a, a + n + 2, a + n + 1]]
    return trimesh.Trimesh(vertices=vertices, faces=np.array(faces), process=False)


def test_mesh_file_tricks_are_clear_errors(tmp_path: Path) -> None:
    library = MeshLibrary(limits=MeshLimits(max_bytes=20_000, max_triangles=300))
    loop = tmp_path / "loop.stl"
    loop.symlink_to(loop)
    with pytest.raises(MeshError, match=r"'loop.stl': cannot be resolved"):
        library.resolve("loop.stl", tmp_path)
    with pytest.raises(MeshError, match=r"cannot be resolved \(File name too long\)"):
        library.resolve("m" * 300 + ".stl", tmp_path)
    # a glTF whose external buffer is over the byte limit: refused before anything is parsed
    (tmp_path / "big.bin").write_bytes(b"\0" * 50_000)
    (tmp_path / "big.gltf").write_text(json.dumps({"asset": {"version": "2.0"},
                                                   "buffers": [{"uri": "big.bin", "byteLength": 50_000}]}))
    with pytest.raises(MeshError, match=r"with its buffers and images is 50,\d+ bytes"):
        library.load(tmp_path / "big.gltf")
    (tmp_path / "out.gltf").write_text(json.dumps({"asset": {"version": "2.0"}, "buffers": [{"uri": "../x.bin"}]}))
    with pytest.raises(MeshError, match=r"buffer '../x.bin' is refused"):
        library.load(tmp_path / "out.gltf")
    # an OBJ with more face lines than the limit: refused from its face count, before parsing
    lines = ["v 0 0 0", "v 1 0 0", "v 0 1 0"] + ["f 1 2 3"] * 400
    (tmp_path / "many.obj").write_text("\n".join(lines) + "\n")
    with pytest.raises(MeshError, match=r"many.obj has 400 triangles; the limit is 300"):
        library.load(tmp_path / "many.obj")
    assert library.files_parsed == 0


def test_the_triangle_limit_counts_the_files_triangles_not_the_two_sided_copies(tmp_path: Path) -> None:
    panel = _grid_mesh(10)  # 200 triangles, open: drawn two-sided, each triangle once
    panel.export(tmp_path / "panel.stl")
    mesh = MeshLibrary(limits=MeshLimits(max_triangles=250)).load(tmp_path / "panel.stl")
    assert mesh.n_triangles == 200 and mesh.two_sided
    with pytest.raises(MeshError, match=r"panel.stl has 200 triangles; the limit is 150"):
        MeshLibrary(limits=MeshLimits(max_triangles=150)).load(tmp_path / "panel.stl")


def _collada_box_mm(path: Path) -> None:
    """A 100 x 200 x 300 mm box written by pycollada itself, in millimetres (<unit meter="0.001"/>)."""
    import collada
    from collada import geometry, material, scene, source

    mesh = collada.Collada()
    mesh.assetInfo.unitmeter = 0.001
    mesh.assetInfo.unitname = "millimeter"
    box = trimesh.creation.box((100.0, 200.0, 300.0))
    effect = material.Effect("effect0", [], "phong", diffuse=(0.8, 0.8, 0.8))
    mat = material.Material("material0", "steel", effect)
    mesh.effects.append(effect)
    mesh.materials.append(mat)
    verts = source.FloatSource("verts-array", np.asarray(box.vertices, dtype=float).ravel(), ("X", "Y", "Z"))
    geom = geometry.Geometry(mesh, "geometry0", "box", [verts])
    inputs = source.InputList()
    inputs.addInput(0, "VERTEX", "#verts-array")
    triset = geom.createTriangleSet(np.asarray(box.faces, dtype=int).ravel(), inputs, "materialref")
    geom.primitives.append(triset)
    mesh.geometries.append(geom)
    node = scene.Node("node0", children=[scene.GeometryNode(geom, [scene.MaterialNode("materialref", mat, inputs=[])])])
    mesh.scenes.append(scene.Scene("scene0", [node]))
    mesh.scene = mesh.scenes[0]
    mesh.write(str(path))


def test_collada_meshes_load_in_metres_and_entity_files_are_refused(tmp_path: Path) -> None:
    _collada_box_mm(tmp_path / "box.dae")
    mesh = MeshLibrary().load(tmp_path / "box.dae")
    lo, hi = mesh.bounds
    assert mesh.n_triangles == 12
    assert np.allclose(hi - lo, [0.1, 0.2, 0.3], atol=1e-6)  # millimetres in the file, metres in the plant
    bomb = ('<?xml version="1.0"?><!DOCTYPE COLLADA [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            '<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1"><asset>'
            '<contributor><author>&b;</author></contributor></asset></COLLADA>')
    (tmp_path / "bomb.dae").write_text(bomb)
    with pytest.raises(MeshError, match=r"bomb.dae: refused: the COLLADA file declares a DTD or entities"):
        MeshLibrary().load(tmp_path / "bomb.dae")
    (tmp_path / "notdae.dae").write_text("<svg/>")
    with pytest.raises(MeshError, match=r"not a COLLADA file"):
        MeshLibrary().load(tmp_path / "notdae.dae")


def test_segment_to_box_distance_is_exact_and_constant_time() -> None:
    """Against dense sampling along the segment (an independent, slow oracle); and a 1,000 km segment."""
    import time

    from viewer.model.checks import _distance_to_box, _segment_box_distance

    rng = random.Random(1)
    for _ in range(500):
        a = (rng.uniform(-5, 5), rng.uniform(-5, 5))
        b = (rng.uniform(-5, 5), rng.uniform(-5, 5))
        x0, y0 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        box = (x0, x0 + rng.uniform(0, 2), y0, y0 + rng.uniform(0, 2))
        n = 2000
        sampled = min(_distance_to_box(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n, box)
                      for k in range(n + 1))
        exact = _segment_box_distance(a, b, box)
        assert sampled - 0.01 <= exact <= sampled + 1e-12  # sampling overestimates by at most its spacing
    began = time.perf_counter()
    assert _segment_box_distance((-1e6, 3.0), (1e6, 3.0), (0.0, 1.0, 0.0, 1.0)) == pytest.approx(2.0)
    assert time.perf_counter() - began < 0.01


@pytest.mark.parametrize("file_type", ["glb", "gltf"])
def test_a_gltf_over_the_triangle_limit_is_refused_from_its_header(tmp_path: Path, file_type: str) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)  # 1,280 triangles
    path = tmp_path / f"ball.{file_type}"
    if file_type == "glb":
        path.write_bytes(trimesh.exchange.gltf.export_glb(trimesh.Scene(sphere)))
    else:
        files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(sphere))
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        (tmp_path / "model.gltf").rename(path)
    from viewer.geometry.mesh_library import declared_triangles

    assert declared_triangles(path, path.stat().st_size) == 1280  # what the file says, before any parse
    library = MeshLibrary(limits=MeshLimits(max_triangles=1000))
    with pytest.raises(MeshError, match=r"has 1,280 triangles; the limit is 1,000"):
        library.load(path)
    assert library.files_parsed == 0
    assert MeshLibrary().load(path).n_triangles == 1280


def test_an_obj_whose_vertex_lines_lost_their_numbers_is_refused(tmp_path: Path) -> None:
    """Found by the mesh fuzzer: trimesh reads "v 0.5" lines as 1-D points, which then overflowed its
    vertex merging (OverflowError). A clear refusal instead."""
    (tmp_path / "short.obj").write_text("v 0.5\nv 1.0\nv 0.25\nf 1 2 3\n")
    with pytest.raises(MeshError, match=r"short.obj: its vertices are not 3D points"):
        MeshLibrary().load(tmp_path / "short.obj")
    (tmp_path / "far.obj").write_text("v 0 0 0\nv 1e9 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshError, match=r"far.obj: a vertex lies 1e\+09 units from the origin"):
        MeshLibrary().load(tmp_path / "far.obj")


def test_free_spot_is_the_nearest_clear_place_on_the_floor():
    from viewer.model.checks import free_spot

    taken = {"A": (-1.0, 1.0, -1.0, 1.0)}  # a 2 m square at the origin
    extent = (-0.5, 0.5, -0.5, 0.5)  # a 1 m square around its position
    # Half a metre clear of A: the centre must be 1.0 m (0.5 + 0.5) beyond A's edge, 2.0 m from the origin.
    assert free_spot(taken, extent, (0.0, 0.0), clearance=0.5, step=0.5) == (-2.0, 0.0)
    assert free_spot(taken, extent, (5.0, 5.0), clearance=0.5) == (5.0, 5.0)  # already free: stays
    # The floor keeps it in: x in [-1.5, 3] leaves only the right-hand side of A.
    floor = {"origin": [-1.5, -1.0], "size": [4.5, 2.0]}
    assert free_spot(taken, extent, (0.0, 0.0), floor, clearance=0.5) == (2.0, 0.0)
    assert free_spot(taken, (-3.0, 3.0, -3.0, 3.0), (0.0, 0.0), floor) is None  # larger than the floor
