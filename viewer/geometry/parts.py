"""What robots and equipment are drawn from: primitive meshes, a placed :class:`Part`, the built-in arm's home.

Shared by the plant builder (``plant``) and the kinematics (``kinematics``), which both place parts in link
frames; neither imports the other through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from viewer.geometry.mesh_library import MeshData

ROBOT_HOME_DEG = (0.0, -25.0, 35.0, 0.0, 40.0, 0.0)


def rotation_matrix(rotation_deg: tuple[float, float, float]) -> np.ndarray:
    """3x3 rotation for degrees about fixed x, then y, then z (R = Rz · Ry · Rx)."""
    rx, ry, rz = np.radians(rotation_deg)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return r_z @ r_y @ r_x


def _translate(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def _rot(axis: str, deg: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation_matrix(
        (deg if axis == "x" else 0.0, deg if axis == "y" else 0.0, deg if axis == "z" else 0.0)
    )
    return m


@lru_cache(maxsize=256)
def _box(lx: float, ly: float, lz: float) -> MeshData:
    """A box standing on z = 0, centred on x and y."""
    import trimesh

    mesh = trimesh.creation.box(extents=(lx, ly, lz))
    mesh.apply_translation((0, 0, lz / 2))
    return MeshData(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32))


@lru_cache(maxsize=256)
def _cylinder(radius: float, height: float, sections: int = 16) -> MeshData:
    """A cylinder standing on z = 0 along +z."""
    import trimesh

    mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    mesh.apply_translation((0, 0, height / 2))
    return MeshData(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32))


@lru_cache(maxsize=64)
def _sphere(radius: float, subdivisions: int = 1) -> MeshData:
    """A sphere resting on z = 0."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    mesh.apply_translation((0, 0, radius))
    return MeshData(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32))


@lru_cache(maxsize=64)
def _cone(radius: float, height: float) -> MeshData:
    import trimesh

    mesh = trimesh.creation.cone(radius=radius, height=height, sections=16)
    return MeshData(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32))


@dataclass(frozen=True)
class Part:
    """A mesh placed in its component's frame, with a brightness factor for two-tone equipment."""

    mesh: MeshData
    transform: np.ndarray
    shade: float = 1.0
    link: int = 0  # robot link index (0 = fixed); used to animate arms
