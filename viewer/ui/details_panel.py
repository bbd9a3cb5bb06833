"""The details panel: what the selected component is, where it stands, how it is simulated."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.model.layout import Component, Layout
from viewer.ui.theme import current as current_theme


def _num(value: float, unit: str = "") -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def describe_distribution(dist: dict[str, Any]) -> str:
    """``{"dist": "lognormal", "mean": 95, "cv": 0.05}`` -> ``lognormal, mean 95 s, CV 0.05``."""
    parts = [dist.get("dist", "?")]
    if "mean" in dist:
        parts.append(f"mean {_duration(float(dist['mean']))}")
    if "cv" in dist:
        parts.append(f"CV {dist['cv']:g}")
    for key in ("min", "mode", "max"):
        if key in dist:
            parts.append(f"{key} {_duration(float(dist[key]))}")
    if "values" in dist:
        parts.append(f"{len(dist['values'])} samples")
    return ", ".join(parts)


def component_facts(comp: Component, layout: Layout,
                    reach: float | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """The rows of the details panel, in sections: [(section title, [(property, value)])]."""
    general = [
        ("Name", comp.display_name),
        ("ID", comp.id),
        ("Kind", comp.kind),
        ("Position", ", ".join(_num(v) for v in comp.position) + " m"),
    ]
    if any(comp.rotation):
        general.append(("Rotation", ", ".join(_num(v) for v in comp.rotation) + " °"))
    if comp.scale != (1.0, 1.0, 1.0):
        general.append(("Scale", ", ".join(_num(v) for v in comp.scale)))
    if comp.mesh:
        general.append(("Mesh", comp.mesh))
    elif comp.primitive:
        general.append(("Shape", comp.primitive.get("type", "")))
    general.append(("Colour", comp.display_color))
    if comp.parent:
        general.append(("Part of", comp.parent))
    sections = [("General", general)]

    flow = []
    feeders = [f.source for f in layout.flow if f.target == comp.id]
    fed = [f"{f.target} ({f.share:.0%})" if f.share is not None else f.target
           for f in layout.flow if f.source == comp.id]
    if feeders:
        flow.append(("Fed by", ", ".join(feeders)))
    if fed:
        flow.append(("Feeds", ", ".join(fed)))
    if (cap := comp.section("buffer").get("capacity")) is not None:
        flow.append(("Buffer capacity", f"{cap} parts"))
    conveyor = comp.section("conveyor")
    if conveyor:
        flow.append(("Length", _num(conveyor["length"], "m")))
        if "speed" in conveyor:
            flow.append(("Speed", _num(conveyor["speed"], "m/s")))
        if "capacity" in conveyor:
            flow.append(("Capacity", f"{conveyor['capacity']} parts"))
    if flow:
        sections.append(("Material flow", flow))

    sim = comp.section("sim")
    rows = []
    if "cycle_time" in sim:
        rows.append(("Cycle time", describe_distribution(sim["cycle_time"])))
    if "servers" in sim:
        rows.append(("Parallel servers", str(sim["servers"])))
    if "setup_time" in sim:
        rows.append(("Setup time", describe_distribution(sim["setup_time"])))
    if "mtbf" in sim:
        rows.append(("MTBF", _duration(float(sim["mtbf"]))))
    if "mttr" in sim:
        rows.append(("MTTR", _duration(float(sim["mttr"]))))
    if "scrap_rate" in sim:
        rows.append(("Scrap rate", f"{sim['scrap_rate'] * 100:.3g} %"))
    if "interarrival" in sim:
        rows.append(("Arrivals", describe_distribution(sim["interarrival"])))
    if rows:
        sections.append(("Simulation", rows))

    robot = comp.section("robot")
    if robot:
        rows = [("Model", robot_model_text(robot))]
        stated = robot.get("reach")
        if stated is not None:
            rows.append(("Reach", _num(float(stated), "m") + " (stated in the layout)"))
        elif reach is not None:
            rows.append(("Reach", _num(reach, "m") + " (from its kinematics)"))
        if "joints" in robot:
            rows.append(("Pose", ", ".join(_num(j) for j in robot["joints"]) + " °"))
        sections.append(("Robot", rows))
    props = comp.section("properties")
    if props:
        sections.append(("Properties", [(k, str(v)) for k, v in props.items()]))
    return sections


def robot_model_text(robot: dict[str, Any]) -> str:
    """What a robot is: its stated model, its URDF, its joint chain, or the built-in arm."""
    if robot.get("model"):
        return str(robot["model"])
    if "urdf" in robot:
        return f"URDF {Path(str(robot['urdf'])).name}"
    if "chain" in robot:
        return f"joint chain ({len(robot['chain'])} joints)"
    return "built-in six-axis arm"


class DetailsPanel(QWidget):
    """Shows the properties of one component."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No component selected", self)
        self.title.setObjectName("detailsTitle")
        self.title.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Property", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.live = QTreeWidget(self)
        self.live.setHeaderLabels(["Live signal", "Value", "Age"])
        self.live.setRootIsDecorated(False)
        self.live.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.live.setMaximumHeight(170)
        self.live.hide()
        self.plot = self._make_plot()
        self.plot.hide()
        # The anomaly explanation: wrapped text, never cut off (a tree cell would elide it).
        self.anomaly_text = QLabel(self)
        self.anomaly_text.setObjectName("anomalyText")
        self.anomaly_text.setWordWrap(True)
        self.anomaly_text.setTextFormat(Qt.TextFormat.RichText)
        self.anomaly_text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.anomaly_scroll = QScrollArea(self)  # long explanations scroll; they never make the dock taller
        self.anomaly_scroll.setWidget(self.anomaly_text)
        self.anomaly_scroll.setWidgetResizable(True)
        self.anomaly_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.anomaly_scroll.setMaximumHeight(300)
        self.anomaly_scroll.setMinimumHeight(0)
        self.anomaly_scroll.hide()
        # Operator actions on the component's anomaly scorer.
        self.anomaly_buttons = QWidget(self)
        row = QHBoxLayout(self.anomaly_buttons)
        row.setContentsMargins(0, 0, 0, 0)
        self.accept_button = QPushButton("Accept as new normal", self.anomaly_buttons)
        self.accept_button.setToolTip("The unusual values of the episode in progress become normal now "
                                      "(logged in the alarm history and the recording)")
        self.relearn_button = QPushButton("Relearn normal", self.anomaly_buttons)
        self.relearn_button.setToolTip("Forget what normal looked like and learn again from the next samples")
        self.freeze_button = QPushButton("Freeze", self.anomaly_buttons)
        self.freeze_button.setCheckable(True)
        self.freeze_button.setToolTip("Keep the learned reference as it is: no drift following, no automatic "
                                      "acceptance of a lasting change")
        self.retrain_button = QPushButton("Mark recent as normal", self.anomaly_buttons)
        self.retrain_button.setToolTip("Learn normal from the recent history shown in the plot")
        for button in (self.accept_button, self.relearn_button, self.freeze_button, self.retrain_button):
            row.addWidget(button)
        self.anomaly_buttons.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.tree, 2)
        layout.addWidget(self.live, 1)
        layout.addWidget(self.anomaly_scroll, 2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.anomaly_buttons)
        self.component_id: str | None = None
        self.plotted: list[str] = []
        self.banded: list[str] = []

    def show_component(self, comp: Component | None, layout: Layout | None, reach: float | None = None) -> None:
        """Fill the panel for ``comp``; empty it for ``None``."""
        self.tree.clear()
        self.component_id = comp.id if comp else None
        if comp is None or layout is None:
            self.title.setText("No component selected")
            return
        self.title.setText(f"<b>{html.escape(comp.display_name)}</b> &nbsp;"
                           f"<span style='color:{current_theme().text_muted}'>{html.escape(comp.id)}</span>")
        for section, rows in component_facts(comp, layout, reach):
            head = QTreeWidgetItem(self.tree, [section, ""])
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            head.setFirstColumnSpanned(True)
            for key, value in rows:
                item = QTreeWidgetItem(self.tree, [key, value])
                item.setToolTip(1, value)
                if key == "Colour":
                    item.setForeground(1, QBrush(QColor(value)))
        self.tree.expandAll()

    def show_live(self, rows: list[tuple[str, object, str, float, str]],
                  anomaly: list[tuple[str, str]] | None = None, episode: bool = False) -> None:
        """Live values of the shown component: (signal, value, unit, age in s, state); then the anomaly
        explanation (key, text) lines. ``episode``: an anomaly episode is in progress (it can be accepted)."""
        self.live.setVisible(bool(rows))
        self.anomaly_buttons.setVisible(bool(anomaly))
        self.accept_button.setEnabled(episode)
        self.live.clear()
        self._show_anomaly(anomaly or [])
        for signal, value, unit, age, state in rows:
            if isinstance(value, float):
                text = f"{value:.4g}"
            elif isinstance(value, list):
                text = ", ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in value[:8])
            else:
                text = str(value)
            text = f"{text} {unit}".strip()
            if state not in ("normal", "unknown", "running", "idle", "off"):
                text = f"{text}  [{state.upper()}]"
            item = QTreeWidgetItem(self.live, [signal, text, f"{age:.1f} s"])
            item.setToolTip(1, text)
            if state == "fault":
                item.setForeground(1, QBrush(QColor(current_theme().text_fault)))
            elif state == "warning" or state.startswith("out of limits"):
                item.setForeground(1, QBrush(QColor(current_theme().text_warning)))

    def _show_anomaly(self, lines: list[tuple[str, str]]) -> None:
        self.anomaly_scroll.setVisible(bool(lines))
        if not lines:
            self.anomaly_text.clear()
            return
        theme = current_theme()
        out = []
        for key, text in lines:
            colour = ""
            if key.strip() == "anomaly" and "(alarm)" in text:
                colour = theme.text_fault
            elif key.strip() == "anomaly" and "(warning)" in text:
                colour = theme.text_warning
            style = f" style='color:{colour}; font-weight:bold'" if colour else ""
            indent = "&nbsp;&nbsp;&nbsp;&nbsp;" if key.startswith("  ") else ""
            label = html.escape(key.strip())
            out.append(f"{indent}<b>{label}</b>" + (f": <span{style}>{html.escape(text)}</span>" if text else ""))
        self.anomaly_text.setText("<br>".join(out))

    def _make_plot(self) -> QWidget:
        import pyqtgraph as pg

        theme = current_theme()
        pg.setConfigOptions(antialias=False, background=theme.plot_background, foreground=theme.plot_foreground)
        plot = pg.PlotWidget(self)
        plot.setMinimumHeight(120)
        plot.setMaximumHeight(180)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "seconds ago")
        plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        return plot

    def apply_theme(self) -> None:
        """Recolour the plot for the current theme (lines are redrawn with its pens on the next update)."""
        import pyqtgraph as pg

        theme = current_theme()
        pg.setConfigOptions(background=theme.plot_background, foreground=theme.plot_foreground)
        self.plot.setBackground(theme.plot_background)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(theme.plot_foreground)
            axis.setTextPen(theme.plot_foreground)

    def show_history(self, series: dict[str, list[tuple[float, float]]], now: float,
                     bands: dict[str, tuple[float, float]] | None = None) -> None:
        """A small plot of the recent history of up to three numeric signals: {label: [(time, value)]}.

        ``bands`` gives the learned normal band of a series (same label), drawn as a faint strip behind its line
        so an operator sees at a glance how far outside normal a signal has moved.
        """
        import numpy as np
        import pyqtgraph as pg

        self.plot.setVisible(bool(series))
        self.plot.clear()
        # Calm, distinguishable line greys/blues (ISA-101: no alarm colours for normal data).
        pens = current_theme().plot_pens
        for (label, points), pen in zip(list(series.items())[:3], pens, strict=False):
            if not points:
                continue
            data = np.asarray(points, dtype=float)
            band = (bands or {}).get(label)
            if band is not None and all(np.isfinite(band)):
                colour = QColor(pen)
                colour.setAlpha(40)
                region = pg.LinearRegionItem(values=band, orientation="horizontal", movable=False,
                                             brush=pg.mkBrush(colour), pen=pg.mkPen(None))
                region.setZValue(-10)
                self.plot.addItem(region)
            self.plot.plot(data[:, 0] - now, data[:, 1], pen=pg.mkPen(pen, width=1.5), name=label)
        self.plotted = list(series)[:3]
        self.banded = [label for label in self.plotted if label in (bands or {})]

    def live_value_of(self, signal: str) -> str | None:
        """The shown live value of a signal (tests read it)."""
        for i in range(self.live.topLevelItemCount()):
            item = self.live.topLevelItem(i)
            if item.text(0) == signal:
                return item.text(1)
        return None

    def value_of(self, key: str) -> str | None:
        """The shown value of a property row (tests read it)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.text(0) == key:
                return item.text(1)
        return None
