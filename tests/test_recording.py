"""Recording and replay: a real session through mosquitto, killed writers, cut files, seeks, imports."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from mosquitto_broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from viewer.model.layout_io import load_layout
from viewer.telemetry.pipeline import FRAME_S, TelemetryPipeline
from viewer.telemetry.recording import (
    EVENTS_TOPIC,
    Recorder,
    RecordingError,
    import_log,
    quick_info,
    read_messages,
    recover,
    scan,
)
from viewer.telemetry.replay import Replayer
from viewer.telemetry.session import SessionRecording

TOLERANCE_S = 0.15  # live frames and replay ticks both come within a frame or two of a message


def transitions(history: list[tuple[float, dict[str, str]]]) -> dict[str, list[tuple[float, str]]]:
    """Per component: (time, state) each time its displayed state changed."""
    out: dict[str, list[tuple[float, str]]] = {}
    last: dict[str, str] = {}
    for t, states in history:
        for component, state in states.items():
            if last.get(component) != state:
                out.setdefault(component, []).append((t, state))
                last[component] = state
    return out


def lasting(changes: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The changes whose state stayed for at least TOLERANCE_S: a state shorter than a frame or two can fall
    between one side's samples (at the session's start a robot's joints and its state arrive a few ms apart;
    under load a live frame may come between them while a replay tick takes both)."""
    return [c for k, c in enumerate(changes) if k + 1 == len(changes) or changes[k + 1][0] - c[0] >= TOLERANCE_S]


def test_a_recorded_live_session_replays_with_the_same_colours_and_alarms_at_the_same_times(tmp_path,
                                                                                            demo_layout_path):
    from viewer.telemetry.mqtt_client import MqttSettings, TelemetryClient

    layout = load_layout(demo_layout_path)
    broker = Mosquitto(tmp_path).start()
    plant = subprocess.Popen([sys.executable, "-m", "viewer", "simulate-plant", "--broker",
                              f"127.0.0.1:{broker.port}", "--duration", "60"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = paho.Client(CallbackAPIVersion.VERSION2)
    try:
        pipeline = TelemetryPipeline(layout)
        client = TelemetryClient(MqttSettings(host="127.0.0.1", port=broker.port), pipeline.router)
        out = tmp_path / "session.mcap"
        session = SessionRecording(pipeline, out, layout_path=demo_layout_path, broker=f"127.0.0.1:{broker.port}",
                                   gaps=lambda: client.status().gaps).start()
        client.start()
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        live: list[tuple[float, dict[str, str]]] = []
        raised: list[tuple[float, str, str]] = []
        began = time.time()
        acked = False
        while time.time() - began < 7.0:
            now = time.time()
            step = pipeline.step(now)
            session.poll(now)
            live.append((now, pipeline.component_states()))
            if step.alarms_moved:
                raised += [(e.time, e.component, e.message) for e in pipeline.alarms.history
                           if e.kind == "raised" and (e.time, e.component, e.message) not in raised]
            elapsed = now - began
            if 2.0 < elapsed < 2.1:  # a machine fault the plant does not simulate on its own
                publisher.publish("demo/line1/ST20/state", json.dumps({"state": "fault", "count": 1}), qos=1)
            if elapsed > 3.5 and not acked:
                for alarm in pipeline.alarms.listed():
                    pipeline.alarms.acknowledge(alarm.id, now)  # the operator acknowledges: recorded
                acked = True
            time.sleep(FRAME_S)
        session.stop()
        client.stop()
    finally:
        publisher.loop_stop()
        plant.terminate()
        plant.wait(5)
        broker.stop()

    info = scan(out)
    assert info.complete and info.messages > 500
    assert info.metadata["layout_name"] == layout.name and info.layout_doc is not None
    replayer = Replayer(out, layout)
    replayer.index()
    replayed: list[tuple[float, dict[str, str]]] = []
    t = replayer.start
    while t < replayer.end:
        t += FRAME_S
        replayer.advance_to(t)
        replayed.append((replayer.position, replayer.pipeline.component_states()))

    live_changes, replay_changes = transitions(live), transitions(replayed)
    assert "fault" in [s for _, s in live_changes["ST20"]]
    assert set(live_changes) == set(replay_changes)
    for component in live_changes:
        changes, ours = lasting(live_changes[component]), lasting(replay_changes[component])
        assert [s for _, s in ours] == [s for _, s in changes], component
        for (t_live, _), (t_replay, _) in zip(changes, ours, strict=True):
            assert abs(t_live - t_replay) < TOLERANCE_S, (component, t_live - t_replay)
    replay_raised = [(e.time, e.component, e.message) for e in replayer.pipeline.alarms.history if e.kind == "raised"]
    assert [(c, m) for _, c, m in replay_raised] == [(c, m) for _, c, m in raised]
    for (t_live, _, _), (t_replay, _, _) in zip(raised, replay_raised, strict=True):
        assert abs(t_live - t_replay) < TOLERANCE_S
    # The operator's acknowledgement is part of the session: the replayed ST20 alarm is acknowledged too.
    st20 = [a for a in replayer.pipeline.alarms.alarms.values() if a.component == "ST20"]
    assert st20 and all(a.acknowledged_at is not None for a in st20)
    assert any(m.kind == "alarm" and m.text.startswith("ST20") for m in replayer.markers)


def synthetic_recording(path: Path, layout_doc: dict | None = None, seconds: float = 60.0, rate: float = 50.0,
                        chunk_bytes: int = 4096, layout_path: Path | None = None) -> int:
    """A recording with known content: ST20 toggles between running and fault, vibration ramps."""
    recorder = Recorder(path, layout_doc=layout_doc, layout_path=layout_path, broker="test", chunk_bytes=chunk_bytes,
                        encodings=lambda topic: "json" if topic.endswith("state") else "text",
                        queue_limit=10_000_000).start()
    t0 = 1_750_000_000.0
    n = int(seconds * rate)
    for i in range(n):
        t = t0 + i / rate
        if i % 2:
            state = "fault" if (i // 200) % 3 == 1 else "running"
            recorder.message("demo/line1/ST20/state", json.dumps({"state": state, "count": i}).encode(), t)
        else:
            recorder.message("demo/line1/ST10/vibration", f"{2.0 + (i % 400) / 80:.3f}".encode(), t)
        if i == n // 2:
            recorder.event("mark", t, text="halfway")
    recorder.stop()
    return n


def test_seeking_anywhere_gives_the_state_playback_reaches_there(tmp_path, demo_layout_path):
    layout = load_layout(demo_layout_path)
    path = tmp_path / "s.mcap"
    synthetic_recording(path, layout.to_dict())
    replayer = Replayer(path, layout, keyframe_every=1.5)
    replayer.index()
    assert len(replayer._keyframes) > 10
    assert any(m.kind == "alarm" for m in replayer.markers) and any(m.kind == "mark" for m in replayer.markers)
    rng = random.Random(3)
    targets = sorted(replayer.start + rng.uniform(0, replayer.end - replayer.start) for _ in range(12))
    replayer.seek(replayer.start)
    played = {}
    for t in targets:  # one pass from the start, stopping at each target
        replayer.advance_to(t)
        played[t] = replayer.pipeline.snapshot()
    for t in reversed(targets):  # then seeks, backwards and in jumps
        replayer.seek(t)
        assert replayer.pipeline.snapshot() == played[t], t
    states = {json.dumps(s["states"], sort_keys=True) for s in played.values()}
    assert len(states) > 1  # the targets saw different plant states, so the comparison means something


def test_a_recorder_killed_mid_write_leaves_a_readable_file_that_recover_completes(tmp_path):
    out = tmp_path / "killed.mcap"
    script = textwrap.dedent(f"""
        import time, sys
        from viewer.telemetry.recording import Recorder
        rec = Recorder({str(out)!r}, broker="test").start()
        i = 0
        began = time.time()
        while time.time() - began < 30:
            rec.message("plant/seq", str(i).encode(), time.time())
            i += 1
            if i % 100 == 0:
                print(i, flush=True)
                time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 20
    written = 0
    while time.time() < deadline:
        line = proc.stdout.readline()
        written = int(line) if line.strip() else written
        if written >= 6_000:  # about three seconds of writing: several chunks closed
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    info = scan(out)
    assert not info.complete and "cut off" in info.problem
    assert info.messages > 1_000
    seqs = [int(m.payload) for m in _all_messages(out)]
    assert seqs == list(range(len(seqs)))  # everything before the cut, in order, nothing invented
    fixed = tmp_path / "fixed.mcap"
    recovered = recover(out, fixed)
    assert recovered.messages == len(seqs)
    again = quick_info(fixed)
    assert again.complete and again.messages == len(seqs)
    assert [int(m.payload) for m in read_messages(fixed)] == seqs


def _all_messages(path: Path) -> list:
    got = []
    scan(path, lambda topic, payload, t: got.append(type("M", (), {"payload": payload})))
    return got


def test_a_file_cut_at_any_offset_gives_back_every_message_of_its_complete_chunks(tmp_path):
    from mcap.reader import make_reader

    whole = tmp_path / "whole.mcap"
    n = synthetic_recording(whole, seconds=40, rate=50, chunk_bytes=2048)
    with open(whole, "rb") as f:
        summary = make_reader(f).get_summary()
    chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
    assert len(chunks) > 10
    original = [(m.topic, m.payload, m.time) for m in read_messages(whole) if m.topic != EVENTS_TOPIC]
    assert len(original) == n
    data = whole.read_bytes()
    rng = random.Random(7)
    cuts = [rng.randrange(chunks[0].chunk_start_offset, len(data)) for _ in range(25)]
    for cut in cuts:
        part = tmp_path / f"cut{cut}.mcap"
        part.write_bytes(data[:cut])
        got = []
        scan(part, lambda topic, payload, t, got=got: got.append((topic, payload, t)))
        got = [g for g in got if g[0] != EVENTS_TOPIC]
        assert got == original[:len(got)]  # a prefix, in order, byte for byte
        complete = [c for c in chunks if c.chunk_start_offset + c.chunk_length <= cut]
        expected = sum(1 for _, _, t in original if complete and t <= complete[-1].message_end_time / 1e9)
        assert len(got) == expected, cut
        part.unlink()


def test_recording_never_blocks_and_counts_what_it_drops(tmp_path):
    out = tmp_path / "tiny-queue.mcap"
    recorder = Recorder(out, broker="test", queue_limit=10).start()
    began = time.perf_counter()
    for i in range(50_000):
        recorder.message("plant/x", b"1", 1_750_000_000 + i * 1e-4)
    assert time.perf_counter() - began < 2.0  # the producer never waited for the disk
    stats = recorder.stop()
    assert stats.dropped > 0 and stats.messages + stats.dropped == 50_000
    drops = [json.loads(m.payload) for m in read_messages(out) if m.topic == EVENTS_TOPIC]
    assert drops and sum(d["count"] for d in drops if d["kind"] == "dropped") == stats.dropped


def test_a_csv_or_json_lines_log_becomes_a_recording(tmp_path):
    csv_log = tmp_path / "log.csv"
    csv_log.write_text('timestamp,topic,payload\n'
                       '2025-06-01T08:00:01Z,demo/line1/ST20/state,"{""state"": ""fault""}"\n'
                       '1748764800.5,demo/line1/ST10/vibration,3.2\n')
    out = tmp_path / "from-csv.mcap"
    assert import_log(csv_log, out) == 2
    messages = list(read_messages(out))
    assert [m.topic for m in messages] == ["demo/line1/ST10/vibration", "demo/line1/ST20/state"]  # time order
    assert messages[1].payload == b'{"state": "fault"}'
    assert quick_info(out).channels["demo/line1/ST20/state"] == "json"
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text('{"timestamp": 1748764800, "topic": "a/b", "payload": {"v": 1}}\n'
                     '{"timestamp": 1748764801, "topic": "a/b"}\n')
    with pytest.raises(RecordingError, match="line 2"):
        import_log(jsonl, tmp_path / "bad.mcap")


def test_not_a_recording_is_refused_with_the_reason(tmp_path):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"hello, this is not MCAP at all")
    with pytest.raises(RecordingError, match="not an MCAP recording"):
        quick_info(junk)
    with pytest.raises(RecordingError):
        scan(tmp_path / "missing.mcap")


def test_record_replay_recover_and_import_commands(tmp_path, demo_layout_path, capsys):
    from viewer.cli import main

    rec = tmp_path / "cli.mcap"
    synthetic_recording(rec, load_layout(demo_layout_path).to_dict(), seconds=20)
    assert main(["replay", str(rec), "--headless"]) == 0
    out = capsys.readouterr().out
    assert "messages over" in out and "alarms raised" in out
    broken = tmp_path / "broken.mcap"
    broken.write_bytes(rec.read_bytes()[: rec.stat().st_size * 2 // 3])
    # a cut-off file replays what it holds, but never as whole: a warning and the "damaged" exit code
    assert main(["replay", str(broken), "--headless"]) == 4
    assert "cut off" in capsys.readouterr().err
    assert main(["recover", str(broken), "--out", str(tmp_path / "fixed.mcap")]) == 4
    assert main(["replay", str(tmp_path / "fixed.mcap"), "--headless"]) == 0
    log = tmp_path / "log.csv"
    log.write_text("timestamp,topic,payload\n1748764800,demo/line1/ST20/state,\"{\"\"state\"\": \"\"running\"\"}\"\n")
    assert main(["import", str(log), "--out", str(tmp_path / "imp.mcap"), "--layout", str(demo_layout_path)]) == 0


def test_headless_record_command_writes_a_session(tmp_path, demo_layout_path):
    broker = Mosquitto(tmp_path).start()
    plant = subprocess.Popen([sys.executable, "-m", "viewer", "simulate-plant", "--broker",
                              f"127.0.0.1:{broker.port}", "--duration", "30"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "cli-record.mcap"
    try:
        done = subprocess.run([sys.executable, "-m", "viewer", "record", "--layout", str(demo_layout_path),
                               "--broker", f"127.0.0.1:{broker.port}", "--out", str(out), "--duration", "3"],
                              capture_output=True, text=True, timeout=60)
    finally:
        plant.terminate()
        plant.wait(5)
        broker.stop()
    assert done.returncode == 0, done.stderr
    info = quick_info(out)
    assert info.complete and info.messages > 100
    assert info.metadata["broker"] == f"mqtt://127.0.0.1:{broker.port}"  # the source, as the window names it
    assert "password" not in json.dumps(info.metadata).lower()


@pytest.fixture(autouse=True)
def _no_stray_threads():
    before = {t.name for t in threading.enumerate()}
    yield
    stray = [t for t in threading.enumerate() if t.name == "recorder" and t.name not in before and t.is_alive()]
    assert not stray


def test_a_recording_carries_what_the_anomaly_scorer_had_learned_so_replay_scores_alike(tmp_path):
    import numpy as np

    from viewer.model.layout import Layout

    layout = Layout.from_dict({"name": "pump", "components": [
        {"id": "PUMP", "kind": "station", "position": [0, 0, 0], "anomaly": {"learn_samples": 60}}],
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "bindings": [{"topic": "p/current", "component": "PUMP", "signal": "current", "encoding": "number"},
                     {"topic": "p/flow", "component": "PUMP", "signal": "flow", "encoding": "number"}]})
    pipeline = TelemetryPipeline(layout)
    rng = np.random.default_rng(2)
    t = 1_750_000_000.0

    def frame(current: float, flow: float) -> None:
        nonlocal t
        t += FRAME_S
        pipeline.router.handle("p/current", f"{current:.4f}".encode(), t)
        pipeline.router.handle("p/flow", f"{flow:.4f}".encode(), t)
        pipeline.step(t + 0.001)

    for _ in range(200):  # learned before the recording starts
        flow = 50 + rng.normal(0, 2)
        frame(10 + 0.2 * (flow - 50) + rng.normal(0, 0.1), flow)
    assert not pipeline.anomaly.components["PUMP"].scorer.learning
    out = tmp_path / "pump.mcap"
    session = SessionRecording(pipeline, out).start()
    for i in range(120):  # then the current drifts away from what flow explains
        frame(10 + 0.05 * i + rng.normal(0, 0.1), 50 + rng.normal(0, 2))
        session.poll(t)
    session.stop()
    live_alarms = [(e.component, e.message) for e in pipeline.alarms.history if e.kind == "raised"]
    assert live_alarms and live_alarms[0][1].startswith("Anomaly")

    replayer = Replayer(out, layout)
    replayer.index()
    replayer.advance_to(replayer.start + 2 * FRAME_S)
    assert not replayer.pipeline.anomaly.components["PUMP"].scorer.learning  # no second learning period
    replayer.advance_to(replayer.end)
    replayed = [(e.component, e.message.split(":")[0]) for e in replayer.pipeline.alarms.history if e.kind == "raised"]
    assert replayed[:1] == [(c, m.split(":")[0]) for c, m in live_alarms[:1]]


def test_the_first_message_is_not_lost_by_a_seek_from_the_first_state(tmp_path, demo_layout_path):
    """The first message is stamped at the recording's start exactly: a seek that starts from the first state
    (no keyframe yet) must route it, as playing from the start does (it was read from start + 1 µs)."""
    layout = load_layout(demo_layout_path)
    path = tmp_path / "first.mcap"
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="test",
                        encodings=lambda topic: "json").start()
    t0 = 1_750_000_000.0
    recorder.message("demo/line1/ST20/state", json.dumps({"state": "fault"}).encode(), t0)
    recorder.message("demo/line1/ST30/state", json.dumps({"state": "running"}).encode(), t0 + 0.5)
    recorder.stop()
    replayer = Replayer(path, layout)
    replayer.open()
    replayer.seek(replayer.start + 0.2)
    assert replayer.pipeline.store.latest(("ST20", "state")).value == "fault"
