"""The main window live: a real mosquitto, the virtual plant process, robots moving, a fault turning red."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import paho.mqtt.client as paho
import pytest
from mosquitto_broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


@pytest.fixture
def live(qtbot, tmp_path, demo_layout_path):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    broker = Mosquitto(tmp_path).start()
    plant = subprocess.Popen([sys.executable, "-m", "viewer", "simulate-plant", "--broker",
                              f"127.0.0.1:{broker.port}", "--duration", "120"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    create_application()
    win = MainWindow(broker=f"127.0.0.1:{broker.port}")
    win.resize(1280, 800)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(demo_layout_path)
    yield win, broker, plant
    plant.terminate()
    plant.wait(5)
    win.close()
    broker.stop()


def robot_points(win, robot):
    rig = win.scene.geometry.rigs[robot]
    return np.array(win.scene._mesh.points[rig.vertex_start:rig.vertex_stop])


def test_robots_move_and_a_fault_turns_red_with_an_alarm(live, qtbot):
    win, broker, plant = live
    qtbot.waitUntil(lambda: win.telemetry.connection_status().state.value == "connected", timeout=15_000)
    home = robot_points(win, "R1")
    qtbot.waitUntil(lambda: np.abs(robot_points(win, "R1") - home).max() > 0.05, timeout=15_000)
    moved = robot_points(win, "R1")
    qtbot.wait(300)
    assert np.abs(robot_points(win, "R1") - moved).max() > 0.001  # still moving, frame after frame
    # Every live robot shows the pose of the newest samples, within the joint limits.
    assert not any(flags.any() for flags in win.telemetry.clamped.values())

    # Stop the plant, then fault a station ourselves: deterministic.
    plant.terminate()
    plant.wait(5)
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish("demo/line1/ST20/state", json.dumps({"state": "fault", "count": 7}), qos=1).wait_for_publish(5)
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("ST20") == "fault", timeout=10_000)
    theme = win.scene.theme
    shown = win.scene.displayed_rgb("ST20")
    fault_rgb = np.array([int(theme.fault[i:i + 2], 16) for i in (1, 3, 5)])
    dim_rgb = np.array([int(theme.blink_dim[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(shown - fault_rgb).max(axis=1) <= 1).all() or (np.abs(shown - dim_rgb).max(axis=1) <= 1).all()
    assert "fault" in win.scene.badge_states()
    alarms = [a for a in win.telemetry.alarms.listed() if a.component == "ST20"]
    assert len(alarms) == 1 and alarms[0].needs_attention and alarms[0].message == "Machine fault"

    # The operator acknowledges it in the alarm panel.
    panel = win.alarm_panel
    row = next(r for r in range(panel.table.rowCount()) if panel.table.item(r, 1).text() == "ST20")
    panel.table.selectRow(row)
    qtbot.mouseClick(panel.ack_button, Qt.MouseButton.LeftButton)
    assert not alarms[0].needs_attention and alarms[0].state.value == "acknowledged"
    # The station recovers: the alarm clears and leaves the list; the colour goes back to normal.
    pub.publish("demo/line1/ST20/state", json.dumps({"state": "running", "count": 8}), qos=1).wait_for_publish(5)
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("ST20") == "running", timeout=10_000)
    assert alarms[0] not in win.telemetry.alarms.listed()
    base = np.array([int(win.plant_layout.component("ST20").display_color[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(win.scene.displayed_rgb("ST20") - base).max(axis=1) <= 1).all()
    assert [e.kind for e in win.telemetry.alarms.history if e.component == "ST20"] == [
        "raised", "acknowledged", "cleared"]
    pub.loop_stop()
    pub.disconnect()
    # The status bar tells what the link does.
    assert win.connection_label.text().startswith("Connected")
    assert "msg/s" in win.rate_label.text()
