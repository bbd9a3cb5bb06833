"""Layout fuzzing shared by the test (a few hundred cases) and benchmarks/fuzz_layouts.py (10,000).

Documents are the demo plant (a small cut of it, so a geometry build takes milliseconds) mutated by
hypothesis: a value anywhere replaced by an extreme number, a path trick, a wrong type or a nested
structure; a key deleted or added; a component duplicated. Each goes through what opening a file does:
parse and validate, the layout checks, the plant geometry (meshes loaded for real), the simulation model.
An outcome is fine when it is a usable layout or a LayoutError / MeshError (a clear error with where and
why); anything else is a crash.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "layouts" / "demo_plant" / "demo_plant.json"

TRICKY_STRINGS = ["../../etc/passwd", "/abs/mesh.stl", "m" * 300 + ".stl", "asset:../../x.stl", "package://x/y.stl",
                  "C:\\mesh.stl", "\x00", "mesh.stl", "file:///etc/passwd", "http://example.com/x.stl", "", " ",
                  "asset:station_cnc.stl", "ü.glb", "{1}", "$.x", "NaN", "1e308", "-0", "ST10", "robot"]
EXTREME_NUMBERS = [10**400, -(10**400), 2**63, 2**64, -(2**63), 1e308, -1e308, 5e-324, 0.0, -0.0, 1e-300, 1e12,
                   1e13, 0, -1, 1, 3]

numbers = st.one_of(st.sampled_from(EXTREME_NUMBERS), st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(min_value=-(10**6), max_value=10**6))
leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(EXTREME_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=12), st.sampled_from(TRICKY_STRINGS),
)
json_values = st.recursive(leaves, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=6)


def small_demo() -> dict[str, Any]:
    """The demo plant cut to a few components of each kind, with the flow among them."""
    doc = json.loads(DEMO.read_text())
    keep, seen = [], {}
    for comp in doc["components"]:
        kind = comp.get("kind")
        if seen.get(kind, 0) < 2 and comp.get("parent") is None:
            keep.append(comp)
            seen[kind] = seen.get(kind, 0) + 1
    ids = {c["id"] for c in keep}
    doc["components"] = keep
    doc["flow"] = [f for f in doc.get("flow", []) if f.get("from") in ids and f.get("to") in ids]
    doc["bindings"] = [b for b in doc.get("bindings", []) if b.get("component") in ids]
    return doc


def paths_of(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths_of(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths_of(item, (*path, i))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The small demo with one to three mutations."""
    doc = copy.deepcopy(base if base is not None else small_demo())
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(doc)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        operation = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "duplicate"]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if not path:
            continue
        key = path[-1]
        if operation == "replace":
            old = parent[key]
            if isinstance(old, int | float) and not isinstance(old, bool) and draw(st.booleans()):
                parent[key] = draw(numbers)  # the same type, a wild value: gets past the schema, into the code
            elif isinstance(old, str) and draw(st.booleans()):
                parent[key] = draw(st.sampled_from(TRICKY_STRINGS) | st.text(max_size=12))
            else:
                parent[key] = draw(json_values)
        elif operation == "delete":
            del parent[key]
        elif operation == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(["size", "scale", "mesh", "width", "reach", "points", "x"]))] = \
                draw(json_values)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return doc


def open_document(doc: Any, folder: Path) -> str:
    """What opening the document as a file does; the outcome ("ok", "refused", ...). Raises on a crash."""
    from viewer.geometry.mesh_library import MeshLibrary, MeshLimits
    from viewer.geometry.plant import build_plant_geometry
    from viewer.geometry.reach import robot_reaches
    from viewer.model.checks import check_layout, footprints_from_geometry
    from viewer.model.errors import LayoutError, MeshError
    from viewer.model.layout_io import load_layout
    from viewer.sim.model import SimModelError, model_from_layout

    path = folder / "fuzz.json"
    try:
        path.write_text(json.dumps(doc))
    except ValueError:  # an integer past Python's digit limit cannot even be written: nothing to open
        return "unwritable"
    try:
        layout = load_layout(path)
    except LayoutError:
        return "refused"
    library = MeshLibrary(limits=MeshLimits(max_bytes=8 * 2**20, max_triangles=200_000))
    try:
        geometry = build_plant_geometry(layout, DEMO.parent, library, strict=False)
    except (LayoutError, MeshError):
        return "refused"
    check_layout(layout, footprints_from_geometry(geometry), robot_reaches(geometry))
    try:
        model_from_layout(layout)
    except SimModelError:
        return "no simulation"
    return "ok"


MESH_KINDS = ("stl", "obj", "ply", "off", "glb", "gltf", "dae")


def mesh_seeds(folder: Path) -> dict[str, bytes]:
    """Small valid files of every format the library reads, written by trimesh (the mutation's start)."""
    import trimesh

    box = trimesh.creation.box((1.0, 2.0, 0.5))
    out = {
        "stl": trimesh.exchange.stl.export_stl(box),
        "obj": trimesh.exchange.obj.export_obj(box).encode(),
        "ply": trimesh.exchange.ply.export_ply(box),
        "off": trimesh.exchange.off.export_off(box).encode(),
        "glb": trimesh.exchange.gltf.export_glb(trimesh.Scene(box)),
        "dae": trimesh.exchange.dae.export_collada(box),
    }
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(box))
    for name, data in files.items():
        if not name.endswith(".gltf"):
            (folder / name).write_bytes(data)  # its buffer, beside it
    out["gltf"] = files["model.gltf"]
    return out


@st.composite
def mutated_mesh_bytes(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A format and a valid file of it with bytes flipped, cut, inserted, or a number in it replaced."""
    kind = draw(st.sampled_from(MESH_KINDS))
    data = bytearray(seeds[kind])
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "cut", "insert", "number"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at:at] = str(draw(st.sampled_from(EXTREME_NUMBERS))).encode()
    return kind, bytes(data)


def open_mesh(kind: str, data: bytes, folder: Path) -> str:
    """Load one mutated mesh file as a layout's mesh would be: "ok" or "refused"; raises on a crash."""
    from viewer.geometry.mesh_library import MeshLibrary, MeshLimits
    from viewer.model.errors import MeshError

    path = folder / f"fuzz.{kind}"
    path.write_bytes(data)
    library = MeshLibrary(asset_dir=folder, limits=MeshLimits(max_bytes=4 * 2**20, max_triangles=200_000))
    try:
        mesh = library.load(library.resolve(path.name, folder))
    except MeshError:
        return "refused"
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    return "ok"
