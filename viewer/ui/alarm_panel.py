"""The alarm panel: active and past alarms, acknowledge and shelve (ISA-18.2).

Order (:func:`viewer.telemetry.alarms.list_order`): active unacknowledged by priority (high before medium,
the newest raise first within a priority), then active acknowledged, then cleared unacknowledged, then
shelved. Priority is written out and coloured, so it does not rely on colour alone. Each row names its
component (the id in the tooltip), its first and last raise and how often it was raised, and the value
that raised it and the value now, with the signal's unit.

A new alarm is never silently out of view: while the list is scrolled, the rows the operator reads stay
where they are and a bar above the list says how many new alarms are out of view (a click shows the
first). Ctrl+K (anywhere in the window) or Space (in the list) acknowledges the selected alarm.
Optionally a sound per priority announces a new alarm (off by default; View ▸ the panel's Sound menu;
kept in the user's settings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from viewer.telemetry.alarms import Alarm, AlarmManager, AlarmState
from viewer.telemetry.anomaly_alarms import ANOMALY_SIGNAL
from viewer.ui.theme import current as current_theme

SHELVE_S = 3600.0
ACK_SHORTCUT = "Ctrl+K"  # K for acKnowledge; free among the window's shortcuts (Ctrl+Shift+K is operator mode)
COLUMNS = ["First", "Last", "Count", "Component", "Priority", "State", "Message", "At raise", "Now"]
COL_FIRST, COL_LAST, COL_COUNT, COL_COMPONENT, COL_PRIORITY, COL_STATE, COL_MESSAGE, COL_AT_RAISE, COL_NOW = range(9)
STATE_TEXT = {  # short enough to be read whole in a narrow column; the tooltip has ISA-18.2's words
    AlarmState.UNACK_ACTIVE: "Active, unacked",
    AlarmState.ACK_ACTIVE: "Active, acked",
    AlarmState.UNACK_RTN: "Cleared, unacked",
    AlarmState.SHELVED: "Shelved",
    AlarmState.SUPPRESSED: "Suppressed",
    AlarmState.NORMAL: "Normal",
}
PRIORITIES = ("high", "medium")
NOW_REFRESH_MS = 1000
SOUND_KEY = "alarms/sound_{}"  # the user's setting per priority (QSettings); off unless set


def _clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else ""


def format_value(value: Any, unit: str = "") -> str:
    """A value for the list: numbers to 3 significant digits, with the unit when there is one."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, list | tuple):
        text = ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value[:6])
    else:
        text = str(value)
    return f"{text} {unit}" if unit and not isinstance(value, str | bool) else text


def _flag(value: Any) -> bool:
    """A QSettings boolean (an .ini file gives it back as text)."""
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def beep(priority: str) -> None:
    """The installed Qt's sound: PySide6-Essentials has no QtMultimedia, so the system bell; twice for high.
    Never blocks (the bell is asynchronous)."""
    QApplication.beep()
    if priority == "high":
        QTimer.singleShot(250, QApplication.beep)


class Annunciator:
    """Announces new alarms with a sound per priority, as the user chose (off by default)."""

    def __init__(self, settings: Callable[[], Any]) -> None:
        self._settings = settings
        self._fallback: dict[str, bool] = {}  # no user settings (tests, embedded use): this session only
        self.play: Callable[[str], None] = beep  # tests replace it: they never make a noise

    def enabled(self, priority: str) -> bool:
        settings = self._settings()
        if settings is None:
            return self._fallback.get(priority, False)
        return _flag(settings.value(SOUND_KEY.format(priority), False))

    def set_enabled(self, priority: str, on: bool) -> None:
        settings = self._settings()
        if settings is None:
            self._fallback[priority] = on
        else:
            settings.setValue(SOUND_KEY.format(priority), on)

    def announce(self, alarms: list[Alarm]) -> str | None:
        """One sound for the most urgent of these newly raised alarms, if its priority has one on."""
        for priority in PRIORITIES:
            if any(a.severity == priority for a in alarms) and self.enabled(priority):
                self.play(priority)
                return priority
        return None


class AlarmPanel(QWidget):
    """Active alarms with acknowledge/shelve, and the alarm history."""

    component_requested = Signal(str)  # double-click: select the alarm's component
    accept_requested = Signal(str)  # "Accept as new normal" on an anomaly alarm: the component
    operator_acted = Signal()  # acknowledged, shelved or unshelved here: counts shown elsewhere change

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager: AlarmManager | None = None
        # The live pipeline (names from its layout, units, values now); the window sets it.
        self.context_source: Callable[[], Any] | None = None
        self.tabs = QTabWidget(self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # never cut ("cleared, unack...")
        header.setSectionResizeMode(COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.verticalScrollBar().valueChanged.connect(self._update_unseen)
        self.history = QTableWidget(0, 5, self)
        self.history.setHorizontalHeaderLabels(["Time", "Event", "Component", "Priority", "Message"])
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.verticalHeader().hide()
        self.history.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.tabs.addTab(self.table, "Active")
        self.tabs.addTab(self.history, "History")
        self.tabs.currentChanged.connect(self._update_unseen)
        self.unseen_button = QPushButton(self)  # "▲ 2 new alarms out of view — show"
        self.unseen_button.setStyleSheet("font-weight: bold; text-align: left")
        self.unseen_button.clicked.connect(self.show_unseen)
        self.unseen_button.hide()
        self.ack_button = QPushButton("Acknowledge", self)
        self.ack_button.setToolTip(f"Acknowledge the selected alarm ({ACK_SHORTCUT}, or Space in the list)")
        self.ack_all_button = QPushButton("Acknowledge All", self)
        self.shelve_button = QPushButton("Shelve 1 h", self)
        self.unshelve_button = QPushButton("Unshelve", self)
        self.accept_button = QPushButton("Accept as New Normal", self)
        self.accept_button.setToolTip("For an anomaly alarm: the unusual values become normal now (logged)")
        self.accept_button.setEnabled(False)
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.ack_all_button.clicked.connect(self.acknowledge_all)
        self.shelve_button.clicked.connect(self.shelve_selected)
        self.unshelve_button.clicked.connect(self.unshelve_selected)
        self.accept_button.clicked.connect(self.accept_selected)
        self.table.itemSelectionChanged.connect(self._on_selection)
        # Window-wide, so it works while the 3D view has the focus; Space where the list has it.
        self.ack_action = QAction("Acknowledge Selected Alarm", self)
        self.ack_action.setShortcut(QKeySequence(ACK_SHORTCUT))
        self.ack_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.ack_action.triggered.connect(self.acknowledge_selected)
        self.addAction(self.ack_action)
        self.space_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Space), self.table, self.acknowledge_selected,
                                        context=Qt.ShortcutContext.WidgetShortcut)
        self.annunciator = Annunciator(lambda: getattr(self.window(), "settings", None))
        self.sound_button = QToolButton(self)
        self.sound_button.setText("Sound")
        self.sound_button.setToolTip("A sound when a new alarm of this priority arrives (off unless chosen)")
        self.sound_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.sound_menu = QMenu(self.sound_button)
        self.sound_actions: dict[str, QAction] = {}
        for priority in PRIORITIES:
            action = self.sound_menu.addAction(f"Sound for {priority.upper()} alarms")
            action.setCheckable(True)
            action.toggled.connect(lambda on, p=priority: self.annunciator.set_enabled(p, on))
            self.sound_actions[priority] = action
        self.sound_menu.aboutToShow.connect(self._sync_sound_actions)
        self.sound_button.setMenu(self.sound_menu)
        buttons = QHBoxLayout()
        for b in (self.ack_button, self.ack_all_button, self.shelve_button, self.unshelve_button,
                  self.accept_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.sound_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.unseen_button)
        layout.addWidget(self.tabs)
        layout.addLayout(buttons)
        self._rows: list[Alarm] = []
        self.read_only = False  # a replay's list (set_read_only)
        self._raises: dict[int, tuple[float, str]] = {}  # alarm id -> (latest raise, priority) last shown
        self._unseen: set[int] = set()  # newly raised alarms the operator has not had in view yet
        self._now_timer = QTimer(self)  # the "Now" column follows the live values between alarm changes
        self._now_timer.setInterval(NOW_REFRESH_MS)
        self._now_timer.timeout.connect(self.update_values_now)
        self._now_timer.start()

    def set_manager(self, manager: AlarmManager | None) -> None:
        """Show this manager's alarms (a new manager: its alarms are not news, e.g. restored from the journal)."""
        if manager is not self.manager:
            self._raises = {a.id: (a.raised_at, a.severity) for a in manager.alarms.values()} if manager else {}
            self._unseen.clear()
        self.manager = manager
        self.refresh()

    def set_read_only(self, read_only: bool) -> None:
        """A replay's list: alarms to look at, never to act on (what was acknowledged then is replayed) and
        never announced (the sound is for the plant now)."""
        self.read_only = read_only
        for button in (self.ack_button, self.ack_all_button, self.shelve_button, self.unshelve_button,
                       self.accept_button, self.sound_button):
            button.setVisible(not read_only)
        # Ctrl+K is the live list's alone: the same key on two visible actions would make it do nothing.
        self.ack_action.setShortcut(QKeySequence() if read_only else QKeySequence(ACK_SHORTCUT))
        self.space_shortcut.setEnabled(not read_only)
        if read_only:
            self.annunciator.play = lambda _priority: None
        for column in (COL_LAST, COL_COUNT):  # a narrower list beside the live one: the first raise is enough
            self.table.setColumnHidden(column, read_only)

    # ----------------------------------------------------------------- the table
    def refresh(self) -> None:
        """Rebuild both tables from the manager."""
        selected = self.selected_alarm()
        anchor = self._top_row_alarm()  # scrolled: the row at the top stays at the top
        alarms = self.manager.listed() if self.manager else []
        new = self._newly_raised(alarms)
        self._rows = alarms
        self.table.setRowCount(len(alarms))
        context = self.context_source() if self.context_source else None
        names = _names(context)
        for row, alarm in enumerate(alarms):
            self._fill_row(row, alarm, names, context)
        for row, alarm in enumerate(alarms):
            if selected is not None and alarm.id == selected.id:
                self.table.selectRow(row)
        if anchor is not None and anchor in [a.id for a in alarms]:
            row = [a.id for a in alarms].index(anchor)
            self.table.updateGeometries()  # the scroll range of the new row count, before scrolling in it
            self.table.scrollToItem(self.table.item(row, 0), QAbstractItemView.ScrollHint.PositionAtTop)
        self._unseen = {i for i in self._unseen if i in {a.id for a in alarms}} | {a.id for a in new}
        self._update_unseen()
        if new:
            self.annunciator.announce(new)
        self._fill_history(names)
        self.tabs.setTabText(0, f"Active ({len(alarms)})")

    def _fill_row(self, row: int, alarm: Alarm, names: dict[str, str], context: Any) -> None:
        theme = current_theme()
        bold = QFont()
        bold.setBold(True)
        unit = _unit_of(context, alarm.component, alarm.signal)
        now = _value_now(context, alarm.component, alarm.signal)
        state = STATE_TEXT.get(alarm.state, alarm.state.value)
        if alarm.state is AlarmState.SHELVED and alarm.shelved_until:
            state = f"Shelved to {_clock(alarm.shelved_until)[:5]}"
        if alarm.unconfirmed:
            state += " ?"
        count = alarm.raise_count or 1
        cells = [_clock(alarm.first_raised_at or alarm.raised_at), _clock(alarm.raised_at) if count > 1 else "",
                 f"×{count}" if count > 1 else "", names.get(alarm.component, alarm.component),
                 alarm.severity.upper(), state, alarm.display_message,
                 format_value(alarm.raised_value if alarm.raised_value is not None else alarm.value, unit),
                 format_value(now, unit)]
        tips = {COL_COMPONENT: f"{names.get(alarm.component, alarm.component)}\nid: {alarm.component}"
                               f"\nsignal: {alarm.signal}",
                COL_STATE: alarm.state.value + ("\nrestored from the alarm journal: live data has not confirmed "
                                                "it yet" if alarm.unconfirmed else ""),
                COL_MESSAGE: alarm.display_message,
                COL_COUNT: f"raised {count} times since {_clock(alarm.first_raised_at)}" if count > 1 else ""}
        colours = {"high": theme.text_fault, "medium": theme.text_warning}
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if alarm.needs_attention:
                item.setFont(bold)
            if col == COL_PRIORITY and alarm.severity in colours:
                item.setForeground(QBrush(QColor(colours[alarm.severity])))
            if alarm.state is AlarmState.SHELVED:
                item.setForeground(QBrush(QColor(theme.text_muted)))
            item.setData(Qt.ItemDataRole.UserRole, alarm.id)
            if col == COL_COMPONENT:
                item.setData(Qt.ItemDataRole.UserRole + 1, alarm.component)
            if tips.get(col):
                item.setToolTip(tips[col])
            self.table.setItem(row, col, item)

    def update_values_now(self) -> None:
        """Refresh the "Now" column from the live store (once a second while shown)."""
        if not self.table.isVisible() or self.context_source is None or not self._rows:
            return
        context = self.context_source()
        for row, alarm in enumerate(self._rows):
            text = format_value(_value_now(context, alarm.component, alarm.signal),
                                _unit_of(context, alarm.component, alarm.signal))
            item = self.table.item(row, COL_NOW)
            if item is not None and item.text() != text:
                item.setText(text)

    def _fill_history(self, names: dict[str, str]) -> None:
        events = list(reversed(self.manager.history[-500:])) if self.manager else []
        self.history.setRowCount(len(events))
        for row, event in enumerate(events):
            for col, text in enumerate([_clock(event.time), event.kind, names.get(event.component, event.component),
                                        event.severity.upper(), event.message]):
                item = QTableWidgetItem(text)
                if col == 2:
                    item.setToolTip(f"id: {event.component}")
                self.history.setItem(row, col, item)

    def row_of(self, component: str) -> int | None:
        """The row of a component's (first listed) alarm."""
        return next((row for row, a in enumerate(self._rows) if a.component == component), None)

    # ----------------------------------------------------------------- new alarms in view
    def _newly_raised(self, alarms: list[Alarm]) -> list[Alarm]:
        """Listed alarms raised (or escalated) since the last refresh, unacknowledged."""
        new = []
        for alarm in alarms:
            mark = (alarm.raised_at, alarm.severity)
            if self._raises.get(alarm.id) != mark and alarm.state is AlarmState.UNACK_ACTIVE:
                new.append(alarm)
            self._raises[alarm.id] = mark
        return new

    def _top_row_alarm(self) -> int | None:
        if self.table.verticalScrollBar().value() == 0:
            return None  # at the top: new alarms arrive in view
        row = self.table.rowAt(0)
        return self._rows[row].id if 0 <= row < len(self._rows) else None

    def _in_view(self, row: int) -> bool:
        if not self.table.isVisible() or self.tabs.currentWidget() is not self.table:
            return False
        rect = self.table.visualRect(self.table.model().index(row, 0))
        viewport = self.table.viewport().rect()
        return rect.top() >= viewport.top() and rect.bottom() <= viewport.bottom()

    def _update_unseen(self) -> None:
        rows = {a.id: row for row, a in enumerate(self._rows)}
        self._unseen = {i for i in self._unseen if i in rows and not self._in_view(rows[i])}
        if not self._unseen:
            self.unseen_button.hide()
            return
        first = min(rows[i] for i in self._unseen)
        above = first < max(self.table.rowAt(0), 0)
        n = len(self._unseen)
        self.unseen_button.setText(f"{'▲' if above else '▼'} {n} new alarm{'s' if n != 1 else ''} out of view"
                                   " — show")
        self.unseen_button.show()

    def unseen_count(self) -> int:
        """How many new alarms are out of view (the bar above the list says so)."""
        return len(self._unseen) if self.unseen_button.isVisibleTo(self) else 0

    def show_unseen(self) -> None:
        """Scroll to the most urgent new alarm out of view."""
        rows = [row for row, a in enumerate(self._rows) if a.id in self._unseen]
        self.tabs.setCurrentWidget(self.table)
        if rows:
            self.table.scrollToItem(self.table.item(min(rows), 0), QAbstractItemView.ScrollHint.PositionAtTop)
        self._update_unseen()

    # ----------------------------------------------------------------- actions
    def selected_alarm(self) -> Alarm | None:
        """The alarm of the selected row."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self._rows):
            return None
        return self._rows[rows[0].row()]

    def acknowledge_selected(self) -> None:
        """Acknowledge the selected alarm."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None and not self.read_only:
            self.manager.acknowledge(alarm.id, time.time())
            self.refresh()
            self.operator_acted.emit()

    def acknowledge_all(self) -> None:
        """Acknowledge every waiting alarm."""
        if self.manager is not None and not self.read_only:
            self.manager.acknowledge_all(time.time())
            self.refresh()
            self.operator_acted.emit()

    def shelve_selected(self) -> None:
        """Shelve the selected alarm for an hour."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None and not self.read_only:
            self.manager.shelve(alarm.id, time.time(), SHELVE_S)
            self.refresh()
            self.operator_acted.emit()

    def unshelve_selected(self) -> None:
        """Bring the selected shelved alarm back."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None and not self.read_only:
            self.manager.unshelve(alarm.id, time.time())
            self.refresh()
            self.operator_acted.emit()

    def _sync_sound_actions(self) -> None:
        for priority, action in self.sound_actions.items():
            with _signals_blocked(action):
                action.setChecked(self.annunciator.enabled(priority))

    def _anomaly_of(self, alarm: Alarm | None) -> str | None:
        """The component whose anomaly the row shows: an anomaly alarm, or one folded into a rule alarm."""
        if alarm is None:
            return None
        if alarm.signal == ANOMALY_SIGNAL:
            return alarm.component if alarm.condition_active else None
        folded = [key for key in alarm.related if key[1] == ANOMALY_SIGNAL]
        return folded[0][0] if folded else None

    def accept_selected(self) -> None:
        """"Accept as new normal" for the anomaly the selected row shows (the window does it and logs it)."""
        component = self._anomaly_of(self.selected_alarm())
        if component is not None:
            self.accept_requested.emit(component)

    def _on_selection(self) -> None:
        self.accept_button.setEnabled(self._anomaly_of(self.selected_alarm()) is not None)

    def _on_double_click(self, row: int, _column: int) -> None:
        if row < len(self._rows):
            self.component_requested.emit(self._rows[row].component)


class _signals_blocked:  # noqa: N801 - used like a function, as QSignalBlocker is
    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __enter__(self) -> None:
        self._was = self.obj.blockSignals(True)

    def __exit__(self, *exc: object) -> None:
        self.obj.blockSignals(self._was)


def _names(context: Any) -> dict[str, str]:
    layout = getattr(context, "layout", None)
    return {c.id: c.display_name for c in getattr(layout, "components", ())}


def _unit_of(context: Any, component: str, signal: str) -> str:
    """The signal's unit: as the pipeline learned it from arriving values, else from the layout's bindings."""
    if context is None:
        return ""
    unit = context.units.get((component, signal))
    if unit is not None:
        return unit
    for binding in context.bindings.values():
        if binding.signal == signal and (binding.component in (component, None) or "{" in binding.component):
            return binding.unit or ""
    return ""


def _value_now(context: Any, component: str, signal: str) -> Any:
    if context is None or signal == ANOMALY_SIGNAL:
        return None
    sample = context.store.latest((component, signal))
    return sample.value if sample is not None else None
