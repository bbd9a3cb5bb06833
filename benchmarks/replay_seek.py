"""Recording and replay: file size, recorder throughput, headless replay speed, seek latency.

A recording of the demo plant's telemetry at 2,000 msg/s (states, robot joints, motor currents and sensors
from the virtual plant, every component updated ~60 times a second) is generated for one hour (``--quick``:
five minutes), written through the product's Recorder; then the Replayer reads it once (the headless
replay: the same decoding, state rules, alarms and anomaly scoring as live, at the live frame cadence of
recording time, keeping keyframes), and 100 random seeks are timed.

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
from viewer.telemetry.recording import EVENTS_TOPIC, Recorder, quick_info, read_messages
from viewer.telemetry.replay import Replayer
from viewer.telemetry.virtual_plant import VirtualPlant, default_layout

RATE = 2000.0


def generate(path: Path, seconds: float) -> tuple[int, float]:
    """Write the recording; (messages, seconds the recorder took from first message to closed file)."""
    layout = load_layout(default_layout())
    plant = VirtualPlant(layout, seed=3, fault_every_s=120.0)
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="benchmark",
                        encodings=lambda topic: "json").start()
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
    assert n == count + sum(1 for m in read_messages(path) if m.topic == EVENTS_TOPIC)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="five minutes of recording instead of an hour")
    parser.add_argument("--keep", type=Path, help="keep the generated recording here")
    args = parser.parse_args()
    seconds = 300.0 if args.quick else 3600.0
    folder = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    path = args.keep or folder / "bench.mcap"
    count, write_s = generate(path, seconds)
    size_mb = path.stat().st_size / 1e6
    print(f"recording: {count:,} messages over {seconds:,.0f} s, {size_mb:,.1f} MB, written at "
          f"{count / write_s:,.0f} msg/s (generation included)", file=sys.stderr)

    layout = load_layout(default_layout())
    replayer = Replayer(path, layout)
    t0 = time.perf_counter()
    replayer.index()
    index_s = time.perf_counter() - t0
    span = replayer.end - replayer.start
    speed = span / index_s
    keyframe_mb = sum(len(k.state) for k in replayer._keyframes) / 1e6
    print(f"headless replay (index pass, keyframes every {replayer.keyframe_every:g} s): {index_s:.1f} s, "
          f"{speed:,.0f}x real time, {count / index_s:,.0f} msg/s; {len(replayer._keyframes):,} keyframes, "
          f"{keyframe_mb:,.1f} MB", file=sys.stderr)

    rng = random.Random(1)
    latencies = []
    for _ in range(100):
        target = replayer.start + rng.uniform(0, span)
        t1 = time.perf_counter()
        replayer.seek(target)
        latencies.append((time.perf_counter() - t1) * 1000)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[98]
    print(f"seek: median {p50:.1f} ms, p99 {p99:.1f} ms over 100 random seeks", file=sys.stderr)
    info = quick_info(path)
    assert info.complete and info.messages == count
    read_s, crc_s = read_cost(path, count)
    print(f"reading: {count / read_s:,.0f} msg/s through read_messages (CRC-checked); the CRCs take "
          f"{crc_s * 1000:.0f} ms of {read_s * 1000:.0f} ms ({100 * crc_s / read_s:.1f} %)", file=sys.stderr)
    note = f"{count:,} messages over {seconds / 60:g} min at {RATE:,.0f} msg/s" + ("; --quick" if args.quick else "")
    emit([
        {"figure": "seek_p99_ms", "value": round(p99, 1), "unit": "ms", "goal": 100, "higher_is_better": False,
         "note": f"median {p50:.1f} ms; keyframes every {replayer.keyframe_every:g} s ({keyframe_mb:,.0f} MB); "
                 f"{note}"},
        {"figure": "replay_speed_x", "value": round(speed, 1), "unit": "x", "goal": 100, "higher_is_better": True,
         "note": f"{count / index_s:,.0f} msg/s through decoding, rules, alarms and anomaly scoring; {note}"},
        {"figure": "recording_read_msgs_per_s", "value": round(count / read_s), "unit": "msg/s",
         "higher_is_better": True,
         "note": f"read_messages over the whole file, chunk CRCs checked: the CRCs are {100 * crc_s / read_s:.1f} % "
                 f"of the read time (median of 3); {note}"},
        {"figure": "recording_mb", "value": round(size_mb, 1), "unit": "MB", "note": f"zstd chunks; {note}"},
        {"figure": "recorder_msgs_per_s", "value": round(count / write_s), "unit": "msg/s",
         "note": f"message generation in the same loop included; {note}"},
    ])
    if args.keep is None:
        path.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
