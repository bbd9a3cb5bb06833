"""Level of detail for big robot meshes: an overview version drawn when the camera is far away.

A published arm's visuals can carry hundreds of thousands of triangles; from across the plant they cover
a few hundred pixels. Vertex clustering (Rossignac and Borrel's: one representative per cell of a grid,
faces that collapse dropped) makes the overview version. Each representative is one of the robot's own
vertices and clusters never span two links, so the overview faces index the plant's vertex buffer and move
with every pose exactly like the full faces: no second copy of anything to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOD_MIN_TRIANGLES = 20_000  # a robot drawn with more gets an overview version
LOD_CELLS = 40  # grid cells along the robot's largest extent


@dataclass(frozen=True)
class OverviewMesh:
    """A robot's overview faces: ``faces`` index the plant's vertices, ``source`` is each one's original face
    (for its colour and for picking)."""

    faces: np.ndarray  # (K, 3) int32
    source: np.ndarray  # (K,) int64, global face index


def cluster_decimate(vertices: np.ndarray, faces: np.ndarray, groups: np.ndarray,
                     cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Faces over representative vertices and the index of each kept face in ``faces``.

    ``vertices`` (N, 3), ``faces`` (M, 3) into them, ``groups`` (N,) a label per vertex (a robot's link):
    vertices of one cell and one group collapse onto the first of them; a face whose corners collapse onto
    fewer than three vertices is dropped, and so is a second face on the same three.
    """
    keys = np.c_[np.floor(vertices / cell).astype(np.int64), groups.astype(np.int64)]
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    representative = first[inverse.ravel()]
    collapsed = representative[faces]
    keep = (collapsed[:, 0] != collapsed[:, 1]) & (collapsed[:, 1] != collapsed[:, 2]) & \
        (collapsed[:, 0] != collapsed[:, 2])
    kept, source = collapsed[keep], np.flatnonzero(keep)
    _, unique = np.unique(np.sort(kept, axis=1), axis=0, return_index=True)
    unique.sort()
    return kept[unique].astype(np.int32), source[unique]


def overview_mesh(vertices: np.ndarray, faces: np.ndarray, face_start: int, vertex_start: int,
                  frame_of_vertex: np.ndarray) -> OverviewMesh | None:
    """The overview version of one robot (its faces ``faces`` from global index ``face_start``, its vertices
    from ``vertex_start``), or None when it is small enough to draw whole or clustering would not help."""
    if len(faces) < LOD_MIN_TRIANGLES:
        return None
    local_faces = faces - vertex_start
    points = vertices[vertex_start:vertex_start + len(frame_of_vertex)].astype(np.float64)
    extent = float(np.ptp(points, axis=0).max()) or 1.0
    kept, source = cluster_decimate(points, local_faces, frame_of_vertex, extent / LOD_CELLS)
    if len(kept) > len(faces) // 2:
        return None
    return OverviewMesh(kept + np.int32(vertex_start), source + face_start)
