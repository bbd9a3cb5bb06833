"""The alarm panel: active and past alarms, acknowledge and shelve (ISA-18.2).

Unacknowledged alarms come first, then by severity, then newest. Severity is
written out and coloured, so it does not rely on colour alone.
"""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from viewer.telemetry.alarms import Alarm, AlarmManager, AlarmState
from viewer.telemetry.anomaly_alarms import ANOMALY_SIGNAL
from viewer.ui.theme import current as current_theme

SHELVE_S = 3600.0


def _clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else ""


class AlarmPanel(QWidget):
    """Active alarms with acknowledge/shelve, and the alarm history."""

    component_requested = Signal(str)  # double-click: select the alarm's component
    accept_requested = Signal(str)  # "Accept as new normal" on an anomaly alarm: the component

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager: AlarmManager | None = None
        self.tabs = QTabWidget(self)
        self.table = QTableWidget(0, 6, self)
        self.table.setHorizontalHeaderLabels(["Time", "Component", "Severity", "State", "Message", "Value"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.history = QTableWidget(0, 5, self)
        self.history.setHorizontalHeaderLabels(["Time", "Event", "Component", "Severity", "Message"])
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.verticalHeader().hide()
        self.history.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.tabs.addTab(self.table, "Active")
        self.tabs.addTab(self.history, "History")
        self.ack_button = QPushButton("Acknowledge", self)
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
        buttons = QHBoxLayout()
        for b in (self.ack_button, self.ack_all_button, self.shelve_button, self.unshelve_button,
                  self.accept_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)
        layout.addLayout(buttons)
        self._rows: list[Alarm] = []

    def set_manager(self, manager: AlarmManager | None) -> None:
        """Show this manager's alarms."""
        self.manager = manager
        self.refresh()

    def refresh(self) -> None:
        """Rebuild both tables from the manager."""
        selected = self.selected_alarm()
        alarms = self.manager.listed() if self.manager else []
        self._rows = alarms
        self.table.setRowCount(len(alarms))
        bold = QFont()
        bold.setBold(True)
        theme = current_theme()
        for row, alarm in enumerate(alarms):
            value = alarm.value if not isinstance(alarm.value, float) else f"{alarm.value:.3g}"
            cells = [_clock(alarm.raised_at), alarm.component, alarm.severity.upper(), alarm.state.value,
                     alarm.display_message, "" if value is None else str(value)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if alarm.needs_attention:
                    item.setFont(bold)
                if col == 2:
                    colours = {"high": theme.text_fault, "medium": theme.text_warning}
                    if alarm.severity in colours:
                        item.setForeground(QBrush(QColor(colours[alarm.severity])))
                if alarm.state is AlarmState.SHELVED:
                    item.setForeground(QBrush(QColor(theme.text_muted)))
                item.setData(Qt.ItemDataRole.UserRole, alarm.id)
                if col == 4:
                    item.setToolTip(alarm.display_message)
                self.table.setItem(row, col, item)
        if selected is not None:
            for row, alarm in enumerate(alarms):
                if alarm.id == selected.id:
                    self.table.selectRow(row)
        events = list(reversed(self.manager.history[-500:])) if self.manager else []
        self.history.setRowCount(len(events))
        for row, event in enumerate(events):
            for col, text in enumerate([_clock(event.time), event.kind, event.component, event.severity.upper(),
                                        event.message]):
                self.history.setItem(row, col, QTableWidgetItem(text))
        self.tabs.setTabText(0, f"Active ({len(alarms)})")

    def selected_alarm(self) -> Alarm | None:
        """The alarm of the selected row."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self._rows):
            return None
        return self._rows[rows[0].row()]

    def acknowledge_selected(self) -> None:
        """Acknowledge the selected alarm."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None:
            self.manager.acknowledge(alarm.id, time.time())
            self.refresh()

    def acknowledge_all(self) -> None:
        """Acknowledge every waiting alarm."""
        if self.manager is not None:
            self.manager.acknowledge_all(time.time())
            self.refresh()

    def shelve_selected(self) -> None:
        """Shelve the selected alarm for an hour."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None:
            self.manager.shelve(alarm.id, time.time(), SHELVE_S)
            self.refresh()

    def unshelve_selected(self) -> None:
        """Bring the selected shelved alarm back."""
        alarm = self.selected_alarm()
        if alarm is not None and self.manager is not None:
            self.manager.unshelve(alarm.id, time.time())
            self.refresh()

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
