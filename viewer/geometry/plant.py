"""Plant geometry as numpy arrays: each component's triangles, placed, coloured and merged.

Render-free (numpy and trimesh only), so it runs in a worker thread while the
GUI shows progress, and tests check it without a display. The scene wraps the
arrays in one VTK poly-data: on software OpenGL a thousand separate actors cost
~40 µs each per frame, a merged mesh almost nothing (shared FIELD_NOTES).

Conventions: z is up; a component's ``position`` is the centre of its footprint
on the floor; built-in shapes sit on z = 0 of their local frame and conveyors
run along local +x. ``rotation`` is degrees about fixed x, then y, then z.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from viewer.geometry.kinematics import (
    ARM6_FRAME_LINKS,
    KinematicChain,
    KinematicsError,
    arm6_chain,
    urdf_visual_parts,
)
from viewer.geometry.lod import OverviewMesh, overview_mesh
from viewer.geometry.mesh_library import MeshData, MeshLibrary
from viewer.geometry.parts import (
    ROBOT_HOME_DEG,
    Part,
    _box,
    _cone,
    _cylinder,
    _rot,
    _sphere,
    _translate,
    rotation_matrix,
)
from viewer.geometry.urdf import UrdfError, find_package, load_urdf
from viewer.model.errors import Cancelled, MeshError
from viewer.model.layout import Component, Layout

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]

def component_matrix(comp: Component) -> np.ndarray:
    """4x4 local-to-world transform: translate · rotate · scale."""
    m = np.eye(4)
    m[:3, :3] = rotation_matrix(comp.rotation) @ np.diag(comp.scale)
    m[:3, 3] = comp.position
    return m


def primitive_parts(spec: dict) -> list[Part]:
    """The part for a layout ``primitive`` object."""
    kind = spec["type"]
    if kind == "box":
        lx, ly, lz = spec.get("size", (1.0, 1.0, 1.0))
        return [Part(_box(float(lx), float(ly), float(lz)), np.eye(4))]
    if kind == "cylinder":
        return [Part(_cylinder(float(spec.get("radius", 0.5)), float(spec.get("height", 1.0))), np.eye(4))]
    if kind == "sphere":
        return [Part(_sphere(float(spec.get("radius", 0.5))), np.eye(4))]
    if kind == "cone":
        return [Part(_cone(float(spec.get("radius", 0.5)), float(spec.get("height", 1.0))), np.eye(4))]
    raise ValueError(f"unknown primitive {kind!r}")


def conveyor_parts(section: dict) -> list[Part]:
    """A belt on legs along local +x, centred on the component's position."""
    length = float(section.get("length", 4.0))
    width = float(section.get("width", 0.6))
    top = 0.8
    parts = [
        Part(_box(length, width, 0.06), _translate(z=top - 0.06), shade=1.25),  # belt
        Part(_box(length, 0.05, 0.12), _translate(y=width / 2 + 0.025, z=top - 0.1)),  # side rails
        Part(_box(length, 0.05, 0.12), _translate(y=-width / 2 - 0.025, z=top - 0.1)),
    ]
    n_legs = max(2, min(12, int(length / 2.0) + 1))
    for x in np.linspace(-length / 2 + 0.1, length / 2 - 0.1, n_legs):
        parts.append(Part(_box(0.06, width, top - 0.1), _translate(x=float(x)), shade=0.8))
    return parts


def buffer_parts(section: dict) -> list[Part]:
    """A two-shelf rack with totes; a larger capacity draws a longer rack."""
    capacity = int(section.get("capacity", 10))
    length = float(np.clip(0.6 + 0.06 * capacity, 1.0, 4.0))
    depth = 0.8
    parts = [
        Part(_box(length, depth, 0.05), _translate(z=0.4)),
        Part(_box(length, depth, 0.05), _translate(z=0.95)),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(Part(_box(0.05, 0.05, 1.0), _translate(sx * (length / 2 - 0.03), sy * (depth / 2 - 0.03)),
                              shade=0.75))
    n_totes = max(1, int(length / 0.45))
    for i in range(n_totes):
        x = -length / 2 + (i + 0.5) * length / n_totes
        parts.append(Part(_box(0.36, 0.55, 0.22), _translate(x=x, z=0.45), shade=1.2))
    return parts


def robot_link_transforms(joints_deg: tuple[float, ...], reach: float = 1.6) -> list[np.ndarray]:
    """Frames of the built-in six-axis arm's links (base, turret, upper arm, forearm, wrist, flange): its
    kinematic chain's (:func:`~viewer.geometry.kinematics.arm6_chain`), the one forward kinematics there is."""
    chain = _arm6(float(reach))
    frames = chain.forward(np.radians(np.asarray(joints_deg, dtype=float)))
    return list(frames[chain.link_indices(ARM6_FRAME_LINKS)])


@lru_cache(maxsize=16)
def _arm6(reach: float) -> KinematicChain:
    return arm6_chain(reach)


def robot_parts(section: dict) -> list[Part]:
    """The built-in six-axis arm ('arm6') drawn from primitives at its pose."""
    reach = float(section.get("reach", 1.6))
    joints = tuple(float(j) for j in section.get("joints", ROBOT_HOME_DEG))
    k = reach / 1.6
    upper, fore = 0.75 * k, 0.7 * k
    frames = robot_link_transforms(joints, reach)
    lay = _rot("y", 90)  # turns a +z primitive along +x
    return [
        Part(_cylinder(0.3, 0.45, 12), frames[0], shade=0.55, link=0),  # pedestal
        Part(_cylinder(0.24, 0.3, 12), frames[1], shade=1.0, link=1),  # turret
        Part(_box(0.22, 0.24, upper + 0.1), frames[2] @ _translate(z=-0.05), link=2),  # upper arm
        Part(_cylinder(0.13, 0.3, 10), frames[3] @ _rot("x", 90) @ _translate(z=-0.15), shade=0.8, link=3),  # elbow
        Part(_box(fore, 0.16, 0.16), frames[3] @ _translate(x=fore / 2, z=-0.08), link=3),  # forearm
        Part(_sphere(0.1, 0), frames[4] @ _translate(z=-0.1), shade=0.8, link=4),  # wrist
        Part(_cylinder(0.06, 0.12, 8), frames[5] @ lay, shade=0.6, link=5),  # flange
        Part(_box(0.05, 0.16, 0.12), frames[5] @ _translate(x=0.15, z=-0.06), shade=0.5, link=5),  # gripper
    ]


def path_parts(section: dict) -> list[Part]:
    """A flat ribbon (floor marking) along the path's points, just above the floor."""
    points = np.asarray(section["points"], dtype=np.float64)
    if section.get("closed"):
        points = np.vstack([points, points[:1]])
    width = float(section.get("width", 0.12))
    verts, faces = [], []
    for a, b in itertools.pairwise(points):
        d = b - a
        n = np.hypot(*d)
        if n == 0:
            continue
        off = np.array([-d[1], d[0]]) / n * width / 2
        a0, b0 = a - d / n * width / 2, b + d / n * width / 2  # overlap the corners
        base = len(verts)
        for p in (a0 + off, a0 - off, b0 - off, b0 + off):
            verts.append((p[0], p[1], 0.012))
        faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    mesh = MeshData(np.asarray(verts, np.float32).reshape(-1, 3), np.asarray(faces, np.int32).reshape(-1, 3))
    return [Part(mesh, np.eye(4))]


def default_parts(comp: Component) -> list[Part]:
    """Built-in geometry for a component that names neither a mesh nor a primitive."""
    kind = comp.kind
    if kind == "conveyor":
        return conveyor_parts(comp.section("conveyor"))
    if kind == "buffer":
        return buffer_parts(comp.section("buffer"))
    if kind == "robot":
        return robot_parts(comp.section("robot"))
    if kind == "agv-path":
        return path_parts(comp.section("path"))
    if kind == "sensor":
        return [Part(_cylinder(0.06, 0.14, 8), np.eye(4))]
    if kind in ("source", "sink"):
        return [
            Part(_box(1.2, 0.8, 0.14), np.eye(4), shade=0.8),
            Part(_box(1.0, 0.7, 0.6), _translate(z=0.14), shade=1.15),
        ]
    if kind == "station":
        return [Part(_box(2.0, 1.6, 1.8), np.eye(4))]
    return [Part(_box(1.0, 1.0, 1.0), np.eye(4))]


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` -> (r, g, b) in 0..255."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@dataclass
class RobotRig:
    """What it takes to move a built-in arm: its vertices in their link frames.

    The arm's vertices sit at ``[vertex_start, vertex_stop)`` of the merged plant; posing it
    rewrites that slice as ``world · link_frame(q) · local`` (vectorised, a few µs per arm).
    """

    component_index: int
    world: np.ndarray  # (4, 4) the component's placement
    chain: object  # viewer.geometry.kinematics.KinematicChain (imported lazily: kinematics imports this module)
    frame_links: np.ndarray  # chain link index of each Part.link number
    vertex_start: int
    vertex_stop: int
    local: np.ndarray  # (n, 3) vertices in their link's frame
    frame_of_vertex: np.ndarray  # (n,) index into the six link frames
    home_deg: tuple[float, ...]
    _reach: float | None = None

    @property
    def reach(self) -> float:
        """How far from its base axis (horizontally) any part of the robot gets over its joint ranges, in
        metres: sampled at 2,000 poses within the limits (and home), on the link origins and each link's
        extreme vertices. Computed once."""
        if self._reach is None:
            self._reach = sampled_reach(self.chain, self.frame_links, self.local, self.frame_of_vertex,
                                        np.radians(self.home_deg) if len(self.home_deg) else None)
        return self._reach


REACH_POSES = 2000


def sampled_reach(chain: object, frame_links: np.ndarray, local: np.ndarray, frame_of_vertex: np.ndarray,
                  home: np.ndarray | None = None) -> float:
    """The horizontal reach of a posable robot (see :attr:`RobotRig.reach`)."""
    lower = np.asarray(chain.lower, dtype=float)  # type: ignore[attr-defined]
    upper = np.asarray(chain.upper, dtype=float)  # type: ignore[attr-defined]
    lower = np.where(np.isfinite(lower), lower, -np.pi)  # continuous joints: a full turn
    upper = np.where(np.isfinite(upper), upper, np.pi)
    rng = np.random.default_rng(0)
    q = rng.uniform(lower, upper, size=(REACH_POSES, len(lower)))
    if home is not None and len(home) == len(lower):
        q = np.vstack([q, home])
    frames = chain.forward_batch(q)  # type: ignore[attr-defined]  # (poses, links, 4, 4)
    reach = float(np.hypot(frames[:, :, 0, 3], frames[:, :, 1, 3]).max())
    # the parts themselves stick out past their frames (a gripper past the flange): each link's extremes
    for f in np.unique(frame_of_vertex):
        pts = local[frame_of_vertex == f]
        extremes = np.unique(np.concatenate([pts.argmin(axis=0), pts.argmax(axis=0)]))
        pts = np.c_[pts[extremes], np.ones(len(extremes))]  # (k, 4)
        link = frames[:, int(frame_links[f])]  # (poses, 4, 4)
        world = np.einsum("pij,kj->pki", link, pts)
        reach = max(reach, float(np.hypot(world[..., 0], world[..., 1]).max()))
    return reach


@dataclass
class PlantGeometry:
    """All components merged: one triangle soup with per-face component index and colour."""

    vertices: np.ndarray  # (N, 3) float32, world metres
    faces: np.ndarray  # (M, 3) int32
    face_component: np.ndarray  # (M,) int32, index into ``component_ids``
    face_rgb: np.ndarray  # (M, 3) uint8, normal-state colours
    component_ids: list[str]
    face_ranges: np.ndarray  # (K, 2) int64, [start, stop) faces of each component
    bounds: np.ndarray  # (K, 6) xmin, xmax, ymin, ymax, zmin, zmax of each component
    problems: list[str] = field(default_factory=list)
    rigs: dict[str, RobotRig] = field(default_factory=dict)
    face_two_sided: np.ndarray | None = None  # (M,) bool: faces of open meshes, drawn without culling
    overview: dict[str, OverviewMesh] = field(default_factory=dict)  # big robots' far-away versions (lod.py)

    @property
    def n_triangles(self) -> int:
        """Triangles in the whole plant."""
        return int(self.faces.shape[0])

    def plant_bounds(self) -> np.ndarray:
        """xmin, xmax, ymin, ymax, zmin, zmax of everything."""
        if len(self.vertices) == 0:
            return np.array([-1.0, 1.0, -1.0, 1.0, 0.0, 1.0])
        lo, hi = self.vertices.min(axis=0), self.vertices.max(axis=0)
        return np.array([lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]], dtype=float)

    def component_center(self, index: int) -> np.ndarray:
        """Centre of a component's bounding box."""
        b = self.bounds[index]
        return np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])


def component_parts(comp: Component, library: MeshLibrary, layout_dir: Path) -> list[Part]:
    """The parts drawn for one component, in its local frame."""
    if comp.mesh is not None:
        mesh = library.load(library.resolve(comp.mesh, layout_dir))
        return [Part(mesh, np.eye(4))]
    if comp.primitive is not None:
        return primitive_parts(comp.primitive)
    return default_parts(comp)


def _bone(vector: np.ndarray, thickness: float) -> tuple[MeshData, np.ndarray]:
    """A box from the origin to ``vector`` (a link's length), as a mesh and its placement."""
    length = float(np.linalg.norm(vector))
    z = vector / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    return _box(thickness, thickness, length), m


def chain_parts(chain: object, home_q: np.ndarray, joints: list[dict], thickness: float = 0.12) -> list[Part]:
    """Geometry for a layout's own joint-list arm: a pedestal, a bone per link offset, a knuckle per joint."""
    frames = chain.forward(home_q)  # type: ignore[attr-defined]
    index_of = {name: i for i, name in enumerate(chain.link_names)}  # type: ignore[attr-defined]
    parts = [Part(_cylinder(thickness * 1.6, 0.05, 12), frames[0], shade=0.55, link=0)]
    previous_child = chain.link_names[0]  # type: ignore[attr-defined]
    for i, joint in enumerate(joints):
        parent = joint.get("parent", previous_child)
        child = joint.get("child", f"{joint['name']}_link")
        previous_child = child
        p, c = index_of[parent], index_of[child]
        offset = np.asarray(joint.get("xyz", (0.0, 0.0, 0.0)), dtype=float)
        if np.linalg.norm(offset) > 1e-6:
            mesh, placement = _bone(offset, thickness * (0.85 ** i))
            parts.append(Part(mesh, frames[p] @ placement, shade=1.0, link=p))
        if joint.get("type", "revolute") != "fixed":
            parts.append(Part(_sphere(thickness * 0.75 * (0.85 ** i), 0), frames[c] @ _translate(z=-thickness * 0.6),
                              shade=0.75, link=c))
    return parts


def package_roots(robot: dict, layout_dir: Path) -> list[Path]:
    """Where ``package://`` looks: the layout's folder, then each of ``robot.packages`` (relative to it)."""
    roots = [Path(layout_dir)]
    for folder in robot.get("packages", ()):
        text = str(folder).replace("\\", "/")
        if "://" in text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
            raise MeshError(f"robot.packages: {folder!r}: give a folder relative to the layout")
        roots.append(Path(layout_dir) / text)
    return roots


def _urdf_path(reference: str, library: MeshLibrary, layout_dir: Path, roots: list[Path]) -> Path:
    """The URDF file: relative to the layout, or ``package://PKG/...`` in one of the package roots."""
    if not reference.lower().startswith("package://"):
        return library.resolve(reference, layout_dir, suffixes=(".urdf",))
    name, _, rest = reference[len("package://"):].strip("/").partition("/")
    found = find_package(name, roots)
    if found is None:
        raise MeshError(f"robot.urdf {reference!r}: no package {name!r} (a folder with a package.xml naming it) "
                        f"in {', '.join(str(r) for r in roots)}; name its folder in robot.packages")
    folder, root = found
    return library.resolve(str((folder / rest).relative_to(root)), root, suffixes=(".urdf",))


def robot_rig_parts(comp: Component, library: MeshLibrary, layout_dir: Path) -> tuple[list[Part], tuple]:
    """A posable robot's parts and (kinematic chain, frame link indices, home pose in degrees).

    ``robot.urdf`` names a URDF file beside the layout (its links' visuals are drawn); otherwise the
    built-in six-axis arm. Problems in the URDF are reported as :class:`MeshError` with the reason.
    """

    robot = comp.section("robot")
    if "urdf" in robot:
        try:
            roots = package_roots(robot, layout_dir)
            urdf = load_urdf(_urdf_path(robot["urdf"], library, layout_dir, roots), package_roots=roots)
            chain = KinematicChain.from_urdf(urdf)
            home = robot.get("joints") or list(chain.to_layout_units(chain.home))
            if len(home) != chain.n_joints:
                raise MeshError(f"robot.joints has {len(home)} values; {urdf.name} has {chain.n_joints} joints")
            parts = urdf_visual_parts(urdf, chain, library, chain.from_layout_units(home))
            if not parts:  # a URDF without visuals (collision-only, or kinematics only): draw its skeleton
                joints = [{"name": j.name, "parent": j.parent, "child": j.child, "xyz": list(j.xyz), "type": j.type}
                          for j in urdf.joints]
                parts = chain_parts(chain, chain.from_layout_units(home), joints, thickness=0.05)
                log.info("%s: %s has no visual geometry; drawing its joint skeleton", comp.id, urdf.name)
        except (UrdfError, KinematicsError) as exc:
            raise MeshError(str(exc)) from None
        return parts, (chain, np.arange(chain.n_links), home)
    if "chain" in robot:
        try:
            chain = KinematicChain.from_joint_list(robot["chain"], name=comp.id, home_deg=robot.get("joints"))
        except KinematicsError as exc:
            raise MeshError(f"robot.chain: {exc}") from None
        home = list(robot.get("joints") or chain.to_layout_units(chain.home))
        if len(home) != chain.n_joints:
            raise MeshError(f"robot.joints has {len(home)} values; the chain has {chain.n_joints} joints")
        parts = chain_parts(chain, chain.from_layout_units(home), robot["chain"])
        return parts, (chain, np.arange(chain.n_links), home)
    chain = arm6_chain(float(robot.get("reach", 1.6)))
    home = [float(j) for j in robot.get("joints", ROBOT_HOME_DEG)]
    return robot_parts(robot), (chain, chain.link_indices(ARM6_FRAME_LINKS), home)


def build_plant_geometry(
    layout: Layout,
    layout_dir: Path,
    library: MeshLibrary | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    strict: bool = True,
) -> PlantGeometry:
    """Place and merge every component's geometry.

    Parameters
    ----------
    layout, layout_dir
        The layout and the folder its mesh paths are relative to.
    library
        Mesh cache to use (a fresh one if ``None``).
    progress
        Called with (fraction 0..1, message) as components are built.
    cancel
        When set, building stops with :class:`~viewer.model.errors.Cancelled`.
    strict
        If true a bad mesh raises :class:`MeshError`; if false the component is drawn as a
        placeholder box and the reason is kept in ``problems``.
    """
    library = library or MeshLibrary()
    n = len(layout.components)
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    face_comp: list[np.ndarray] = []
    face_two_sided: list[np.ndarray] = []
    face_rgb: list[np.ndarray] = []
    ranges = np.zeros((n, 2), dtype=np.int64)
    bounds = np.zeros((n, 6), dtype=float)
    problems: list[str] = []
    rigs: dict[str, RobotRig] = {}
    n_verts = n_faces = 0
    step = max(1, n // 50)
    for index, comp in enumerate(layout.components):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if progress is not None and index % step == 0:
            progress(index / max(n, 1), f"Building {comp.display_name} ({index + 1}/{n})")
        rig = None
        try:
            if comp.kind == "robot" and comp.mesh is None and comp.primitive is None:
                parts, rig = robot_rig_parts(comp, library, layout_dir)
            else:
                parts = component_parts(comp, library, layout_dir)
        except MeshError as exc:
            if strict:
                raise MeshError(f"component {comp.id!r}: {exc}") from None
            problems.append(f"component {comp.id!r}: {exc}")
            parts = [Part(_box(1.0, 1.0, 1.0), np.eye(4))]
        planned = n_faces + sum(part.mesh.n_triangles for part in parts)
        if planned > library.limits.max_plant_triangles:
            raise MeshError(
                f"the plant needs more than {library.limits.max_plant_triangles:,} triangles (reached at component "
                f"{comp.id!r}, {index + 1} of {n}); use simpler meshes or split the layout"
            )
        world = component_matrix(comp)
        rgb = np.array(hex_to_rgb(comp.display_color), dtype=float)
        start = n_faces
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        rig_home: np.ndarray | None = None
        rig_local: list[np.ndarray] = []
        rig_frame: list[np.ndarray] = []
        vertex_start = n_verts
        if rig is not None:
            chain, frame_links, home_deg = rig
            rig_home = chain.forward(chain.from_layout_units(home_deg))[frame_links]
        for part in parts:
            m = world @ part.transform
            if rig_home is not None:
                local = np.linalg.inv(rig_home[part.link]) @ part.transform
                rig_local.append(part.mesh.vertices.astype(np.float64) @ local[:3, :3].T + local[:3, 3])
                rig_frame.append(np.full(len(part.mesh.vertices), part.link, dtype=np.int32))
            v = part.mesh.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
            verts.append(v.astype(np.float32))
            faces.append(part.mesh.faces + n_verts)
            k = part.mesh.n_triangles
            face_comp.append(np.full(k, index, dtype=np.int32))
            face_two_sided.append(np.full(k, part.mesh.two_sided, dtype=bool))
            shaded = np.clip(rgb * part.shade, 0, 255).astype(np.uint8)
            face_rgb.append(np.broadcast_to(shaded, (k, 3)))
            n_verts += len(v)
            n_faces += k
            if len(v):
                lo = np.minimum(lo, v.min(axis=0))
                hi = np.maximum(hi, v.max(axis=0))
        ranges[index] = (start, n_faces)
        if rig is not None and rig_local:
            rigs[comp.id] = RobotRig(index, world, rig[0], rig[1], vertex_start, n_verts, np.concatenate(rig_local),
                                     np.concatenate(rig_frame), tuple(float(v) for v in rig[2]))
        if np.isfinite(lo).all():
            bounds[index] = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        else:
            p = comp.position
            bounds[index] = (p[0], p[0], p[1], p[1], p[2], p[2])
    if progress is not None:
        progress(1.0, f"Built {n} components")
    all_vertices = np.concatenate(verts) if verts else np.empty((0, 3), np.float32)
    all_faces = np.concatenate(faces).astype(np.int32) if faces else np.empty((0, 3), np.int32)
    return PlantGeometry(
        vertices=all_vertices,
        faces=all_faces,
        face_component=np.concatenate(face_comp) if face_comp else np.empty(0, np.int32),
        face_rgb=np.ascontiguousarray(np.concatenate(face_rgb)) if face_rgb else np.empty((0, 3), np.uint8),
        component_ids=layout.ids(),
        face_ranges=ranges,
        bounds=bounds,
        problems=problems,
        rigs=rigs,
        face_two_sided=np.concatenate(face_two_sided) if face_two_sided else np.empty(0, bool),
        overview=_overviews(rigs, ranges, all_vertices, all_faces),
    )


def _overviews(rigs: dict[str, RobotRig], ranges: np.ndarray, vertices: np.ndarray,
               faces: np.ndarray) -> dict[str, OverviewMesh]:
    """The far-away versions of the robots big enough to need one (viewer.geometry.lod)."""
    out = {}
    for component_id, rig in rigs.items():
        start, stop = ranges[rig.component_index]
        lod = overview_mesh(vertices, faces[start:stop], int(start), rig.vertex_start, rig.frame_of_vertex)
        if lod is not None:
            out[component_id] = lod
    return out
