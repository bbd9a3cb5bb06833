"""The main window: 3D view in the centre, component tree on the left, details on the right.

Selection has one owner, :meth:`MainWindow.select_component`, which updates the
scene highlight, the tree and the details panel, whichever of them started it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from viewer.model.layout import Layout
from viewer.model.selection import Selection
from viewer.scene.plant_scene import PlantScene
from viewer.telemetry.alarm_journal import AlarmJournal, alarm_journal_dir
from viewer.telemetry.mqtt_client import SettingsError
from viewer.telemetry.recording import (
    RecordingError,
    default_recordings_dir,
    file_size,
    layout_matches,
    quick_info,
)
from viewer.ui.alarm_panel import AlarmPanel
from viewer.ui.background import BackgroundTask, TaskContext
from viewer.ui.component_panel import ComponentPanel
from viewer.ui.details_panel import DetailsPanel
from viewer.ui.editor import EditorPanel, LayoutEditor
from viewer.ui.layout_loader import LayoutLoader, LoadedPlant
from viewer.ui.maintenance_panel import MaintenancePanel
from viewer.ui.plant_view import PlantView
from viewer.ui.replay_controller import ReplayController
from viewer.ui.telemetry_controller import TelemetryController, settings_for
from viewer.ui.theme import apply_theme
from viewer.ui.theme import current as current_theme
from viewer.ui.timeline import ReplayBanner, ReplayControl, TimelinePanel

APP_NAME = "twin-viewer"
PLOT_INTERVAL_S = 0.25
log = logging.getLogger(__name__)


def initial_size(available: tuple[int, int]) -> tuple[int, int]:
    """The first size with fresh settings: roomy on a large screen, never larger than the screen's free area
    (a taskbar and the title bar taken off: 1366x768 gives 1366x708)."""
    width, height = available
    return min(1440, width), min(900, max(height - 60, 480))


class MainWindow(QMainWindow):
    """The viewer's main window."""

    layout_loaded = Signal(str)  # path
    load_failed = Signal(str)  # path
    selection_changed = Signal(object)  # str | None

    def __init__(self, parent: QWidget | None = None, *, broker: str | None = None, policy: object = None) -> None:
        super().__init__(parent)
        from viewer.runtime import Policy

        self.broker = broker
        self.opcua_endpoint: str | None = None  # --opcua opc.tcp://HOST:PORT: overrides the layout's endpoint
        self.policy = policy if policy is not None else Policy()
        self.settings = None  # QSettings when run as the app (run_gui); tests set their own
        self.alarm_journal_dir: Path | None = None  # None: the user's data folder when run as the app, else none
        self.setWindowTitle(APP_NAME)
        self.resize(*initial_size(self.screen().availableGeometry().size().toTuple()))
        self.setDockNestingEnabled(True)
        self.layout_path: Path | None = None
        self.plant_layout: Layout | None = None
        self.selection = Selection()  # Qt-free; the view, the tree, the details and the editor observe it
        self.selection.changed.connect(self._on_selection_changed)
        self.last_error: tuple[str, list[str]] | None = None
        self._geometry = None
        self._last_plot = 0.0
        self._pending_recording: Path | None = None  # replayed once its layout is open
        self.setAcceptDrops(True)

        self._build_view()
        self._build_docks()
        self._build_editor()
        self._build_telemetry()
        self.compare_task = BackgroundTask("compare", self)
        self.loader.progress.connect(self._on_load_progress)
        self.loader.finished.connect(self._on_load_finished)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.cancelled.connect(self._on_load_cancelled)

        self._build_status_bar()
        self._build_actions()
        self._apply_policy()
        self._update_enabled()
        self.status("Ready. Open a layout file (Ctrl+O).")

    # ----------------------------------------------------------------- construction
    def _build_view(self) -> None:
        """The 3D view under the REPLAY banner (shown only while a replay has the view)."""
        self.view = PlantView(self)
        self.replay_banner = ReplayBanner(self)
        centre = QWidget(self)
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.replay_banner)
        column.addWidget(self.view, 1)
        self.setCentralWidget(centre)
        self.scene = PlantScene(self.view)
        self.view.clicked.connect(self._on_view_clicked)
        # A whole-plant view stays whole when docks open, close or change size (until the user moves it).
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(100)
        self._refit.timeout.connect(self._refit_view)
        self.view.resized.connect(self._refit.start)
        self.view.camera_moved.connect(lambda: setattr(self.scene, "fitted", False))
        self.view.hovered.connect(self._on_view_hovered)


    def _build_docks(self) -> None:
        """Components left; details (and the editor, as tabs) right; alarms, the replayed alarms and the
        timeline at the bottom."""
        self.components = ComponentPanel(self)
        self.components.component_selected.connect(lambda cid: self.select_component(cid))
        self.components.component_activated.connect(self._on_component_activated)
        self.details = DetailsPanel(self)
        self.details.accept_button.clicked.connect(self._on_accept_normal)
        self.details.relearn_button.clicked.connect(self._on_relearn)
        self.details.freeze_button.toggled.connect(self._on_freeze)
        self.details.retrain_button.clicked.connect(self._on_retrain)
        self.details.trend_range.currentIndexChanged.connect(lambda _i: self._refresh_plot(self.shown.now()))
        self.components_dock = self._add_dock("Components", self.components, Qt.DockWidgetArea.LeftDockWidgetArea,
                                              "componentsDock")
        self.maintenance = MaintenancePanel(self)  # a tab beside Components: never over the alarms
        self.maintenance.pipeline_source = lambda: self.telemetry.pipeline
        self.maintenance.layout_source = lambda: self.plant_layout
        self.maintenance.scheduled.connect(self.schedule_maintenance)
        self.maintenance.table.itemDoubleClicked.connect(
            lambda _item: self._on_component_activated(self.maintenance.selected_component()))
        self.maintenance_dock = self._add_dock("Maintenance", self.maintenance, Qt.DockWidgetArea.LeftDockWidgetArea,
                                               "maintenanceDock")
        self.tabifyDockWidget(self.components_dock, self.maintenance_dock)
        self.components_dock.raise_()
        self.details_dock = self._add_dock("Details", self.details, Qt.DockWidgetArea.RightDockWidgetArea,
                                           "detailsDock", scroll=True)
        self.alarm_panel = AlarmPanel(self)
        self.alarm_panel.component_requested.connect(self._on_component_activated)
        self.alarm_panel.accept_requested.connect(self.accept_as_new_normal)
        self.alarm_dock = self._add_dock("Alarms", self.alarm_panel, Qt.DockWidgetArea.BottomDockWidgetArea,
                                         "alarmsDock")

        self.timeline = TimelinePanel(self)
        self.timeline.live_button.clicked.connect(self.leave_replay)
        self.timeline_dock = self._add_dock("Replay", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea,
                                            "timelineDock")
        self.splitDockWidget(self.timeline_dock, self.alarm_dock, Qt.Orientation.Vertical)  # full width, on top
        self.timeline_dock.hide()
        # A replay's own alarm list, beside the live one (which stays in view: a replay never blinds the
        # operator). Read-only: what was acknowledged then is replayed; nothing here reaches the live alarms.
        self.replay_alarm_panel = AlarmPanel(self)
        self.replay_alarm_panel.set_read_only(True)
        self.replay_alarm_panel.component_requested.connect(self._on_component_activated)
        self.replay_alarm_dock = self._add_dock("Replayed alarms", self.replay_alarm_panel,
                                                Qt.DockWidgetArea.BottomDockWidgetArea, "replayAlarmsDock")
        self.splitDockWidget(self.alarm_dock, self.replay_alarm_dock, Qt.Orientation.Horizontal)
        self.replay_alarm_dock.hide()
        self.editor_panel = EditorPanel(self)
        self.editor_dock = self._add_dock("Layout editor", self.editor_panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                          "editorDock", scroll=True)
        self.tabifyDockWidget(self.details_dock, self.editor_dock)  # one column on the right: tabs, never taller
        self.editor_dock.hide()

    def _build_editor(self) -> None:
        """The layout editor: its dock (a tab beside the details) and its explicit collaborators."""
        self.loader = LayoutLoader(self)
        self.editor = LayoutEditor(self.editor_panel, scene=self.scene, view=self.view, selection=self.selection,
                                   library=self.loader.library, show_edited=self.show_edited_plant, parent=self)
        self.editor.message.connect(self.status)
        self.editor.changed.connect(self._on_edit_history)
        self.editor_panel.problem_selected.connect(self._on_component_activated)
        self.view.drag_moved.connect(self.editor.drag_to)
        self.view.drag_finished.connect(self.editor.drag_end)

        self.resizeDocks([self.alarm_dock], [170], Qt.Orientation.Vertical)  # the 3D view keeps most of the height

    def _build_telemetry(self) -> None:
        """The plant live (always) and a recording (while replayed), and the replay controller between them."""
        self.telemetry = TelemetryController(self.scene, self.view.update, self)
        self.alarm_panel.context_source = lambda: self.telemetry.pipeline  # names, units, values now
        self.alarm_panel.operator_acted.connect(self._on_alarms_changed)  # the dock title's count follows
        self.telemetry.alarms_changed.connect(self._on_alarms_changed)
        self.telemetry.status_changed.connect(self._on_telemetry_status)
        self.telemetry.values_changed.connect(lambda c: self.replay is None and self._on_values_changed(c))
        # A recording, while replayed: it has the 3D view; the live controller above runs on (alarms, status).
        self.replayed = TelemetryController(self.scene, self.view.update, self)
        self.replay_alarm_panel.context_source = lambda: self.replayed.pipeline
        self.replays = ReplayController(self, self._on_replay_frame)
        self.replayed.alarms_changed.connect(self.replays.alarms_changed)
        self.replayed.values_changed.connect(lambda c: self.replay is not None and self._on_values_changed(c))

    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str,
                  scroll: bool = False) -> QDockWidget:
        """A dock; ``scroll`` puts a tall panel in a scroll area, so its height never forces the window taller
        than the screen (a dock's minimum size is its widget's)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if scroll:
            area_widget = QScrollArea(dock)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            area_widget.setWidget(widget)
            dock.setWidget(area_widget)
        else:
            dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        dock.setMinimumWidth(330 if name == "detailsDock" else 260)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel(self)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # names from files are never markup
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._cancel_background)
        self.scene_label = QLabel(self)
        self.connection_label = QLabel("Telemetry off", self)
        self.rate_label = QLabel(self)
        self.errors_label = QLabel(self)
        self.age_label = QLabel(self)
        self.recording_label = QLabel(self)  # "● REC 00:12:34 · 45.2 MB" while recording
        self.recording_label.setStyleSheet("font-weight: bold")  # noticed, but no alarm colour (ISA-101)
        self.recording_label.hide()
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cancel_button)
        for label in (self.recording_label, self.connection_label, self.rate_label, self.errors_label,
                      self.age_label):
            bar.addPermanentWidget(label)
        bar.addPermanentWidget(self.scene_label)
        self.progress_bar.hide()
        self.cancel_button.hide()

    def _action(self, text: str, slot: object, shortcut: str | QKeySequence | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            # Window-wide, so the keys work while the 3D view has focus.
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open Layout…", self.open_dialog, QKeySequence.StandardKey.Open,
                                        "Open a layout file")
        self.reload_action = self._action("&Reload", self.reload, "F5", "Read the layout file again")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, "Close the viewer")
        self.iso_action = self._action("&Isometric", self.view_iso, "I", "Isometric overview")
        self.top_action = self._action("&Top", self.view_top, "T", "Plan view from above")
        self.fit_action = self._action("&Fit All", self.fit_all, "Home", "Show the whole plant")
        self.focus_action = self._action("&Focus on Selection", self.focus_selection, "F",
                                         "Zoom to the selected component")
        self.clear_selection_action = self._action("Clear Selection", lambda: self.select_component(None), "Esc")
        self.labels_action = self._action("Show &Labels", self.toggle_labels, "L", "Show or hide name labels")
        self.labels_action.setCheckable(True)
        self.about_action = self._action("&About", self.show_about)
        self.opcua_certificate_action = self._action("OPC UA &Certificate…", self.show_opcua_certificate,
                                                     tip="This viewer's certificate and thumbprint, to trust it "
                                                         "on an OPC UA server; where trusted servers are kept")
        self.open_recording_action = self._action("Open &Recording…", self.open_recording_dialog, "Ctrl+Shift+O",
                                                  "Replay a recorded session")
        self.record_action = self._action("Record", self.toggle_recording, "Ctrl+R",
                                          "Record the live session to a file")
        self.record_action.setCheckable(True)
        self.edit_action = self._action("&Edit Layout", self.toggle_edit_mode, "Ctrl+E",
                                        "Move, add and connect equipment; KPIs rerun after every edit")
        self.edit_action.setCheckable(True)
        self.undo_action = self._action("&Undo", self.editor.undo, QKeySequence.StandardKey.Undo, "Undo the last edit")
        self.redo_action = self._action("&Redo", self.editor.redo, "Ctrl+Shift+Z", "Redo the edit undone")
        self.save_action = self._action("&Save", self.save_layout, QKeySequence.StandardKey.Save, "Save the layout")
        self.save_as_action = self._action("Save &As…", self.save_layout_as, "Ctrl+Shift+S",
                                           "Save the layout to a new file")

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        self.compare_file_action = self._action("Compare With File…", self.compare_with_file_dialog, "",
                                                "This layout and another file simulated side by side")
        file_menu.addActions([self.open_action, self.reload_action, self.save_action, self.save_as_action,
                              self.compare_file_action])
        file_menu.addSeparator()
        file_menu.addActions([self.open_recording_action, self.record_action])
        self.recent_menu = file_menu.addMenu("Open Recent")
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = self.edit_menu = menus.addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addAction(self.edit_action)
        view_menu = menus.addMenu("&View")
        view_menu.addActions([self.iso_action, self.top_action, self.fit_action, self.focus_action])
        view_menu.addSeparator()
        view_menu.addActions([self.labels_action, self.clear_selection_action])
        theme_menu = view_menu.addMenu("&Theme")
        theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, text in (("dark", "&Dark (control room)"), ("light", "&Light")):
            action = theme_menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(name == current_theme().name)
            action.triggered.connect(lambda _checked=False, n=name: self.set_theme(n))
            theme_group.addAction(action)
            self.theme_actions[name] = action
        self.operator_action = self._action("&Operator Mode", lambda: self.set_operator_mode(
            self.operator_action.isChecked()), "Ctrl+Shift+K", "Full screen, no editing; alarms and replay stay")
        self.operator_action.setCheckable(True)
        view_menu.addAction(self.operator_action)
        view_menu.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.opcua_certificate_action)
        help_menu.addAction(self.about_action)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.open_action)
        toolbar.addSeparator()
        toolbar.addActions([self.iso_action, self.top_action, self.fit_action, self.focus_action])
        toolbar.addSeparator()
        toolbar.addAction(self.labels_action)
        toolbar.addSeparator()
        toolbar.addActions([self.record_action, self.open_recording_action])
        toolbar.addSeparator()
        toolbar.addAction(self.edit_action)

    def _apply_policy(self) -> None:
        """Operator mode: no editing and no connection settings; alarms, replay and recording stay."""
        self.policy_label = QLabel(self.policy.describe(), self)
        self.statusBar().addPermanentWidget(self.policy_label)
        # A planner may always hand over in operator mode; back out of it only where the policy allows.
        self.operator_action.setVisible(not self.policy.operator or self.policy.allow_planner)
        self._show_mode()

    def _show_mode(self) -> None:
        operator = self.policy.operator
        self.operator_action.setChecked(operator)
        for action in (self.edit_action, self.save_action, self.save_as_action, self.undo_action,
                       self.redo_action, self.editor_dock.toggleViewAction(), self.compare_file_action):
            action.setVisible(not operator)
        self.edit_menu.menuAction().setVisible(not operator)  # nothing in it is for the operator
        # The alarm list is the operator's first tool: in operator mode it cannot be closed or floated away.
        movable = QDockWidget.DockWidgetFeature.DockWidgetMovable
        self.alarm_dock.setFeatures(movable if operator else movable
                                    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                                    | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.alarm_dock.toggleViewAction().setEnabled(not operator)
        if operator:
            self.editor_dock.hide()
            if self.alarm_dock.isFloating():
                self.alarm_dock.setFloating(False)
            self.alarm_dock.show()
        self.policy_label.setText(self.policy.describe())

    def show_full_screen(self) -> None:
        """Full screen on the policy's monitor (operator mode); leaving it brings back the window as it was."""
        from PySide6.QtGui import QGuiApplication

        if not self.isFullScreen():
            self._normal_geometry = self.saveGeometry()

        screens = QGuiApplication.screens()
        if 0 <= self.policy.monitor < len(screens):
            self.setScreen(screens[self.policy.monitor])
            self.move(screens[self.policy.monitor].geometry().topLeft())
        self.showFullScreen()

    def set_operator_mode(self, on: bool) -> bool:
        """Switch between operator and planner mode at run time, as far as the policy allows."""
        if on == self.policy.operator:
            self.operator_action.setChecked(on)
            return True
        if not on and not self.policy.allow_planner:
            self.operator_action.setChecked(True)
            self.status(f"The planner's mode is not allowed on this PC ({self.policy.describe()})")
            return False
        if on:  # hand over: the planner saves or drops the edits first; the operator gets the plant as saved
            had_edits = self.editor.dirty
            if not self._unsaved_changes_resolved():
                self.operator_action.setChecked(False)
                return False
            if self.edit_action.isChecked():
                self.edit_action.setChecked(False)
                self.toggle_edit_mode()
            dropped = had_edits and (self.editor.document is None or self.editor.dirty)
            self.editor.document = None
            if dropped and self.layout_path is not None:
                self.open_layout(self.layout_path)  # the file as saved, not the dropped edits
        self.policy = dataclasses.replace(self.policy, mode="operator" if on else "planner")
        self._show_mode()
        if on:
            self.show_full_screen()
        elif not on and self.isFullScreen():
            self.showNormal()
            self._restore_normal_geometry()
        self._update_enabled()
        self.status(self.policy.describe())
        return True

    def _restore_normal_geometry(self) -> None:
        """The size and place the window had before full screen, kept on the screen it is on (leaving full
        screen otherwise leaves it at 0,0 with the full-screen size, the 3D view clipped)."""
        saved = getattr(self, "_normal_geometry", None)
        if saved is not None:
            self.restoreGeometry(saved)
        screen = self.screen().availableGeometry()
        width, height = min(self.width(), screen.width()), min(self.height(), screen.height())
        if saved is None or (width, height) != (self.width(), self.height()):
            width, height = initial_size(screen.size().toTuple())
            self.resize(width, height)
        frame = self.frameGeometry()
        if not screen.contains(frame):
            self.move(screen.x() + max((screen.width() - frame.width()) // 2, 0),
                      screen.y() + max((screen.height() - frame.height()) // 2, 0))

    def refresh_recent(self) -> None:
        """File > Open Recent from the settings (layouts and recordings)."""
        from viewer.ui.settings import recent_files

        self.recent_menu.clear()
        items = recent_files(self.settings) if self.settings is not None else []
        for path in items:
            self.recent_menu.addAction(path, lambda p=path: self.open_any(Path(p)))
        self.recent_menu.setEnabled(bool(items))

    def open_any(self, path: Path) -> None:
        """A layout or a recording, by its extension."""
        if path.suffix.lower() == ".mcap":
            self.open_recording(path)
        else:
            self.open_layout(path)

    def _remember(self, path: Path) -> None:
        if self.settings is not None:
            from viewer.ui.settings import add_recent

            add_recent(self.settings, path)
            self.refresh_recent()

    def _update_enabled(self) -> None:
        has_plant = self.plant_layout is not None
        for action in (self.iso_action, self.top_action, self.fit_action, self.labels_action, self.reload_action,
                       self.compare_file_action):
            action.setEnabled(has_plant)
        self.focus_action.setEnabled(self.selected is not None)
        self.clear_selection_action.setEnabled(self.selected is not None)
        editing = self.editor.document is not None
        self.edit_action.setEnabled(has_plant and not self.policy.operator)
        editing = editing and not self.policy.operator  # operator mode edits nothing, undo included
        self.undo_action.setEnabled(editing and self.editor.document.undo_text is not None)
        self.redo_action.setEnabled(editing and self.editor.document.redo_text is not None)
        self.undo_action.setText(f"&Undo {self.editor.document.undo_text}" if self.undo_action.isEnabled()
                                 else "&Undo")
        self.redo_action.setText(f"&Redo {self.editor.document.redo_text}" if self.redo_action.isEnabled()
                                 else "&Redo")
        self.save_action.setEnabled(editing and self.editor.dirty)
        self.save_as_action.setEnabled(editing)
        recording = self.telemetry.session is not None
        self.record_action.setEnabled(self.telemetry.running or recording)
        self.record_action.setChecked(recording)
        self.record_action.setText("Stop recording" if recording else "Record")

    # ----------------------------------------------------------------- status
    def status(self, text: str) -> None:
        """Say what the app is doing, in the status bar."""
        self.status_label.setText(text)

    # ----------------------------------------------------------------- opening
    def open_dialog(self) -> None:
        """Ask for a layout file and open it."""
        start = str(self.layout_path.parent) if self.layout_path else str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open layout", start, "Layout files (*.json);;All files (*)")
        if path:
            self.open_layout(Path(path))

    def compare_with_file_dialog(self) -> None:
        """Pick another layout file and compare the open one (as saved) with it."""
        if self.layout_path is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Compare with layout", str(self.layout_path.parent),
                                              "Layout files (*.json);;All files (*)")
        if path:
            self.compare_files(self.layout_path, Path(path))

    def compare_files(self, first: Path, second: Path) -> None:
        """Simulate two layout files with the same seeds (in the background) and show them side by side."""
        from viewer.sim.jobs import EDITOR_HOURS, EDITOR_REPLICATIONS

        def work(_context: TaskContext) -> tuple:
            from viewer.geometry.plant import build_plant_geometry
            from viewer.model.checks import footprints_from_geometry
            from viewer.sim.compare import simulate_pair

            layouts, reports = simulate_pair(first, second, EDITOR_HOURS, EDITOR_REPLICATIONS, seed=1)
            plans = tuple((layout, footprints_from_geometry(build_plant_geometry(
                layout, path.parent, self.loader.library, strict=False))) for layout, path in zip(
                layouts, (first, second), strict=True))
            return first.name, second.name, reports, plans

        self.status(f"Comparing {first.name} with {second.name}: simulating both "
                    f"({EDITOR_REPLICATIONS} x {EDITOR_HOURS:g} h, same seeds)…")
        # a bad file is said in the status bar, nothing else changes; a newer comparison supersedes this one
        self.compare_task.run(work, self._on_compared, lambda exc: self.status(f"Cannot compare: {exc}"))

    def _on_compared(self, result: tuple) -> None:
        from viewer.ui.compare import CompareDialog

        name_a, name_b, (report_a, report_b), plans = result
        dialog = CompareDialog(report_a, report_b, name_a, name_b, self, plans=plans)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.compare_dialog = dialog  # tests read it
        dialog.show()
        self.status(f"Compared {name_a} with {name_b}")

    def open_layout(self, path: Path | str) -> None:
        """Load a layout in the background; what is shown stays until the new plant is ready."""
        if not self._unsaved_changes_resolved():
            return
        path = Path(path)
        self._load_started = time.perf_counter()
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.status(f"Opening {path.name}…")
        self.loader.start(path)

    def reload(self) -> None:
        """Read the current layout file again."""
        if self.layout_path is not None:
            self.open_layout(self.layout_path)

    def _on_load_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        self.status(message)

    def _end_progress(self) -> None:
        self.progress_bar.hide()
        self.cancel_button.hide()

    def _on_load_finished(self, loaded: LoadedPlant) -> None:
        self._end_progress()
        try:
            choice = getattr(self, "_labels_choice", None)
            labels = choice[1] if choice is not None and choice[0] == loaded.path else None  # None: by plant size
            self.scene.show(loaded.layout, loaded.geometry, labels=labels)
        except Exception as exc:
            log.exception("cannot draw %s", loaded.path)
            if self.plant_layout is not None:
                self.scene.show(self.plant_layout, self._geometry)
            self._on_load_failed(str(loaded.path), f"{loaded.path.name} cannot be drawn.",
                                 [f"{type(exc).__name__}: {exc}"])
            return
        self.layout_path = loaded.path
        self.plant_layout = loaded.layout
        self._geometry = loaded.geometry
        self.editor.document = None  # a new plant: edits start from its file
        if self.edit_action.isChecked():
            self.editor.attach(loaded.layout, loaded.path, loaded.geometry)
        self.selection.forget()
        self.labels_action.setChecked(self.scene.labels_visible)
        self.components.set_layout(loaded.layout)
        self.details.show_component(None, loaded.layout)
        self._update_title()
        geometry = loaded.geometry
        self.scene_label.setText(f"{len(geometry.component_ids):,} components · {geometry.n_triangles:,} triangles")
        total = time.perf_counter() - getattr(self, "_load_started", time.perf_counter())
        note = f" ({len(geometry.problems)} drawn as placeholders)" if geometry.problems else ""
        self.status(f"Opened {loaded.path.name} in {total:.1f} s{note}")
        if self.replay is not None:
            self.replays.leave_view()
        if self.telemetry.session is not None:  # a recording belongs to one layout: close it, say where it is
            saved = self.telemetry.session.recorder.path
            self.telemetry.stop_recording()
            note = f"{note} — recording saved to {saved} (the layout changed)"
            self.status(f"Opened {loaded.path.name} in {total:.1f} s{note}")
        self._start_telemetry(loaded)  # the plant live, replay or not: a replay never blinds the operator
        if self._pending_recording is not None:
            recording, self._pending_recording = self._pending_recording, None
            self._start_indexing(recording, None)
        self._update_enabled()
        self._remember(loaded.path)
        self.view.update()
        self.layout_loaded.emit(str(loaded.path))

    # ----------------------------------------------------------------- telemetry
    def _start_telemetry(self, loaded: LoadedPlant) -> None:
        self.telemetry.stop()
        from viewer.telemetry.opcua_client import settings_for as opcua_settings_for

        try:
            settings = settings_for(loaded.layout, self.broker, loaded.path.parent)
            opcua = opcua_settings_for(loaded.layout, self.opcua_endpoint, loaded.path.parent)
            if settings is None and opcua is None:
                self.connection_label.setText("Telemetry off (no broker or OPC UA server in the layout)")
                return
            self.telemetry.start(loaded.layout, settings, journal=self._alarm_journal(loaded), opcua=opcua,
                                 layout_dir=loaded.path.parent)
        except SettingsError as exc:
            self.connection_label.setText("Telemetry off")
            self.show_error("Cannot connect to the plant's broker or OPC UA server.", [str(exc)])
            return
        self._on_alarms_changed()  # the list and the dock title's count together
        journal = self.telemetry.journal
        if journal is not None and journal.problems:  # a damaged journal: said, skipped, the app goes on
            self.status(f"Alarm journal: {len(journal.problems)} problem(s) skipped, e.g. {journal.problems[0]}")
        self.connection_label.setText("Connecting to " + " and ".join(
            c.describe() for c in (settings, opcua) if c is not None) + "…")
        self._update_enabled()

    def _alarm_journal(self, loaded: LoadedPlant) -> AlarmJournal | None:
        """The layout's alarm journal (its alarm list survives a reload), where journals are kept."""
        folder = self.alarm_journal_dir or (alarm_journal_dir() if self.settings is not None else None)
        return AlarmJournal(folder, loaded.path, loaded.layout.name) if folder is not None else None

    def _on_alarms_changed(self) -> None:
        self.alarm_panel.set_manager(self.telemetry.alarms)
        waiting = self.telemetry.alarms.unacknowledged_count()
        self.alarm_dock.setWindowTitle(f"Alarms ({waiting} unacknowledged)" if waiting else "Alarms")
        if self.replay is not None and waiting != self.replay_banner.live_unacknowledged:
            self.replay_banner.live_unacknowledged = waiting  # the banner says so too: live alarms are news
            self.replay_banner.update_text(self.replay.position)

    def _on_telemetry_status(self, status: dict) -> None:
        state = status["state"]
        detail = status["detail"]
        text = detail[:1].upper() + detail[1:]
        open_gaps = [g for g in status["gaps"] if g.end is None]
        if open_gaps and state != "connected":
            quiet = open_gaps[0].quiet_since or open_gaps[0].start
            text += f" (no data since {time.strftime('%H:%M:%S', time.localtime(quiet))})"
        warnings = list(status.get("warnings", []))
        if warnings:  # e.g. a password sent in clear: worth the operator's and IT's attention, always
            text += " · " + ("password sent unencrypted" if "unencrypted" in warnings[0] else warnings[0])
        if status.get("broker_dropped"):  # the broker's queues overflowed: data may be missing here too
            text += f" · broker dropped {status['broker_dropped']:,}"
            warnings.append(f"the broker dropped {status['broker_dropped']:,} messages since we connected "
                            "(its count, for all its clients)")
        self.connection_label.setText(text)
        # ISA-101: no colour while normal; amber text when the link is not up or not safe.
        self.connection_label.setStyleSheet(
            "" if state == "connected" and not warnings
            else f"color: {current_theme().text_warning}; font-weight: bold")
        closed = [g for g in status["gaps"] if g.end is not None][-5:]
        lines = [*warnings, *(f"gap {time.strftime('%H:%M:%S', time.localtime(g.start))}: "
                              f"{g.end - g.start:.1f} s ({g.reason})" for g in closed)]
        if status.get("client_id"):
            lines.append(f"client id {status['client_id']}")
        self.connection_label.setToolTip("\n".join(lines))
        self.rate_label.setText(f"{status['rate']:,.0f} msg/s")
        errors = status["decode_errors"]
        self.errors_label.setText(f"{errors:,} decode errors" if errors else "no decode errors")
        self.errors_label.setToolTip("\n".join(f"{t}: {e.count} ({e.last_reason})"
                                               for t, e in list(status["errors_by_topic"].items())[:20]))
        age = status["age"]
        # a clock a little ahead of ours gives a tiny negative age: "0.0 s ago", never "-0.0"
        self.age_label.setText("no data yet" if age is None else f"newest {max(age, 0.0):.1f} s ago")
        self._show_recording()

    def _show_recording(self) -> None:
        """The recording indicator: elapsed time and file size, while a recording runs."""
        session = self.telemetry.session
        if session is None:
            self.recording_label.hide()
            return
        elapsed = int(time.time() - getattr(self, "_recording_started", time.time()))
        size = file_size(session.recorder.path) / 1e6
        self.recording_label.setText(f"● REC {elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
                                     f" · {size:,.1f} MB")
        self.recording_label.setToolTip(f"Recording to {session.recorder.path}")
        self.recording_label.show()

    def _on_values_changed(self, components: set) -> None:
        if self.selected is not None and self.selected in components:
            now = time.time()
            self._show_live_details()
            if now - self._last_plot >= PLOT_INTERVAL_S:  # a plot a few times a second is plenty
                self._last_plot = now
                self._refresh_plot(self.shown.now())  # recording time in a replay

    def _show_live_details(self) -> None:
        """Live values and the anomaly explanation of the selection in the details panel."""
        component = self.selected
        if component is None:
            self.details.show_live([], [])
            return
        children = [c.id for c in self.plant_layout.components if c.parent == component] if self.plant_layout else []
        entries = [self.shown.anomaly.components.get(c) for c in (component, *children)]
        episode = any(e is not None and e.result.episode_start is not None for e in entries)
        self.details.show_live(self.shown.live_values(component), self.shown.anomaly_rows(component),
                               episode=episode, failure=self._failure_rows(component))
        self.details.anomaly_buttons.setEnabled(self.replay is None)  # they act on the plant now, not a replay

    def _failure_rows(self, component: str) -> list[tuple[str, str]]:
        """The selection's failure probabilities, at most once a second: values change every frame, a
        two-week trend does not (each row fits a trend)."""
        now = time.monotonic()
        cached = getattr(self, "_failure_cache", None)
        key = (component, id(self.shown.pipeline))
        if cached is None or cached[0] != key or now - cached[1] >= 1.0:
            cached = self._failure_cache = (key, now, self.shown.pipeline.failure_rows(component))
        return cached[2]

    def accept_as_new_normal(self, component: str) -> bool:
        """The operator's "Accept as new normal" for a component's anomaly episode, and its sensors'."""
        children = [c.id for c in self.plant_layout.components if c.parent == component] if self.plant_layout else []
        accepted = [c for c in (component, *children) if self.telemetry.accept_anomaly(c)]
        if accepted:
            self.status(f"{', '.join(accepted)}: the unusual values are the new normal now "
                        "(logged in the alarm history)")
            self.alarm_panel.refresh()
            if component == self.selected:
                self._show_live_details()
            return True
        self.status(f"{component}: no anomaly episode in progress to accept")
        return False

    def _on_accept_normal(self) -> None:
        if self.selected is not None:
            self.accept_as_new_normal(self.selected)

    def _on_relearn(self) -> None:
        if self.selected is not None:
            self.telemetry.anomaly.reset(self.selected)
            self.status(f"{self.selected}: learning normal again from the next samples")

    def _on_freeze(self, frozen: bool) -> None:
        if self.selected is not None:
            self.telemetry.anomaly.freeze(self.selected, frozen)
            self.status(f"{self.selected}: anomaly reference {'frozen' if frozen else 'following drift again'}")

    def _on_retrain(self) -> None:
        if self.selected is None:
            return
        if self.telemetry.retrain_anomaly(self.selected):
            self.status(f"{self.selected}: learned normal from the recent history")
        else:
            self.status(f"{self.selected}: not enough recent history to learn from yet")

    def _refresh_plot(self, now: float) -> None:
        """The selection's trends over the range chosen in the details panel (up to three signals)."""
        series, bands, units = {}, {}, set()
        shown = self.shown
        span = self.details.trend_span_s
        if self.selected is not None:
            for key in shown.pipeline.trends.keys_of(self.selected):
                trend = shown.pipeline.trends.over(key, span, now)
                if trend is None or len(trend.time) < 2:
                    continue
                unit = shown.units.get(key, "")  # filled as values arrive
                label = f"{key[1]} [{unit}]" if unit else key[1]
                series[label] = trend
                units.add(unit)
                band = shown.anomaly.normal_band(*key)
                if band is not None:
                    bands[label] = band
        common = units.pop() if len(units) == 1 else ""
        self.details.show_history(series, now, bands, unit=common)

    def _on_load_failed(self, path: str, summary: str, details: list[str]) -> None:
        self._end_progress()
        kept = f" Still showing {self.layout_path.name}." if self.layout_path else ""
        self.status(f"Could not open {Path(path).name}.{kept}")
        self.show_error(summary, details)
        self.load_failed.emit(path)

    def _on_load_cancelled(self, path: str) -> None:
        self._end_progress()
        self.status(f"Opening {Path(path).name} was cancelled.")

    def show_error(self, summary: str, details: list[str]) -> None:
        """A non-blocking error dialog listing where and why; the window keeps what it had."""
        self.last_error = (summary, details)
        box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, summary, QMessageBox.StandardButton.Ok, self)
        shown = details[:12]
        more = f"\n… and {len(details) - 12} more (see Show Details)" if len(details) > 12 else ""
        box.setInformativeText("\n".join(shown) + more)
        if len(details) > 12:
            box.setDetailedText("\n".join(details))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ----------------------------------------------------------------- selection
    def _on_edit_history(self) -> None:
        self._update_title()
        self._update_enabled()

    def _update_title(self) -> None:
        """The plant's name, * for unsaved edits, and the file it is (or will be saved) in."""
        if self.plant_layout is None:
            self.setWindowTitle(APP_NAME)
            return
        mark = " *" if self.editor.dirty else ""
        where = f" ({self.layout_path.name})" if self.layout_path is not None else ""
        self.setWindowTitle(f"{self.plant_layout.name}{mark}{where} — {APP_NAME}")

    def toggle_edit_mode(self) -> None:
        """Enter or leave edit mode (edits are kept when leaving; Save writes them)."""
        on = self.edit_action.isChecked() and self.plant_layout is not None and not self.policy.operator
        self.edit_action.setChecked(on)
        if on and self.editor.document is None:
            assert self.layout_path is not None
            self.editor.attach(self.plant_layout, self.layout_path, self._geometry)
        self.view.drag_probe = self.editor.drag_probe if on else None
        self.editor_dock.setVisible(on)
        if on:
            self.editor_dock.raise_()  # the editor's tab in front of the details' (they share the right column)
            self.editor.show_flow()
            self.editor.show_selection(self.selected)
            self.status("Edit mode: drag equipment on the floor (Shift: no snapping); KPIs follow every edit")
        else:
            self.scene.set_bottleneck(None)
            self.scene.set_problem_outlines([])
            self.scene.set_flow_arrows([])
            self.editor_panel.connect_button.setChecked(False)
            self.view.update()
            self.status("Edit mode off" + (" (unsaved changes: Ctrl+S saves them)" if self.editor.dirty else ""))
        self._update_enabled()

    def show_edited_plant(self, layout: Layout, geometry: object) -> None:
        """Draw the edited plant, keeping the camera, the selection and the live colours."""
        self.plant_layout = layout
        self._geometry = geometry
        selected = self.selected if self.selected in geometry.component_ids else None  # type: ignore[attr-defined]
        self.scene.show(layout, geometry, labels=self.scene.labels_visible, keep_camera=True)  # type: ignore[arg-type]
        self.shown.displayed.clear()  # recolour from the live states on the next frame
        self.components.set_layout(layout)
        self.scene_label.setText(f"{len(geometry.component_ids):,} components · "  # type: ignore[attr-defined]
                                 f"{geometry.n_triangles:,} triangles")  # type: ignore[attr-defined]
        self.selection.forget()
        self.select_component(selected)

    def save_layout(self) -> bool:
        """Write the edited layout to its file."""
        return self.editor.save()

    def save_layout_as(self) -> bool:
        """Write the edited layout to a new file beside the original (mesh paths stay relative)."""
        if self.editor.document is None:
            return False
        start = str(self.layout_path.parent) if self.layout_path else str(Path.cwd())
        path, _ = QFileDialog.getSaveFileName(self, "Save layout as", start, "Layout files (*.json)")
        if not path:
            return False
        saved = self.editor.save(Path(path))
        if saved:
            self.layout_path = Path(path)
            self._update_title()
            self._remember(self.layout_path)
        return saved

    def _unsaved_changes_resolved(self) -> bool:
        """Ask what to do with unsaved edits; False = the user cancelled."""
        if not self.editor.dirty:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"{self.plant_layout.name if self.plant_layout else 'The layout'} has unsaved changes.",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        self.unsaved_prompt = box  # tests answer it
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_layout()
        if answer == QMessageBox.StandardButton.Discard:
            self.editor.document = None
            return True
        return False

    @property
    def selected(self) -> str | None:
        """The selected component's id (the selection model's)."""
        return self.selection.current

    def select_component(self, component_id: str | None) -> None:
        """Select a component (or none): the views follow the selection model."""
        if self.plant_layout is not None:
            self.selection.select(component_id)

    def _on_selection_changed(self, component_id: str | None) -> None:
        """Show the selection in the scene, the tree, the details panel and the editor."""
        self.scene.select(component_id)
        self.components.select(component_id)
        comp = self.plant_layout.component(component_id) if component_id else None
        self.details.show_component(comp, self.plant_layout, self._reach_of(comp))
        self._show_live_details()
        self._refresh_plot(self.shown.now())  # recording time in a replay
        if comp is not None:
            self.status(f"Selected {comp.display_name} ({comp.kind})")
        if self.edit_action.isChecked():
            self.editor.show_selection(component_id)
        self._update_enabled()
        self.view.update()
        self.selection_changed.emit(component_id)

    def _reach_of(self, comp: object) -> float | None:
        """A robot's reach from its own kinematics (or as the layout states it), for the details panel."""
        if comp is None or getattr(comp, "kind", None) != "robot":
            return None
        from viewer.geometry.reach import robot_reach

        return robot_reach(comp, getattr(self.scene, "geometry", None))

    def _on_view_clicked(self, x: float, y: float) -> None:
        self.select_component(self.scene.pick(x, y))

    def hover_text(self, component_id: str) -> str:
        """Tooltip of a component under the pointer: name, state and live values."""
        comp = self.plant_layout.component(component_id) if self.plant_layout else None
        if comp is None:
            return ""
        lines = [comp.display_name]
        state = self.shown.displayed.get(component_id)
        if state:
            lines[0] += f" — {state}"
        for signal, value, unit, age, _state in self.shown.live_values(component_id)[:8]:
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)[:40]
            lines.append(f"{signal}: {shown} {unit}  ({age:.0f} s ago)".replace("  (", " (").strip())
        summary = self.shown.pipeline.anomaly_summary(component_id)
        if summary:
            lines.append(summary)
        return "\n".join(lines)

    def _on_view_hovered(self, x: float, y: float, global_pos: object) -> None:
        component_id = self.scene.pick(x, y)
        if component_id is None:
            QToolTip.hideText()
            return
        QToolTip.showText(global_pos, self.hover_text(component_id), self.view)  # type: ignore[arg-type]

    def _on_component_activated(self, component_id: str) -> None:
        self.select_component(component_id)
        self.focus_selection()

    # ----------------------------------------------------------------- camera
    def view_iso(self) -> None:
        """Isometric overview."""
        self.scene.view_iso()
        self.view.update()

    def view_top(self) -> None:
        """Plan view."""
        self.scene.view_top()
        self.view.update()

    def fit_all(self) -> None:
        """Whole plant in view."""
        self.scene.fit_all()
        self.view.update()

    def _refit_view(self) -> None:
        if self.scene.fitted and self.scene.geometry is not None:
            self.scene.fit_all()
            self.view.update()

    def focus_selection(self) -> None:
        """Zoom to the selected component."""
        if self.selected is None:
            self.status("Select a component first (click it in the view or the list).")
            return
        self.scene.focus(self.selected)
        self.view.update()

    def toggle_labels(self) -> None:
        """Show or hide name labels (the choice holds when the same plant is opened again)."""
        self._labels_choice = (self.layout_path, self.labels_action.isChecked())
        self.scene.set_labels_visible(self.labels_action.isChecked())
        self.view.update()

    # ----------------------------------------------------------------- recording and replay
    def toggle_recording(self) -> None:
        """Start or stop recording the live session (to the recordings folder, named by layout and time)."""
        if self.telemetry.session is not None:
            session = self.telemetry.session
            stats = self.telemetry.stop_recording()
            self.record_action.setChecked(False)
            self.record_action.setText("Record")
            self._show_recording()
            if stats is not None:
                error = f" ({session.recorder.error})" if session.recorder.error else ""
                dropped = f", {stats.dropped:,} dropped" if stats.dropped else ""
                self.status(f"Saved recording {session.recorder.path} ({stats.messages:,} messages{dropped}){error}")
            self._update_enabled()
            return
        if not self.telemetry.running or self.plant_layout is None:
            self.record_action.setChecked(False)
            self.status("Nothing to record: telemetry is off")
            return
        folder = default_recordings_dir()
        name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in self.plant_layout.name)[:40] or "session"
        out = folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.mcap"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.telemetry.start_recording(out, self.layout_path)
        except (OSError, RecordingError) as exc:
            self.record_action.setChecked(False)
            self.show_error("Cannot start recording.", [str(exc)])
            return
        self._recording_started = time.time()
        self.record_action.setChecked(True)
        self.record_action.setText("Stop recording")
        self._show_recording()
        self.status(f"Recording to {out}")

    def open_recording_dialog(self) -> None:
        """Ask for a recording and replay it."""
        start = str(default_recordings_dir()) if default_recordings_dir().exists() else str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open recording", start, "Recordings (*.mcap);;All files (*)")
        if path:
            self.open_recording(Path(path))

    def open_recording(self, path: Path | str) -> None:
        """Replay a recording on its layout: the open plant if it is the recorded one, else the recorded file."""
        path = Path(path)
        try:  # on the GUI thread: never a whole file (a cut-off one is read through by the indexer's thread)
            info = quick_info(path, read_through=False)
        except RecordingError as exc:
            self.show_error(f"{path.name} cannot be replayed.", [str(exc)])
            return
        current = self.plant_layout.to_dict() if self.plant_layout is not None else None
        if current is not None and layout_matches(info, current) is None:
            self._start_indexing(path, None)
            return
        recorded = Path(info.metadata.get("layout_path", "")) if info.metadata.get("layout_path") else None
        if recorded is not None and not recorded.is_absolute():
            recorded = (Path.cwd() / recorded)
        if recorded is not None and recorded.is_file():
            self._pending_recording = path
            self.open_layout(recorded)
            return
        if current is not None:
            self._start_indexing(path, layout_matches(info, current))
            return
        self.show_error(f"The layout of {path.name} is not available.",
                        [f"It was recorded on {info.metadata.get('layout_name', 'an unnamed layout')} "
                         f"({info.metadata.get('layout_path', 'path unknown')}).",
                         "Open that layout, then the recording."])

    def replay_on(self, layout_path: Path, recording: Path) -> None:
        """Open ``layout_path``, then replay ``recording`` on it (``twin-viewer replay FILE --layout L``)."""
        self._pending_recording = Path(recording)
        self.open_layout(layout_path)

    def _start_indexing(self, path: Path, note: str | None) -> None:
        self.replays.start(path, note)

    @property
    def replay(self) -> ReplayControl | None:
        """The replay's playback, while one is open."""
        return self.replays.control

    @property
    def recovery_box(self) -> QMessageBox | None:
        return self.replays.recovery_box

    @property
    def shown(self) -> TelemetryController:
        """What the 3D view and the details show: the replay while one is open, else the plant live."""
        return self.replayed if self.replay is not None else self.telemetry

    def schedule_maintenance(self, component: str, window: object) -> None:
        """Record a chosen repair window as planned maintenance: the alarm history and, if recording, the file."""
        from viewer.analytics.horizon import format_duration

        now = time.time()
        start = getattr(window, "start", 0.0)
        when = "now" if start <= 0 else f"in {format_duration(start)}"
        text = (f"repair {when} ({getattr(window, 'kind', '')}), expected loss "
                f"{getattr(window, 'expected_loss', 0.0):,.1f} parts")
        self.telemetry.alarms.log_event(component, "planned maintenance", now, text)
        if self.telemetry.session is not None:
            self.telemetry.session.recorder.event("planned_maintenance", now, component=component, text=text,
                                                  start_in_s=start)
        self.alarm_panel.refresh()
        self.status(f"{component}: planned maintenance {text}")

    def _on_replay_frame(self, t: float) -> None:
        if self.selected is not None:
            self._show_live_details()
            self._refresh_plot(t)

    def leave_replay(self) -> None:
        """Close the replay: the 3D view shows the plant live again (it never stopped; where it is off, the
        layout is opened again to connect)."""
        self.replays.leave_view()
        if self.telemetry.running:
            self.status("Back to live")
            self._show_live_details()
        elif self.plant_layout is not None and self.layout_path is not None:
            self.open_layout(self.layout_path)

    # The replay controller's hooks into the status bar and the lists.
    def begin_progress(self, text: str) -> None:
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.status(text)

    def show_progress(self, fraction: float, text: str) -> None:
        self._on_load_progress(fraction, text)

    def end_progress(self) -> None:
        self._end_progress()

    def remember(self, path: Path) -> None:
        self._remember(path)

    def on_live_alarms_changed(self) -> None:
        self._on_alarms_changed()

    def _cancel_background(self) -> None:
        self.loader.cancel()
        self.replays.cancel_background()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        urls = event.mimeData().urls()
        if urls and urls[0].toLocalFile().lower().endswith((".mcap", ".json")):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        urls = event.mimeData().urls()
        if not urls:
            return
        path = Path(urls[0].toLocalFile())
        if path.suffix.lower() == ".mcap":
            self.open_recording(path)
        else:
            self.open_layout(path)
        event.acceptProposedAction()

    # ----------------------------------------------------------------- misc
    def show_about(self) -> None:
        """Version, build and the licences of the bundled third-party components."""
        from viewer.ui.about import AboutDialog

        dialog = AboutDialog(self, self.policy.describe())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.about_dialog = dialog  # tests read it
        dialog.open()

    def show_opcua_certificate(self) -> None:
        """The viewer's OPC UA client certificate (made on first use) and the trust folders, selectable text."""
        from viewer.telemetry.opcua_security import OpcUaSecurityError, certificate_report

        try:
            text, icon = certificate_report(), QMessageBox.Icon.Information
        except OpcUaSecurityError as exc:
            text, icon = str(exc), QMessageBox.Icon.Warning
        box = QMessageBox(icon, "OPC UA certificate", text, QMessageBox.StandardButton.Close, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.opcua_certificate_box = box  # tests read it
        box.open()

    def set_theme(self, name: str, remember: bool = True) -> None:
        """Switch between the dark control-room theme and the light one (kept in the user's settings)."""
        from PySide6.QtWidgets import QApplication

        if name == current_theme().name and self.scene.theme is current_theme().scene:
            self.theme_actions[name].setChecked(True)  # already so (the usual start-up): nothing to redo
            return
        theme = apply_theme(QApplication.instance(), name)
        self.theme_actions[theme.name].setChecked(True)
        self.scene.set_theme(theme.scene)
        self.details.apply_theme()
        self.alarm_panel.refresh()
        if self.editor_panel.shown_problems is not None:
            self.editor_panel.set_problems(self.editor_panel.shown_problems)
        self.editor_panel.update()
        self.timeline.bar.update()
        if self.plant_layout is not None:  # the title line's colours
            comp = self.plant_layout.component(self.selected) if self.selected else None
            self.details.show_component(comp, self.plant_layout, self._reach_of(comp))
        self.shown.displayed.clear()  # recolour from the live states on the next frame
        if remember:  # the user's choice (a restored one is not news in the status bar)
            if self.settings is not None:
                self.settings.setValue("theme", theme.name)
            self.status(f"{theme.name.capitalize()} theme")

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """Offer to save edits, stop background work, release the GL widget, then close."""
        if not self._unsaved_changes_resolved():
            event.ignore()  # type: ignore[attr-defined]
            return
        self.editor.close()
        if self.settings is not None:
            from viewer.ui.settings import save_window

            save_window(self.settings, self)
        self.loader.cancel()
        self.loader.wait(2.0)
        self.replays.leave_view()
        self.telemetry.stop()
        self.view.close()
        super().closeEvent(event)  # type: ignore[arg-type]
