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
from PySide6.QtCore import QPoint, Qt

pytestmark = pytest.mark.gui


STALE_AFTER_S = 3.0


@pytest.fixture
def live(qtbot, tmp_path, demo_layout_path):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    # The demo plant with a short stale time, so "no data" shows within the test.
    doc = json.loads(demo_layout_path.read_text())
    doc["mqtt"]["stale_after"] = STALE_AFTER_S
    layout_path = tmp_path / "demo_live.json"
    layout_path.write_text(json.dumps(doc))

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
        win.open_layout(layout_path)
    yield win, broker, plant
    plant.terminate()
    plant.wait(5)
    win.close()
    broker.stop()


def robot_points(win, robot):
    rig = win.scene.geometry.rigs[robot]
    return np.array(win.scene._mesh.points[rig.vertex_start:rig.vertex_stop])


def test_robots_move_a_fault_turns_red_the_operator_acknowledges_and_stale_data_shows(live, qtbot):
    from PySide6.QtWidgets import QToolTip

    win, broker, plant = live
    qtbot.waitUntil(lambda: win.telemetry.connection_status().state.value == "connected", timeout=15_000)
    home = robot_points(win, "R1")
    qtbot.waitUntil(lambda: np.abs(robot_points(win, "R1") - home).max() > 0.05, timeout=15_000)
    moved = robot_points(win, "R1")
    qtbot.wait(300)
    assert np.abs(robot_points(win, "R1") - moved).max() > 0.001  # still moving, frame after frame
    assert not any(flags.any() for flags in win.telemetry.clamped.values())  # the plant stays within limits

    # A conveyor the virtual plant does not drive faults: it turns red, gets a badge and an alarm.
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish("demo/line1/CV02/state", json.dumps({"state": "fault"}), qos=1).wait_for_publish(5)
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("CV02") == "fault", timeout=10_000)
    theme = win.scene.theme
    shown = win.scene.displayed_rgb("CV02")
    fault_rgb = np.array([int(theme.fault[i:i + 2], 16) for i in (1, 3, 5)])
    dim_rgb = np.array([int(theme.blink_dim[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(shown - fault_rgb).max(axis=1) <= 1).all() or (np.abs(shown - dim_rgb).max(axis=1) <= 1).all()
    assert "fault" in win.scene.badge_states()
    # The badge names its component and takes the place of its name label (never the label dropped).
    conveyor = win.plant_layout.component("CV02").display_name
    assert f"X FAULT  {conveyor}" in win.scene.badge_texts()["fault"]
    alarms = [a for a in win.telemetry.alarms.listed() if a.component == "CV02"]
    assert len(alarms) == 1 and alarms[0].needs_attention and alarms[0].message == "Machine fault"

    # The operator acknowledges it in the alarm panel.
    panel = win.alarm_panel
    row = panel.row_of("CV02")
    panel.table.selectRow(row)
    qtbot.mouseClick(panel.ack_button, Qt.MouseButton.LeftButton)
    assert not alarms[0].needs_attention and alarms[0].state.value == "acknowledged"
    # The conveyor recovers: the alarm clears and leaves the list; the colour goes back to normal.
    pub.publish("demo/line1/CV02/state", json.dumps({"state": "running"}), qos=1).wait_for_publish(5)
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("CV02") == "running", timeout=5_000)
    assert alarms[0] not in win.telemetry.alarms.listed()
    start, stop = win.scene.geometry.face_ranges[win.scene.component_index("CV02")]
    as_built = win.scene.geometry.face_rgb[start:stop].astype(int)  # two-tone: belt lighter, legs darker
    assert (np.abs(win.scene.displayed_rgb("CV02").astype(int) - as_built).max(axis=1) <= 1).all()
    assert [e.kind for e in win.telemetry.alarms.history if e.component == "CV02"] == [
        "raised", "acknowledged", "cleared"]
    pub.loop_stop()
    pub.disconnect()

    # Selecting a station shows its live values and a plot of their recent history.
    win.select_component("ST10")
    qtbot.waitUntil(lambda: win.details.live_value_of("current") is not None, timeout=5_000)
    assert win.details.live_value_of("current").endswith(" A")
    qtbot.waitUntil(lambda: any(label.startswith("current") for label in win.details.plotted), timeout=5_000)
    assert win.details.plot.isVisible()
    # The trend's range: 10 min by default, 1 h and 8 h from the same store; the larger view shows the same.
    assert win.details.trend_span_s == 600.0
    win.details.trend_range.setCurrentIndex(win.details.trend_range.findText("8 h"))
    assert win.details.trend_span_s == 8 * 3600.0
    assert any(label.startswith("current [A]") for label in win.details.plotted)
    assert "current [A]" in win.details.legend.text()  # above the plot, not over its lines
    win.details.larger_button.click()
    assert win.details.larger.isVisible() and "ST10" in win.details.larger.windowTitle()
    win.details.larger.close()
    # Hovering shows the same facts in a tooltip.
    win.view_top()
    qtbot.wait(100)
    # The robot arms keep moving and may pass over the station in the top view: hover a point where the pick
    # gives the station now, and try again if an arm covered it while the pointer rested.
    center = win.scene.geometry.component_center(win.scene.component_index("ST10"))
    cx, cy = win.scene.project(center)
    for attempt in range(6):
        for dx, dy in [(0, 0), (8, 0), (-8, 0), (0, 8), (0, -8), (12, 12), (-12, -12)]:
            if win.scene.pick(cx + dx, cy + dy) == "ST10":
                break
        pos = QPoint(round(cx + dx), round(win.view.height() - 1 - (cy + dy)))
        qtbot.mouseMove(win.view, QPoint(pos.x() + 1 + attempt, pos.y()))  # a real move each time
        qtbot.mouseMove(win.view, pos)
        try:
            qtbot.waitUntil(lambda: "ST10 CNC milling A" in QToolTip.text(), timeout=2_000)
            break
        except Exception:
            continue
    assert "ST10 CNC milling A" in QToolTip.text()
    assert "current:" in QToolTip.text()

    # The status bar tells what the link does.
    assert win.connection_label.text().startswith("Connected")
    assert "msg/s" in win.rate_label.text()

    # The plant goes quiet: after the stale time every machine shows "no data" with its badge.
    plant.terminate()
    plant.wait(5)
    # Each machine goes stale its own stale time after its own last message (they publish at their own
    # rates), so wait for both machines looked at, not for one.
    qtbot.waitUntil(lambda: win.telemetry.displayed.get("ST10") == "stale" == win.telemetry.displayed.get("ST70"),
                    timeout=(STALE_AFTER_S + 5) * 1000)
    assert "stale" in win.scene.badge_states()
    stale_rgb = np.array([int(theme.stale[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(win.scene.displayed_rgb("ST70") - stale_rgb).max(axis=1) <= 1).all()


def test_joint_values_outside_the_limits_are_clamped_and_flagged(live, qtbot):
    win, broker, plant = live
    plant.terminate()
    plant.wait(5)
    qtbot.waitUntil(lambda: win.telemetry.connection_status().state.value == "connected", timeout=15_000)
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    for _ in range(3):  # two samples or more, so the interpolated pose settles on the last one
        pub.publish("demo/line1/R2/joints", json.dumps({"deg": [0, -10, 200, 0, 50, 0]}), qos=1).wait_for_publish(5)
        qtbot.wait(150)
    qtbot.waitUntil(lambda: "R2" in win.telemetry.clamped and win.telemetry.clamped["R2"].any(), timeout=5_000)
    assert win.telemetry.clamped["R2"].tolist() == [False, False, True, False, False, False]  # j3 limit is ±150°
    win.select_component("R2")
    qtbot.waitUntil(lambda: win.details.live_value_of("joints") is not None, timeout=5_000)
    assert "OUT OF LIMITS: J3" in win.details.live_value_of("joints")
    pub.loop_stop()
    pub.disconnect()


def test_a_replay_opened_while_live_never_blinds_the_operator(live, qtbot, tmp_path):
    """Live telemetry and the live alarm list run on beside a replay; the replay says REPLAY, its list is
    read-only, and Back to live shows the plant as it is (nothing reloaded, nothing lost)."""
    from test_recording import synthetic_recording

    from viewer.model.layout_io import load_layout

    win, broker, _ = live
    qtbot.waitUntil(lambda: win.telemetry.store.message_count() > 20, timeout=15_000)
    recording = tmp_path / "earlier.mcap"
    synthetic_recording(recording, load_layout(win.layout_path).to_dict(), seconds=20)
    win.open_recording(recording)
    qtbot.waitUntil(lambda: win.replay is not None, timeout=30_000)
    assert win.telemetry.running and win.replay_banner.isVisible()
    assert win.replay_banner.text().startswith("REPLAY — ") and "of earlier.mcap" in win.replay_banner.text()
    assert win.alarm_dock.isVisible() and win.replay_alarm_dock.isVisible()
    # The recording's fault shows in the replayed list and on the view, not in the live list.
    qtbot.mouseClick(win.timeline.next_alarm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.replayed.displayed.get("ST20") == "fault", timeout=5_000)
    assert [a.component for a in win.replay_alarm_panel.manager.listed()] == ["ST20"]
    assert win.replay_alarm_panel.manager is not win.telemetry.alarms
    # A fault in the plant now, during the replay: it reaches the live alarm list and the banner at once.
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        pub.publish("demo/line1/CV02/state", json.dumps({"state": "fault"}), qos=1).wait_for_publish(5)
        qtbot.waitUntil(lambda: any(a.component == "CV02" and a.needs_attention
                                    for a in win.telemetry.alarms.listed()), timeout=10_000)
        assert win.alarm_panel.manager is win.telemetry.alarms
        assert win.alarm_panel.row_of("CV02") is not None
        qtbot.waitUntil(lambda: "LIVE: " in win.replay_banner.text(), timeout=5_000)  # (the plant faults too)
        assert win.replayed.displayed.get("CV02") != "fault"  # the view shows the recording, not the plant now
        # Acknowledging in the replay's list does nothing: not to the replay, and nothing to anything live.
        win.replay_alarm_panel.table.selectRow(0)
        win.replay_alarm_panel.acknowledge_selected()
        assert win.replay_alarm_panel.manager.listed()[0].awaits_acknowledgement
        assert not win.replay_alarm_panel.ack_button.isVisibleTo(win.replay_alarm_panel)
        live_alarm = next(a for a in win.telemetry.alarms.listed() if a.component == "CV02")
        assert live_alarm.awaits_acknowledgement
        # Back to live: no reload, the live alarm is still there and the view shows the fault.
        qtbot.mouseClick(win.timeline.live_button, Qt.MouseButton.LeftButton)
        assert win.replay is None and not win.replay_banner.isVisible() and not win.replay_alarm_dock.isVisible()
        qtbot.waitUntil(lambda: win.telemetry.displayed.get("CV02") == "fault", timeout=5_000)
        assert win.telemetry.alarms.by_id(live_alarm.id) is live_alarm
    finally:
        pub.loop_stop()
        pub.disconnect()
