"""The reliability suite, long variants: writes docs/reliability.md (and docs/reliability_long_run.png).

Each scenario runs against real parts (mosquitto on a free loopback port, real files, another process
publishing) and reports its outcome, what was published, received and recorded, and the peak resident
memory of this process during it. Scenarios whose long variant is the test itself (wrong-type payloads,
Sparkplug, TLS, secrets) run their tests from ``tests/test_reliability.py`` / ``tests/test_sparkplug_live.py``.

    python benchmarks/reliability_report.py [--quick] [--only N[,N...]] [--out docs/reliability.md]

``--quick`` shortens the long run to two minutes and the flood to ten seconds (the table says so).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_common import ROOT, RawPublisher, emit

from viewer.model.layout import Component, Layout
from viewer.telemetry.mqtt_client import MqttSettings, TelemetryClient
from viewer.telemetry.pipeline import FRAME_S, TelemetryPipeline
from viewer.telemetry.recording import EVENTS_TOPIC, Recorder, RecordingError, read_messages, recover, scan
from viewer.telemetry.replay import Replayer
from viewer.telemetry.session import SessionRecording


def rss_mib(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """The peak resident memory of this process while the block runs (sampled every 0.2 s)."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


@dataclass
class Row:
    number: int
    scenario: str
    outcome: str = ""
    ok: bool = False
    published: str = ""
    received: str = ""
    recorded: str = ""
    peak_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


def counting_layout(port: int, topic: str = "plant/ST10/count", component: str = "ST10", qos: int = 0,
                    **mqtt: object) -> Layout:
    return Layout(name="reliability", components=[Component("ST10", "station", (0.0, 0.0, 0.0))], bindings=[
        {"topic": topic, "component": component, "signal": "count", "encoding": "number", "qos": qos}],
        mqtt={"host": "127.0.0.1", "port": port, **mqtt})


def viewer(layout: Layout) -> tuple[TelemetryClient, TelemetryPipeline]:
    pipeline = TelemetryPipeline(layout)
    settings = MqttSettings.from_layout(layout.mqtt)
    settings.reconnect_min_s = settings.reconnect_max_s = 1
    return TelemetryClient(settings, pipeline.router), pipeline


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def settle(pipeline: TelemetryPipeline, session: SessionRecording, quiet_s: float = 3.0,
           limit_s: float = 120.0) -> None:
    """Step until no message has arrived for ``quiet_s`` (a backlog drains), then once more."""
    deadline = time.monotonic() + limit_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        pipeline.step(time.time())
        session.poll()
        count = pipeline.store.stats().messages
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            break
        time.sleep(FRAME_S)
    time.sleep(1.2)  # one more $SYS interval
    pipeline.step(time.time())
    session.poll()


def events_of(path: Path) -> list[dict]:
    return [json.loads(m.payload) for m in read_messages(path) if m.topic == EVENTS_TOPIC]


# --- scenarios ---------------------------------------------------------------------------------------------
def s1_broker_restart(tmp: Path, quick: bool) -> Row:
    from mosquitto_broker import Mosquitto
    from test_telemetry_mqtt import Publisher

    row = Row(1, "broker killed and restarted mid-session (persistent session, QoS 1)")
    broker = Mosquitto(tmp)
    broker.config.write_text(broker.config.read_text().replace(
        "persistence false", f"persistence true\npersistence_location {tmp}/\nautosave_interval 1"))
    broker.start()
    n, down_s = 2000, (3 if quick else 10)
    client, pipeline = viewer(counting_layout(broker.port, qos=1, clean_session=False))
    session = SessionRecording(pipeline, tmp / "restart.mcap", gaps=lambda: client.status().gaps).start()
    with PeakMemory() as memory:
        client.start()
        pub = Publisher(broker.port)
        try:
            wait_for(lambda: client.status().subscribed, 15, "subscribed")
            for i in range(n):
                pub.send("plant/ST10/count", str(i))
            broker.stop()
            pub.close()
            time.sleep(down_s)
            broker.start()
            pub = Publisher(broker.port)
            for i in range(n, 2 * n):
                pub.send("plant/ST10/count", str(i))
            wait_for(lambda: pipeline.store.stats().messages >= 2 * n, 60, "every message")
            session.poll()
        finally:
            stats = session.stop()
            pub.close()
            client.stop()
            broker.stop()
    values = [int(m.payload) for m in read_messages(tmp / "restart.mcap") if m.topic == "plant/ST10/count"]
    missing = set(range(2 * n)) - set(values)
    gap = [e for e in events_of(tmp / "restart.mcap") if e["kind"] == "gap_end"]
    row.ok = not missing and stats.dropped == 0 and len(gap) == 1
    span = f"{gap[0]['end'] - gap[0]['start']:.1f} s" if gap else ""
    row.outcome = (f"{len(missing)} lost, {len(values) - len(set(values))} duplicates (QoS 1: at least once); "
                   f"one gap recorded with start and end ({span})" if gap else f"{len(missing)} lost; no gap recorded")
    row.published, row.received = f"{2 * n:,}", f"{pipeline.store.stats().messages:,}"
    row.recorded = f"{len(values):,}"
    row.peak_mib = memory.peak
    row.notes.append(f"broker down {down_s} s")
    return row


def s2_half_open(tmp: Path, quick: bool) -> Row:
    from mosquitto_broker import Mosquitto
    from tcp_proxy import TcpProxy

    keepalive = 4 if quick else 10
    row = Row(2, f"half-open link through a proxy that stops forwarding (keep-alive {keepalive} s)")
    broker = Mosquitto(tmp).start()
    proxy = TcpProxy(broker.port)
    client, _pipeline = viewer(counting_layout(proxy.port, keepalive=keepalive))
    with PeakMemory() as memory:
        client.start()
        try:
            wait_for(lambda: client.status().subscribed, 15, "subscribed")
            time.sleep(1)
            before = client.status().gaps_total  # the gap before the first connection counts as one
            frozen = time.monotonic()
            proxy.freeze()
            wait_for(lambda: client.status().gaps_total > before, keepalive * 3, "the loss noticed")
            noticed = time.monotonic() - frozen
        finally:
            client.stop(wait=False)
            proxy.close()
            broker.stop()
    row.ok = noticed <= 1.5 * keepalive
    row.outcome = f"noticed after {noticed:.1f} s = {noticed / keepalive:.2f} x keep-alive (goal <= 1.5 x)"
    row.peak_mib = memory.peak
    return row


FLOOD = """
import sys, time
sys.path.insert(0, sys.argv[4])
from bench_common import RawPublisher
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
pub = RawPublisher(port, "flood")
sent, start = 0, time.monotonic()
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = int(elapsed * rate)
    while sent < due:
        pub.publish(f"plant/ST{sent % 50}/count", str(sent).encode())
        sent += 1
    time.sleep(0.001)
pub.close()
print(sent)
"""


def s3_flood(tmp: Path, quick: bool) -> Row:
    from mosquitto_broker import Mosquitto

    rate, seconds = 50_000, (10 if quick else 30)
    row = Row(3, f"{rate:,} msg/s for {seconds} s from another process")
    broker = Mosquitto(tmp)
    broker.config.write_text(broker.config.read_text().replace("max_queued_messages 1000000",
                                                               "max_queued_messages 1000\nsys_interval 1"))
    broker.start()
    layout = counting_layout(broker.port, topic="plant/+/count", component="ST10")
    client, pipeline = viewer(layout)
    session = SessionRecording(pipeline, tmp / "flood.mcap", gaps=lambda: client.status().gaps,
                               broker_dropped=lambda: client.status().broker_dropped).start()
    steps: list[float] = []
    with PeakMemory() as memory:
        client.start()
        try:
            wait_for(lambda: client.status().subscribed, 15, "subscribed")
            flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(broker.port), str(rate), str(seconds),
                                      str(Path(__file__).resolve().parent)], stdout=subprocess.PIPE, text=True)
            while flood.poll() is None:  # the viewer's frame loop goes on: how long does a frame take?
                t0 = time.perf_counter()
                pipeline.step(time.time())
                session.poll()
                steps.append((time.perf_counter() - t0) * 1000)
                time.sleep(max(0.0, FRAME_S - (time.perf_counter() - t0)))
            published = int(flood.stdout.read().strip() or 0)
            settle(pipeline, session)  # what the broker and the sockets still held, and the last $SYS reading
        finally:
            client.stop()  # first: every message received is also recorded
            stats = session.stop()
            status = client.status()
            broker.stop()
    received = pipeline.store.stats().messages
    broker_dropped = status.broker_dropped or 0
    marked = sum(e["count"] for e in events_of(tmp / "flood.mcap") if e["kind"] in ("dropped", "broker_dropped"))
    steps.sort()
    accounted = received + broker_dropped + stats.dropped
    row.ok = stats.messages + stats.dropped == received and marked == broker_dropped + stats.dropped
    row.outcome = (f"sent at {published / seconds:,.0f} msg/s; the broker dropped {broker_dropped:,} (its queue "
                   f"for the viewer full), the recorder {stats.dropped:,}, all marked in the recording; received + "
                   f"dropped - published = {accounted - published:+,} (the broker's count covers all clients); "
                   f"pipeline step per frame median {statistics.median(steps):.1f} ms, "
                   f"p99 {steps[int(len(steps) * 0.99)]:.1f} ms")
    row.published, row.received, row.recorded = f"{published:,}", f"{received:,}", f"{stats.messages:,}"
    row.peak_mib = memory.peak
    row.notes.append(f"memory {memory.start:.0f} -> peak {memory.peak:.0f} MiB")
    return row


def s5_topics(tmp: Path, quick: bool) -> Row:
    from mosquitto_broker import Mosquitto

    n = 100_000
    row = Row(5, f"{n:,} new topics under a bound wildcard, recorded")
    broker = Mosquitto(tmp).start()
    layout = counting_layout(broker.port, topic="plant/+/count", component="{1}")
    client, pipeline = viewer(layout)
    session = SessionRecording(pipeline, tmp / "topics.mcap", gaps=lambda: client.status().gaps).start()
    with PeakMemory() as memory:
        client.start()
        try:
            wait_for(lambda: client.status().subscribed, 15, "subscribed")
            pub = RawPublisher(broker.port, "topics")
            for i in range(n):
                pub.publish(f"plant/M{i}/count", b"1")
            pub.close()
            wait_for(lambda: pipeline.store.stats().messages >= n, 120, "every message")
            pipeline.step(time.time())
        finally:
            stats = session.stop()
            client.stop()
            broker.stop()
    stored = pipeline.store.stats()
    topics = {m.topic for m in read_messages(tmp / "topics.mcap") if m.topic != EVENTS_TOPIC}
    row.ok = stats.error is None and len(topics) == n and memory.peak - memory.start < 400
    row.outcome = (f"{len(topics):,} topics read back ({stats.wrapped:,} past MCAP's 65,535 channels on the "
                   f"overflow channel); {stored.decode_errors:,} counted as 'no such component', error list "
                   f"bounded at {len(stored.errors_by_topic):,} topics; memory +{memory.peak - memory.start:.0f} MiB")
    row.published, row.received, row.recorded = f"{n:,}", f"{stored.messages:,}", f"{stats.messages:,}"
    row.peak_mib = memory.peak
    return row


def s7_damaged_files(tmp: Path, quick: bool) -> Row:
    from viewer.model.layout_io import load_layout

    trials = 60 if quick else 400
    row = Row(7, f"recordings cut or bit-flipped at {trials} random offsets (huge time spans and other writers' "
                 "files: tests/test_recording_damage.py)")
    layout = load_layout(ROOT / "layouts/demo_plant/demo_plant.json")
    path = tmp / "whole.mcap"
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="report", chunk_bytes=4096).start()
    for i in range(20_000):
        recorder.message("demo/line1/ST10/vibration" if i % 2 else "demo/line1/ST20/state",
                         f"{2 + i % 50 / 10}".encode() if i % 2 else b'{"state": "running"}', 1.75e9 + i / 200)
    recorder.stop()
    data = path.read_bytes()
    original = {(m.topic, m.payload) for m in read_messages(path)}
    rng = random.Random(1)
    outcome = {"whole": 0, "damaged, reported": 0, "refused with a reason": 0, "misread": 0, "traceback": 0}
    slowest = 0.0
    with PeakMemory() as memory:
        for k in range(trials):
            offset = rng.randrange(8, len(data))
            damaged = tmp / "damaged.mcap"
            damaged.write_bytes(data[:offset] if k % 3 == 0 else
                                data[:offset] + bytes([data[offset] ^ (1 << rng.randrange(8))]) + data[offset + 1:])
            t0 = time.perf_counter()
            try:
                replayer = Replayer(damaged, layout)
                replayer.index()
                got = {(m.topic, m.payload) for m in read_messages(damaged)}
                recover(damaged, tmp / "fixed.mcap")
                if not got <= original:
                    outcome["misread"] += 1
                elif replayer.damage or not replayer.info.complete:
                    outcome["damaged, reported"] += 1
                elif len(got) == len(original):
                    outcome["whole"] += 1
                else:
                    outcome["misread"] += 1  # something lost, and not said
            except RecordingError:
                outcome["refused with a reason"] += 1
            except Exception:  # what the report counts
                outcome["traceback"] += 1
            slowest = max(slowest, time.perf_counter() - t0)
    row.ok = outcome["misread"] == 0 and outcome["traceback"] == 0 and slowest < 30
    row.outcome = ", ".join(f"{v} {k}" for k, v in outcome.items()) + f"; slowest file {slowest:.1f} s"
    row.peak_mib = memory.peak
    scan(path)
    return row


def s10_read_only(tmp: Path, quick: bool) -> Row:
    import paho.mqtt.client as paho
    from mosquitto_broker import Mosquitto
    from paho.mqtt.enums import CallbackAPIVersion

    row = Row(10, "read-only: a broker-side subscriber on # during a whole session")
    broker = Mosquitto(tmp).start()
    seen: list[str] = []
    spy = paho.Client(CallbackAPIVersion.VERSION2, client_id="spy")
    spy.on_message = lambda _c, _u, m: seen.append(m.topic)
    spy.connect("127.0.0.1", broker.port)
    spy.subscribe("#")
    spy.loop_start()
    client, pipeline = viewer(counting_layout(broker.port, qos=1))
    session = SessionRecording(pipeline, tmp / "ro.mcap", gaps=lambda: client.status().gaps).start()
    n = 500
    with PeakMemory() as memory:
        client.start()
        try:
            wait_for(lambda: client.status().subscribed, 15, "subscribed")
            pub = RawPublisher(broker.port, "plant")
            for i in range(n):
                pub.publish("plant/ST10/count", str(i).encode())
            pub.close()
            wait_for(lambda: pipeline.store.stats().messages >= n, 30, "every message")
            for alarm in list(pipeline.alarms.alarms.values()):
                pipeline.alarms.acknowledge(alarm.id, time.time())
            session.mark("operator note")
            pipeline.step(time.time())
            session.poll()
            time.sleep(1)
        finally:
            session.stop()
            client.stop()
            spy.loop_stop()
            broker.stop()
    row.ok = len(seen) == n
    row.outcome = f"the spy saw {len(seen):,} messages: the plant's {n:,}, none from the viewer"
    row.published, row.received = f"{n:,}", f"{pipeline.store.stats().messages:,}"
    row.peak_mib = memory.peak
    return row


def s11_long_run(tmp: Path, quick: bool, png: Path) -> Row:
    from mosquitto_broker import Mosquitto

    from viewer.model.layout_io import load_layout
    from viewer.telemetry.virtual_plant import default_layout

    seconds = 120 if quick else 3600
    rate = 2000
    row = Row(11, f"long run: the virtual plant at {rate:,} msg/s for {seconds / 60:g} min, recorded")
    broker = Mosquitto(tmp).start()
    layout = load_layout(default_layout())
    layout.mqtt = {**(layout.mqtt or {}), "host": "127.0.0.1", "port": broker.port}
    client, pipeline = viewer(layout)
    session = SessionRecording(pipeline, tmp / "long.mcap", gaps=lambda: client.status().gaps).start()
    publisher = subprocess.Popen([sys.executable, "-c", LONG_PUBLISHER, str(broker.port), str(rate), str(seconds),
                                  str(ROOT)], stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, float, float, float]] = []  # minutes, RSS MiB, step median ms, step p99 ms
    with PeakMemory() as memory:
        client.start()
        try:
            began = time.monotonic()
            window: list[float] = []
            next_sample = began + 10
            while publisher.poll() is None:
                t0 = time.perf_counter()
                pipeline.step(time.time())
                session.poll()
                window.append((time.perf_counter() - t0) * 1000)
                if time.monotonic() >= next_sample:
                    window.sort()
                    samples.append(((time.monotonic() - began) / 60, rss_mib(), statistics.median(window),
                                    window[int(len(window) * 0.99)]))
                    window, next_sample = [], next_sample + 10
                time.sleep(max(0.0, FRAME_S - (time.perf_counter() - t0)))
            published = int(publisher.stdout.read().strip() or 0)
            settle(pipeline, session)
        finally:
            client.stop()
            stats = session.stop()
            broker.stop()
    received = pipeline.store.stats().messages
    recorded = sum(1 for m in read_messages(tmp / "long.mcap") if m.topic != EVENTS_TOPIC)
    plot(samples, png, row.scenario)
    settled = [s[1] for s in samples if s[0] >= min(5.0, seconds / 120)]
    growth = (settled[-1] - settled[0]) if len(settled) > 1 else 0.0
    row.ok = recorded == received and stats.dropped == 0 and growth < 50
    row.outcome = (f"{published - received:,} not received, {received - recorded:,} received but not recorded; "
                   f"memory {settled[0] if settled else 0:.0f} -> {settled[-1] if settled else 0:.0f} MiB after the "
                   f"first minutes; frame step median {statistics.median(s[2] for s in samples):.2f} ms, worst p99 "
                   f"{max(s[3] for s in samples):.1f} ms ({png.name})")
    row.published, row.received, row.recorded = f"{published:,}", f"{received:,}", f"{recorded:,}"
    row.peak_mib = memory.peak
    return row


LONG_PUBLISHER = """
import sys, time
sys.path.insert(0, sys.argv[4])
sys.path.insert(0, sys.argv[4] + "/benchmarks")
from bench_common import RawPublisher
from viewer.model.layout_io import load_layout
from viewer.telemetry.virtual_plant import VirtualPlant, default_layout
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
plant = VirtualPlant(load_layout(default_layout()), seed=3, fault_every_s=120.0)
pub = RawPublisher(port, "virtual-plant")
sent, start, t = 0, time.monotonic(), 0.0
while True:
    t = time.monotonic() - start
    if t >= seconds:
        break
    plant.step_states(t)
    now = time.time()
    batch = plant.state_messages(t, now) + plant.joint_messages(t, now) + plant.current_messages(t) \\
        + plant.sensor_messages(t)
    for topic, payload in batch:
        pub.publish(topic, payload)
    sent += len(batch)
    time.sleep(max(0.0, start + sent / rate - time.monotonic()))
pub.close()
print(sent)
"""


def plot(samples: list[tuple[float, float, float, float]], png: Path, title: str) -> None:
    """Memory and frame step time over the run, as a PNG (PIL only)."""
    from PIL import Image, ImageDraw

    width, height, pad = 900, 420, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((pad, 10), title, fill="black")
    if len(samples) < 2:
        image.save(png)
        return
    t_max = max(s[0] for s in samples) or 1
    for row, (index, label, colour) in enumerate([(1, "RSS MiB", (40, 80, 160)), (3, "frame step p99 ms",
                                                                                  (180, 90, 20))]):
        top = 40 + row * 185
        values = [s[index] for s in samples]
        lo, hi = 0.0, max(values) * 1.1 or 1
        draw.rectangle((pad, top, width - pad, top + 150), outline=(160, 160, 160))
        draw.text((pad + 4, top + 2), f"{label} (0 to {hi:.1f})", fill=colour)
        points = [(pad + (width - 2 * pad) * s[0] / t_max, top + 150 - 150 * (s[index] - lo) / (hi - lo))
                  for s in samples]
        draw.line(points, fill=colour, width=2)
    draw.text((pad, height - 20), f"minutes (0 to {t_max:.0f})", fill="black")
    image.save(png)


def pytest_row(number: int, scenario: str, selection: list[str]) -> Row:
    row = Row(number, scenario)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    tail = [line for line in run.stdout.splitlines() if " passed" in line or " failed" in line]
    row.ok = run.returncode == 0
    row.outcome = f"{tail[-1] if tail else 'no result'} in {time.perf_counter() - t0:.0f} s: " + " ".join(selection)
    return row


def write(rows: list[Row], out: Path, quick: bool) -> None:
    lines = ["# Reliability", "",
             f"`python benchmarks/reliability_report.py{' --quick' if quick else ''}`, "
             f"{time.strftime('%Y-%m-%d')}, on a 2-vCPU VM (mosquitto 2.0, Python {sys.version.split()[0]}). "
             "Each scenario runs against real parts; memory is this process's peak resident set during it. "
             "The fast variants are tests in `make test` (tests/test_reliability.py, tests/test_recording_damage.py, "
             "tests/test_sparkplug_live.py).", "",
             "| # | scenario | result | outcome | published | received | recorded | peak MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r.number):
        note = (" (" + "; ".join(r.notes) + ")") if r.notes else ""
        peak = f"{r.peak_mib:.0f}" if r.peak_mib else ""
        lines.append(f"| {r.number} | {r.scenario} | {'pass' if r.ok else '**FAIL**'} | {r.outcome}{note} | "
                     f"{r.published} | {r.received} | {r.recorded} | {peak} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2-minute long run and a 10-second flood")
    parser.add_argument("--only", help="scenario numbers, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    only = {int(n) for n in args.only.split(",")} if args.only else set(range(1, 12))
    png = args.out.with_name("reliability_long_run.png")
    scenarios: dict[int, Callable[[Path], Row]] = {
        1: lambda tmp: s1_broker_restart(tmp, args.quick),
        2: lambda tmp: s2_half_open(tmp, args.quick),
        3: lambda tmp: s3_flood(tmp, args.quick),
        4: lambda _tmp: pytest_row(4, "malformed and wrong-type payloads of every kind",
                                   ["tests/test_reliability.py::test_4_wrong_type_values_are_counted_and_never_clear_an_active_alarm",
                                    "tests/test_telemetry_core.py"]),
        5: lambda tmp: s5_topics(tmp, args.quick),
        6: lambda _tmp: pytest_row(6, "Sparkplug births, deaths, rebirths, gaps, unbound siblings (edge node)",
                                   ["tests/test_sparkplug_live.py", "tests/test_sparkplug.py"]),
        7: lambda tmp: s7_damaged_files(tmp, args.quick),
        8: lambda _tmp: pytest_row(8, "TLS failures of every kind: named, never plain TCP",
                                   ["tests/test_reliability.py", "-k", "test_8"]),
        9: lambda _tmp: pytest_row(9, "secrets: no password in any file the run wrote",
                                   ["tests/test_reliability.py", "-k", "test_9"]),
        10: lambda tmp: s10_read_only(tmp, args.quick),
        11: lambda tmp: s11_long_run(tmp, args.quick, png),
    }
    rows = []
    for number in sorted(only):
        with tempfile.TemporaryDirectory(prefix=f"reliability-{number}-") as folder:
            try:
                row = scenarios[number](Path(folder))
            except Exception as exc:  # a scenario that breaks is a result too
                row = Row(number, f"scenario {number}", outcome=f"{type(exc).__name__}: {exc}")
        print(f"{row.number:2} {'pass' if row.ok else 'FAIL'}  {row.scenario}: {row.outcome}", file=sys.stderr)
        rows.append(row)
        if args.only is None:
            write(rows, args.out, args.quick)
    if args.only is None:
        write(rows, args.out, args.quick)
    emit([{"figure": "reliability_scenarios_passed", "value": sum(r.ok for r in rows), "unit": "scenarios",
           "goal": len(rows), "higher_is_better": True, "note": f"of {len(rows)}; {args.out.name}"}])
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
