"""OPC UA telemetry throughput and latency: an asyncua server in another process, our client into the store.

    python benchmarks/opcua_throughput.py [--quick] [--nodes N] [--seconds S]

- ``opcua_values_per_s``: value changes decoded into the latest-value store per second
  (``OpcUaClient`` -> ``LatestValueStore``, counted by ``store.stats().messages``, from the first to the last
  arrival). The server writes every one of its ``--nodes`` Double variables (source timestamp now) as fast as
  it can for ``--seconds``; the client subscribes to all of them (publishing interval 50 ms, sampling interval
  0, queue size 1000, so changes queue on the server instead of being sampled away); values the server
  changed but the client never received are reported as loss.
- ``opcua_e2e_latency_p99_ms``: at 1,000 changes/s, from the server's source timestamp of a change to the
  end of the frame that shows it, in the real main window (demo plant, 3D view 1280x800, under Xvfb when
  there is no display). The server writes the ``state`` of 10 stations at 100 Hz each, "running" or
  "idle" at random (idle is drawn in its own grey, running uncoloured), so a change the frame timer
  drains may change what is drawn; measured on the drained changes that switched a station's state (a change
  superseded before the frame drained it is never shown; the note counts those), to the end of the first
  frame drawn after that drain (``PlantView.frame_drawn``, then the paint event's end). Both processes are
  on one host, so the clocks agree. The note gives beside it the same source timestamps to the pipeline
  step that drains them (no drawing), headless.

Closing lines: one JSON object per figure (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import emit, ensure_display, parse_size

from viewer.model.layout import Component, Layout
from viewer.telemetry.opcua_client import OpcUaClient, OpcUaSettings
from viewer.telemetry.pipeline import FRAME_S, TelemetryPipeline


# --------------------------------------------------------------------------- the server (child process)
async def _serve(port: int, nodes: int, rate: float, seconds: float, stations: list[str] | None = None) -> None:
    """Serve ``nodes`` Doubles; on "go" on stdin write them round-robin (``rate`` 0: as fast as possible).
    With ``stations``: a String ``Line1.<station>.State`` each instead, written "running" or "idle" at random."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:twin-viewer:bench")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Bench", ns), f"{ns}:Bench")
    if stations:
        variables = [await folder.add_variable(ua.NodeId(f"Line1.{name}.State", ns), f"{ns}:{name}", "running")
                     for name in stations]
    else:
        variables = [await folder.add_variable(ua.NodeId(f"Bench.V{i:04d}", ns), f"{ns}:V{i:04d}", 0.0)
                     for i in range(nodes)]
    chooser = random.Random(7)
    async with server:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        written = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            for variable in variables:
                now = datetime.now(UTC)
                if stations:  # "running" or "idle" at random (a fixed flip would alias with the publishing interval)
                    variant = ua.Variant(chooser.choice(("running", "idle")), ua.VariantType.String)
                else:
                    variant = ua.Variant(float(written), ua.VariantType.Double)
                value = ua.DataValue(variant, SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(variable.nodeid, value)
                written += 1
            if rate:
                await asyncio.sleep(max(0.0, start + written / rate - time.monotonic()))
            else:
                await asyncio.sleep(0)  # let the publish loop send what is queued
        print(json.dumps({"written": written, "seconds": time.monotonic() - start}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"


# --------------------------------------------------------------------------- the client (this process)
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _layout(nodes: int) -> Layout:
    components = [Component(f"M{i:04d}", "sensor", (float(i), 0.0, 0.0)) for i in range(nodes)]
    bindings = [{"node": f"ns=2;s=Bench.V{i:04d}", "component": f"M{i:04d}", "signal": "value", "unit": "mm/s"}
                for i in range(nodes)]
    return Layout(name="bench", components=components, bindings=bindings,
                  opcua={"endpoint": "opc.tcp://127.0.0.1:1"})


def _round(nodes: int, rate: float, seconds: float) -> dict:
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--nodes", str(nodes),
                               "--rate", str(rate), "--seconds", str(seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "ready"
        pipeline = TelemetryPipeline(_layout(nodes))
        settings = OpcUaSettings(endpoint=f"opc.tcp://127.0.0.1:{port}", publishing_interval_ms=50,
                                 sampling_interval_ms=0, queue_size=1000)
        client = OpcUaClient(settings, pipeline.router)
        client.start()
        deadline = time.monotonic() + 30
        while not client.status().subscribed:
            if time.monotonic() > deadline:
                raise SystemExit(f"no subscription: {client.status().detail}")
            time.sleep(0.02)
        time.sleep(0.3)  # the initial values of every node
        base = pipeline.store.stats().messages
        server.stdin.write("go\n")
        server.stdin.flush()
        arrivals: list[tuple[float, int]] = []
        last_change = time.monotonic()
        last_count = base
        while time.monotonic() - last_change < 2.0:  # until nothing arrived for 2 s
            count = pipeline.store.stats().messages
            if count != last_count:
                arrivals.append((time.monotonic(), count))
                last_count, last_change = count, time.monotonic()
            time.sleep(FRAME_S)
        summary = json.loads(server.stdout.readline())
        server.stdin.write("stop\n")
        server.stdin.flush()
        client.stop()
        received = last_count - base
        span = arrivals[-1][0] - arrivals[0][0] if len(arrivals) > 1 else float("nan")
        return {"received": received, "written": summary["written"], "server_s": summary["seconds"],
                "rate": received / span if span > 0 else 0.0}
    finally:
        server.kill()
        server.wait(10)


def _latency_round(seconds: float) -> list[float]:
    """Source time -> the frame step that drains the change, at 1,000 changes/s (10 nodes x 100 Hz)."""
    nodes, port = 10, _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--nodes", str(nodes),
                               "--rate", "1000", "--seconds", str(seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "ready"
        pipeline = TelemetryPipeline(_layout(nodes))
        settings = OpcUaSettings(endpoint=f"opc.tcp://127.0.0.1:{port}", publishing_interval_ms=20,
                                 sampling_interval_ms=0, queue_size=100)
        client = OpcUaClient(settings, pipeline.router)
        client.start()
        while not client.status().subscribed:
            time.sleep(0.02)
        time.sleep(0.3)
        pipeline.store.drain()
        server.stdin.write("go\n")
        server.stdin.flush()
        delays: list[float] = []
        end = time.monotonic() + seconds
        next_frame = time.monotonic()
        while time.monotonic() < end:
            # the frame step drains only the newest sample per signal: measure those, as the screen shows them
            drained = pipeline.store.drain()
            now = time.time()
            delays += [now - s.source_time for s in drained.values() if s.source_time is not None]
            for (component, signal), sample in drained.items():
                pipeline.engine.update(component, signal, sample.value, sample.received, sample.binding)
            next_frame += FRAME_S
            time.sleep(max(0.0, next_frame - time.monotonic()))
        server.stdout.readline()
        server.stdin.write("stop\n")
        server.stdin.flush()
        client.stop()
        return delays
    finally:
        server.kill()
        server.wait(10)


RENDER_STATIONS = ["ST10", "ST11", "ST20", "ST30", "ST40", "ST41", "ST60", "ST70", "ST80", "ST90"]
DEMO_OPCUA = Path(__file__).resolve().parents[1] / "layouts" / "demo_plant" / "demo_plant_opcua.json"


def _render_layout(folder: Path) -> Path:
    """The OPC UA demo plant with only the 10 stations' state bindings (the nodes the bench server has)."""
    doc = json.loads(DEMO_OPCUA.read_text())
    doc["bindings"] = [b for b in doc["bindings"] if b.get("signal") == "state" and b.get("component") in
                       RENDER_STATIONS]
    missing = set(RENDER_STATIONS) - {b["component"] for b in doc["bindings"]}
    if missing:
        raise SystemExit(f"opcua_throughput: the demo layout has no state binding of {sorted(missing)}")
    doc["opcua"].update(publishing_interval_ms=20, sampling_interval_ms=0, queue_size=100)
    path = folder / "opcua_render_bench.json"
    path.write_text(json.dumps(doc))
    return path


def _render_latency_round(seconds: float, size: tuple[int, int]) -> tuple[list[float], dict]:
    """Source time -> the end of the frame that shows the change, in the real window (see the docstring)."""
    import tempfile

    from PySide6.QtCore import QEventLoop, QTimer

    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    folder = tempfile.TemporaryDirectory(prefix="opcua-render-")
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--stations",
                               ",".join(RENDER_STATIONS), "--rate", "1000", "--seconds", str(seconds + 3)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run_for(wait: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(max(1, int(wait * 1000)), loop.quit)
        loop.exec()

    window = MainWindow()
    try:
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "ready"
        window.opcua_endpoint = f"opc.tcp://127.0.0.1:{port}"
        window.show()
        view, ctrl = window.view, window.telemetry
        for _ in range(3):  # size the window so the 3D view gets the asked size
            window.resize(window.width() + size[0] - view.width(), window.height() + size[1] - view.height())
            run_for(0.2)
        loaded: list[str] = []
        window.layout_loaded.connect(loaded.append)
        window.open_layout(_render_layout(Path(folder.name)))
        deadline = time.monotonic() + 60
        while not (loaded and ctrl.opcua is not None and ctrl.opcua.status().subscribed):
            if time.monotonic() > deadline:
                raise SystemExit("opcua_throughput: the window did not load the layout and subscribe in 60 s")
            run_for(0.05)
        run_for(0.5)
        shown: dict[str, object] = {}  # station -> the state value last drained (what the screen shows)
        pending: list[float] = []  # source times of drained changes that switched a station's state
        delays: list[float] = []
        counts = {"drained": 0, "switched": 0, "frames": 0}
        measuring = [False]
        original_drain = ctrl.store.drain

        def traced_drain():  # benchmark-side instrumentation: the viewer's code is not changed
            drained = original_drain()
            for (component, signal), sample in drained.items():
                if signal != "state" or sample.source_time is None:
                    continue
                if measuring[0]:
                    counts["drained"] += 1
                    if shown.get(component) != sample.value:
                        counts["switched"] += 1
                        pending.append(sample.source_time)
                shown[component] = sample.value
            return drained

        ctrl.store.drain = traced_drain

        def on_frame_drawn(_t: float) -> None:
            counts["frames"] += 1
            if pending:
                sources = list(pending)
                pending.clear()
                # after the paint event: the frame composed into the window
                QTimer.singleShot(0, lambda: delays.extend(time.time() - t for t in sources))

        view.frame_drawn.connect(on_frame_drawn)
        server.stdin.write("go\n")
        server.stdin.flush()
        run_for(1.0)  # warm-up
        measuring[0] = True
        run_for(seconds)
        measuring[0] = False
        view.frame_drawn.disconnect(on_frame_drawn)
        counts["view"] = f"{view.width()}x{view.height()}"
        return delays, counts
    finally:
        window.close()
        server.kill()
        server.wait(10)
        folder.cleanup()


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under a minute and a half: shorter rounds, one each")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=None, help="server writing time per round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--size", default="1280x800", help="the 3D view's size for the latency figure (WxH)")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stations", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        stations = args.stations.split(",") if args.stations else None
        asyncio.run(_serve(args.serve, args.nodes, args.rate, args.seconds, stations))
        return 0
    ensure_display(__file__)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    size = parse_size(parser, args.size)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    rounds = args.rounds or (1 if args.quick else 3)
    results = [_round(args.nodes, 0.0, seconds) for _ in range(rounds)]
    rates = sorted(r["rate"] for r in results)
    rate = rates[len(rates) // 2]
    steps = _latency_round(seconds)
    step_p99 = _p99(steps) * 1000
    frames, counts = _render_latency_round(seconds * (1 if args.quick else 2), size)
    p99 = _p99(frames) * 1000
    median_ms = _median(frames) * 1000
    import asyncua

    setup = (f"{args.nodes} Double nodes written round-robin as fast as an asyncua {asyncua.__version__} server "
             f"in another process can ({seconds:g} s a round, {rounds} rounds, median), publishing interval "
             f"50 ms, sampling 0, queue 1000; {os.cpu_count()} CPUs")
    loss = ", ".join(f"{r['received']:,}/{r['written']:,} (server wrote {r['written'] / r['server_s']:,.0f}/s)"
                     for r in results)
    print(f"opcua_throughput:\n  setup    {setup}\n  rounds   {', '.join(f'{r:,.0f}' for r in rates)} values/s"
          f"\n  received/written {loss}\n  to the frame step: p99 {step_p99:.1f} ms, median "
          f"{_median(steps) * 1000:.1f} ms over {len(steps):,} drained samples"
          f"\n  to the drawn frame: p99 {p99:.1f} ms, median {median_ms:.1f} ms over {len(frames):,} shown "
          f"changes ({counts['drained']:,} drained, {counts['frames']:,} frames, view {counts['view']})",
          file=sys.stderr, flush=True)
    quick = "; --quick: one 4 s round" if args.quick else ""
    emit([
        {"figure": "opcua_values_per_s", "value": round(rate), "unit": "values/s", "goal": 10000,
         "higher_is_better": True,
         "note": f"OpcUaClient -> LatestValueStore, counted by store.stats().messages from first to last arrival; "
                 f"{setup}; received/written per round: {loss} (the server's write rate bounds the figure: the client "
                 f"kept up with all it wrote){quick}"},
        {"figure": "opcua_e2e_latency_p99_ms", "value": round(p99, 1), "unit": "ms", "goal": 150,
         "higher_is_better": False,
         "note": f"1,000 changes/s (10 station states x 100 Hz, publishing interval 20 ms), the server's source "
                 f"timestamp to the end of the frame that shows the change in the real main window (demo plant, "
                 f"3D view {counts['view']}): {len(frames):,} shown changes of {counts['drained']:,} drained, median "
                 f"{median_ms:.1f} ms; headless, to the 30 Hz pipeline step that drains the change (no drawing), p99 "
                 f"{step_p99:.1f} ms over {len(steps):,} drained samples{quick}"},
    ])
    return 0


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


if __name__ == "__main__":
    sys.exit(main())
