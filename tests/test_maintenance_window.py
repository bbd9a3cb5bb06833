"""The Maintenance dock: a signal heading for its fault limit puts its machine on the list; Plan ranks its
repair windows in the background; Schedule records planned maintenance in the alarm history."""

from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.gui


def test_a_rising_vibration_puts_its_machine_at_risk_and_a_chosen_window_is_recorded(qtbot, tmp_path,
                                                                                   demo_layout_path):
    from viewer.telemetry.pipeline import TelemetryPipeline
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    folder = tmp_path / "plant"
    shutil.copytree(demo_layout_path.parent, folder)
    path = folder / demo_layout_path.name
    doc = json.loads(path.read_text())
    doc.pop("mqtt", None)  # no broker: the live pipeline is fed here, through its router
    path.write_text(json.dumps(doc))
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(path)
    pipeline = TelemetryPipeline(win.plant_layout)
    win.maintenance.pipeline_source = lambda: pipeline
    t0 = 1_750_000_000.0
    for i in range(120):  # 4 mm/s rising 0.05 mm/s a second: the 11.2 mm/s fault limit 24 s after the last
        pipeline.router.handle("demo/line1/ST10/vibration", f"{4.0 + 0.05 * i:.3f}".encode(), t0 + i)
        pipeline.step(t0 + i + 0.001)
    win.maintenance.refresh()
    assert win.maintenance.table.rowCount() == 1
    assert win.maintenance.table.item(0, 0).text() == win.plant_layout.component("ST10").display_name
    assert win.maintenance.table.item(0, 1).text() == "100 %"  # within two weeks, on a straight line
    win.maintenance.table.selectRow(0)
    win.maintenance.plan_button.click()
    qtbot.waitUntil(lambda: win.maintenance.plan is not None, timeout=120_000)
    assert win.maintenance.plan.station == "ST10" and win.maintenance.windows.rowCount() >= 1
    assert "expected loss" in win.maintenance.summary.text()
    win.maintenance.schedule_button.click()
    planned = [e for e in win.telemetry.alarms.history if e.kind == "planned maintenance"]  # the live history
    assert len(planned) == 1 and planned[0].component == "ST10" and "expected loss" in planned[0].message
