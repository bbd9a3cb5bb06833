"""The compare dialog: two layouts side by side (plans at the same scale, what differs outlined), their KPIs
and per-station differences in one table."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from viewer.model.checks import Footprint
from viewer.model.layout import Layout
from viewer.sim.compare import compare
from viewer.sim.runner import SimReport
from viewer.ui.plan_view import PlanView, differences, shared_extent


class CompareDialog(QDialog):
    """Saved against edited (or any two reports)."""

    def __init__(self, a: SimReport, b: SimReport, name_a: str, name_b: str, parent: QWidget | None = None,
                 plans: tuple[tuple[Layout, Mapping[str, Footprint]], tuple[Layout, Mapping[str, Footprint]]]
                 | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare: {name_a} and {name_b}")
        self.resize(960, 720 if plans else 520)
        c = compare(a, b)
        self.comparison = c
        box = QVBoxLayout(self)
        diff = c.throughput[1] - c.throughput[0]
        verdict = "within noise (the intervals overlap)" if c.overlap else "a real change"
        lines = [f"Throughput: {name_a} {c.throughput[0]:,.1f} ± {c.ci[0]:,.1f}, {name_b} {c.throughput[1]:,.1f} "
                 f"± {c.ci[1]:,.1f} parts/h ({diff:+,.1f}: {verdict})",
                 f"Line OEE: {c.oee[0]:.0%} -> {c.oee[1]:.0%}    WIP: {c.wip[0]:,.1f} -> {c.wip[1]:,.1f}    "
                 f"lead time: {c.lead_time_s[0] / 60:,.1f} -> {c.lead_time_s[1] / 60:,.1f} min",
                 f"Bottleneck: {c.bottleneck[0] or '-'} -> {c.bottleneck[1] or '-'}"]
        for text in lines:
            label = QLabel(text, self)
            box.addWidget(label)
        headers = ["station", "working", "blocked", "starved", "down", "OEE", "bottleneck"]
        table = QTableWidget(len(c.stations), len(headers), self)
        table.setHorizontalHeaderLabels(headers)
        for row, s in enumerate(c.stations):
            name = s.id + ("" if s.in_a and s.in_b else " (new)" if s.in_b else " (removed)")
            table.setItem(row, 0, QTableWidgetItem(name))
            for col, (va, vb) in enumerate((s.working, s.blocked, s.starved, s.down, s.oee, s.bottleneck), 1):
                item = QTableWidgetItem(f"{va:.0%} -> {vb:.0%}")
                if abs(vb - va) >= 0.05:  # worth a look: bold, calm colour (information, not alarm)
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setForeground(QColor("#7fb2d9"))
                table.setItem(row, col, item)
        table.resizeColumnsToContents()
        self.table = table
        self.plans: list[PlanView] = []
        if plans is not None:  # the two layouts side by side, same scale, what differs outlined in both
            (layout_a, fps_a), (layout_b, fps_b) = plans
            self.differences = differences(layout_a, layout_b)
            extent = shared_extent(fps_a, fps_b, layouts=(layout_a, layout_b))
            row = QHBoxLayout()
            for title, layout, fps in ((name_a, layout_a, fps_a), (name_b, layout_b, fps_b)):
                view = PlanView(title.capitalize(), layout, fps, self.differences, extent, self)
                self.plans.append(view)
                row.addWidget(view)
            box.addLayout(row)
        box.addWidget(table, 1)
