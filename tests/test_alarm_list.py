"""The alarm list: ISA-18.2 order, occurrences (first raise, count), the alarm journal across reloads,
message rates after a reload, and (in the window) names, units, values, visibility of new alarms, the
acknowledge shortcut and the optional sound."""

from __future__ import annotations

import json

import pytest

from viewer.telemetry.alarm_journal import (
    MAX_TEXT,
    AlarmJournal,
    journal_path,
    read_journal,
    write_journal,
)
from viewer.telemetry.alarms import AlarmManager, AlarmState
from viewer.telemetry.states import RuleChange
from viewer.telemetry.store import MessageRate


def rule(component, active, t, state="fault", signal="state", value="fault", index=2):
    return RuleChange(component, signal, index, active, state, f"{component} {state}", value, t)


# --------------------------------------------------------------------------- order and occurrences
def test_list_order_is_isa_18_2_active_unacked_by_priority_then_acked_then_cleared_then_shelved():
    alarms = AlarmManager()
    cleared_high = alarms.apply(rule("A", True, 1.0))
    alarms.apply(rule("A", False, 2.0))  # cleared, not acknowledged
    acked_high = alarms.apply(rule("B", True, 3.0))
    alarms.acknowledge(acked_high.id, 3.5)
    old_medium = alarms.apply(rule("C", True, 4.0, state="warning"))
    new_medium = alarms.apply(rule("D", True, 5.0, state="warning"))
    high = alarms.apply(rule("E", True, 0.5))  # older than every medium, still first: priority first
    shelved = alarms.apply(rule("F", True, 6.0))
    alarms.shelve(shelved.id, 6.5, 60.0)
    # Hand order: active unacknowledged high (E), then the active unacknowledged mediums newest first (D, C),
    # then the acknowledged active one (B), then the cleared unacknowledged one (A), then the shelved one (F).
    assert alarms.listed() == [high, new_medium, old_medium, acked_high, cleared_high, shelved]


def test_a_re_raise_keeps_the_first_time_counts_and_comes_back_to_the_top_of_its_priority():
    alarms = AlarmManager()
    chattering = alarms.apply(rule("A", True, 10.0, value=81.0, signal="temp"))
    other = alarms.apply(rule("B", True, 11.0))
    alarms.apply(rule("A", False, 12.0, value=79.0, signal="temp"))
    assert alarms.listed() == [other, chattering]  # cleared unacknowledged goes below active
    alarms.apply(rule("A", True, 20.0, value=83.0, signal="temp"))  # back before anyone acknowledged
    assert (chattering.first_raised_at, chattering.raised_at, chattering.raise_count) == (10.0, 20.0, 2)
    assert chattering.raised_value == 83.0 and chattering.state is AlarmState.UNACK_ACTIVE
    assert alarms.listed() == [chattering, other]  # both high, A's raise is the newer
    # Acknowledged and cleared, the occurrence is over: the next raise starts a new one.
    alarms.acknowledge(chattering.id, 21.0)
    alarms.apply(rule("A", False, 22.0, value=70.0, signal="temp"))
    assert chattering.state is AlarmState.NORMAL and chattering.value == 70.0
    alarms.apply(rule("A", True, 30.0, value=90.0, signal="temp"))
    assert (chattering.first_raised_at, chattering.raise_count, chattering.raised_value) == (30.0, 1, 90.0)
    assert [e.kind for e in alarms.history if e.alarm_id == chattering.id] == [
        "raised", "cleared", "raised", "acknowledged", "cleared", "raised"]


def test_an_escalation_keeps_the_occurrence_and_notes_the_value_that_escalated():
    alarms = AlarmManager()
    warning = RuleChange("P", "pressure", 0, True, "warning", "high pressure", 5.2, 1.0)
    alarm = alarms.apply(warning)
    alarms.acknowledge(alarm.id, 2.0)
    alarms.apply(RuleChange("P", "pressure", 0, True, "fault", "very high pressure", 6.4, 3.0))
    assert alarm.severity == "high" and alarm.state is AlarmState.UNACK_ACTIVE
    assert (alarm.first_raised_at, alarm.raise_count, alarm.raised_value) == (1.0, 1, 6.4)


# --------------------------------------------------------------------------- message rate
def test_message_rate_is_never_negative_when_the_counted_store_is_replaced():
    rate = MessageRate(window=40)
    for i in range(10):
        rate.add(100.0 + i * 0.1, 2_000 * (i + 1))  # 20,000 msg/s
    assert rate.rate() == pytest.approx(20_000)
    rate.add(101.0, 3)  # a reload: a new store counts from 0
    assert rate.rate() == 0.0
    rate.add(101.5, 503)
    assert rate.rate() == pytest.approx(1_000)


# --------------------------------------------------------------------------- the journal
def a_session():
    """A manager with one alarm of each kind that matters after a reload."""
    alarms = AlarmManager()
    cleared_unacked = alarms.apply(rule("CV02", True, 10.0))
    alarms.apply(rule("CV02", False, 11.0))
    acked_active = alarms.apply(rule("ST10", True, 12.0, signal="temp", value=91.5, index=0))
    alarms.acknowledge(acked_active.id, 13.0)
    unacked_active = alarms.apply(rule("ST20", True, 14.0, state="warning"))
    return alarms, cleared_unacked, acked_active, unacked_active


def test_the_journal_round_trips_alarms_and_history_and_new_ids_follow_the_restored(tmp_path):
    alarms, *_ = a_session()
    layout = tmp_path / "plant.json"
    journal = AlarmJournal(tmp_path / "journal", layout, "Demo plant")
    assert journal.save(alarms)
    assert journal.path.parent == tmp_path / "journal" and journal.path.name.startswith("Demo-plant-")
    lines = journal.path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "twin-viewer-alarm-journal"
    assert len(lines) == 1 + 3 + 5  # header, three alarms, five events (3 raised, 1 cleared, 1 acknowledged)

    fresh = AlarmManager()
    assert AlarmJournal(tmp_path / "journal", layout, "Demo plant").restore(fresh) == 3
    by_component = {a.component: a for a in fresh.alarms.values()}
    assert by_component["CV02"].state is AlarmState.UNACK_RTN and by_component["CV02"].needs_attention
    assert by_component["ST10"].state is AlarmState.ACK_ACTIVE and by_component["ST10"].unconfirmed
    assert by_component["ST10"].raised_value == 91.5 and by_component["ST10"].first_raised_at == 12.0
    assert by_component["ST20"].state is AlarmState.UNACK_ACTIVE and by_component["ST20"].unconfirmed
    assert [(e.kind, e.component) for e in fresh.history] == [(e.kind, e.component) for e in alarms.history]
    assert fresh.unacknowledged_count() == 2
    new = fresh.apply(rule("ST30", True, 20.0))
    assert new.id == 4  # after the restored ids 1-3


def test_restored_active_alarms_are_settled_by_live_data(tmp_path):
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json")
    fresh = AlarmManager()
    contents = read_journal(path)
    from viewer.telemetry.alarm_journal import restored

    fresh.restore(restored(contents.alarms), contents.history, contents.logged)
    by_component = {a.component: a for a in fresh.alarms.values()}
    # ST20's condition still holds: its first live value raises it again -> same occurrence, no new raise.
    fresh.apply(rule("ST20", True, 30.0, state="warning"))
    assert by_component["ST20"].raise_count == 1 and not by_component["ST20"].unconfirmed
    seen = {("ST10", "temp"), ("ST20", "state")}  # live data has evaluated these signals
    assert fresh.settle_unconfirmed(lambda c, s: (c, s) in seen, 31.0)
    # ST10 (acknowledged) was evaluated and did not come back: cleared and gone from the list.
    assert by_component["ST10"].state is AlarmState.NORMAL and by_component["ST10"] not in fresh.listed()
    assert by_component["ST20"].state is AlarmState.UNACK_ACTIVE
    assert [a.component for a in fresh.listed()] == ["ST20", "CV02"]
    assert not fresh.settle_unconfirmed(lambda c, s: True, 32.0)  # nothing left to settle


def test_a_damaged_journal_line_is_reported_with_its_line_and_skipped(tmp_path):
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json")
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:25]  # cut in the middle of the second alarm
    lines.insert(4, json.dumps({"alarm": {"id": 9, "component": "X"}}))  # an alarm without its fields
    path.write_text("\n".join(lines) + "\n")
    contents = read_journal(path)
    assert sorted(p.line for p in contents.problems) == [3, 5]
    assert "the alarm has no 'signal'" in str(next(p for p in contents.problems if p.line == 5))
    assert str(path) in str(contents.problems[0])
    assert len(contents.alarms) == 2 and len(contents.history) == len(alarms.history)


def test_a_file_that_is_not_a_journal_is_skipped_moved_aside_and_the_next_save_starts_afresh(tmp_path):
    layout = tmp_path / "plant.json"
    journal = AlarmJournal(tmp_path, layout, "p")
    journal.path.write_bytes(b"\x80\x04\x95 pickled? never read\n")
    fresh = AlarmManager()
    assert journal.restore(fresh) == 0 and fresh.alarms == {}
    assert journal.problems and journal.problems[0].line is None and "cannot be read" in journal.problems[0].reason
    assert journal.path.with_name(journal.path.name + ".damaged").exists() and not journal.path.exists()
    newer = AlarmJournal(tmp_path, layout, "p")
    newer.path.write_text(json.dumps({"format": "twin-viewer-alarm-journal", "version": 99}) + "\n")
    assert newer.restore(AlarmManager()) == 0
    assert "version 99 is newer" in newer.problems[0].reason and newer.problems[0].line == 1
    alarms, *_ = a_session()
    assert newer.save(alarms) and len(read_journal(newer.path).alarms) == 3


def test_the_journal_is_bounded_in_events_and_bytes_and_keeps_the_newest(tmp_path):
    alarms = AlarmManager(max_history=100_000)
    for i in range(3_000):
        alarms.apply(rule(f"C{i % 7}", i % 2 == 0, float(i)))
    path = tmp_path / "j.jsonl"
    written = write_journal(path, alarms, layout_path=tmp_path / "p.json", max_events=1_000, max_bytes=10**9)
    assert len(read_journal(path).history) == 1_000 and written == path.stat().st_size
    write_journal(path, alarms, layout_path=tmp_path / "p.json", max_bytes=50_000)
    contents = read_journal(path)
    assert path.stat().st_size <= 50_000
    assert contents.history[-1] == alarms.history[-1]  # the newest kept, the oldest dropped
    assert len(contents.alarms) == 7 and 100 < len(contents.history) < 3_000
    long = AlarmManager()
    long.apply(RuleChange("C", "s", 0, True, "fault", "x" * 50_000, "v" * 50_000, 1.0))
    write_journal(path, long, layout_path=tmp_path / "p.json")
    assert len(read_journal(path).alarms[0].value) == MAX_TEXT


def test_the_journal_is_keyed_by_the_layout_file_and_holds_no_broker_or_secret(tmp_path):
    first = journal_path(tmp_path, tmp_path / "a" / "plant.json", "Plant")
    assert first == journal_path(tmp_path, tmp_path / "a" / ".." / "a" / "plant.json", "Plant")  # resolved
    assert first != journal_path(tmp_path, tmp_path / "b" / "plant.json", "Plant")
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json", layout_name="Plant")
    header = json.loads(path.read_text().splitlines()[0])
    assert set(header) == {"format", "version", "layout_path", "layout_name", "saved_at", "logged"}


# --------------------------------------------------------------------------- the controller and the window
@pytest.mark.gui
def test_the_status_rate_is_not_negative_after_the_pipeline_is_replaced(qtbot):
    """The cause of '-20,580 msg/s' after a reload: the rate window mixed the old store's count with the new
    store's, which starts again at 0."""
    from viewer.model.layout import Layout
    from viewer.telemetry.pipeline import TelemetryPipeline
    from viewer.ui.app import create_application
    from viewer.ui.telemetry_controller import TelemetryController

    create_application()
    controller = TelemetryController(object(), lambda: None)  # no component is ever drawn here: no scene needed
    controller.layout = Layout(name="t")
    for _ in range(5):
        for _ in range(1_000):
            controller.store.count_message(1.0)
        controller.on_frame()
    assert controller.telemetry_status()["rate"] > 0
    controller.pipeline = TelemetryPipeline(controller.layout)  # what start() does on a reload
    controller.store.count_message(1.0)
    controller.on_frame()
    assert controller.telemetry_status()["rate"] >= 0


@pytest.fixture
def alarm_window(qtbot, tmp_path, demo_layout_path):
    """The window live on the demo plant through a real broker; the test publishes what the plant says."""
    import paho.mqtt.client as paho
    from mosquitto_broker import Mosquitto
    from paho.mqtt.enums import CallbackAPIVersion
    from PySide6.QtCore import QSettings

    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    layout_path = tmp_path / "demo_alarms.json"
    layout_path.write_text(demo_layout_path.read_text())
    broker = Mosquitto(tmp_path).start()
    create_application()
    win = MainWindow(broker=f"127.0.0.1:{broker.port}")
    win.settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win.alarm_journal_dir = tmp_path / "journal"
    win.resize(1366, 768)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()  # window shortcuts need the active window (no window manager on Xvfb)
    qtbot.waitUntil(win.isActiveWindow, timeout=5_000)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(layout_path)
    qtbot.waitUntil(lambda: win.telemetry.connection_status().state.value == "connected", timeout=15_000)
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()

    def publish(topic: str, payload: object) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        pub.publish(f"demo/line1/{topic}", text, qos=1).wait_for_publish(5)

    yield win, publish
    pub.loop_stop()
    pub.disconnect()
    win.close()
    broker.stop()


def listed(win):
    return [(a.component, a.state) for a in win.telemetry.alarms.listed()]


def cell(win, component, column):
    panel = win.alarm_panel
    row = panel.row_of(component)
    return panel.table.item(row, column)


@pytest.mark.gui
def test_the_list_names_components_shows_units_values_and_counts_in_isa_order(alarm_window, qtbot):
    from viewer.ui.alarm_panel import COL_AT_RAISE, COL_COMPONENT, COL_COUNT, COL_FIRST, COL_NOW, COL_STATE

    win, publish = alarm_window
    publish("ST30/temperature", "70.0")  # above 68: "Bath too hot", medium
    qtbot.waitUntil(lambda: ("S-ST30-TEMP", AlarmState.UNACK_ACTIVE) in listed(win), timeout=10_000)
    publish("ST30/temperature", "68.2")  # still above 68 - 0.5 (hysteresis): active, a new value now
    qtbot.waitUntil(lambda: cell(win, "S-ST30-TEMP", COL_NOW).text() == "68.2 °C", timeout=10_000)
    assert cell(win, "S-ST30-TEMP", COL_AT_RAISE).text() == "70 °C"
    assert cell(win, "S-ST30-TEMP", COL_COMPONENT).text() == "ST30 bath temperature"
    assert "id: S-ST30-TEMP" in cell(win, "S-ST30-TEMP", COL_COMPONENT).toolTip()
    publish("CV02/state", {"state": "fault"})
    qtbot.waitUntil(lambda: listed(win)[:1] == [("CV02", AlarmState.UNACK_ACTIVE)], timeout=10_000)
    assert cell(win, "CV02", COL_COMPONENT).text() == "Transfer conveyor"
    first = win.telemetry.alarms.listed()[0].first_raised_at
    publish("CV02/state", {"state": "running"})  # clears, unacknowledged: below the active medium
    qtbot.waitUntil(lambda: listed(win) == [("S-ST30-TEMP", AlarmState.UNACK_ACTIVE),
                                            ("CV02", AlarmState.UNACK_RTN)], timeout=10_000)
    state = cell(win, "CV02", COL_STATE)
    assert state.text() == "Cleared, unacked"
    table = win.alarm_panel.table
    assert table.columnWidth(COL_STATE) >= table.fontMetrics().horizontalAdvance(state.text())  # not cut
    publish("CV02/state", {"state": "fault"})  # back before anyone acknowledged: the same occurrence
    qtbot.waitUntil(lambda: listed(win)[0] == ("CV02", AlarmState.UNACK_ACTIVE), timeout=10_000)
    qtbot.waitUntil(lambda: cell(win, "CV02", COL_COUNT).text() == "×2", timeout=5_000)
    alarm = win.telemetry.alarms.listed()[0]
    assert alarm.first_raised_at == first < alarm.raised_at
    from viewer.ui.alarm_panel import _clock

    assert cell(win, "CV02", COL_FIRST).text() == _clock(first)
    assert win.alarm_dock.windowTitle() == "Alarms (2 unacknowledged)"


@pytest.mark.gui
def test_a_new_alarm_out_of_view_is_announced_and_shown_and_ctrl_k_acknowledges(alarm_window, qtbot):
    from PySide6.QtCore import Qt

    from viewer.ui.alarm_panel import COL_COMPONENT

    win, publish = alarm_window
    panel = win.alarm_panel
    played = []
    panel.annunciator.play = played.append  # never a real sound in a test
    machines = ["CV01", "ST10", "ST11", "CV02", "ST20", "ST30", "CV03", "ST40", "ST41", "ST60", "ST70", "CV04",
                "ST80", "ST90"]
    for machine in machines[:12]:
        publish(f"{machine}/state", {"state": "fault"})
    qtbot.waitUntil(lambda: panel.table.rowCount() == 12, timeout=15_000)
    assert played == []  # sound is off by default
    bar = panel.table.verticalScrollBar()
    win.resizeDocks([win.alarm_dock], [260], Qt.Orientation.Vertical)
    seen = []

    def settled():  # the docks' new sizes laid out: the same scroll range and view height three polls running
        seen.append((bar.maximum(), panel.table.viewport().height()))
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

    qtbot.waitUntil(settled, timeout=5_000)
    assert bar.maximum() > 0  # a few of the 12 rows in view
    if panel.unseen_count():  # those that arrived together and never fitted in view are said to be below
        assert panel.unseen_button.text().startswith("▼")
    for value in range(bar.maximum() + 1):  # the operator reads down to the oldest alarms at the bottom
        bar.setValue(value)
    qtbot.waitUntil(lambda: panel.unseen_count() == 0, timeout=5_000)
    seen.clear()
    qtbot.waitUntil(settled, timeout=5_000)  # the bar above the list gone: laid out again
    bar.setValue(bar.maximum())
    top = panel.table.item(panel.table.rowAt(0), COL_COMPONENT).text()
    panel.sound_menu.aboutToShow.emit()
    panel.sound_actions["high"].setChecked(True)  # the operator wants to hear high alarms
    assert win.settings.value("alarms/sound_high") in (True, "true")
    publish(f"{machines[12]}/state", {"state": "fault"})  # the newest high alarm sorts first: above the view
    qtbot.waitUntil(lambda: panel.table.rowCount() == 13, timeout=10_000)
    assert panel.table.item(panel.table.rowAt(0), COL_COMPONENT).text() == top  # what was read stays put
    assert panel.unseen_count() == 1 and panel.unseen_button.text().startswith("▲ 1 new alarm out of view")
    assert played == ["high"]
    qtbot.mouseClick(panel.unseen_button, Qt.MouseButton.LeftButton)
    assert panel.table.rowAt(0) == 0 and panel.unseen_count() == 0
    assert panel.table.item(0, COL_COMPONENT).text() == "ST80 Vision inspection"
    # Ctrl+K acknowledges the selected alarm from anywhere in the window (here the 3D view has the focus).
    panel.table.selectRow(0)
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert win.telemetry.alarms.alarms[("ST80", "state", 2)].state is AlarmState.ACK_ACTIVE
    # Space acknowledges where the list has the focus.
    row = panel.row_of("CV01")
    panel.table.selectRow(row)
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_Space)
    assert win.telemetry.alarms.alarms[("CV01", "state", 2)].state is AlarmState.ACK_ACTIVE
    qtbot.waitUntil(lambda: win.alarm_dock.windowTitle() == "Alarms (11 unacknowledged)", timeout=5_000)
    publish("ST30/temperature", "70.0")  # a medium alarm: its sound is off
    qtbot.waitUntil(lambda: panel.table.rowCount() == 14, timeout=10_000)
    assert played == ["high"]


@pytest.mark.gui
def test_reloading_keeps_the_alarm_list_and_history_and_counters_start_clean(alarm_window, qtbot):
    win, publish = alarm_window
    alarms = win.telemetry.alarms
    publish("CV02/state", {"state": "fault"})
    publish("ST20/state", {"state": "fault"})
    publish("ST30/temperature", "70.0")  # medium
    qtbot.waitUntil(lambda: len(listed(win)) == 3, timeout=10_000)
    publish("CV02/state", {"state": "running"})  # cleared, never acknowledged: must survive the reload
    qtbot.waitUntil(lambda: ("CV02", AlarmState.UNACK_RTN) in listed(win), timeout=10_000)
    win.alarm_panel.table.selectRow(win.alarm_panel.row_of("ST20"))
    win.alarm_panel.acknowledge_selected()  # as the Acknowledge button does
    for i in range(3):  # traffic: the old store counts more messages than the new one will have at first
        publish("CV01/state", {"state": "running", "count": i})
    qtbot.waitUntil(lambda: win.telemetry.store.message_count() >= 7, timeout=10_000)
    history = [(e.kind, e.component) for e in alarms.history]
    assert win.alarm_dock.windowTitle() == "Alarms (2 unacknowledged)"

    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.reload()
    assert win.telemetry.alarms is not alarms  # a new pipeline ...
    # ... with the same alarms, as they were: acknowledged stays acknowledged, the cleared one still waits.
    assert listed(win) == [("S-ST30-TEMP", AlarmState.UNACK_ACTIVE), ("ST20", AlarmState.ACK_ACTIVE),
                           ("CV02", AlarmState.UNACK_RTN)]
    assert [(e.kind, e.component) for e in win.telemetry.alarms.history] == history
    assert win.alarm_panel.table.rowCount() == 3 and win.alarm_panel.history.rowCount() == len(history)
    assert win.alarm_dock.windowTitle() == "Alarms (2 unacknowledged)"  # the count of the list shown
    frames = win.telemetry.frames
    qtbot.waitUntil(lambda: win.telemetry.frames >= frames + 12, timeout=10_000)  # a status update at least
    assert win.telemetry.telemetry_status()["rate"] >= 0 and not win.rate_label.text().startswith("-")
    # Live data re-evaluates what was active: the bath cooled down while the viewer reloaded, ST20 runs again.
    publish("ST30/temperature", "60.0")
    publish("ST20/state", {"state": "running"})
    # Both cleared and waiting: the high one (CV02) before the medium one.
    qtbot.waitUntil(lambda: listed(win) == [("CV02", AlarmState.UNACK_RTN), ("S-ST30-TEMP", AlarmState.UNACK_RTN)],
                    timeout=10_000)
    assert win.alarm_dock.windowTitle() == "Alarms (2 unacknowledged)"
    assert [e.kind for e in win.telemetry.alarms.history[len(history):]] == ["cleared", "cleared"]
    journals = list(win.alarm_journal_dir.glob("*.jsonl"))
    assert len(journals) == 1 and journals[0].name.startswith("Demo-plant-gearbox-housing-line-")


@pytest.mark.gui
def test_ctrl_k_acknowledges_in_the_live_list_while_a_read_only_replay_list_is_shown(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QHBoxLayout, QWidget

    from viewer.ui.alarm_panel import AlarmPanel
    from viewer.ui.app import create_application

    create_application()
    window = QWidget()
    qtbot.addWidget(window)
    live, replayed = AlarmPanel(window), AlarmPanel(window)
    replayed.set_read_only(True)
    box = QHBoxLayout(window)
    box.addWidget(live)
    box.addWidget(replayed)
    managers = []
    for panel in (live, replayed):
        manager = AlarmManager()
        manager.apply(rule("CV02", True, 1.0))
        panel.set_manager(manager)
        panel.table.selectRow(0)
        managers.append(manager)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert managers[0].unacknowledged_count() == 0  # the live alarm, acknowledged
    assert managers[1].unacknowledged_count() == 1  # the replayed one untouched
    replayed.acknowledge_selected()
    replayed.shelve_selected()
    assert managers[1].alarms[("CV02", "state", 2)].state is AlarmState.UNACK_ACTIVE
