"""Turns a layout and its merged geometry into VTK actors on a PyVista plotter.

Works on any plotter: the off-screen one of ``twin-viewer render`` and the Qt
widget of the main window alike, because it only touches the renderer and
camera. It knows VTK, not widgets.

Design, measured on software OpenGL (shared FIELD_NOTES): the whole plant is
one poly-data with a per-face component index and an RGB colour array. One
draw call keeps a 1,000-component plant fast; recolouring a component (state,
selection) rewrites its slice of the colour array and marks it modified.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import numpy as np
import pyvista as pv
from vtkmodules.vtkRenderingCore import vtkCellPicker, vtkCoordinate

from viewer.geometry.plant import PlantGeometry, hex_to_rgb
from viewer.model.layout import Layout
from viewer.scene.theme import DARK, SceneTheme

# the plant's actors over the shared points: closed and open meshes, then big robots' full meshes (the same
# two kinds) shown only near them; "plant_overview" holds those robots' overview versions
PLANT_ACTORS = ("plant", "plant_open", "plant_detail", "plant_detail_open")
LOD_SCREEN_SHARE = 0.08  # a big robot drawn taller than this share of the view gets its full mesh

LABELLED_KINDS = ("station", "robot", "buffer", "source", "sink")
MAX_GRID_LINES = 600
MAX_AUTO_LABELS = 80  # above this many, labels clutter the view and cost frame time
SELECTION_MIX = 0.6  # how much of the selection colour is blended into the selected component


class PlantScene:
    """The plant's actors on a plotter, with selection, picking and camera presets."""

    def __init__(self, plotter: pv.Plotter, theme: SceneTheme = DARK) -> None:
        self.plotter = plotter
        self.theme = theme
        self.layout: Layout | None = None
        self.geometry: PlantGeometry | None = None
        self.selected: str | None = None
        self.bottleneck: str | None = None
        self.problem_ids: list[str] = []
        self.reach_shown: str | None = None
        self._reach_radius: float | None = None
        self._vertex_ranges: dict[str, tuple[int, int]] = {}
        self.labels_visible = True
        self.fitted = False  # the camera frames the whole plant as placed (refit when the view changes size)
        self._badged: dict[str, str] = {}  # component -> state of the badges shown (they carry the names)
        self._index: dict[str, int] = {}
        self._mesh: pv.PolyData | None = None  # holds the plant's point buffer (every plant actor shares it)
        self._lod_observer: int | None = None
        self._overview_slices: dict[str, tuple[int, int]] = {}
        self.showing_overview = False
        self._rgb: np.ndarray | None = None  # view of the mesh's colour array
        self._base_rgb: np.ndarray | None = None  # normal-state colours
        self._override: dict[str, tuple[int, int, int]] = {}
        self._actors: dict[str, object] = {}
        self._picker = vtkCellPicker()
        self._picker.SetTolerance(0.0005)
        self._picker.PickFromListOn()
        plotter.set_background(theme.background_bottom, top=theme.background_top)

    def set_theme(self, theme: SceneTheme) -> None:
        """Redraw in another theme's colours, keeping the camera, labels, selection and highlights."""
        self.theme = theme
        self.plotter.set_background(theme.background_bottom, top=theme.background_top)
        if self.layout is not None and self.geometry is not None:
            selected, bottleneck, problems = self.selected, self.bottleneck, self.problem_ids
            reach, radius = self.reach_shown, self._reach_radius
            self.show(self.layout, self.geometry, labels=self.labels_visible, keep_camera=True)
            self.select(selected)
            self.set_bottleneck(bottleneck)
            self.set_problem_outlines(problems)
            if reach is not None:
                self.show_reach(reach, radius)
        self.plotter.render()

    # ----------------------------------------------------------------- building
    def show(self, layout: Layout, geometry: PlantGeometry, *, labels: bool | None = None,
             keep_camera: bool = False) -> None:
        """Replace whatever is shown with this plant (``keep_camera``: an edit redrawn, not a new plant)."""
        camera = self.plotter.camera_position if keep_camera else None
        self.clear()
        self.layout = layout
        self.geometry = geometry
        self._index = {cid: i for i, cid in enumerate(geometry.component_ids)}
        self._badged = {c: st for c, st in self._badged.items() if c in self._index}
        self._add_floor(layout, geometry)
        if geometry.n_triangles:
            self._add_plant_meshes(geometry)
        if labels is None:
            labels = self._count_labelled() <= MAX_AUTO_LABELS
        self.set_labels_visible(labels)
        self._vertex_ranges: dict[str, tuple[int, int]] = {}
        if camera is not None:
            self.plotter.camera_position = camera
        else:
            self.view_iso()

    def _add_plant_meshes(self, geometry: PlantGeometry) -> None:
        """The plant as a few actors over one shared point buffer (a robot pose moves them all):

        - the closed meshes with back faces culled (every one faces outward, see mesh_library.orient_faces: a
          fifth of the frame on software OpenGL), and the open ones (panels, shells) without culling, so they
          are seen from both sides without doubling their triangles;
        - for robots with an overview version (geometry.lod), their full faces apart and the overview faces
          in an actor of their own: the far-away camera draws the overview (see _choose_detail).
        """
        n = geometry.n_triangles
        two_sided = geometry.face_two_sided if geometry.face_two_sided is not None else np.zeros(n, bool)
        detailed = np.zeros(n, bool)
        for component_id in geometry.overview:
            start, stop = geometry.face_ranges[self._index[component_id]]
            detailed[start:stop] = True
        masks = [~two_sided & ~detailed, two_sided & ~detailed, ~two_sided & detailed, two_sided & detailed]
        self._face_sets = [np.flatnonzero(m) for m in masks]
        self._set_of_face = np.zeros(n, dtype=np.int8)
        self._local = np.empty(n, dtype=np.int64)  # a face's cell id in its mesh
        for k, ids in enumerate(self._face_sets):
            self._set_of_face[ids] = k
            self._local[ids] = np.arange(len(ids))
        self._shown = geometry.face_rgb.copy()  # what is drawn, per plant face (the overview copies from it)
        self._meshes, self._rgbs = [], []
        self._picker.InitializePickList()
        holder = pv.PolyData()  # owns the point buffer every actor shares (no cells of its own)
        holder.SetPoints(pv.vtk_points(geometry.vertices, deep=False))
        self._points_holder = holder
        for k, name in enumerate(PLANT_ACTORS):
            ids = self._face_sets[k]
            mesh = self._shared_mesh(holder, geometry.faces[ids], geometry.face_rgb[ids],
                                     geometry.face_component[ids])
            self._meshes.append(mesh)
            self._rgbs.append(mesh.cell_data["rgb"] if len(ids) else np.empty((0, 3), np.uint8))
            if len(ids):
                self._add_plant_actor(name, mesh, culled=k in (0, 2))
        self._overview_slices: dict[str, tuple[int, int]] = {}
        self._overview_source = np.empty(0, dtype=np.int64)
        if geometry.overview:
            faces, sources, at = [], [], 0
            for component_id, lod in geometry.overview.items():
                faces.append(lod.faces)
                sources.append(lod.source)
                self._overview_slices[component_id] = (at, at + len(lod.faces))
                at += len(lod.faces)
            self._overview_source = np.concatenate(sources)
            mesh = self._shared_mesh(holder, np.concatenate(faces), geometry.face_rgb[self._overview_source],
                                     geometry.face_component[self._overview_source])
            self._overview_mesh = mesh
            self._add_plant_actor("plant_overview", mesh, culled=False)
            self._actors["plant_overview"].SetVisibility(False)
            if self._lod_observer is None:
                self._lod_observer = self.plotter.renderer.AddObserver("StartEvent", self._choose_detail)
        self._mesh = holder
        self._points = holder.points  # one numpy view of VTK's point buffer, reused by every robot pose
        self._rgb = self._shown
        self._base_rgb = geometry.face_rgb.copy()

    @staticmethod
    def _shared_mesh(holder: pv.PolyData, faces: np.ndarray, rgb: np.ndarray, component: np.ndarray) -> pv.PolyData:
        mesh = pv.PolyData()
        mesh.SetPoints(holder.GetPoints())
        if len(faces):
            cells = np.empty((len(faces), 4), dtype=np.int64)
            cells[:, 0] = 3
            cells[:, 1:] = faces
            mesh.faces = cells.ravel()
            mesh.cell_data["rgb"] = np.ascontiguousarray(rgb)
            mesh.cell_data["component"] = component
        return mesh

    def _add_plant_actor(self, name: str, mesh: pv.PolyData, culled: bool) -> None:
        actor = self.plotter.add_mesh(
            mesh, scalars="rgb", rgb=True, show_scalar_bar=False, name=name, reset_camera=False,
            ambient=0.25, diffuse=0.75, specular=0.05, render=False,
        )
        if culled:
            actor.GetProperty().BackfaceCullingOn()
        self._actors[name] = actor
        self._picker.AddPickList(actor)

    def _choose_detail(self, *_args: object) -> None:
        """Before each render: the big robots' full meshes when one covers more than LOD_SCREEN_SHARE of the
        view's height, else their overview (across the plant a 200k-triangle arm covers a few hundred pixels)."""
        if self.geometry is None or not self.geometry.overview or "plant_overview" not in self._actors:
            return
        camera = self.plotter.renderer.GetActiveCamera()
        eye = np.array(camera.GetPosition())
        view = 2.0 * np.tan(np.radians(camera.GetViewAngle()) / 2.0)  # the viewport's height at distance 1
        near = False
        for component_id in self.geometry.overview:
            b = self.geometry.bounds[self._index[component_id]]
            centre = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
            size = max(float(np.linalg.norm([b[1] - b[0], b[3] - b[2], b[5] - b[4]])), 0.1)
            if camera.GetParallelProjection():
                share = size / max(2.0 * camera.GetParallelScale(), 1e-9)
            else:
                share = size / max(float(np.linalg.norm(eye - centre)) * view, 1e-9)
            near = near or bool(share > LOD_SCREEN_SHARE)
        self.showing_overview = not near
        for name in ("plant_detail", "plant_detail_open"):
            if name in self._actors:
                self._actors[name].SetVisibility(near)
        self._actors["plant_overview"].SetVisibility(not near)

    def _write_rgb(self, start: int, stop: int, rgb: np.ndarray) -> None:
        """Colours of the plant's faces [start, stop), into whichever mesh holds each face."""
        self._shown[start:stop] = rgb
        sets = self._set_of_face[start:stop]
        local = self._local[start:stop]
        for k in np.unique(sets):
            mask = sets == k
            self._rgbs[k][local[mask]] = rgb[mask]

    def _read_rgb(self, start: int, stop: int) -> np.ndarray:
        return self._shown[start:stop].copy()

    def _write_overview_rgb(self, component_id: str) -> None:
        span = self._overview_slices.get(component_id)
        if span is not None:
            self._overview_mesh.cell_data["rgb"][span[0]:span[1]] = self._shown[self._overview_source[span[0]:span[1]]]

    def clear(self) -> None:
        """Remove every actor this scene added."""
        for name in list(self._actors):
            self.plotter.remove_actor(self._actors.pop(name), render=False)
        self.layout = self.geometry = None
        self._mesh = self._rgb = self._base_rgb = None
        self._overview_slices = {}
        self._override.clear()
        self.selected = None
        self._picker.InitializePickList()

    def _add_floor(self, layout: Layout, geometry: PlantGeometry) -> None:
        b = geometry.plant_bounds()
        floor = layout.floor or {}
        if "size" in floor:
            ox, oy = floor.get("origin", (b[0] - 2.0, b[2] - 2.0))
            sx, sy = floor["size"]
        else:
            ox, oy, sx, sy = b[0] - 2.0, b[2] - 2.0, b[1] - b[0] + 4.0, b[3] - b[2] + 4.0
        plane = pv.Plane(center=(ox + sx / 2, oy + sy / 2, -0.002), direction=(0, 0, 1),
                         i_size=sx, j_size=sy, i_resolution=1, j_resolution=1)
        color = floor.get("color", self.theme.floor)
        self._actors["floor"] = self.plotter.add_mesh(
            plane, color=color, lighting=False, pickable=False, name="floor",
            reset_camera=False, render=False,
        )
        step = float(floor.get("grid", 1.0))
        # Coarsen the grid rather than draw (or allocate) more than a few hundred lines.
        while (sx + sy) / step > MAX_GRID_LINES:
            step *= 10.0
        xs = np.arange(ox, ox + sx + 1e-9, step)
        ys = np.arange(oy, oy + sy + 1e-9, step)
        if len(xs) + len(ys) > 0:
            pts, lines = [], []
            for x in xs:
                lines.append([2, len(pts), len(pts) + 1])
                pts += [(x, oy, 0.0), (x, oy + sy, 0.0)]
            for y in ys:
                lines.append([2, len(pts), len(pts) + 1])
                pts += [(ox, y, 0.0), (ox + sx, y, 0.0)]
            grid = pv.PolyData(np.asarray(pts, dtype=float), lines=np.asarray(lines).ravel())
            self._actors["grid"] = self.plotter.add_mesh(
                grid, color=self.theme.grid, line_width=1, pickable=False, lighting=False, name="grid",
                reset_camera=False, render=False,
            )

    def _count_labelled(self) -> int:
        return sum(1 for c in (self.layout.components if self.layout else []) if c.kind in LABELLED_KINDS)

    def set_labels_visible(self, visible: bool) -> None:
        """Show or hide the name labels of stations, robots and buffers."""
        self.labels_visible = visible
        if "labels" in self._actors:
            self.plotter.remove_actor(self._actors.pop("labels"), render=False)
        if not visible or self.layout is None or self.geometry is None:
            return
        points, texts = [], []
        for i, comp in enumerate(self.layout.components):
            if comp.kind not in LABELLED_KINDS or comp.id in self._badged:  # its badge carries its name
                continue
            b = self.geometry.bounds[i]
            points.append(((b[0] + b[1]) / 2, (b[2] + b[3]) / 2, b[5] + 0.35))
            texts.append(comp.display_name)
        if not points:
            return
        self._actors["labels"] = self.plotter.add_point_labels(
            np.asarray(points), texts, font_size=13, bold=False, text_color=self.theme.label_text,
            shape_color=self.theme.label_box, shape_opacity=0.75, shape="rect", margin=3,
            show_points=False, always_visible=True, name="labels", render=False, reset_camera=False,
        )

    # ----------------------------------------------------------------- badges
    BADGES: ClassVar[dict[str, str]] = {"warning": "! WARNING", "fault": "X FAULT", "stale": "? NO DATA",
                                        "uncertain": "? UNCERTAIN"}

    def set_badges(self, states: dict[str, str]) -> None:
        """Text badges on components in an abnormal state, so colour is not the only cue. A badge names its
        component ("X FAULT  Robot 2") and takes the place of its name label: the name of what is abnormal
        is never the label dropped to avoid clutter (badges are all placed, overlapping or not; the plain
        name labels give way around them)."""
        for state in self.BADGES:
            name = f"badge-{state}"
            if name in self._actors:
                self.plotter.remove_actor(self._actors.pop(name), render=False)
        badged = {c: s for c, s in states.items() if s in self.BADGES and c in self._index}
        if badged.keys() != self._badged.keys():
            self._badged = badged
            if self.labels_visible:
                self.set_labels_visible(True)
        self._badged = badged
        if self.geometry is None or self.layout is None:
            return
        theme = self.theme
        looks = {"warning": (theme.warning, theme.badge_text_dark), "fault": (theme.fault, theme.badge_text_light),
                 "stale": (theme.stale, theme.badge_text_dark), "uncertain": (theme.stale, theme.badge_text_dark)}
        for state, text in self.BADGES.items():
            ids = [c for c, s in states.items() if s == state and c in self._index]
            if not ids:
                continue
            points, texts = [], []
            for cid in ids:
                b = self.geometry.bounds[self._index[cid]]
                points.append(((b[0] + b[1]) / 2, (b[2] + b[3]) / 2, b[5] + 0.35))  # where its label was
                texts.append(f"{text}  {self.layout.component(cid).display_name}")
            box, ink = looks[state]
            actor = self.plotter.add_point_labels(
                np.asarray(points), texts, font_size=12, bold=True, text_color=ink,
                shape_color=box, shape_opacity=0.95, shape="rect", margin=3, show_points=False,
                always_visible=True, name=f"badge-{state}", render=False, reset_camera=False,
            )
            actor.GetMapper().SetPlaceAllLabels(True)  # every abnormal component gets its badge
            self._actors[f"badge-{state}"] = actor

    def badge_states(self) -> set[str]:
        """Which badge kinds are shown (tests)."""
        return {name.removeprefix("badge-") for name in self._actors if name.startswith("badge-")}

    def badge_texts(self) -> dict[str, list[str]]:
        """The texts of the badges shown, by state (tests)."""
        texts = {}
        for state in self.badge_states():
            labels = self._actors[f"badge-{state}"].GetMapper().GetInputAlgorithm().GetInput() \
                .GetPointData().GetAbstractArray("labels")
            texts[state] = [labels.GetValue(i) for i in range(labels.GetNumberOfValues())]
        return texts

    def label_texts(self) -> list[str]:
        """The plain name labels shown (tests)."""
        if "labels" not in self._actors:
            return []
        labels = self._actors["labels"].GetMapper().GetInputAlgorithm().GetInput().GetPointData() \
            .GetAbstractArray("labels")
        return [labels.GetValue(i) for i in range(labels.GetNumberOfValues())]

    # ----------------------------------------------------------------- colours
    def component_index(self, component_id: str) -> int:
        """Index of a component in the geometry; ``KeyError`` if unknown."""
        return self._index[component_id]

    def set_component_color(self, component_id: str, color: str | None) -> None:
        """Draw a component in ``color`` (e.g. a state colour), or back in its normal colour with ``None``."""
        if color is None:
            self._override.pop(component_id, None)
        else:
            self._override[component_id] = hex_to_rgb(color)
        self._refresh_colors([component_id])

    def displayed_rgb(self, component_id: str) -> np.ndarray:
        """The RGB colours currently drawn for a component's faces (for tests and tooltips)."""
        assert self._rgb is not None and self.geometry is not None
        start, stop = self.geometry.face_ranges[self._index[component_id]]
        return self._read_rgb(start, stop)

    def _refresh_colors(self, component_ids: Iterable[str]) -> None:
        if self._rgb is None or self._base_rgb is None or self.geometry is None or self._mesh is None:
            return
        sel = np.array(hex_to_rgb(self.theme.selection), dtype=float)
        for cid in component_ids:
            if cid not in self._index:
                continue
            start, stop = self.geometry.face_ranges[self._index[cid]]
            if cid in self._override:
                rgb = np.broadcast_to(np.array(self._override[cid], dtype=float), (stop - start, 3))
            else:
                rgb = self._base_rgb[start:stop].astype(float)
            if cid == self.selected and cid not in self._override:
                # A state colour (amber, red...) must stay readable: then the outline alone marks the selection.
                rgb = (1 - SELECTION_MIX) * rgb + SELECTION_MIX * sel
            self._write_rgb(start, stop, np.clip(rgb, 0, 255).astype(np.uint8))
            self._write_overview_rgb(cid)
        for mesh in [*self._meshes, *([self._overview_mesh] if self._overview_slices else [])]:
            if mesh.n_cells:
                mesh.GetCellData().GetArray("rgb").Modified()

    # ----------------------------------------------------------------- robots
    def robot_ids(self) -> list[str]:
        """Components drawn as built-in arms that can be posed."""
        return list(self.geometry.rigs) if self.geometry is not None else []

    def set_robot_pose(self, component_id: str, joints_deg: Iterable[float]) -> np.ndarray:
        """Pose a robot (degrees; metres for prismatic joints); returns which joints were out of limits.

        Out-of-limit values are clamped. Missing trailing joints keep their home value.
        """
        assert self.geometry is not None and self._mesh is not None
        rig = self.geometry.rigs[component_id]
        chain = rig.chain
        values = np.array(rig.home_deg, dtype=float)
        given = np.asarray(list(joints_deg), dtype=float)[: len(values)]
        values[: len(given)] = given
        q, clamped = chain.clamp(chain.from_layout_units(values))
        placed = rig.world @ chain.forward(q)[rig.frame_links]
        per_vertex = placed[rig.frame_of_vertex]
        world = np.einsum("nij,nj->ni", per_vertex[:, :3, :3], rig.local) + per_vertex[:, :3, 3]
        self._points[rig.vertex_start:rig.vertex_stop] = world
        self._mesh.GetPoints().Modified()
        return clamped

    # ----------------------------------------------------------------- selection
    def select(self, component_id: str | None) -> None:
        """Highlight one component (or none): tint it blue and draw its bounding box."""
        if component_id is not None and component_id not in self._index:
            raise KeyError(component_id)
        previous, self.selected = self.selected, component_id
        self._refresh_colors([c for c in (previous, component_id) if c is not None])
        if "selection" in self._actors:
            self.plotter.remove_actor(self._actors.pop("selection"), render=False)
        if component_id is not None and self.geometry is not None:
            b = np.array(self.geometry.bounds[self._index[component_id]], dtype=float)
            pad = 0.08
            b[[0, 2, 4]] -= pad
            b[[1, 3, 5]] += pad
            outline = pv.Box(bounds=tuple(b)).outline()
            self._actors["selection"] = self.plotter.add_mesh(
                outline, color=self.theme.selection, line_width=2.5, lighting=False, pickable=False,
                name="selection", reset_camera=False, render=False,
            )

    def pick(self, x: float, y: float) -> str | None:
        """The component under display pixel (x, y) (VTK convention: origin bottom-left), if any."""
        if self.geometry is None or self._mesh is None:
            return None
        if not self._picker.Pick(x, y, 0.0, self.plotter.renderer):
            return None
        cell = self._picker.GetCellId()
        actor = self._picker.GetActor()
        if cell < 0 or actor is None:
            return None
        if actor is self._actors.get("plant_overview"):
            face = self._overview_source[cell]
        else:
            k = next((k for k, name in enumerate(PLANT_ACTORS) if actor is self._actors.get(name)), None)
            if k is None:
                return None
            face = self._face_sets[k][cell]
        return self.geometry.component_ids[int(self.geometry.face_component[face])]

    # ----------------------------------------------------------------- editing
    def floor_point(self, x: float, y: float) -> tuple[float, float] | None:
        """Where the view ray through display pixel (x, y) meets the floor (z = 0); None above the horizon."""
        renderer = self.plotter.renderer
        ends = []
        for depth in (0.0, 1.0):
            renderer.SetDisplayPoint(x, y, depth)
            renderer.DisplayToWorld()
            wx, wy, wz, w = renderer.GetWorldPoint()
            ends.append(np.array([wx, wy, wz]) / (w or 1.0))
        near, far = ends
        dz = far[2] - near[2]
        if abs(dz) < 1e-12:
            return None
        t = -near[2] / dz
        if t < 0:
            return None
        hit = near + t * (far - near)
        return float(hit[0]), float(hit[1])

    def translate_component(self, component_id: str, delta: tuple[float, float, float]) -> None:
        """Move a component's drawing by ``delta`` (a drag in progress; the full redraw comes after)."""
        if self.geometry is None or self._mesh is None or component_id not in self._index:
            return
        i = self._index[component_id]
        span = self._vertex_ranges.get(component_id)
        if span is None:
            start, stop = self.geometry.face_ranges[i]
            faces = self.geometry.faces[start:stop]
            span = (int(faces.min()), int(faces.max()) + 1) if len(faces) else (0, 0)
            self._vertex_ranges[component_id] = span
        d = np.asarray(delta, dtype=float)
        self._points[span[0]:span[1]] += d
        self._mesh.GetPoints().Modified()
        self.geometry.bounds[i][[0, 1]] += d[0]
        self.geometry.bounds[i][[2, 3]] += d[1]
        rig = self.geometry.rigs.get(component_id)
        if rig is not None:
            rig.world[:3, 3] += d  # telemetry poses stay where the robot now stands
        if self.selected == component_id:
            self.select(component_id)

    def set_problem_outlines(self, component_ids: list[str]) -> None:
        """Amber outlines around components the editor's checks found at fault (overlap, reach...)."""
        if "problems" in self._actors:
            self.plotter.remove_actor(self._actors.pop("problems"), render=False)
        self.problem_ids = [c for c in component_ids if c in self._index]
        if not self.problem_ids or self.geometry is None:
            return
        boxes = []
        for cid in self.problem_ids:
            b = np.array(self.geometry.bounds[self._index[cid]], dtype=float)
            b[[0, 2, 4]] -= 0.12
            b[[1, 3, 5]] += 0.12
            boxes.append(pv.Box(bounds=tuple(b)).outline())
        self._actors["problems"] = self.plotter.add_mesh(
            pv.merge(boxes), color=self.theme.warning, line_width=2.0, lighting=False, pickable=False,
            name="problems", reset_camera=False, render=False)

    def show_reach(self, component_id: str | None, reach: float | None = None) -> None:
        """A translucent dome of the robot's reach around its base (None hides it)."""
        if "reach" in self._actors:
            self.plotter.remove_actor(self._actors.pop("reach"), render=False)
        self.reach_shown = component_id
        self._reach_radius = reach
        if component_id is None or reach is None or self.layout is None:
            return
        comp = self.layout.component(component_id)
        dome = pv.Sphere(radius=reach, center=(comp.position[0], comp.position[1], comp.position[2]),
                         theta_resolution=48, phi_resolution=24, end_phi=90)
        self._actors["reach"] = self.plotter.add_mesh(
            dome, color=self.theme.selection, opacity=0.15, lighting=False, pickable=False, name="reach",
            reset_camera=False, render=False)

    def set_bottleneck(self, component_id: str | None) -> None:
        """Outline the simulated bottleneck (information, so a calm lilac, not an alarm colour)."""
        if "bottleneck" in self._actors:
            self.plotter.remove_actor(self._actors.pop("bottleneck"), render=False)
        self.bottleneck = component_id
        if component_id is None or self.geometry is None or component_id not in self._index:
            return
        b = np.array(self.geometry.bounds[self._index[component_id]], dtype=float)
        b[[0, 2, 4]] -= 0.2
        b[[1, 3, 5]] += 0.2
        self._actors["bottleneck"] = self.plotter.add_mesh(
            pv.Box(bounds=tuple(b)).outline(), color="#b9a6d6", line_width=2.0, lighting=False, pickable=False,
            name="bottleneck", reset_camera=False, render=False)

    # ----------------------------------------------------------------- material flow (edit mode)
    FLOW_Z_M: ClassVar[float] = 0.3  # low over the floor, under labels and badges
    FLOW_COLOURS: ClassVar[dict[str, str]] = {"direct": "#9aa7b4", "agv": "#5fb3b3"}  # calm: information

    def set_flow_arrows(self, links: list[tuple[str, str, bool]]) -> None:
        """Arrows for the material flow, (source, target, by AGV) each: straight grey arrows from edge to edge
        for direct links, arcs in teal for links an AGV carries. An empty list removes them."""
        for kind in self.FLOW_COLOURS:
            if f"flow-{kind}" in self._actors:
                self.plotter.remove_actor(self._actors.pop(f"flow-{kind}"), render=False)
        if self.geometry is None:
            return
        lines: dict[str, list[np.ndarray]] = {"direct": [], "agv": []}
        for source, target, by_agv in links:
            if source in self._index and target in self._index:
                polyline = self._flow_polyline(source, target, by_agv)
                if polyline is not None:
                    lines["agv" if by_agv else "direct"].extend(_with_arrowhead(polyline))
        for kind, pieces in lines.items():
            if pieces:
                mesh = pv.merge([pv.lines_from_points(p) for p in pieces])
                self._actors[f"flow-{kind}"] = self.plotter.add_mesh(
                    mesh, color=self.FLOW_COLOURS[kind], line_width=3.0 if kind == "agv" else 2.0, lighting=False,
                    pickable=False, name=f"flow-{kind}", reset_camera=False, render=False)

    def flow_arrow_kinds(self) -> set[str]:
        """Which kinds of flow arrows are drawn (tests)."""
        return {name.removeprefix("flow-") for name in self._actors if name.startswith("flow-")}

    def _flow_polyline(self, source: str, target: str, by_agv: bool) -> np.ndarray | None:
        """From the edge of the source's footprint to the edge of the target's (arrowheads stay visible)."""
        a = np.array(self.geometry.bounds[self._index[source]], dtype=float)  # type: ignore[union-attr]
        b = np.array(self.geometry.bounds[self._index[target]], dtype=float)  # type: ignore[union-attr]
        ca, cb = np.array([(a[0] + a[1]) / 2, (a[2] + a[3]) / 2]), np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2])
        d = cb - ca
        length = float(np.hypot(*d))
        if length < 1e-6:
            return None
        t0, t1 = _leave_box(ca, d, a), 1.0 - _leave_box(cb, -d, b)
        if t1 - t0 < 0.05 / length:  # touching footprints: the arrow from centre to centre
            t0, t1 = 0.0, 1.0
        t = np.linspace(t0, t1, 24 if by_agv else 2)
        xy = ca + np.outer(t, d)
        z = np.full(len(t), self.FLOW_Z_M)
        if by_agv:  # an arc: an AGV's trip, not a conveyor
            z += min(0.15 * length, 1.5) * np.sin(np.pi * (t - t0) / (t1 - t0))
        return np.column_stack([xy, z])

    # ----------------------------------------------------------------- camera
    def _family(self, component_id: str) -> set[str]:
        """A component with its ancestors and descendants (a sensor on a machine does not hide the machine)."""
        if self.layout is None:
            return {component_id}
        parents = {c.id: c.parent for c in self.layout.components}
        family = {component_id}
        cursor = parents.get(component_id)
        while cursor is not None and cursor not in family:
            family.add(cursor)
            cursor = parents.get(cursor)
        grew = True
        while grew:
            grew = False
            for cid, parent in parents.items():
                if parent in family and cid not in family:
                    family.add(cid)
                    grew = True
        return family

    def _bounds_of(self, component_id: str | None) -> np.ndarray:
        if self.geometry is None:
            return np.array([-1.0, 1.0, -1.0, 1.0, 0.0, 1.0])
        if component_id is None:
            return self.geometry.plant_bounds()
        return np.array(self.geometry.bounds[self._index[component_id]], dtype=float)

    def _look(self, direction: np.ndarray, up: tuple[float, float, float], bounds: np.ndarray) -> None:
        camera = self.plotter.renderer.GetActiveCamera()
        center = np.array([(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2, (bounds[4] + bounds[5]) / 2])
        direction = direction / np.linalg.norm(direction)
        camera.SetFocalPoint(*center)
        camera.SetPosition(*(center + direction * 10.0))
        camera.SetViewUp(*up)
        self._fit(bounds)

    def _fit(self, bounds: np.ndarray, margin: float = 0.92) -> None:
        """Move the camera along its view direction until the box just fills the view.

        ``ResetCamera`` fits a bounding sphere, which leaves a long production line
        small in the middle of the window; this fits the box's eight corners.
        """
        renderer = self.plotter.renderer
        camera = renderer.GetActiveCamera()
        renderer.ResetCamera(*bounds)
        corners = np.array([[x, y, z] for x in bounds[:2] for y in bounds[2:4] for z in bounds[4:]])
        for _ in range(4):
            renderer.ResetCameraClippingRange(*bounds)
            extent = 0.0
            for corner in corners:
                renderer.SetWorldPoint(*corner, 1.0)
                renderer.WorldToView()
                vx, vy, _vz = renderer.GetViewPoint()
                extent = max(extent, abs(vx), abs(vy))
            if extent <= 0:
                break
            camera.Zoom(margin / extent)
        renderer.ResetCameraClippingRange()
        # Tell PyVista the camera is placed on purpose, or its first render resets it.
        self.plotter.renderer.camera_set = True

    def view_iso(self) -> None:
        """Isometric overview from the front-left, z up."""
        self._look(np.array([-0.35, -1.0, 0.85]), (0, 0, 1), self._bounds_of(None))
        self.fitted = True

    def view_top(self) -> None:
        """Plan view from above, +y up on screen."""
        self._look(np.array([0.0, 0.0, 1.0]), (0, 1, 0), self._bounds_of(None))
        self.fitted = True

    def fit_all(self) -> None:
        """Keep the direction; fit the whole plant."""
        self._fit(self._bounds_of(None))
        self.fitted = True

    def focus(self, component_id: str | None = None) -> None:
        """Centre and zoom on a component (the selection by default), keeping the direction."""
        target = component_id or self.selected
        if target is None:
            return
        self.fitted = False
        b = self._bounds_of(target)
        pad = max(b[1] - b[0], b[3] - b[2], b[5] - b[4], 1.0) * 0.8
        padded = b + np.array([-pad, pad, -pad, pad, -pad * 0.2, pad * 0.2])
        camera = self.plotter.renderer.GetActiveCamera()
        center = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
        offset = np.array(camera.GetPosition()) - np.array(camera.GetFocalPoint())
        camera.SetFocalPoint(*center)
        camera.SetPosition(*(center + offset))
        self._fit(padded)
        # from where the camera ended up, is the component in sight? If another machine hides it, turn to
        # the nearest direction with a clear line of sight (same distance)
        offset = np.array(camera.GetPosition()) - center
        assert self.geometry is not None
        others = [self.geometry.bounds[i] for i, cid in enumerate(self.geometry.component_ids)
                  if cid not in self._family(target)]
        direction = clear_view_direction(center, offset, np.array(others, dtype=float).reshape(-1, 6))
        if not np.allclose(direction * np.linalg.norm(offset), offset):
            camera.SetPosition(*(center + direction * np.linalg.norm(offset)))
            camera.SetViewUp(0.0, 0.0, 1.0)  # candidates stay below 75 degrees: never along the view
            self.plotter.renderer.ResetCameraClippingRange()

    def project(self, world: Iterable[float]) -> tuple[float, float]:
        """Display pixel (VTK convention, origin bottom-left) of a world point."""
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToWorld()
        coord.SetValue(*[float(v) for v in world])
        x, y = coord.GetComputedDoubleDisplayValue(self.plotter.renderer)
        return float(x), float(y)


def _segment_hits_box(a: np.ndarray, b: np.ndarray, box: np.ndarray) -> bool:
    """Whether segment AB passes through an axis-aligned box (xmin, xmax, ymin, ymax, zmin, zmax): slabs."""
    t0, t1 = 0.0, 1.0
    d = b - a
    for axis in range(3):
        lo, hi = box[2 * axis], box[2 * axis + 1]
        if abs(d[axis]) < 1e-12:
            if a[axis] < lo or a[axis] > hi:
                return False
            continue
        u, v = (lo - a[axis]) / d[axis], (hi - a[axis]) / d[axis]
        t0, t1 = max(t0, min(u, v)), min(t1, max(u, v))
        if t0 > t1:
            return False
    return True


def clear_view_direction(center: np.ndarray, offset: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A unit direction from ``center`` along which a camera ``|offset|`` away sees it unhidden by ``boxes``:
    the current one if it is clear, else the clear one nearest to it (turning round the vertical, then looking
    from higher up), else the one with the fewest boxes in the way."""
    distance = float(np.linalg.norm(offset)) or 1.0
    current = offset / distance
    azimuth = np.arctan2(current[1], current[0])
    elevation = np.arcsin(np.clip(current[2], -1.0, 1.0))
    candidates = [current]
    for lift in (elevation, max(elevation, np.radians(55)), np.radians(75)):
        for turn in (0, 45, -45, 90, -90, 135, -135, 180):
            a = azimuth + np.radians(turn)
            candidates.append(np.array([np.cos(lift) * np.cos(a), np.cos(lift) * np.sin(a), np.sin(lift)]))
    # the ray stops a little short of the centre: the component's own bounding box may overlap a neighbour's
    best, fewest = current, None
    for direction in candidates:
        eye = center + direction * distance
        near = center + direction * distance * 0.05
        hits = sum(_segment_hits_box(eye, near, box) for box in boxes)
        if hits == 0:
            return direction
        if fewest is None or hits < fewest:
            best, fewest = direction, hits
    return best


def _leave_box(start: np.ndarray, direction: np.ndarray, box: np.ndarray) -> float:
    """The fraction of ``direction`` after which a ray from ``start`` (inside ``box``: xmin, xmax, ymin, ymax)
    leaves the box."""
    t = 1.0
    for axis, (lo, hi) in enumerate(((box[0], box[1]), (box[2], box[3]))):
        if direction[axis] > 1e-12:
            t = min(t, (hi - start[axis]) / direction[axis])
        elif direction[axis] < -1e-12:
            t = min(t, (lo - start[axis]) / direction[axis])
    return max(t, 0.0)


def _with_arrowhead(polyline: np.ndarray, size: float = 0.35) -> list[np.ndarray]:
    """The line and two barbs at its end, in the floor's plane."""
    tip = polyline[-1]
    back = polyline[-2] - tip
    back[2] = 0.0
    norm = float(np.hypot(back[0], back[1]))
    if norm < 1e-9:
        return [polyline]
    back /= norm
    side = np.array([-back[1], back[0], 0.0])
    return [polyline, np.array([tip + size * (back + 0.5 * side), tip, tip + size * (back - 0.5 * side)])]
