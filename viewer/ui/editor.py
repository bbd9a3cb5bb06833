"""Edit mode: drag equipment on the floor, edit positions, undo/redo, save; KPIs rerun after every edit.

``LayoutEditor`` wires a Qt-free :class:`LayoutDocument` (the commands, undo, dirty state)
to the window: the 3D view only issues commands (a drag is a stream of merged moves,
snapped to the floor grid unless Shift is held) and listens to the document's change
events. After each edit a debounced rerun goes to the :class:`SimulationJobRunner`
(another process; the newest edit wins), the checks run on the current footprints, and
the panel shows throughput with its interval, the change against the layout as last
saved, per-station utilisation, line OEE and the bottleneck (outlined in the scene).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from viewer.geometry.plant import build_plant_geometry
from viewer.geometry.reach import robot_reaches
from viewer.model.checks import EQUIPMENT, LayoutProblem, check_layout, footprints_from_geometry, free_spot
from viewer.model.document import (
    AddComponent,
    ConnectComponents,
    EditRefusedError,
    LayoutDocument,
    MoveComponent,
    RemoveComponent,
    ReplaceLink,
    SetComponentField,
    SetSectionValue,
    duplicate_of,
)
from viewer.model.layout import Component, Layout
from viewer.model.selection import Selection
from viewer.sim.compare import explain_change
from viewer.sim.jobs import EDITOR_HOURS as KPI_HOURS
from viewer.sim.jobs import EDITOR_REPLICATIONS as KPI_REPLICATIONS
from viewer.sim.jobs import SimRequest, SimulationJobRunner
from viewer.sim.model import SimModelError, agv_links, model_from_layout
from viewer.sim.runner import SimReport
from viewer.ui.background import BackgroundTask
from viewer.ui.details_panel import DockColumn
from viewer.ui.theme import current as current_theme

SNAP_M = 0.5
# What a new component starts with: enough for the simulation to take it, for the planner to change.
NEW_COMPONENTS: dict[str, dict[str, Any]] = {
    "station": {"sim": {"cycle_time": {"dist": "lognormal", "mean": 60.0, "cv": 0.1}}},
    "robot": {"sim": {"cycle_time": {"dist": "lognormal", "mean": 20.0, "cv": 0.1}},
              "robot": {"model": "arm6", "reach": 1.8}},
    "buffer": {"buffer": {"capacity": 10}},
    "conveyor": {"conveyor": {"length": 3.0, "width": 0.6, "speed": 0.25, "capacity": 6, "accumulating": True}},
    "source": {},
    "sink": {},
}
RERUN_DELAY_MS = 250
STATE_COLOURS = (("working", "#8d949c"), ("setup", "#6f7780"), ("blocked", "#7fb2d9"), ("starved", "#4a5058"),
                 ("down", "#b9a6d6"))  # calm: the KPI bars are information, not alarms


def asset_meshes() -> list[str]:
    """The built-in library's mesh files (for the Add menu)."""
    from viewer.geometry.mesh_library import builtin_asset_dir

    folder = builtin_asset_dir()
    suffixes = {".stl", ".obj", ".ply", ".glb", ".gltf", ".off"}
    return sorted(p.name for p in folder.glob("*") if p.suffix.lower() in suffixes) if folder.is_dir() else []


class UtilisationBars(QWidget):
    """One stacked bar per station: working / setup / blocked / starved / down."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, dict[str, float], bool]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_rows(self, rows: list[tuple[str, dict[str, float], bool]]) -> None:
        self.rows = rows
        self.setMinimumHeight(16 * len(rows) + 20)
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        label_w = 64
        width = max(self.width() - label_w - 8, 10)
        for i, (name, split, bottleneck) in enumerate(self.rows):
            y = 2 + i * 16
            theme = current_theme()
            p.setPen(QColor(theme.text_strong if bottleneck else theme.plot_foreground))
            p.drawText(QRectF(0, y, label_w - 4, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       name)
            x = float(label_w)
            for key, colour in STATE_COLOURS:
                w = width * max(split.get(key, 0.0), 0.0)
                p.fillRect(QRectF(x, y + 2, w, 10), QColor(colour))
                x += w
        y = 4 + len(self.rows) * 16
        x = float(label_w)
        for key, colour in STATE_COLOURS:
            p.fillRect(QRectF(x, y + 3, 8, 8), QColor(colour))
            p.setPen(QColor(current_theme().plot_foreground))
            p.drawText(QRectF(x + 11, y, 60, 14), Qt.AlignmentFlag.AlignVCenter, key)
            x += 66
        p.end()


class EditorPanel(QWidget):
    """KPIs, the selected component's position, and the problems list."""

    problem_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown_problems: list[LayoutProblem] | None = None
        box = DockColumn(self)
        self.throughput = QLabel("—", self)
        self.throughput.setStyleSheet("font-size: 15px; font-weight: bold")
        self.throughput.setWordWrap(True)  # the interval goes on a second line in a narrow dock
        self.delta = QLabel(self)
        self.delta.setWordWrap(True)
        self.explain = QLabel(self)  # what changed against the saved layout, in words
        self.explain.setWordWrap(True)
        self.oee = QLabel(self)
        self.bottleneck = QLabel(self)
        self.sim_status = QLabel("", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.hide()
        for label in (self.throughput, self.delta, self.explain, self.oee, self.bottleneck):
            label.setTextFormat(Qt.TextFormat.PlainText)
            box.addWidget(label)
        row = QHBoxLayout()
        row.addWidget(self.sim_status, 1)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        self.bars = UtilisationBars(self)
        box.addWidget(self.bars)
        form = QFormLayout()
        self.x = QDoubleSpinBox(self)
        self.y = QDoubleSpinBox(self)
        for spin in (self.x, self.y):
            spin.setRange(-10_000, 10_000)
            spin.setDecimals(2)
            spin.setSingleStep(SNAP_M)
            spin.setSuffix(" m")
            spin.setKeyboardTracking(False)
        self.rotation = QDoubleSpinBox(self)  # arrows turn by 90°, any angle can be typed
        self.rotation.setRange(0.0, 359.9)
        self.rotation.setWrapping(True)
        self.rotation.setSingleStep(90.0)
        self.rotation.setDecimals(1)
        self.rotation.setSuffix("°")
        self.rotation.setKeyboardTracking(False)
        form.addRow("X", self.x)
        form.addRow("Y", self.y)
        form.addRow("Rotation", self.rotation)
        box.addLayout(form)
        self.properties = QFormLayout()  # the selected component's simulation parameters
        box.addLayout(self.properties)
        buttons = QGridLayout()  # two by two: the dock stays narrow
        self.add_button = QPushButton("Add", self)
        self.add_menu = QMenu(self)
        self.add_button.setMenu(self.add_menu)
        self.connect_button = QPushButton("Connect to…", self)
        self.connect_button.setCheckable(True)
        self.connect_button.setToolTip("Then click the component this one should feed")
        self.duplicate_button = QPushButton("Duplicate", self)
        self.delete_button = QPushButton("Delete", self)
        for i, button in enumerate((self.add_button, self.connect_button, self.duplicate_button, self.delete_button)):
            buttons.addWidget(button, i // 2, i % 2)
        box.addLayout(buttons)
        more = QHBoxLayout()
        self.reach_button = QPushButton("Show reach", self)
        self.reach_button.setCheckable(True)
        self.reach_button.setToolTip("The selected robot's reach from its kinematics and joint limits")
        self.compare_button = QPushButton("Compare with saved…", self)
        more.addWidget(self.reach_button)
        more.addWidget(self.compare_button)
        box.addLayout(more)
        self.bind_opcua_button = QPushButton("Bind OPC UA node…", self)  # viewer.ui.opcua_browse_dialog
        box.addWidget(self.bind_opcua_button)
        box.addWidget(QLabel("Problems", self))
        self.problems = QListWidget(self)
        self.problems.itemClicked.connect(self._on_problem)
        box.addWidget(self.problems, 1)

    def set_problems(self, problems: list[LayoutProblem]) -> None:
        self.shown_problems = problems  # kept to recolour them when the theme changes
        self.problems.clear()
        for p in problems:
            item = QListWidgetItem(f"{'Error' if p.severity == 'error' else 'Warning'}: {p.message}")
            item.setData(Qt.ItemDataRole.UserRole, p.components[0] if p.components else "")
            theme = current_theme()
            item.setForeground(QColor(theme.text_warning if p.severity == "error" else theme.plot_foreground))
            self.problems.addItem(item)
        if not problems:
            self.problems.addItem("No problems found")

    def _on_problem(self, item: QListWidgetItem) -> None:
        component = item.data(Qt.ItemDataRole.UserRole)
        if component:
            self.problem_selected.emit(component)


class LayoutEditor(QObject):
    """Edit mode for one window (see the module docstring)."""

    kpis_updated = Signal(object)  # SimReport
    message = Signal(str)  # for the status bar
    changed = Signal()  # dirty state or undo history moved
    _result = Signal(int, object, bool)  # from the job runner's reader thread

    def __init__(self, panel: EditorPanel, *, scene: Any, view: Any, selection: Selection, library: Any,
                 show_edited: Callable[[Any, Any], None], parent: QObject | None = None) -> None:
        """``scene``/``view``: the 3D view it draws edits, reach and outlines in; ``selection``: the window's
        selection model, which the editor reads and sets; ``library``: the mesh library the plant is built
        with; ``show_edited(layout, geometry)``: the window's redraw of the edited plant."""
        super().__init__(parent)
        self.panel = panel
        self.scene = scene
        self.view = view
        self.selection = selection
        self.library = library
        self.show_edited = show_edited
        self.document: LayoutDocument | None = None
        self.report: SimReport | None = None
        self.baseline: SimReport | None = None
        self.problems: list[LayoutProblem] = []
        self.runner = SimulationJobRunner(lambda gen, result, old: self._result.emit(gen, result, old))
        self._result.connect(self._on_result)
        self.redraw_task = BackgroundTask("edit-redraw", self)  # the newest edit's drawing wins
        self._rerun = QTimer(self)
        self._rerun.setSingleShot(True)
        self._rerun.setInterval(RERUN_DELAY_MS)
        self._rerun.timeout.connect(self.rerun)
        self._generation = 0
        self.showing_superseded = False  # the KPIs shown are an earlier edit's (greyed)
        self.showing_first_estimate = False  # the KPIs shown are the first replications' (refining)
        self._drag: tuple[str, float, float] | None = None  # component, grab offset x, y
        self._footprints: dict[str, tuple[float, float, float, float]] = {}
        self._baseline_pending = False
        self._updating_fields = False
        panel.cancel_button.clicked.connect(self.cancel)
        panel.x.valueChanged.connect(self._on_position_field)
        panel.y.valueChanged.connect(self._on_position_field)
        panel.rotation.valueChanged.connect(self._on_rotation_field)
        panel.duplicate_button.clicked.connect(self.duplicate_selected)
        panel.delete_button.clicked.connect(self.delete_selected)
        panel.reach_button.toggled.connect(lambda _on: self._update_reach())
        panel.compare_button.clicked.connect(self.compare_with_saved)
        panel.bind_opcua_button.clicked.connect(self.bind_opcua_node)
        for kind in NEW_COMPONENTS:
            panel.add_menu.addAction(kind.capitalize(), lambda k=kind: self.add_component(k))
        meshes = panel.add_menu.addMenu("Station with a mesh")
        for name in asset_meshes():
            meshes.addAction(name, lambda n=name: self.add_component("station", mesh=f"asset:{n}"))
        meshes.addSeparator()
        meshes.addAction("Mesh file…", self._add_mesh_file)

    # --- life cycle -----------------------------------------------------------------------------------
    def attach(self, layout: Any, path: Path, geometry: Any) -> None:
        """Edit this plant (the one the window shows)."""
        self.document = LayoutDocument(layout, path)
        self.baseline = None
        self.report = None
        self._footprints = footprints_from_geometry(geometry)
        self._reaches = robot_reaches(geometry)
        self.saved_layout = copy.deepcopy(layout)  # for Compare with saved
        self.drawn = (self.saved_layout, dict(self._footprints))
        events = self.document.events
        for signal in (events.component_added, events.component_removed, events.component_changed,
                       events.flow_changed):
            signal.connect(lambda *_args: self._edited())
        events.flow_changed.connect(lambda *_args: self.show_flow())  # a new link shows at once
        events.dirty_changed.connect(lambda *_args: self.changed.emit())
        events.history_changed.connect(lambda *_args: self.changed.emit())
        self._baseline_pending = True
        self.rerun()  # runs the checks too

    def close(self) -> None:
        self.runner.close()

    @property
    def dirty(self) -> bool:
        return self.document is not None and self.document.is_dirty

    # --- commands -------------------------------------------------------------------------------------
    def push(self, command: Any, merge: bool = False) -> bool:
        """Apply an edit; a refused one is reported in the status bar and changes nothing."""
        if self.document is None:
            return False
        try:
            self.document.push(command, merge=merge)
        except EditRefusedError as exc:
            self.message.emit(f"Not done: {exc}")
            return False
        return True

    def undo(self) -> None:
        if self.document is not None and self.document.undo_text:
            text = self.document.undo_text
            self.document.undo()
            self._redraw()
            self.message.emit(f"Undid {text}")

    def redo(self) -> None:
        if self.document is not None and self.document.redo_text:
            text = self.document.redo_text
            self.document.redo()
            self._redraw()
            self.message.emit(f"Redid {text}")

    def save(self, path: Path | None = None) -> bool:
        if self.document is None:
            return False
        try:
            self.document.save(path)
        except Exception as exc:  # the file keeps what it had; say why
            self.message.emit(f"Not saved: {exc}")
            return False
        self.baseline = self.report  # the saved layout is the new reference for deltas
        self.saved_layout = copy.deepcopy(self.document.layout)
        self._show_report()
        self.message.emit(f"Saved {self.document.path}")
        return True

    def _add_mesh_file(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if self.document is None:
            return
        folder = self.document.base_dir
        path, _ = QFileDialog.getOpenFileName(self.panel, "Mesh for the new station", str(folder),
                                              "Meshes (*.stl *.obj *.ply *.glb *.gltf *.off)")
        if path:
            self.add_mesh_file(Path(path))

    def add_mesh_file(self, path: Path) -> str | None:
        """A station drawn with a mesh file, which must be in the layout's folder (paths stay relative)."""
        assert self.document is not None
        try:
            relative = path.resolve().relative_to(self.document.base_dir.resolve())
        except ValueError:
            self.message.emit(f"Not added: copy {path.name} into the layout's folder first, so the layout "
                              "keeps working when the folder moves")
            return None
        return self.add_component("station", mesh=relative.as_posix())

    def add_component(self, kind: str, mesh: str | None = None) -> str | None:
        """Add a new component of ``kind`` on the floor at the middle of the view (snapped); it is selected."""
        if self.document is None:
            return None
        view = self.view
        dpr = view.devicePixelRatioF()
        hit = self.scene.floor_point(view.width() * dpr / 2, view.height() * dpr / 2) or (0.0, 0.0)
        ids = set(self.document.layout.ids())
        prefix = {"station": "ST", "robot": "R", "buffer": "B", "conveyor": "CV", "source": "SRC", "sink": "OUT"}[kind]
        n = 1
        while f"{prefix}{n:02d}-new" in ids:
            n += 1
        new_id = f"{prefix}{n:02d}-new"
        component = Component(id=new_id, kind=kind, name=f"New {kind} {n}", position=(0.0, 0.0, 0.0), mesh=mesh,
                              sections=copy.deepcopy(NEW_COMPONENTS[kind]))
        spot = self._free_floor_near(component, hit)
        if spot is None:
            self.message.emit(f"No free floor near the view's centre for a new {kind}: it is placed there, "
                              "overlapping (drag it clear)")
        x, y = spot or hit
        component.position = (round(x / SNAP_M) * SNAP_M, round(y / SNAP_M) * SNAP_M, 0.0)
        command = AddComponent(component)
        if not self.push(command):
            return None
        self._redraw(select=new_id)
        return new_id

    def show_flow(self) -> None:
        """The material flow as arrows in the 3D view, those an AGV carries apart (edit mode)."""
        if self.document is None:
            return
        layout = self.document.layout
        by_agv = agv_links(layout)
        self.scene.set_flow_arrows([(f.source, f.target, (f.source, f.target) in by_agv)
                                           for f in layout.flow])

    def _free_floor_near(self, component: Component, near: tuple[float, float]) -> tuple[float, float] | None:
        """Where the new component stands clear of the equipment (half a metre around it) and on the floor,
        nearest the view's centre: its footprint from its own mesh, built alone at the origin."""
        alone = Layout(name="new", components=[component])
        try:
            geometry = build_plant_geometry(alone, self.document.base_dir, self.library, strict=False)
        except Exception:  # its drawing fails later, with the reason; here only its size is wanted
            return None
        extent = footprints_from_geometry(geometry)[component.id]
        equipment = {c.id for c in self.document.layout.components if c.kind in EQUIPMENT}
        taken = {cid: fp for cid, fp in self._footprints.items() if cid in equipment}
        return free_spot(taken, extent, near, self.document.layout.floor, clearance=SNAP_M, step=SNAP_M)

    def connect_to(self, target: str) -> bool:
        """The selected component now feeds ``target`` (the Connect mode's second click)."""
        source = self.selection.current
        self.panel.connect_button.setChecked(False)
        if self.document is None or not source or source == target:
            return False
        ok = self.push(ConnectComponents(source, target))
        if ok:
            self.message.emit(f"{source} now feeds {target}")
        return ok

    def duplicate_selected(self) -> None:
        selected = self.selection.current
        if self.document is not None and selected and self.push(duplicate_of(self.document.layout, selected)):
            self._redraw()

    def delete_selected(self) -> None:
        selected = self.selection.current
        if selected and self.push(RemoveComponent(selected)):
            self.selection.select(None)
            self._redraw()

    # --- dragging -------------------------------------------------------------------------------------
    def drag_probe(self, x: float, y: float) -> bool:
        """A left press in edit mode: start moving the component under the pointer, if any (in Connect
        mode: link the selection to it)."""
        if self.document is None:
            return False
        component = self.scene.pick(x, y)
        if component is None:
            return False
        if self.panel.connect_button.isChecked():
            self.connect_to(component)
            return True  # no drag, no camera turn
        comp = self.document.layout.component(component)
        while comp.parent:  # a sensor drags its machine
            comp = self.document.layout.component(comp.parent)
        hit = self.scene.floor_point(x, y)
        if hit is None:
            return False
        self._drag = (comp.id, hit[0] - comp.position[0], hit[1] - comp.position[1])
        self.selection.select(comp.id)
        return True

    def drag_to(self, x: float, y: float, free: bool) -> None:
        if self._drag is None or self.document is None:
            return
        component, ox, oy = self._drag
        hit = self.scene.floor_point(x, y)
        if hit is None:
            return
        nx, ny = hit[0] - ox, hit[1] - oy
        if not free:
            nx, ny = round(nx / SNAP_M) * SNAP_M, round(ny / SNAP_M) * SNAP_M
        comp = self.document.layout.component(component)
        old = tuple(comp.position)
        if math.isclose(nx, old[0]) and math.isclose(ny, old[1]):
            return
        moved_before = {c.id: tuple(c.position) for c in self.document.layout.components}
        if self.push(MoveComponent(component, (nx, ny, old[2]), comp.display_name), merge=True):
            for c in self.document.layout.components:  # the moved one, its sensors, conveyors' centres
                was = moved_before.get(c.id)
                if was is not None and tuple(c.position) != was:
                    delta = (c.position[0] - was[0], c.position[1] - was[1], c.position[2] - was[2])
                    self.scene.translate_component(c.id, delta)
                    fp = self._footprints.get(c.id)
                    if fp is not None:
                        self._footprints[c.id] = (fp[0] + delta[0], fp[1] + delta[0], fp[2] + delta[1],
                                                  fp[3] + delta[1])
            self.view.update()
            self.show_selection(component)

    def drag_end(self) -> None:
        if self._drag is None or self.document is None:
            return
        self._drag = None
        self.document.end_merge()
        self._redraw()

    # --- fields ---------------------------------------------------------------------------------------
    def show_selection(self, component_id: str | None) -> None:
        self._updating_fields = True
        try:
            enabled = self.document is not None and component_id is not None
            for w in (self.panel.x, self.panel.y, self.panel.rotation, self.panel.duplicate_button,
                      self.panel.delete_button, self.panel.bind_opcua_button):
                w.setEnabled(enabled)
            if enabled:
                comp = self.document.layout.component(component_id)  # type: ignore[union-attr]
                self.panel.x.setValue(comp.position[0])
                self.panel.y.setValue(comp.position[1])
                self.panel.rotation.setValue(comp.rotation[2] % 360)
            self.show_properties(component_id if enabled else None)
            is_robot = enabled and self.document.layout.component(component_id).kind == "robot"  # type: ignore
            self.panel.reach_button.setEnabled(bool(is_robot))
            self._update_reach()
        finally:
            self._updating_fields = False

    def _update_reach(self) -> None:
        """Draw the selected robot's reach while the button is down."""
        from viewer.geometry.reach import robot_reach

        selected = self.selection.current
        comp = self.document.layout.component(selected) if self.document and selected else None
        if comp is not None and comp.kind == "robot" and self.panel.reach_button.isChecked():
            self.scene.show_reach(comp.id, robot_reach(comp, self.scene.geometry))
        else:
            self.scene.show_reach(None)
        self.view.update()

    def bind_opcua_node(self) -> None:
        """Browse an OPC UA server and bind one of its variables to the selected component's signal."""
        from viewer.ui.opcua_browse_dialog import open_bind_dialog

        self.opcua_dialog = open_bind_dialog(self)

    def compare_with_saved(self) -> None:
        """Saved and edited layouts side by side: their KPIs and each station's differences."""
        if self.report is None or self.baseline is None:
            self.message.emit("Nothing to compare yet: the KPIs are still being simulated")
            return
        from viewer.ui.compare import CompareDialog

        # Plans of both as they are now (a property edit changes no drawing, a typed move may still be drawing).
        plans = []
        for layout in (self.saved_layout, copy.deepcopy(self.document.layout)):
            geometry = build_plant_geometry(layout, self.document.base_dir, self.library, strict=False)
            plans.append((layout, footprints_from_geometry(geometry)))
        dialog = CompareDialog(self.baseline, self.report, "saved", "edited", self.panel.window(), plans=tuple(plans))
        self.compare_dialog = dialog  # tests read it
        dialog.show()

    def _clear_properties(self) -> None:
        form = self.panel.properties
        while form.rowCount():
            form.removeRow(0)
        self.property_fields: dict[str, QWidget] = {}

    def _number(self, label: str, key: str, value: float, lo: float, hi: float, decimals: int, suffix: str,
                apply: Any) -> None:
        spin = QDoubleSpinBox(self.panel)
        spin.setRange(lo, hi)
        spin.setDecimals(decimals)
        spin.setSuffix(suffix)
        spin.setKeyboardTracking(False)
        spin.setValue(value)
        spin.valueChanged.connect(lambda v: None if self._updating_fields else apply(v))
        self.panel.properties.addRow(label, spin)
        self.property_fields[key] = spin

    def show_properties(self, component_id: str | None) -> None:
        """Fields for what the simulation uses of the selected component; each change is one undoable edit."""
        self._clear_properties()
        if self.document is None or component_id is None:
            return
        comp = self.document.layout.component(component_id)
        sim = comp.section("sim")
        name = comp.display_name

        def set_value(section: str, key: str, text: str) -> Any:
            def apply(value: Any) -> None:
                if self.push(SetSectionValue(component_id, section, key, value, f"{text} of {name}")):
                    self._refresh_fields(component_id)
            return apply

        if comp.kind in ("station", "robot"):
            cycle = dict(sim.get("cycle_time") or {"dist": "deterministic", "mean": 60.0})
            dist = QComboBox(self.panel)
            for kind in ("deterministic", "exponential", "normal", "lognormal", "gamma"):
                dist.addItem(kind)
            dist.setCurrentText(cycle.get("dist", "deterministic"))

            def set_cycle(**changes: Any) -> None:
                new = {**cycle, **changes}
                if new.get("dist") in ("lognormal", "gamma") and not new.get("cv"):
                    new["cv"] = 0.1  # these need a spread: a sensible start the planner can change
                set_value("sim", "cycle_time", "Change cycle time")(new)

            dist.currentTextChanged.connect(lambda d: None if self._updating_fields else set_cycle(dist=d))
            self.panel.properties.addRow("Cycle time", dist)
            self._number("  mean", "mean", float(cycle.get("mean", 0.0)), 0.0, 1e6, 1, " s",
                         lambda v: set_cycle(mean=v))
            self._number("  cv", "cv", float(cycle.get("cv", 0.0)), 0.0, 5.0, 2, "",
                         lambda v: set_cycle(cv=v))
            self._number("Servers", "servers", float(sim.get("servers", 1)), 1, 50, 0, "",
                         lambda v: set_value("sim", "servers", "Change servers")(int(v)))
            self._number("MTBF", "mtbf", float(sim.get("mtbf", 0.0)), 0.0, 1e7, 0, " s (0 = never fails)",
                         lambda v: self._set_failures(component_id, mtbf=v))
            self._number("MTTR", "mttr", float(sim.get("mttr", 0.0)), 0.0, 1e6, 0, " s",
                         lambda v: self._set_failures(component_id, mttr=v))
            self._number("Scrap", "scrap", float(sim.get("scrap_rate", 0.0)) * 100, 0.0, 99.0, 1, " %",
                         lambda v: set_value("sim", "scrap_rate", "Change scrap rate")(v / 100 or None))
        elif comp.kind == "buffer":
            self._number("Capacity", "capacity", float(comp.section("buffer").get("capacity", 0)), 0, 10_000, 0,
                         " parts", lambda v: set_value("buffer", "capacity", "Change capacity")(int(v)))
        elif comp.kind == "conveyor":
            conveyor = comp.section("conveyor")
            self._number("Speed", "speed", float(conveyor.get("speed", 0.25)), 0.01, 10.0, 2, " m/s",
                         lambda v: set_value("conveyor", "speed", "Change speed")(v))
            self._number("Capacity", "capacity", float(conveyor.get("capacity", 1)), 1, 10_000, 0, " parts",
                         lambda v: set_value("conveyor", "capacity", "Change capacity")(int(v)))
        elif comp.kind == "agv-path":
            path = comp.section("path")
            self._number("AGV fleet", "fleet", float(path.get("fleet", 1)), 0, 500, 0, " vehicles",
                         lambda v: set_value("path", "fleet", "Change AGV fleet")(int(v)))
            self._number("Speed", "speed", float(path.get("speed", 1.0)), 0.05, 10.0, 2, " m/s",
                         lambda v: set_value("path", "speed", "Change AGV speed")(v))
        outgoing = [f for f in self.document.layout.flow if f.source == component_id]
        if len(outgoing) > 1:  # routing shares of a split
            for link in outgoing:
                self._number(f"Share to {link.target}", f"share:{link.target}", float(link.share or 0.0), 0.0, 1.0,
                             2, " (0 = by room)", lambda v, t=link.target: self._set_share(component_id, t, v))

    def _refresh_fields(self, component_id: str) -> None:
        """Rebuild the fields after the edit, not inside the signal of the field that made it."""
        QTimer.singleShot(0, lambda: self.show_selection(component_id)
                          if self.selection.current == component_id else None)

    def _set_failures(self, component_id: str, **changes: float) -> None:
        """MTBF and MTTR go together: 0 MTBF removes both (the station never fails)."""
        assert self.document is not None
        sim = dict(self.document.layout.component(component_id).section("sim"))
        mtbf = changes.get("mtbf", sim.get("mtbf", 0.0))
        mttr = changes.get("mttr", sim.get("mttr", 0.0))
        if mtbf and not mttr:
            mttr = 600.0
        sim.pop("mtbf", None)
        sim.pop("mttr", None)
        if mtbf:
            sim.update(mtbf=mtbf, mttr=mttr or 600.0)
        name = self.document.layout.component(component_id).display_name
        if self.push(SetComponentField(component_id, "sim", sim, f"Change failures of {name}")):
            self._refresh_fields(component_id)

    def _set_share(self, component_id: str, target: str, share: float) -> None:
        assert self.document is not None
        old = next(f for f in self.document.layout.flow if f.source == component_id and f.target == target)
        if self.push(ReplaceLink(old, dataclasses.replace(old, share=share or None))):
            self._refresh_fields(component_id)

    def _on_position_field(self) -> None:
        selected = self.selection.current
        if self._updating_fields or self.document is None or not selected:
            return
        comp = self.document.layout.component(selected)
        target = (self.panel.x.value(), self.panel.y.value(), comp.position[2])
        if target[:2] != tuple(comp.position[:2]) and self.push(MoveComponent(selected, target, comp.display_name)):
            self._redraw()
        self.show_selection(selected)

    def _on_rotation_field(self) -> None:
        selected = self.selection.current
        if self._updating_fields or self.document is None or not selected:
            return
        comp = self.document.layout.component(selected)
        angle = round(float(self.panel.rotation.value()), 1) % 360
        rotation = (comp.rotation[0], comp.rotation[1], angle)
        if rotation != tuple(comp.rotation) and self.push(
                SetComponentField(selected, "rotation", rotation, f"Rotate {comp.display_name}")):
            self._redraw()

    # --- background work ------------------------------------------------------------------------------
    def _edited(self) -> None:
        self._rerun.start()  # debounced: a burst of edits costs one rerun

    def _redraw(self, select: str | None = None) -> None:
        """Rebuild the plant drawing from the edited layout, in a worker thread; the camera stays."""
        if self.document is None:
            return
        self._select_after = select
        layout = copy.deepcopy(self.document.layout)  # the worker must not see later edits half-made
        base = self.document.base_dir
        self.redraw_task.run(
            lambda _context: (layout, build_plant_geometry(layout, base, self.library, strict=False)),
            self._on_rebuilt,
            lambda exc: self.message.emit(f"Cannot draw the edited plant: {exc}"))  # the old drawing stays

    def _on_rebuilt(self, payload: Any) -> None:
        if self.document is None:
            return
        drawn_layout, geometry = payload
        self.show_edited(self.document.layout, geometry)
        self.show_flow()
        if getattr(self, "_select_after", None):
            self.selection.select(self._select_after)
            self._select_after = None
        self._footprints = footprints_from_geometry(geometry)
        self._reaches = robot_reaches(geometry)
        self.drawn = (drawn_layout, dict(self._footprints))  # the edited plant as last drawn (Compare)
        self.run_checks()
        if self.report is not None and self.report.bottleneck:
            self.scene.set_bottleneck(self.report.bottleneck)
        self.view.update()

    def run_checks(self) -> None:
        if self.document is None:
            return
        self.problems = check_layout(self.document.layout, self._footprints, getattr(self, "_reaches", None))
        self.panel.set_problems(self.problems)
        # In the scene too: components with an error-level problem get an amber outline.
        faulty = sorted({c for p in self.problems if p.severity == "error" for c in p.components})
        self.scene.set_problem_outlines(faulty)
        self.view.update()

    def rerun(self) -> None:
        """Simulate the current layout in the worker process (the newest edit wins)."""
        if self.document is None:
            return
        self.run_checks()
        try:
            model = model_from_layout(self.document.layout)
        except SimModelError as exc:
            self.panel.sim_status.setText("Cannot simulate: " + "; ".join(f"{w}: {m}" for w, m in exc.problems[:3])
                                          + (" — the KPIs shown are the last layout that could be simulated"
                                             if self.report is not None else ""))
            self._set_stale_look(True)  # never bold figures beside "Cannot simulate"
            self.panel.cancel_button.hide()
            return
        self._generation = self.runner.submit(SimRequest(model, KPI_HOURS, KPI_REPLICATIONS, seed=1))
        self.panel.sim_status.setText(f"Simulating {KPI_REPLICATIONS} x {KPI_HOURS:g} h…")
        self.panel.cancel_button.show()

    def cancel(self) -> None:
        self.runner.cancel()
        self.panel.cancel_button.hide()
        self.panel.sim_status.setText("Simulation cancelled; KPIs are from before the last edit")

    def _on_result(self, generation: int, result: Any, superseded: bool = False) -> None:
        if superseded:  # an earlier edit's KPIs while the newest simulates: better than a blank panel
            self.report = result
            self._show_report()
            self.panel.sim_status.setText("KPIs of an earlier edit; simulating the newest…")
            self._set_stale_look(True)
            return
        if not isinstance(result, str) and result.first_estimate:
            # a first estimate: shown at once, marked, never taken as the saved layout's baseline
            self.report = result
            self._set_stale_look(False)
            self._show_report()
            self.panel.sim_status.setText(f"First estimate ({result.replications} of {KPI_REPLICATIONS} "
                                          "replications); refining…")
            self.showing_first_estimate = True
            self.scene.set_bottleneck(result.bottleneck)
            self.view.update()
            return
        self.panel.cancel_button.hide()
        self._set_stale_look(False)
        self.showing_first_estimate = False
        if isinstance(result, str):
            self.panel.sim_status.setText(f"Simulation failed: {result}")
            return
        self.report = result
        if self._baseline_pending or (self.document is not None and not self.document.is_dirty):
            self.baseline = result
            self._baseline_pending = False
        self._show_report()
        self.scene.set_bottleneck(result.bottleneck)
        self.view.update()
        self.kpis_updated.emit(result)

    def _set_stale_look(self, stale: bool) -> None:
        """KPIs of an earlier edit are drawn in the muted text colour (ISA-101: not news, not an alarm)."""
        style = f"color: {current_theme().text_muted}" if stale else ""
        for label in (self.panel.throughput, self.panel.delta, self.panel.explain, self.panel.oee,
                      self.panel.bottleneck):
            label.setStyleSheet(style)
        self.showing_superseded = stale

    def _show_report(self) -> None:
        r = self.report
        if r is None:
            return
        tp = r.throughput_per_hour
        self.panel.throughput.setText(f"Throughput {tp.mean:,.1f} parts/h (95 % CI {tp.low:,.1f} to {tp.high:,.1f})")
        base = self.baseline
        if base is None or base is r:
            self.panel.delta.setText("As saved")
        else:
            b = base.throughput_per_hour
            diff = tp.mean - b.mean
            overlap = tp.low <= b.high and b.low <= tp.high
            verdict = "within noise (the intervals overlap)" if overlap else "a real change (no overlap)"
            self.panel.delta.setText(f"{diff:+,.1f} parts/h against the saved layout: {verdict}")
        why = explain_change(self.saved_layout, self.document.layout, base, r) \
            if self.document is not None and base is not None and base is not r else []
        self.panel.explain.setText("\n".join(f"• {line}" for line in why))
        self.panel.explain.setVisible(bool(why))
        self.panel.oee.setText(f"Line OEE {r.line_oee.mean:.0%}")
        self.panel.bottleneck.setText(f"Bottleneck {r.bottleneck or '—'}")
        early = " (stopped early: throughput known to ±2 %)" if r.stopped_early else ""
        self.panel.sim_status.setText(f"Up to date ({r.replications} x {r.hours:g} h, {r.wall_s * 1000:,.0f} ms)"
                                      f"{early}")
        self.panel.bars.set_rows([(s.id, {"working": s.working, "setup": s.setup, "blocked": s.blocked,
                                          "starved": s.starved, "down": s.down}, s.id == r.bottleneck)
                                  for s in r.stations])
