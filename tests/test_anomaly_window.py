"""Anomaly scoring in the live window: a component learns normal, then turns amber/red with an alarm and why."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_an_anomalous_component_turns_red_with_an_anomaly_alarm_and_explanation(qtbot, tmp_path):
    from viewer.telemetry.embedded_broker import free_port
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    doc = {"format": "twin-viewer-layout", "version": 1, "name": "anomaly", "components": [
        {"id": "PUMP", "kind": "station", "position": [0, 0, 0], "anomaly": {"learn_samples": 40}},
    ], "mqtt": {"host": "127.0.0.1", "port": free_port(), "stale_after": 60}, "bindings": [
        {"topic": "p/current", "component": "PUMP", "signal": "current", "encoding": "number", "unit": "A",
         "rules": [{"above": 30.0, "state": "fault", "message": "Overcurrent"}]},
        {"topic": "p/flow", "component": "PUMP", "signal": "flow", "encoding": "number"},
    ]}
    path = tmp_path / "pump.json"
    path.write_text(json.dumps(doc))
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.layout_loaded, timeout=20_000):
        win.open_layout(path)
    router = win.telemetry.client.router  # the path MQTT messages take, without a broker in the way
    rng = np.random.default_rng(5)

    def send(current: float, flow: float) -> None:
        now = time.time()
        router.handle("p/current", f"{current:.4f}".encode(), now)
        router.handle("p/flow", f"{flow:.4f}".encode(), now)
        qtbot.wait(40)  # a frame or so: each frame scores the newest values once

    # Normal: current follows flow (a pump), both noisy. Learning needs 40 samples after the signal set settles.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        flow = 50 + rng.normal(0, 2)
        send(10 + 0.2 * (flow - 50) + rng.normal(0, 0.1), flow)
        entry = win.telemetry.anomaly.components.get("PUMP")
        if entry is not None and not entry.scorer.learning:
            break
    entry = win.telemetry.anomaly.components["PUMP"]
    assert entry.signals == ["current", "flow"] and not entry.scorer.learning
    for _ in range(20):
        flow = 50 + rng.normal(0, 2)
        send(10 + 0.2 * (flow - 50) + rng.normal(0, 0.1), flow)
    assert win.telemetry.displayed.get("PUMP") in (None, "normal")
    # The current drifts up to 14 A while the flow stays normal: far below the 30 A overcurrent rule.
    for i in range(40):
        send(10 + 0.1 * i + rng.normal(0, 0.1), 50 + rng.normal(0, 2))
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("PUMP") in ("warning", "fault"), timeout=5_000)
    alarms = [a for a in win.telemetry.alarms.listed() if a.component == "PUMP"]
    assert alarms and all(a.message.startswith("Anomaly") for a in alarms)
    assert "current" in alarms[0].message  # the explanation names the signal that moved
    win.select_component("PUMP")
    rows = dict(win.telemetry.anomaly_rows("PUMP"))
    assert "(warning)" in rows["anomaly"] or "(alarm)" in rows["anomaly"]
    assert rows["why"].startswith("current")
    assert "current horizon" in rows and "reaches its 30 A fault limit in about" in rows["current horizon"]
    # The plot draws the learned normal band behind the history: it holds the learned level, not the drifted one.
    qtbot.waitUntil(lambda: "current [A]" in win.details.banded, timeout=5_000)
    low, high = win.telemetry.anomaly.normal_band("PUMP", "current")
    assert low < 10.0 < high < 13.0
    # The explanation is wrapped text, shown whole (not an elided table cell), with the horizon sentence.
    assert win.details.anomaly_scroll.isVisible() and win.details.anomaly_text.wordWrap()
    assert "reaches its 30 A fault limit" in win.details.anomaly_text.text()
    # The operator accepts the new level as normal: one click, logged in the alarm history.
    assert win.details.accept_button.isVisible() and win.details.accept_button.isEnabled()
    qtbot.mouseClick(win.details.accept_button, Qt.MouseButton.LeftButton)
    assert "new normal" in win.status_label.text()
    accepted = [e for e in win.telemetry.alarms.history if e.kind == "accepted"]
    assert len(accepted) == 1 and "by the operator" in accepted[0].message
    for _ in range(15):
        send(14 + rng.normal(0, 0.1), 50 + rng.normal(0, 2))
    assert win.telemetry.anomaly.components["PUMP"].scorer.level == "normal"
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("PUMP") in (None, "normal"), timeout=5_000)
    assert not any(a.condition_active for a in win.telemetry.alarms.listed() if a.component == "PUMP")
    # Mark recent as normal: the scorer relearns from the recent history; Relearn starts learning again.
    qtbot.mouseClick(win.details.retrain_button, Qt.MouseButton.LeftButton)
    assert "learned normal" in win.status_label.text()
    for _ in range(10):
        send(14 + rng.normal(0, 0.1), 50 + rng.normal(0, 2))
    assert win.telemetry.anomaly.components["PUMP"].result.level != "learning"
    qtbot.mouseClick(win.details.relearn_button, Qt.MouseButton.LeftButton)
    send(14.0, 50.0)
    assert win.telemetry.anomaly.components["PUMP"].result.level == "learning"
    win.close()
