"""The details panel: what the selected component is, where it stands, how it is simulated."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
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
from viewer.telemetry.trends import RANGES_S
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
        # The trend: its range, a larger view on demand, and a legend above the plot (never over the lines).
        self.trend_bar = QWidget(self)
        bar = QHBoxLayout(self.trend_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.trend_range = QComboBox(self.trend_bar)
        for name, span in RANGES_S.items():
            self.trend_range.addItem(name, span)
        self.trend_range.setToolTip("How far back the trend goes (kept while the viewer runs: 10 min at 1 s, "
                                    "1 h at 10 s, 8 h at 1 min; the band is each bucket's minimum to maximum)")
        self.larger_button = QPushButton("Larger…", self.trend_bar)
        self.larger_button.setToolTip("The same trend in a window of its own")
        self.larger_button.clicked.connect(self.show_larger_trend)
        bar.addWidget(QLabel("Trend", self.trend_bar))
        bar.addWidget(self.trend_range)
        bar.addStretch(1)
        bar.addWidget(self.larger_button)
        self.legend = QLabel(self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)  # names are escaped (see _legend_html)
        self.legend.setWordWrap(True)
        self.plot = self._make_plot()
        for widget in (self.trend_bar, self.legend, self.plot):
            widget.hide()
        self.larger: QDialog | None = None
        self._last_trend: tuple[Any, ...] | None = None  # what the larger window draws when it opens
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
        row = QGridLayout(self.anomaly_buttons)  # two by two: the dock stays narrow (one row needs 500 px)
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
        for i, button in enumerate((self.accept_button, self.relearn_button, self.freeze_button, self.retrain_button)):
            row.addWidget(button, i // 2, i % 2)
        self.anomaly_buttons.hide()
        layout = DockColumn(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.tree, 2)
        layout.addWidget(self.live, 1)
        layout.addWidget(self.anomaly_scroll, 2)
        layout.addWidget(self.trend_bar)
        layout.addWidget(self.legend)
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
                  anomaly: list[tuple[str, str]] | None = None, episode: bool = False,
                  failure: list[tuple[str, str]] | None = None) -> None:
        """Live values of the shown component: (signal, value, unit, age in s, state); then the anomaly
        explanation (key, text) lines and the failure probabilities (key, text). ``episode``: an anomaly
        episode is in progress (it can be accepted)."""
        self.live.setVisible(bool(rows))
        self.anomaly_buttons.setVisible(bool(anomaly))
        self.accept_button.setEnabled(episode)
        self.live.clear()
        self._show_anomaly((anomaly or []) + (failure or []))
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
        plot.setMinimumHeight(96)
        plot.setMaximumHeight(180)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "minutes ago")
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)  # "minutes ago (x0.001)" helps no one
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

    @property
    def trend_span_s(self) -> float:
        """The trend range chosen (seconds)."""
        return float(self.trend_range.currentData())

    def show_history(self, series: dict[str, Any], now: float, bands: dict[str, tuple[float, float]] | None = None,
                     unit: str = "") -> None:
        """The trend of up to three numeric signals, {label: Trend} (viewer.telemetry.trends): the mean as a
        line, the bucket's minimum-to-maximum as a faint band, the learned normal band of a series (same
        label) as a strip behind it, so an operator sees at a glance how far outside normal a signal is.
        ``unit``: the left axis's unit when the series share one."""
        shown = {label: trend for label, trend in list(series.items())[:3] if trend is not None and len(trend.time)}
        for widget in (self.trend_bar, self.legend, self.plot):
            widget.setVisible(bool(shown))
        self._last_trend = (shown, now, bands, unit)
        self.legend.setText(_legend_html(list(shown)))
        draw_trends(self.plot, shown, now, bands, unit, self.trend_span_s)
        if self.larger is not None and self.larger.isVisible():
            draw_trends(self.larger.plot, shown, now, bands, unit, self.trend_span_s)  # type: ignore[attr-defined]
            self.larger.legend.setText(_legend_html(list(shown)))  # type: ignore[attr-defined]
        self.plotted = list(shown)
        self.banded = [label for label in self.plotted if label in (bands or {})]

    def show_larger_trend(self) -> None:
        """The trend in a window of its own (non-modal: the operator keeps working beside it)."""
        if self.larger is None:
            self.larger = TrendWindow(self)
        self.larger.setWindowTitle(f"Trend — {self.title.text()}")
        self.larger.show()
        self.larger.raise_()
        if self._last_trend is not None:
            shown, now, bands, unit = self._last_trend
            draw_trends(self.larger.plot, shown, now, bands, unit, self.trend_span_s)
            self.larger.legend.setText(_legend_html(list(shown)))

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


class DockColumn(QVBoxLayout):
    """A panel's column for a scrolling dock: it says it has no height-for-width, so the scroll area gives
    the panel the dock's height (down to the panel's minimum) instead of the preferred height of its wrapped
    texts, which made it scroll with room to spare and pushed the trend out of view."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return False


class TrendWindow(QDialog):
    """A larger trend, beside the window; the details panel keeps it up to date while it is open."""

    def __init__(self, parent: DetailsPanel) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.resize(900, 480)
        box = QVBoxLayout(self)
        self.legend = QLabel(self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.plot = parent._make_plot()
        self.plot.setMaximumHeight(16_777_215)
        box.addWidget(self.legend)
        box.addWidget(self.plot, 1)


def _legend_html(labels: list[str]) -> str:
    pens = current_theme().plot_pens
    return " &nbsp; ".join(f'<span style="color:{pen}">&#9473;&#9473;</span> {html.escape(label)}'
                           for label, pen in zip(labels, pens, strict=False))


def draw_trends(plot: Any, series: dict[str, Any], now: float, bands: dict[str, tuple[float, float]] | None,
                unit: str = "", span_s: float = 600.0) -> None:
    """Draw trends into a pyqtgraph plot (see DetailsPanel.show_history); x in minutes before ``now``, the
    whole range chosen (a trend that started recently is short, at the right: it says how long data is)."""
    import numpy as np
    import pyqtgraph as pg

    plot.clear()
    pens = current_theme().plot_pens  # calm greys/blues (ISA-101: no alarm colours for normal data)
    for (label, trend), pen in zip(series.items(), pens, strict=False):
        x = (trend.time - now) / 60.0
        band = (bands or {}).get(label)
        colour = QColor(pen)
        if band is not None and all(np.isfinite(band)):
            colour.setAlpha(40)
            region = pg.LinearRegionItem(values=band, orientation="horizontal", movable=False,
                                         brush=pg.mkBrush(colour), pen=pg.mkPen(None))
            region.setZValue(-10)
            plot.addItem(region)
        if len(x) > 1 and (trend.high > trend.low).any():
            colour.setAlpha(60)
            low = pg.PlotCurveItem(x, trend.low, pen=pg.mkPen(None))
            high = pg.PlotCurveItem(x, trend.high, pen=pg.mkPen(None))
            plot.addItem(pg.FillBetweenItem(low, high, brush=pg.mkBrush(colour)))
        plot.plot(x, trend.mean, pen=pg.mkPen(pen, width=1.5))
    plot.setLabel("left", unit)
    plot.setXRange(-span_s / 60.0, 0.0, padding=0.02)
