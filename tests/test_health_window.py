"""The window with a component that has a run-to-failure history: the model is learned in the background
(the window keeps drawing), the pipeline then gives the learned estimate, and Save keeps the health section."""

from __future__ import annotations

import json
import time

import pytest
from test_health_history import HEALTH, spindle_layout, write_history
from test_opcua import free_port as free_broker_port

pytestmark = pytest.mark.gui


def test_the_history_is_learned_in_the_background_and_saved_back(qtbot, tmp_path) -> None:
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    (tmp_path / "histories").mkdir()
    write_history(tmp_path / "histories" / "st10_spindle.csv", units=30, seed=3)
    doc = spindle_layout(HEALTH).to_dict()
    doc["mqtt"]["port"] = free_broker_port()  # nobody there: the window connects in vain, as on a cold start
    path = tmp_path / "plant.json"
    path.write_text(json.dumps(doc))
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(path)
    started = time.monotonic()
    frames = win.telemetry.frames
    assert win.telemetry.pipeline.health == {}  # not fitted on the GUI thread
    qtbot.waitUntil(lambda: "ST10" in win.telemetry.pipeline.health, timeout=120_000)
    waited = time.monotonic() - started
    # the frame timer (30 Hz) kept running while the model was fitted
    assert win.telemetry.frames - frames > 5 * waited, (win.telemetry.frames - frames, waited)
    assert not win.telemetry.pipeline.health_problems
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(win.plant_layout.to_dict()))
    assert json.loads(saved.read_text())["components"][0]["health"] == HEALTH
