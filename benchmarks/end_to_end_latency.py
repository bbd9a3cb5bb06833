"""Benchmark: publish-to-frame latency and the frame rate of the live main window under telemetry load.

Figures (names, units and goals from shared/BENCHMARKS.md), one JSON line each on stdout:

- ``e2e_latency_p99_ms`` and ``e2e_latency_p50_ms``: the demo plant in the real :class:`MainWindow`
  (3D view 1280x800), fed at 1,000 msg/s by a paced publisher in another process through a private
  mosquitto. Per message: the time of the end of the first frame drawn (``PlantView.frame_drawn``) after
  the frame timer's drain that delivered the message, minus the publish time (``time.time()`` taken by the
  publisher just before it writes the message to its socket; it is also in the payload as ``"ts"``).
  Measured on the non-robot signals (motor ``current``, field ``A``, and the part counter ``count`` of the
  ``state`` messages), whose value carries the message's sequence number so each drained sample can be
  traced to its publish time (robot joints are drawn ``INTERPOLATION_DELAY_S`` = 100 ms behind real time
  by design, so they are not in the figure). A message superseded by a newer one on the same signal
  before the frame timer drained it (coalescing: one update per signal per frame) is never shown and is
  not counted; how many that were is in the note.
- ``ui_fps_under_load``: frames drawn per second by the same window while the publisher sends 5,000 msg/s.
  The robots move continuously (their joints arrive at >100 Hz), so the controller requests a repaint on
  every ~30 Hz frame-timer tick. Peer: the same window with no telemetry traffic, a repaint requested
  every ``FRAME_MS`` like the controller does (so the peer is the frame loop's own ceiling here). The note
  also gives the achieved ingest rate (store messages/s) and decode errors, and the latency at that load.

Set-up: the script starts its own mosquitto on a free loopback port (the viewer's embedded amqtt broker is
too slow for 5,000 msg/s) with no QoS 0 drop limits, so a subscriber that falls behind shows as growing
latency and a lower ingest rate rather than as lost messages. The publisher (this script re-executed with
``--publish-child``) writes pre-encoded MQTT 3.1.1 QoS 0 PUBLISH packets on a raw socket, paced: every
message has its slot ``t0 + i / rate`` and is sent once due (a wake-up sends all the messages due, each
stamped when built). The mix, a repeating cycle of 32 messages: 12 ``demo/line1/R{1,2,3}/joints``
(``{"deg": [6 angles of a pick-and-place cycle], "ts"}``), 10 ``demo/line1/ST../current``
(``{"A": ..., "ts"}``), 7 ``demo/line1/<machine>/state`` round robin over the 13 stations and robots
(``{"state": running|idle, "count": ..., "ts"}``; each station idles 2 s in 10) and 3 plain-number
sensors (vibration, temperature, pressure).

Runs under a display: with no ``DISPLAY`` it re-executes itself under ``xvfb-run``.

    python benchmarks/end_to_end_latency.py [--quick] [--rate 1000] [--load-rate 5000] [--size 1280x800]
                                            [--window-size]

``--window-size`` sizes the whole window to --size instead of the 3D view (the view is then smaller).
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
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import Broker, RawPublisher, emit, ensure_display, mqtt_string, parse_size, publish_packet

ROOT = Path(__file__).resolve().parents[1]
DEMO_LAYOUT = ROOT / "layouts" / "demo_plant" / "demo_plant.json"
PREFIX = "demo/line1"
CURRENT_BASE = 8.0  # amps; the sequence number rides in the last decimals (rule threshold is 14 A)
CURRENT_STEP = 1e-5
CURRENT_SPAN = 200_000  # sequence numbers stay unique within this many messages
PEER_NAME = "same window, no telemetry"
WARMUP_S = 1.5  # of every loaded phase, not measured
TAIL_S = 0.3  # messages published in the last TAIL_S of a phase are not measured (may miss their frame)


# ---- the publisher child ---------------------------------------------------------------------------------------
def current_value(seq: int) -> float:
    """Motor current that carries a message's sequence number in its last decimals."""
    return round(CURRENT_BASE + (seq % CURRENT_SPAN) * CURRENT_STEP, 5)


def seq_of_current(value: float) -> int:
    """The sequence number a current value carries (unique within ``CURRENT_SPAN`` messages)."""
    return round((value - CURRENT_BASE) / CURRENT_STEP)


def _mix_cycle() -> list[tuple[str, int]]:
    """One cycle of 32 messages: (kind, index within that kind's round robin), interleaved."""
    kinds = ["joints"] * 12 + ["current"] * 10 + ["state"] * 7 + ["sensor"] * 3
    random.Random(7).shuffle(kinds)
    counters: dict[str, int] = {}
    cycle = []
    for kind in kinds:
        cycle.append((kind, counters.get(kind, 0)))
        counters[kind] = counters.get(kind, 0) + 1
    return cycle


def _publisher_child(port: int, rate: float, duration: float, log_path: str) -> None:
    """Publish the mix at ``rate`` msg/s for ``duration`` s; save publish times; print one JSON summary line."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from viewer.model.layout_io import load_layout
    from viewer.telemetry.virtual_plant import VirtualPlant, pick_place_pose

    plant = VirtualPlant(load_layout(DEMO_LAYOUT), seed=3)
    robots = [m for m in plant.machines if m.kind == "robot"]
    stations = [m for m in plant.machines if m.kind == "station"]
    machines = stations + robots
    sensors = [("ST10/vibration", 2.5, 0.3), ("ST30/temperature", 60.0, 0.15), ("ST60/pressure", 4.0, 0.01)]
    rng = random.Random(11)
    cycle = _mix_cycle()
    topics = {
        "joints": [mqtt_string(f"{PREFIX}/{m.id}/joints") for m in robots],
        "current": [mqtt_string(f"{PREFIX}/{m.id}/current") for m in stations],
        "state": [mqtt_string(f"{PREFIX}/{m.id}/state") for m in machines],
        "sensor": [mqtt_string(f"{PREFIX}/{s[0]}") for s in sensors],
    }
    n_total = int(rate * duration)
    t_pub = np.zeros(n_total)
    kind_of = np.zeros(n_total, dtype=np.int8)  # 0 joints, 1 current, 2 state, 3 sensor
    kind_code = {"joints": 0, "current": 1, "state": 2, "sensor": 3}
    pub = RawPublisher(port, f"e2e-pub-{os.getpid()}")
    dumps = json.dumps
    interval = 1.0 / rate
    cpu0 = os.times()
    t0 = time.time() + 0.05
    Path(log_path + ".start").write_text(repr(t0))  # the GUI process starts its measured window from this
    i = 0
    max_lag = 0.0
    wakeups = 0
    while i < n_total:
        now = time.time()
        due = min(n_total, int((now - t0) / interval) + 1)
        if due <= i:
            time.sleep(min(0.0005, max(0.0, t0 + i * interval - now)))
            continue
        wakeups += 1
        max_lag = max(max_lag, now - (t0 + i * interval))
        packets = []
        for seq in range(i, due):
            kind, index = cycle[seq % len(cycle)]
            round_no = seq // len(cycle)
            ts = time.time()
            t_rel = ts - t0
            if kind == "joints":
                m = robots[index % len(robots)]
                doc = {"deg": pick_place_pose(m.home, t_rel, 2 * m.cycle_s, m.phase), "ts": ts}
                topic = topics["joints"][index % len(robots)]
            elif kind == "current":
                doc = {"A": current_value(seq), "ts": ts}
                topic = topics["current"][index]
            elif kind == "state":
                k = (round_no * 7 + index) % len(machines)
                m = machines[k]
                idle = m.kind == "station" and int(t_rel + 1.3 * k) % 10 >= 8
                doc = {"state": "idle" if idle else "running", "count": seq, "ts": ts}
                topic = topics["state"][k]
            else:
                _name, base, noise = sensors[index]
                packets.append(publish_packet(topics["sensor"][index],
                                               f"{base + rng.gauss(0.0, noise):.3f}".encode()))
                t_pub[seq] = ts
                kind_of[seq] = kind_code[kind]
                continue
            packets.append(publish_packet(topic, dumps(doc, separators=(",", ":")).encode()))
            t_pub[seq] = ts
            kind_of[seq] = kind_code[kind]
        pub.send(b"".join(packets))
        i = due
    t_done = time.time()
    cpu1 = os.times()
    pub.close()
    np.savez(log_path, t_pub=t_pub, kind=kind_of)
    print(json.dumps({"sent": n_total, "t_start": float(t_pub[0]), "t_done": t_done,
                      "rate": n_total / max(t_done - t_pub[0], 1e-9), "max_lag_s": max_lag, "wakeups": wakeups,
                      "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)}), flush=True)


# ---- measurements in the GUI process ---------------------------------------------------------------------------
@dataclass
class Probe:
    """What the instrumented window recorded (wall-clock times, time.time())."""

    frames: list[float] = field(default_factory=list)  # frame_drawn times
    vtk_ms: list[tuple[float, float]] = field(default_factory=list)  # (end time, ms inside VTK's Render)
    ticks: list[tuple[float, float]] = field(default_factory=list)  # (start time, ms in on_frame)
    pending: list[tuple[int, int, float, float]] = field(default_factory=list)
    # (kind 1 current / 2 count, seq, received, drained) -> + frame time
    traced: list[tuple[int, int, float, float, float, int]] = field(default_factory=list)  # + frame index
    paint_end: dict[int, float] = field(default_factory=dict)  # frame index -> end of that paint event
    drained_samples: int = 0

    def clear(self) -> None:
        self.frames.clear()
        self.vtk_ms.clear()
        self.ticks.clear()
        self.pending.clear()
        self.traced.clear()
        self.paint_end.clear()
        self.drained_samples = 0


def _cpu_times() -> list[int]:
    try:
        with open("/proc/stat") as handle:
            return [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return []


def _busy_percent(before: list[int], after: list[int]) -> tuple[float, float]:
    """(% of all CPUs busy, % stolen by the hypervisor) between two /proc/stat samples."""
    if len(before) < 8 or len(after) < 8:
        return float("nan"), float("nan")
    d = [a - b for a, b in zip(after[:8], before[:8], strict=True)]
    total = sum(d)
    if total <= 0:
        return float("nan"), float("nan")
    return 100.0 * (total - d[3] - d[4]) / total, 100.0 * d[7] / total


def _pct(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


@dataclass
class PhaseResult:
    name: str
    seconds: float
    frames: int
    fps: float
    frame_interval_p50_ms: float
    frame_interval_p99_ms: float
    frame_interval_max_ms: float
    vtk_ms_p50: float
    tick_ms_p50: float
    tick_ms_p99: float
    ticks_per_s: float
    proc_cpu_percent: float
    machine_busy_percent: float
    steal_percent: float
    ingest_rate: float = float("nan")
    decode_errors: int = 0
    pub: dict | None = None
    broker_cpu_percent: float = float("nan")
    latency: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        text = (f"{self.name}: {self.fps:.1f} fps ({self.frames} frames in {self.seconds:.1f} s; frame interval "
                f"p50 {self.frame_interval_p50_ms:.1f} / p99 {self.frame_interval_p99_ms:.1f} / max "
                f"{self.frame_interval_max_ms:.1f} ms; VTK render p50 {self.vtk_ms_p50:.1f} ms; timer "
                f"{self.ticks_per_s:.1f} ticks/s, on_frame p50 {self.tick_ms_p50:.2f} / p99 {self.tick_ms_p99:.2f} "
                f"ms); GUI process CPU {self.proc_cpu_percent:.0f} % of one core, machine busy "
                f"{self.machine_busy_percent:.0f} % (steal {self.steal_percent:.1f} %)")
        if self.pub is not None:
            text += (f"; publisher {self.pub['rate']:,.0f} msg/s (max lag behind schedule "
                     f"{1000 * self.pub['max_lag_s']:.1f} ms, {100 * self.pub['cpu_s'] / self.seconds:.0f} % CPU), "
                     f"broker {self.broker_cpu_percent:.0f} % CPU, ingest {self.ingest_rate:,.0f} msg/s, "
                     f"{self.decode_errors} decode errors")
        if self.latency:
            lat = self.latency
            text += (f"\n    latency over {lat['n']:,.0f} traced messages ({lat['coalesced_pct']:.1f} % of the traced "
                     f"kinds coalesced away): p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f}, p99 {lat['p99']:.1f}, "
                     f"max {lat['max']:.1f}\n    parts (p50 / p99 ms): publish->store {lat['net_p50']:.1f} / "
                     f"{lat['net_p99']:.1f}; store->drain (waiting for the frame timer) {lat['wait_p50']:.1f} / "
                     f"{lat['wait_p99']:.1f}; drain->frame drawn {lat['frame_p50']:.1f} / {lat['frame_p99']:.1f}"
                     f"\n    to the end of the paint event (Qt's composition of the window included): "
                     f"p50 {lat['composed_p50']:.1f}, p99 {lat['composed_p99']:.1f} ms")
        return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--publish-child"]:
        _publisher_child(int(argv[1]), float(argv[2]), float(argv[3]), argv[4])
        return 0
    ensure_display(__file__)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: shorter phases")
    parser.add_argument("--rate", type=float, default=1000.0, help="msg/s for the latency figure (default 1000)")
    parser.add_argument("--load-rate", type=float, default=5000.0, help="msg/s for the fps figure (default 5000)")
    parser.add_argument("--size", default="1280x800", help="size of the 3D view in pixels, WxH (default 1280x800)")
    parser.add_argument("--window-size", action="store_true", help="size the whole window to --size instead")
    args = parser.parse_args(argv)
    width, height = parse_size(parser, args.size)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    import numpy as np
    from PySide6.QtCore import QEventLoop, QTimer

    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow
    from viewer.ui.telemetry_controller import FRAME_MS, INTERPOLATION_DELAY_S

    quick = args.quick
    latency_s = 8.0 if quick else 20.0
    load_s = 5.5 if quick else 11.5  # includes WARMUP_S
    peer_s = 4.0 if quick else 10.0
    rounds = 1 if quick else 2

    create_application()
    tmp = tempfile.TemporaryDirectory(prefix="e2e-bench-")
    broker = Broker(Path(tmp.name))
    window = MainWindow(broker=f"127.0.0.1:{broker.port}")
    view = window.view
    ctrl = window.telemetry

    def run_for(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(max(1, int(seconds * 1000)), loop.quit)
        loop.exec()

    def wait_until(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"end_to_end_latency: {what} within {timeout:.0f} s")
            run_for(0.05)

    try:
        window.show()
        run_for(0.3)
        for _ in range(3):  # docks and bars take their share: size the window so the view gets --size
            if args.window_size:
                window.resize(width, height)
            else:
                window.resize(window.width() + width - view.width(), window.height() + height - view.height())
            run_for(0.2)
        loaded: list[str] = []
        window.layout_loaded.connect(loaded.append)
        window.open_layout(DEMO_LAYOUT)
        wait_until(lambda: bool(loaded), 60, "the demo plant did not load")
        wait_until(lambda: ctrl.client is not None and ctrl.connection_status().state.value == "connected", 15,
                   "the viewer did not connect to mosquitto")
        probe_pub = RawPublisher(broker.port, "e2e-probe")

        def subscribed() -> bool:
            probe_pub.publish(f"{PREFIX}/ST10/current", b'{"A": 8.0}')
            return ctrl.store.stats().messages > 0

        wait_until(subscribed, 15, "no probe message reached the store")
        probe_pub.close()
        run_for(0.5)
        view_size = f"{view.width()}x{view.height()}"
        window_size = f"{window.width()}x{window.height()}"
        caps = view.ren_win.ReportCapabilities() or ""
        gl_renderer = next((ln.split(":", 1)[1].strip() for ln in caps.splitlines()
                            if ln.lower().startswith("opengl renderer string")), "unknown")
        print(f"window {window_size}, 3D view {view_size}, GL renderer {gl_renderer}, mosquitto on port "
              f"{broker.port}, {os.cpu_count()} CPUs", file=sys.stderr, flush=True)

        # ---- instrumentation (benchmark side only; the viewer's code is not changed) -------------------------
        probe = Probe()
        original_drain = ctrl.store.drain

        def traced_drain():
            drained = original_drain()
            t = time.time()
            probe.drained_samples += len(drained)
            for (_component, signal), sample in drained.items():
                if signal == "current" and isinstance(sample.value, float):
                    probe.pending.append((1, sample.value, sample.received, t))
                elif signal == "count" and isinstance(sample.value, int):
                    probe.pending.append((2, sample.value, sample.received, t))
            return drained

        ctrl.store.drain = traced_drain  # instance attribute: only this window's store is traced

        def on_frame_drawn(t: float) -> None:
            index = len(probe.frames)
            probe.frames.append(t)
            if probe.pending:
                probe.traced.extend((k, v, r, d, t, index) for k, v, r, d in probe.pending)
                probe.pending.clear()
                # A zero timer runs once the paint event is over, i.e. after Qt composed the frame into the
                # window (QOpenGLWidget draws into an FBO; the window's backing store is composed afterwards).
                QTimer.singleShot(0, lambda: probe.paint_end.setdefault(index, time.time()))

        view.frame_drawn.connect(on_frame_drawn)
        vtk_t0 = [0.0]

        def vtk_start(*_a) -> None:
            vtk_t0[0] = time.perf_counter()

        def vtk_end(*_a) -> None:
            probe.vtk_ms.append((time.time(), 1000 * (time.perf_counter() - vtk_t0[0])))

        view.ren_win.AddObserver("StartEvent", vtk_start)
        view.ren_win.AddObserver("EndEvent", vtk_end)
        timed_ticks = True
        try:
            ctrl.timer.timeout.disconnect(ctrl.on_frame)
        except (RuntimeError, TypeError):
            timed_ticks = False

        def timed_on_frame() -> None:
            t = time.time()
            p = time.perf_counter()
            ctrl.on_frame()
            probe.ticks.append((t, 1000 * (time.perf_counter() - p)))

        if timed_ticks:
            ctrl.timer.timeout.connect(timed_on_frame)

        # ---- phases -----------------------------------------------------------------------------------------
        def summarize(name: str, t_a: float, t_b: float, cpu_s: float, cpu_span: float,
                      machine: tuple[list[int], list[int]]) -> PhaseResult:
            """Frames and ticks between t_a and t_b; CPU figures over the sampled span ``cpu_span``."""
            frames = [t for t in probe.frames if t_a <= t <= t_b]
            intervals = np.diff(frames) * 1000 if len(frames) > 1 else np.array([float("nan")])
            vtk = [ms for t, ms in probe.vtk_ms if t_a <= t <= t_b]
            ticks = [ms for t, ms in probe.ticks if t_a <= t <= t_b]
            seconds = t_b - t_a
            busy, steal = _busy_percent(*machine)
            return PhaseResult(
                name=name, seconds=seconds, frames=len(frames), fps=len(frames) / seconds,
                frame_interval_p50_ms=_pct(intervals, 50), frame_interval_p99_ms=_pct(intervals, 99),
                frame_interval_max_ms=float(np.max(intervals)), vtk_ms_p50=_pct(vtk, 50),
                tick_ms_p50=_pct(ticks, 50), tick_ms_p99=_pct(ticks, 99), ticks_per_s=len(ticks) / seconds,
                proc_cpu_percent=100 * cpu_s / max(cpu_span, 1e-9), machine_busy_percent=busy, steal_percent=steal)

        def cpu_of_process() -> float:
            t = os.times()
            return t.user + t.system

        def store_count() -> tuple[int, int, float]:
            s = ctrl.store.stats()
            return s.messages, s.decode_errors, time.time()

        def idle_phase(name: str, seconds: float) -> PhaseResult:
            """No telemetry traffic; a repaint requested every FRAME_MS as the controller would."""
            probe.clear()
            timer = QTimer()
            timer.setInterval(FRAME_MS)
            timer.timeout.connect(view.update)
            timer.start()
            run_for(0.5)
            t_a, cpu0, m0 = time.time(), cpu_of_process(), _cpu_times()
            run_for(seconds)
            t_b, cpu1, m1 = time.time(), cpu_of_process(), _cpu_times()
            timer.stop()
            res = summarize(name, t_a, t_b, cpu1 - cpu0, t_b - t_a, (m0, m1))
            print(res.line(), file=sys.stderr, flush=True)
            return res

        def paint_bound(frames: int) -> float:
            """Frames/s when the next repaint is requested as soon as a frame is drawn (paint cost only)."""
            probe.clear()
            box = {"left": frames}

            def again(_t: float) -> None:
                box["left"] -= 1
                if box["left"] > 0:
                    QTimer.singleShot(0, view.update)

            view.frame_drawn.connect(again)
            view.update()
            t = time.time()
            wait_until(lambda: box["left"] <= 0, 60, "paint-bound frames did not finish")
            view.frame_drawn.disconnect(again)
            return frames / (time.time() - t)

        phase_no = [0]

        def loaded_phase(name: str, rate: float, seconds: float) -> PhaseResult:
            """A paced publisher for ``seconds``; the first WARMUP_S after its first message are not measured."""
            probe.clear()
            phase_no[0] += 1
            log_path = Path(tmp.name) / f"pub-{phase_no[0]}.npz"
            start_file = Path(str(log_path) + ".start")
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--publish-child",
                                     str(broker.port), str(rate), str(seconds), str(log_path)],
                                    stdout=subprocess.PIPE, text=True)
            mark: tuple | None = None
            deadline = time.monotonic() + seconds + 60
            while proc.poll() is None:
                run_for(0.02)
                if mark is None and start_file.exists():
                    text = start_file.read_text().strip()
                    if text and time.time() >= float(text) + WARMUP_S:
                        mark = (time.time(), cpu_of_process(), _cpu_times(), store_count(), broker.cpu_s())
                if time.monotonic() > deadline:
                    proc.kill()
                    raise SystemExit(f"{name}: the publisher did not finish")
            t_end, cpu1, m1 = time.time(), cpu_of_process(), _cpu_times()
            store1, broker1 = store_count(), broker.cpu_s()
            out = proc.stdout.read() if proc.stdout else ""
            if proc.returncode != 0:
                raise SystemExit(f"{name}: publisher failed (exit {proc.returncode}): {out[-2000:]}")
            if mark is None:
                raise SystemExit(f"{name}: the publisher finished before the warm-up was over")
            pub = json.loads(out.strip().splitlines()[-1])
            run_for(1.0)  # let the tail arrive and be drawn
            t_a = pub["t_start"] + WARMUP_S
            t_b = pub["t_done"]
            t_mark, cpu0, m0, store0, broker0 = mark
            res = summarize(name, t_a, t_b, cpu1 - cpu0, t_end - t_mark, (m0, m1))
            res.pub = pub
            pub["cpu_percent"] = 100 * pub["cpu_s"] / max(t_b - pub["t_start"], 1e-9)
            res.broker_cpu_percent = 100 * (broker1 - broker0) / max(t_end - t_mark, 1e-9)
            res.ingest_rate = (store1[0] - store0[0]) / max(store1[2] - store0[2], 1e-9)
            res.decode_errors = store1[1] - store0[1]
            # latency of the traced messages
            log = np.load(log_path)
            t_pub, kinds = log["t_pub"], log["kind"]
            lat, net, wait, frm, composed = [], [], [], [], []
            for kind, value, received, drained, frame, index in probe.traced:
                seq = seq_of_current(value) if kind == 1 else int(value)
                if not (0 <= seq < len(t_pub)) or kinds[seq] != kind:
                    continue
                tp = t_pub[seq]
                if not (t_a <= tp <= t_b - TAIL_S):
                    continue
                lat.append(1000 * (frame - tp))
                net.append(1000 * (received - tp))
                wait.append(1000 * (drained - received))
                frm.append(1000 * (frame - drained))
                if index in probe.paint_end:
                    composed.append(1000 * (probe.paint_end[index] - tp))
            window_mask = (t_pub >= t_a) & (t_pub <= t_b - TAIL_S)
            traced_sent = int(np.count_nonzero(window_mask & ((kinds == 1) | (kinds == 2))))
            if lat:
                res.latency = {
                    "n": len(lat), "p50": _pct(lat, 50), "p90": _pct(lat, 90), "p99": _pct(lat, 99),
                    "max": float(np.max(lat)), "net_p50": _pct(net, 50), "net_p99": _pct(net, 99),
                    "wait_p50": _pct(wait, 50), "wait_p99": _pct(wait, 99), "frame_p50": _pct(frm, 50),
                    "frame_p99": _pct(frm, 99), "traced_sent": traced_sent,
                    "composed_p50": _pct(composed, 50), "composed_p99": _pct(composed, 99),
                    "coalesced_pct": 100.0 * (1 - len(lat) / traced_sent) if traced_sent else float("nan"),
                }
            print(res.line(), file=sys.stderr, flush=True)
            return res

        pb_fps = paint_bound(60 if quick else 150)
        print(f"paint-bound: {pb_fps:.1f} fps (next repaint requested as soon as a frame is drawn, no telemetry)",
              file=sys.stderr, flush=True)
        latency_runs = [loaded_phase(f"latency @{args.rate:,.0f} msg/s", args.rate, latency_s)]
        load_runs: list[PhaseResult] = []
        peer_runs: list[PhaseResult] = []
        for r in range(rounds):
            peer_runs.append(idle_phase(f"no load, round {r + 1}", peer_s))
            load_runs.append(loaded_phase(f"load @{args.load_rate:,.0f} msg/s, round {r + 1}", args.load_rate,
                                          load_s))
    finally:
        window.telemetry.stop()
        window.close()
        broker.stop()
        broker_log = broker.log.read_text(errors="replace").strip()
        tmp.cleanup()

    # ---- report -------------------------------------------------------------------------------------------------
    lat = latency_runs[0].latency
    if not lat:
        raise SystemExit("end_to_end_latency: no traced message reached a frame")
    fps = statistics.median(r.fps for r in load_runs)
    peer_fps = statistics.median(r.fps for r in peer_runs)
    ingest = statistics.median(r.ingest_rate for r in load_runs)
    errors = sum(r.decode_errors for r in load_runs) + sum(r.decode_errors for r in latency_runs)
    load_lat = [r.latency for r in load_runs if r.latency]
    where = (f"demo plant in the real MainWindow, window {window_size}, 3D view {view_size}"
             f"{' (window sized to --size)' if args.window_size else ' (window sized so the 3D view is --size)'}, "
             f"GL renderer {gl_renderer}, {os.cpu_count()} CPUs")
    broker_note = ("private mosquitto on loopback (the viewer's embedded amqtt broker is too slow for 5,000 msg/s), "
                   "QoS 0, no drop limits")
    mix = ("paced raw-socket publisher in another process, mix per 32 messages: 12 joints (R1-R3), 10 current "
           "(10 stations), 7 state (13 machines), 3 plain-number sensors")
    quick_note = "; --quick: shorter phases, one round" if quick else ""
    lr = latency_runs[0]
    lat_note = (f"{where}; {broker_note}; {mix}; {args.rate:,.0f} msg/s for {latency_s - WARMUP_S:.1f} s measured "
                f"after {WARMUP_S} s warm-up (publisher achieved {lr.pub['rate']:,.0f} msg/s); latency = end of the "
                f"first PlantView.frame_drawn after the frame-timer drain that delivered the message - publish "
                f"time.time() (same machine clock); traced on current (A) and state count, {lat['n']:,} messages; "
                f"{lat['coalesced_pct']:.1f} % of those kinds were superseded within a frame (coalesced; or never "
                f"drawn) and are not counted; p50 {lat['p50']:.1f} / p90 {lat['p90']:.1f} / p99 {lat['p99']:.1f} / max "
                f"{lat['max']:.1f} ms; parts p50/p99: publish->store {lat['net_p50']:.1f}/{lat['net_p99']:.1f}, "
                f"store->drain {lat['wait_p50']:.1f}/{lat['wait_p99']:.1f}, drain->frame drawn "
                f"{lat['frame_p50']:.1f}/{lat['frame_p99']:.1f} ms; {lr.fps:.1f} fps meanwhile; robot joints are "
                f"drawn {1000 * INTERPOLATION_DELAY_S:.0f} ms behind by design and are not in the figure; "
                f"frame_drawn is the end of paintGL, before Qt composes the frame into the window: to the end of "
                f"that paint event p50 {lat['composed_p50']:.1f} / p99 {lat['composed_p99']:.1f} ms{quick_note}")
    load_lat_text = ", ".join(f"p50 {x['p50']:.0f} / p99 {x['p99']:.0f} ms ({x['coalesced_pct']:.0f} % coalesced "
                              f"away, so only the newest message per signal and frame is traced: not comparable "
                              f"with the 1,000 msg/s figure)" for x in load_lat)
    fps_note = (f"{where}; {broker_note}; {mix}; publisher at {args.load_rate:,.0f} msg/s (achieved "
                f"{', '.join(format(r.pub['rate'], ',.0f') for r in load_runs)} msg/s), "
                f"measured {load_s - WARMUP_S:.1f} s "
                f"after {WARMUP_S} s warm-up, median of {len(load_runs)} round(s) "
                f"({', '.join(f'{r.fps:.1f}' for r in load_runs)} fps), alternating with the peer "
                f"({', '.join(f'{r.fps:.1f}' for r in peer_runs)} fps: same window, no telemetry traffic, "
                f"repaint requested every {FRAME_MS} ms like the frame timer); ingest {ingest:,.0f} msg/s into the "
                f"store, {errors} decode errors; latency at this load: {load_lat_text}; paint-bound fps of the "
                f"window (next repaint as soon as a frame is drawn): {pb_fps:.1f}; frame interval p99 "
                f"{statistics.median(r.frame_interval_p99_ms for r in load_runs):.0f} ms{quick_note}")

    summary = ["end_to_end_latency:", f"  {where}", f"  paint-bound {pb_fps:.1f} fps"]
    summary += ["  " + r.line() for r in latency_runs + peer_runs + load_runs]
    if broker_log:
        summary.append(f"  broker log: {broker_log[-500:]}")
    print("\n".join(summary), file=sys.stderr, flush=True)
    figures = [
        {"figure": "e2e_latency_p99_ms", "value": round(lat["p99"], 1), "unit": "ms", "goal": 100,
         "higher_is_better": False, "note": lat_note},
        {"figure": "e2e_latency_p50_ms", "value": round(lat["p50"], 1), "unit": "ms", "goal": None,
         "higher_is_better": False, "note": "no goal in BENCHMARKS.md (only p99 has one); " + lat_note},
        {"figure": "ui_fps_under_load", "value": round(fps, 1), "unit": "frames/s", "goal": 20,
         "higher_is_better": True, "peer": PEER_NAME, "peer_value": round(peer_fps, 1), "note": fps_note},
    ]
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
