"""Replay and recording in the real window: timeline, next alarm, colours; the Record button."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mosquitto_broker import Mosquitto
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_a_recording_replays_in_the_window_with_timeline_alarm_jumps_and_colours(qtbot, tmp_path,
                                                                                 demo_layout_path):
    from test_recording import synthetic_recording

    from viewer.model.layout_io import load_layout
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    recording = tmp_path / "session.mcap"
    synthetic_recording(recording, load_layout(demo_layout_path).to_dict(), seconds=30,
                        layout_path=demo_layout_path.resolve())
    create_application()
    win = MainWindow()
    win.resize(1280, 800)
    qtbot.addWidget(win)
    win.show()
    win.open_recording(recording)  # no plant open: the recorded layout is opened first
    qtbot.waitUntil(lambda: win.replay is not None, timeout=30_000)  # shown at once, indexed in the background
    assert win.timeline_dock.isVisible()
    qtbot.waitUntil(lambda: "Replaying session.mcap" in win.status_label.text(), timeout=30_000)
    replayer = win.replay.replayer
    assert win.replay.position == pytest.approx(replayer.start)
    # Jump to the first alarm: the machine is red (fault) there, as the replayed pipeline says.
    qtbot.mouseClick(win.timeline.next_alarm_button, Qt.MouseButton.LeftButton)
    first = next(m for m in replayer.markers if m.kind == "alarm")
    assert win.replay.position == pytest.approx(replayer.tick_at_or_after(first.time), abs=1e-6)
    qtbot.waitUntil(lambda: win.replayed.displayed.get("ST20") == "fault", timeout=5_000)
    assert win.replayed.alarms.listed() and win.replay_alarm_panel.table.rowCount() >= 1
    # Play at 100x: the position moves and the clock in the timeline follows it.
    win.timeline.speed.setCurrentIndex(win.timeline.speed.count() - 1)
    before = win.replay.position
    qtbot.mouseClick(win.timeline.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.replay.position > before + 3.0, timeout=5_000)
    qtbot.mouseClick(win.timeline.play_button, Qt.MouseButton.LeftButton)
    assert not win.replay.playing
    # Dragging the scrubber to the start shows the state there: nothing has happened yet.
    win.timeline.bar.seek_requested.emit(replayer.start)
    assert win.replayed.displayed.get("ST20") in (None, "unknown")
    win.close()


def test_the_record_button_records_the_live_session(qtbot, tmp_path, demo_layout_path, monkeypatch):
    from viewer.telemetry.recording import quick_info
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    monkeypatch.setenv("TWIN_VIEWER_RECORDINGS", str(tmp_path / "recordings"))
    broker = Mosquitto(tmp_path).start()
    plant = subprocess.Popen([sys.executable, "-m", "viewer", "simulate-plant", "--broker",
                              f"127.0.0.1:{broker.port}", "--duration", "60"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        create_application()
        win = MainWindow(broker=f"127.0.0.1:{broker.port}")
        qtbot.addWidget(win)
        win.show()
        with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
            win.open_layout(demo_layout_path)
        qtbot.waitUntil(lambda: win.telemetry.store.message_count() > 50, timeout=15_000)
        assert win.record_action.isEnabled()
        win.record_action.trigger()
        assert "Recording to" in win.status_label.text()
        assert win.recording_label.isVisible() and win.recording_label.text().startswith("● REC 00:00:0")
        assert win.recording_label.text().endswith(" MB")
        qtbot.wait(1500)
        win.record_action.trigger()
        assert "Saved recording" in win.status_label.text()
        assert not win.recording_label.isVisible()
        files = list((tmp_path / "recordings").glob("*.mcap"))
        assert len(files) == 1
        info = quick_info(files[0])
        assert info.complete and info.messages > 100
        assert json.loads(json.dumps(info.layout_doc))["name"] == win.plant_layout.name
        win.close()
    finally:
        plant.terminate()
        plant.wait(5)
        broker.stop()


def test_a_damaged_recording_replays_what_it_holds_and_says_what_was_skipped(qtbot, tmp_path, demo_layout_path):
    import os

    from mcap.reader import make_reader
    from test_recording import synthetic_recording

    from viewer.model.layout_io import load_layout
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    whole = tmp_path / "whole.mcap"
    synthetic_recording(whole, load_layout(demo_layout_path).to_dict(), seconds=30,
                        layout_path=demo_layout_path.resolve())
    with open(whole, "rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    target = chunks[len(chunks) // 2]
    data = bytearray(whole.read_bytes())
    data[target.chunk_start_offset + target.chunk_length - 30] ^= 0x40
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.open_recording(damaged)
    qtbot.waitUntil(lambda: win.replay is not None and win.last_error is not None, timeout=30_000)  # indexed
    summary, details = win.last_error
    assert "damaged" in summary and "messages lost" in details[0]
    assert "damaged" in win.status_label.text()
    spans = [m for m in win.replay.replayer.markers if m.kind == "damaged"]
    assert len(spans) == 1 and spans[0].time == pytest.approx(target.message_start_time / 1e9)
    assert spans[0] in win.timeline.bar.markers  # drawn on the scrubber, red
    # One click recovers a whole copy beside it and replays that (no terminal needed).
    recover_button = next(b for b in win.recovery_box.buttons() if b.text() == "Recover a whole copy")
    damaged_replay = win.replay
    recover_button.click()
    qtbot.waitUntil(lambda: win.replay is not None and win.replay is not damaged_replay, timeout=30_000)
    fixed = tmp_path / "damaged-recovered.mcap"
    assert fixed.is_file() and win.replay.replayer.path == fixed
    assert not win.replay.replayer.damage  # the copy is whole: what was lost is named in it, not missing
    assert damaged.read_bytes() == bytes(data)  # the damaged file stays as it was
    shots = os.environ.get("TWIN_VIEWER_SCREENSHOTS")
    if shots:  # for review: python -m pytest ... with TWIN_VIEWER_SCREENSHOTS=DIR
        for width, height in ((1366, 768), (1920, 1080)):
            win.resize(width, height)
            qtbot.wait(300)
            win.grab().save(str(Path(shots) / f"damaged_replay_{width}x{height}.png"))
    win.close()
