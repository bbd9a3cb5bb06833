"""Recording and replay: file size, recorder throughput, headless replay speed, seek latency.

A recording of the demo plant's telemetry at 2,000 msg/s (states, robot joints, motor currents and sensors
from the virtual plant, every component updated ~60 times a second) is generated for one hour (``--quick``:
five minutes), written through the product's Recorder with keyframes (replay.KeyframeWriter, as a live
recording writes them); then:

- ``replay_open_s``: ``Replayer.open()`` to the first frame shown, play possible (the keyframes' times and the
  timeline come from the summary; no pass over the file);
- ``seek_p99_ms``: 200 random seeks anywhere, each restoring the nearest recorded keyframe and playing to the
  target; ``keyframe_memory_bytes``: what the replayer holds of keyframes after them;
- ``replay_speed_x``: playing the whole file headless (the same decoding, state rules, alarms and anomaly
  scoring as live, at the live frame cadence of recording time);
- for a recording without keyframes: the background index pass (``index_steps``) and the bytes of the
  in-memory keyframes it keeps (the same safe codec, compressed), per hour;
- ``keyframe_encode_ms``: the cost of one keyframe on the recorder's thread, for the demo plant and for the
  ~1,000-component layout (layouts/large_plant) with every signal fed.

The generated recordings go to a temporary folder (never the repository) and are deleted.

    python benchmarks/replay_seek.py [--quick] [--keep FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import emit

from viewer.model.layout_io import load_layout
from viewer.telemetry.recording import EVENTS_TOPIC, KEYFRAME_TOPIC, Recorder, quick_info, read_messages
from viewer.telemetry.replay import KeyframeWriter, Replayer
from viewer.telemetry.virtual_plant import VirtualPlant, default_layout

RATE = 2000.0


def generate(path: Path, seconds: float, keyframes: KeyframeWriter | None = None) -> tuple[int, float]:
    """Write the recording; (messages, seconds the recorder took from first message to closed file)."""
    layout = load_layout(default_layout())
    plant = VirtualPlant(layout, seed=3, fault_every_s=120.0)
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="benchmark",
                        encodings=lambda topic: "json", keyframes=keyframes).start()
    t0 = 1_750_000_000.0
    count = 0
    began = time.perf_counter()
    t = 0.0
    per_round = len(plant.state_messages(0.0, t0)) + len(plant.joint_messages(0.0, t0)) \
        + len(plant.current_messages(0.0)) + len(plant.sensor_messages(0.0))
    dt = per_round / RATE
    while t < seconds:
        plant.step_states(t)
        now = t0 + t
        batch = plant.state_messages(t, now) + plant.joint_messages(t, now) + plant.current_messages(t) \
            + plant.sensor_messages(t)
        step = dt / max(len(batch), 1)
        for i, (topic, payload) in enumerate(batch):
            while recorder._queue.qsize() > 150_000:  # back-pressure for the benchmark: no drops, real rate
                time.sleep(0.001)
            recorder.message(topic, payload, now + i * step)
            count += 1
        t += dt
    recorder.stop()
    assert recorder.stats.dropped == 0
    return count, time.perf_counter() - began


def read_cost(path: Path, count: int) -> tuple[float, float]:
    """Median seconds to read every message (chunk CRCs checked), and the seconds the CRC32s alone take."""
    import zlib

    from viewer.telemetry import mcap_file

    reads = []
    for _ in range(3):
        t0 = time.perf_counter()
        n = sum(1 for _ in read_messages(path))
        reads.append(time.perf_counter() - t0)
    assert n == count + sum(1 for m in read_messages(path) if m.topic in (EVENTS_TOPIC, KEYFRAME_TOPIC))
    buf = mcap_file.open_mapped(path)
    summary = mcap_file.read_summary(buf)
    bodies = []
    for index in summary.chunk_indexes:
        pos = index.chunk_start_offset
        head = mcap_file.parse_chunk_head(buf, pos + 9, pos + index.chunk_length)
        bodies.append(mcap_file.chunk_records(buf, head))
    crcs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for body in bodies:
            zlib.crc32(body)
        crcs.append(time.perf_counter() - t0)
    return statistics.median(reads), statistics.median(crcs)


def large_layout_encode_ms() -> tuple[float, int, int]:
    """(median ms, bytes) of one keyframe of the ~1,000-component layout (layouts/large_plant, given a state and
    a temperature binding per component) after every component was fed long enough for its scorer to learn;
    and how many components it has."""
    import json

    from viewer.model.layout_io import parse_layout
    from viewer.telemetry import state_codec
    from viewer.telemetry.pipeline import FRAME_S, TelemetryPipeline

    root = Path(__file__).resolve().parents[1]
    doc = json.loads((root / "layouts" / "large_plant" / "large_plant.json").read_text())
    doc["bindings"] = [
        {"topic": "large/+/state", "component": "{1}", "signal": "state", "encoding": "text",
         "rules": [{"equals": "fault", "state": "fault", "message": "Machine fault"}]},
        {"topic": "large/+/temp", "component": "{1}", "signal": "temp", "encoding": "number", "unit": "°C",
         "rules": [{"above": 80.0, "hysteresis": 1.0, "state": "warning", "message": "Hot"}]},
    ]
    layout = parse_layout(doc)
    pipeline = TelemetryPipeline(layout)
    ids = [c.id for c in layout.components]
    rng = random.Random(2)
    t = 1_750_000_000.0
    for k in range(320):  # past the scorers' 300 learning samples: their state is the biggest part
        for cid in ids:
            pipeline.router.handle(f"large/{cid}/temp", f"{40 + rng.gauss(0, 1):.2f}".encode(), t)
            if k % 50 == 0:
                pipeline.router.handle(f"large/{cid}/state", b"fault" if rng.random() < 0.02 else b"running", t)
        pipeline.step(t)
        t += 0.2
    times, size = [], 0
    for _ in range(5):
        began = time.perf_counter()
        size = len(state_codec.encode_pipeline(pipeline))
        times.append((time.perf_counter() - began) * 1000)
    assert FRAME_S > 0 and pipeline.anomaly.components and size > 10_000
    return statistics.median(times), size, len(layout.components)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="five minutes of recording instead of an hour")
    parser.add_argument("--keep", type=Path, help="keep the generated recording (with keyframes) here")
    args = parser.parse_args()
    seconds = 300.0 if args.quick else 3600.0
    folder = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    path = args.keep or folder / "bench.mcap"
    layout = load_layout(default_layout())
    writer = KeyframeWriter(layout)
    count, write_s = generate(path, seconds, writer)
    size_mb = path.stat().st_size / 1e6
    encode_ms = statistics.median(writer.encode_s) * 1000 if writer.encode_s else 0.0
    print(f"recording: {count:,} messages over {seconds:,.0f} s, {size_mb:,.1f} MB, written at "
          f"{count / write_s:,.0f} msg/s (generation and the recorder's keyframe replay included); "
          f"{len(writer.encode_s)} keyframes, {encode_ms:.1f} ms each", file=sys.stderr)

    # opening: to the first frame, play possible
    t0 = time.perf_counter()
    replayer = Replayer(path, layout)
    replayer.open()
    replayer.advance_to(replayer.start + 1.0)  # play is possible: the first second plays
    open_s = time.perf_counter() - t0
    assert not replayer.needs_index, replayer.problems
    span = replayer.end - replayer.start
    every = span / max(len(replayer._file_keyframes), 1)
    keyframe_mb = writer.written_bytes / 1e6
    print(f"keyframes in the file: {keyframe_mb:.1f} MB ({100 * keyframe_mb / size_mb:.0f} % of it), one every "
          f"{every:.2f} s on average", file=sys.stderr)
    print(f"open: {open_s * 1000:.0f} ms ({len(replayer._file_keyframes)} recorded keyframes, "
          f"{len(replayer.markers)} markers from the recorded timeline)", file=sys.stderr)

    rng = random.Random(1)
    latencies = []
    for _ in range(200):
        target = replayer.start + rng.uniform(0, span)
        t1 = time.perf_counter()
        replayer.seek(target)
        latencies.append((time.perf_counter() - t1) * 1000)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
    held = sum(len(v) for v in replayer._keyframe_cache.values()) + sum(len(k.state) for k in replayer._keyframes)
    print(f"seek: median {p50:.1f} ms, p99 {p99:.1f} ms over 200 random seeks; keyframes held {held:,} bytes",
          file=sys.stderr)

    t0 = time.perf_counter()
    replayer.seek(replayer.start)
    replayer.advance_to(replayer.end)
    play_s = time.perf_counter() - t0
    speed = span / play_s
    print(f"headless replay: {play_s:.1f} s, {speed:,.0f}x real time, {count / play_s:,.0f} msg/s", file=sys.stderr)

    # a recording without keyframes: the background pass
    plain = Replayer(path, layout)
    t0 = time.perf_counter()
    plain.open()
    plain._file_keyframes, plain._needs_index, plain._indexed_until = [], True, plain.start  # as an older file
    plain_open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in plain.index_steps():
        pass
    index_s = time.perf_counter() - t0
    memory_bytes = sum(len(k.state) for k in plain._keyframes)
    per_hour_mb = memory_bytes / 1e6 * 3600 / span
    print(f"without keyframes: open {plain_open_s * 1000:.0f} ms, background index pass {index_s:.1f} s; "
          f"{len(plain._keyframes):,} in-memory keyframes every {plain.keyframe_every:g} s, "
          f"{memory_bytes / 1e6:.1f} MB ({per_hour_mb:.1f} MB/h)", file=sys.stderr)
    large_ms, large_bytes, large_n = large_layout_encode_ms()
    print(f"keyframe of the {large_n:,}-component layout: {large_ms:.1f} ms, {large_bytes:,} bytes",
          file=sys.stderr)

    info = quick_info(path)
    assert info.complete and info.messages == count + len(writer.encode_s)
    read_s, crc_s = read_cost(path, count)
    print(f"reading: {count / read_s:,.0f} msg/s through read_messages (CRC-checked); the CRCs take "
          f"{crc_s * 1000:.0f} ms of {read_s * 1000:.0f} ms ({100 * crc_s / read_s:.1f} %)", file=sys.stderr)
    note = f"{count:,} messages over {seconds / 60:g} min at {RATE:,.0f} msg/s" + ("; --quick" if args.quick else "")
    emit([
        {"figure": "replay_open_s", "value": round(open_s, 3), "unit": "s", "goal": 1, "higher_is_better": False,
         "note": f"Replayer.open() with recorded keyframes to the first frame and one second played; {note}"},
        {"figure": "seek_p99_ms", "value": round(p99, 1), "unit": "ms", "goal": 100, "higher_is_better": False,
         "note": f"median {p50:.1f} ms; recorded keyframes every {every:.2f} s on average ({writer.every_s:g} s at "
                 f"the most often), {writer.written_bytes / 1e6:.1f} MB of the file; {note}"},
        {"figure": "replay_speed_x", "value": round(speed, 1), "unit": "x", "goal": 100, "higher_is_better": True,
         "note": f"{count / play_s:,.0f} msg/s through decoding, rules, alarms and anomaly scoring; {note}"},
        {"figure": "keyframe_memory_bytes", "value": held, "unit": "bytes", "higher_is_better": False,
         "note": f"keyframes held after 200 random seeks (an LRU of {len(replayer._keyframe_cache)} recorded ones "
                 f"+ the first state): bounded, whatever the length; {note}"},
        {"figure": "index_keyframes_mb_per_h", "value": round(per_hour_mb, 1), "unit": "MB/h",
         "higher_is_better": False,
         "note": f"a file without keyframes: in-memory keyframes of the background pass every "
                 f"{plain.keyframe_every:g} s (safe codec, zstd; was ~27 MB/h pickled), pass {index_s:.1f} s; "
                 f"{note}"},
        {"figure": "keyframe_encode_ms", "value": round(encode_ms, 2), "unit": "ms", "higher_is_better": False,
         "note": f"one recorded keyframe of the demo plant on the recorder's thread; the {large_n:,}-component "
                 f"layout: {large_ms:.1f} ms, {large_bytes / 1e3:,.0f} KB; {note}"},
        {"figure": "recording_read_msgs_per_s", "value": round(count / read_s), "unit": "msg/s",
         "higher_is_better": True,
         "note": f"read_messages over the whole file, chunk CRCs checked: the CRCs are {100 * crc_s / read_s:.1f} % "
                 f"of the read time (median of 3); {note}"},
        {"figure": "recording_mb", "value": round(size_mb, 1), "unit": "MB", "note": f"zstd chunks; {note}"},
        {"figure": "recorder_msgs_per_s", "value": round(count / write_s), "unit": "msg/s",
         "note": f"message generation and the keyframe replay in the same process included; {note}"},
    ])
    if args.keep is None:
        path.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
