"""The Maintenance dock: components at risk of failing, and the repair window that costs least.

The list comes from the live pipeline's failure risks (a signal's trend toward its fault limit, refreshed
every few seconds). **Plan** ranks the selected component's repair windows in the background
(:func:`viewer.sim.maintenance.plan_repair`: the shift calendar's windows, each costed by simulating the
planned stop and the risk of failing first); **Schedule** records the chosen window as a planned-maintenance
event in the alarm history and, when recording, in the recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.analytics.horizon import format_duration
from viewer.ui.background import BackgroundTask, TaskContext

REFRESH_MS = 5000
MIN_RISK = 0.05  # below this probability within the horizon a component is not "at risk"
DEFAULT_REPAIR_S = 3600.0  # a station without an MTTR: an hour's repair


class MaintenancePanel(QWidget):
    """Components at risk, their best repair windows, and scheduling one."""

    scheduled = Signal(str, object)  # component, the chosen RepairWindow

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pipeline_source: Callable[[], Any] | None = None  # the live pipeline (the window sets it)
        self.layout_source: Callable[[], Any] | None = None  # the plant's Layout
        self.risks: list[Any] = []  # FailureRisk, highest probability first
        self.plan: Any = None  # the MaintenancePlan shown
        self.plan_task = BackgroundTask("maintenance-plan", self)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["Component", "Risk", "Within"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        box.addWidget(self.table, 1)
        self.summary = QLabel("No component at risk.", self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        box.addWidget(self.summary)
        self.windows = QTableWidget(0, 3, self)
        self.windows.setHorizontalHeaderLabels(["Window", "In", "Expected loss"])
        self.windows.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.windows.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.windows.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.windows.verticalHeader().hide()
        self.windows.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.windows.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        box.addWidget(self.windows, 1)
        row = QHBoxLayout()
        self.plan_button = QPushButton("Plan repair", self)
        self.plan_button.setToolTip("Rank the selected component's repair windows by expected lost output "
                                    "(simulated in the background)")
        self.schedule_button = QPushButton("Schedule", self)
        self.schedule_button.setToolTip("Record the chosen window as planned maintenance (alarm history, recording)")
        row.addWidget(self.plan_button)
        row.addWidget(self.schedule_button)
        box.addLayout(row)
        self.plan_button.clicked.connect(self.plan_selected)
        self.schedule_button.clicked.connect(self.schedule_selected)
        self.table.itemSelectionChanged.connect(self._update_enabled)
        self.windows.itemSelectionChanged.connect(self._update_enabled)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._update_enabled()

    # --- the list --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Components at risk, from the live pipeline: the worst signal of each, highest probability first."""
        pipeline = self.pipeline_source() if self.pipeline_source else None
        layout = self.layout_source() if self.layout_source else None
        if pipeline is None or layout is None:
            self._show([])
            return
        worst: dict[str, Any] = {}
        for comp in layout.components:
            if comp.parent is not None:
                continue  # a sensor's risk is its machine's
            for risk in pipeline.failure_risks(comp.id):
                if risk.probability >= MIN_RISK and (comp.id not in worst
                                                     or risk.probability > worst[comp.id].probability):
                    worst[comp.id] = risk
        self._show(sorted(worst.items(), key=lambda kv: -kv[1].probability))

    def _show(self, rows: list[tuple[str, Any]]) -> None:
        selected = self.selected_component()
        layout = self.layout_source() if self.layout_source else None
        names = {c.id: c.display_name for c in layout.components} if layout is not None else {}
        self.risks = [risk for _, risk in rows]
        self._ids = [cid for cid, _ in rows]
        self.table.setRowCount(len(rows))
        for i, (cid, risk) in enumerate(rows):
            name = QTableWidgetItem(names.get(cid, cid))
            name.setToolTip(risk.describe(names.get(cid, cid)))
            self.table.setItem(i, 0, name)
            self.table.setItem(i, 1, QTableWidgetItem(f"{100 * risk.probability:.0f} %"))
            self.table.setItem(i, 2, QTableWidgetItem(format_duration(risk.horizon_s)))
            if cid == selected:
                self.table.selectRow(i)
        if not rows:
            self.summary.setText("No component at risk: no signal is heading for its fault limit.")
        self._update_enabled()

    def selected_component(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        ids = getattr(self, "_ids", [])
        return ids[rows[0].row()] if rows and rows[0].row() < len(ids) else None

    # --- planning --------------------------------------------------------------------------------------
    def plan_selected(self) -> None:
        """Rank the selected component's repair windows in the background."""
        from viewer.sim.maintenance import calendar_phase, plan_repair
        from viewer.sim.model import SimModelError, model_from_layout

        component = self.selected_component()
        layout = self.layout_source() if self.layout_source else None
        if component is None or layout is None:
            return
        risk = self.risks[self._ids.index(component)]
        comp = layout.component(component)
        mttr = float((comp.section("sim") or {}).get("mttr") or DEFAULT_REPAIR_S)

        def work(_context: TaskContext) -> Any:
            try:
                model = model_from_layout(layout)
            except SimModelError as exc:
                raise ValueError(f"the layout cannot be simulated: {exc}") from exc
            period = model.calendar.period if model.calendar is not None else 86400.0
            return plan_repair(model, component, repair_s=mttr, horizon_s=risk.horizon_s,
                               p_fail_within=risk.estimate.p_fail_within, now=calendar_phase(time.time(), period),
                               basis=(f"learned from {risk.histories} run-to-failure histories"
                                      if risk.estimate.source == "history" else f"trend of {risk.signal}"))

        self.summary.setText(f"Planning {comp.display_name}: simulating each window…")
        self.plan_task.run(work, self._show_plan, lambda exc: self.summary.setText(f"Cannot plan: {exc}"))

    def _show_plan(self, plan: Any) -> None:
        self.plan = plan
        best = plan.best()
        self.windows.setRowCount(len(best))
        for i, w in enumerate(best):
            self.windows.setItem(i, 0, QTableWidgetItem(w.kind))
            self.windows.setItem(i, 1, QTableWidgetItem(format_duration(w.start) if w.start > 0 else "now"))
            item = QTableWidgetItem(f"{w.expected_loss:,.1f} parts")
            item.setToolTip(f"planned stop {w.planned_loss:,.1f} parts + {100 * w.p_fail_before:.0f} % chance of "
                            f"failing first x {plan.unplanned_loss:,.1f} parts")
            self.windows.setItem(i, 2, item)
        if best:
            self.windows.selectRow(0)
        self.summary.setText(f"{plan.station}: best {best[0].kind if best else '—'}, expected loss "
                             f"{best[0].expected_loss if best else 0:,.1f} parts; doing nothing "
                             f"{plan.do_nothing:,.1f} parts ({100 * plan.p_fail_horizon:.0f} % chance of an "
                             "unplanned failure)")
        self._update_enabled()

    def selected_window(self) -> Any:
        rows = self.windows.selectionModel().selectedRows() if self.windows.selectionModel() else []
        if self.plan is None or not rows or rows[0].row() >= len(self.plan.best()):
            return None
        return self.plan.best()[rows[0].row()]

    def schedule_selected(self) -> None:
        window = self.selected_window()
        if window is not None and self.plan is not None:
            self.scheduled.emit(self.plan.station, window)

    def _update_enabled(self) -> None:
        self.plan_button.setEnabled(self.selected_component() is not None and not self.plan_task.running)
        self.schedule_button.setEnabled(self.selected_window() is not None)
