"""Benchmark: how fast the telemetry path drains an MQTT flood into the store, against a bare paho client.

Figures (names, units and goals from shared/BENCHMARKS.md), one JSON line each on stdout:

- ``telemetry_msgs_per_s``: messages per second decoded into the :class:`LatestValueStore` by a real
  :class:`TelemetryClient` (layout binding ``plant/line1/+/state`` -> component ``{1}``, signal ``temp``,
  JSON field ``temp``; 200 components ``M000..M199``), counted with ``store.stats().messages``, from the
  first to the last message received (connection set-up excluded). Median of the rounds.
- ``telemetry_ratio_to_paho``: that rate divided by the rate of a bare paho client (CallbackAPIVersion.VERSION2,
  ``loop_start``, an ``on_message`` that only counts) receiving the same flood from the same broker in the same
  run. Rounds alternate peer/ours (ABBA order) so both see the same machine noise.

Set-up: the script starts its own mosquitto on a free loopback port with limits that never drop QoS 0
messages for a slow subscriber (``max_inflight_messages 0``, ``max_queued_bytes 0``, a huge
``max_queued_messages``), so a subscriber slower than the publisher makes the broker queue: what is measured
is the subscriber's drain rate. The publisher runs in another process (this script re-executed with
``--publish-child``) and publishes N ~100-byte JSON payloads round-robin on 200 topics
``plant/line1/M{i:03d}/state`` at QoS 0 as fast as it can, either with paho (``--publisher paho``) or with
pre-encoded MQTT 3.1.1 PUBLISH packets written in batches (``--publisher raw``, the default: it finishes the
flood in a fraction of the drain time and so takes the least CPU from the subscriber on a 2-core machine).

Backlog check, reported per side: how long after the publisher finished the last message arrived, how many
messages were still queued then, and the receive rate of the last quarter of the messages against the first
quarter (a subscriber that slows down as it goes would show a lower last quarter), and the drain rate after
the publisher finished (no publisher competing for the CPUs) with its second half against its first. Loss
(received/sent) is reported too, and the subscriber process's CPU time per message (steadier than rates on a
noisy machine: the difference between the sides is what the viewer's path adds per message).

    python benchmarks/telemetry_throughput.py [--quick] [--messages N] [--rounds R] [--publisher raw|paho]
                                              [--profile]

``--profile`` adds one round of our client with cProfile on paho's network thread and a micro-benchmark of
``TelemetryRouter.handle`` alone; both go to stderr (no JSON lines for them).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import Broker, RawPublisher, emit, mqtt_string, publish_packet

ROOT = Path(__file__).resolve().parents[1]
TOPIC_FILTER = "plant/line1/+/state"
PEER_NAME = "bare paho client, do-nothing on_message"
DISTINCT_PAYLOADS = 1000
SAMPLE_INTERVAL_S = 0.005
STALL_S = 3.0  # no new message for this long after the publisher finished: the rest is lost


def topic_names(n_topics: int) -> list[str]:
    return [f"plant/line1/M{i:03d}/state" for i in range(n_topics)]


def make_payloads() -> list[bytes]:
    """~100-byte JSON payloads like a machine's state message (distinct counts, temperatures, times)."""
    out = []
    for k in range(DISTINCT_PAYLOADS):
        doc = {"state": ("running", "idle", "blocked")[k % 3], "count": 120000 + k,
               "temp": round(55 + (k % 997) / 83, 2),
               "ts": round(1732380000.123 + k * 0.001, 3), "rpm": 1400 + k % 200, "line": "line1", "mode": "auto"}
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def _publisher_child(port: int, n: int, n_topics: int, kind: str) -> None:
    """Runs in the publisher process: flood N messages, then print one JSON line with the times."""
    topics = topic_names(n_topics)
    payloads = make_payloads()
    if kind == "raw":
        pub = RawPublisher(port, f"bench-pub-{os.getpid()}")
        prefixed = [mqtt_string(t) for t in topics]
        batch = 500
        t0 = time.monotonic()
        for start in range(0, n, batch):
            pub.send(b"".join(publish_packet(prefixed[i % n_topics], payloads[i % DISTINCT_PAYLOADS])
                              for i in range(start, min(n, start + batch))))
        t1 = time.monotonic()
        pub.close()
    else:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
        client.connect("127.0.0.1", port, keepalive=120)
        deadline = time.monotonic() + 10
        while not client.is_connected():
            client.loop(0.05)
            if time.monotonic() > deadline:
                raise SystemExit("publisher: no CONNACK within 10 s")
        # No network thread: each publish writes to the socket at once (paho's fastest QoS 0 path).
        t0 = time.monotonic()
        for i in range(n):
            client.publish(topics[i % n_topics], payloads[i % DISTINCT_PAYLOADS], qos=0)
        while client.want_write():
            client.loop_write()
        t1 = time.monotonic()
        client.disconnect()
    print(json.dumps({"sent": n, "t_start": t0, "t_done": t1}), flush=True)


# ---- subscribers -----------------------------------------------------------------------------------------------
class PeerSubscriber:
    """The peer: a bare paho client on its own network thread whose on_message only counts."""

    name = "paho"

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.box = [0]
        box = self.box

        def on_message(_client, _userdata, _message) -> None:
            box[0] += 1

        def on_connect(client, _userdata, _flags, _reason, _properties=None) -> None:
            client.subscribe(TOPIC_FILTER, 0)

        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = on_message
        self.client.on_connect = on_connect
        self.client.connect("127.0.0.1", port, 60)
        self.client.loop_start()

    def count(self) -> int:
        return self.box[0]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bench_layout(n_topics: int):
    from viewer.model.layout import Component, Layout

    comps = [Component(id=f"M{i:03d}", kind="machine", position=(2.0 * i, 0.0, 0.0)) for i in range(n_topics)]
    bindings = [{"topic": TOPIC_FILTER, "component": "{1}", "signal": "temp", "field": "temp"}]
    return Layout(name="telemetry benchmark", components=comps, bindings=bindings)


class OurSubscriber:
    """Ours: the viewer's TelemetryClient routing into a LatestValueStore, exactly as the app wires it."""

    name = "ours"

    def __init__(self, port: int, n_topics: int) -> None:
        from viewer.telemetry.bindings import BindingTable
        from viewer.telemetry.mqtt_client import ConnectionState, MqttSettings, TelemetryClient
        from viewer.telemetry.router import TelemetryRouter
        from viewer.telemetry.store import LatestValueStore

        self.store = LatestValueStore()
        router = TelemetryRouter(BindingTable.from_layout(bench_layout(n_topics)), self.store)
        self.client = TelemetryClient(MqttSettings(host="127.0.0.1", port=port), router)
        self.client.start()
        deadline = time.monotonic() + 10
        while self.client.status().state is not ConnectionState.CONNECTED:
            if time.monotonic() > deadline:
                raise SystemExit(f"our client did not connect: {self.client.status().detail}")
            time.sleep(0.01)

    def count(self) -> int:
        return self.store.stats().messages

    def check(self) -> str:
        """What the store holds after a round, as a sanity check that messages were decoded, not just counted."""
        stats = self.store.stats()
        sample = self.store.latest(("M000", "temp"))
        bad = "" if stats.decode_errors == 0 else f", {stats.decode_errors} decode errors {stats.errors_by_topic}"
        ok = sample is not None and isinstance(sample.value, float)
        return f"M000.temp={sample.value if sample else None}{'' if ok else ' (NOT DECODED)'}{bad}"

    def stop(self) -> None:
        self.client.stop()


def _wait_subscribed(sub, port: int, topic: str, payload: bytes) -> int:
    """Publish probes until one arrives (the subscription is active), let stragglers land; the baseline count."""
    probe = RawPublisher(port, f"bench-probe-{os.getpid()}")
    try:
        deadline = time.monotonic() + 10
        while sub.count() == 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"{sub.name}: no probe message arrived within 10 s (not subscribed?)")
            probe.send(publish_packet(mqtt_string(topic), payload))
            time.sleep(0.05)
    finally:
        probe.close()
    time.sleep(0.2)
    return sub.count()


# ---- one round -------------------------------------------------------------------------------------------------
@dataclass
class RoundResult:
    side: str
    sent: int
    received: int
    rate: float  # msg/s, first to last arrival
    first_q_rate: float
    last_q_rate: float
    span_s: float
    tail_s: float  # last arrival minus publisher done
    backlog_at_pub_done: int  # messages not yet received when the publisher finished
    pub_rate: float
    drain_rate: float  # msg/s after the publisher finished (subscriber and broker alone on the CPUs)
    drain_halves: float  # drain rate of the second half of that backlog / of the first half
    broker_rss_mib: float
    cpu_us_per_msg: float  # this process's CPU time (user + system, all threads) per received message
    check: str = ""
    samples: list[tuple[float, int]] = field(default_factory=list, repr=False)


def _time_at(samples: list[tuple[float, int]], x: float) -> float:
    """The time the count reached ``x``, interpolated between the two samples around it."""
    for k in range(1, len(samples)):
        t1, c1 = samples[k]
        if c1 >= x:
            t0, c0 = samples[k - 1]
            return t0 + (t1 - t0) * (x - c0) / (c1 - c0) if c1 > c0 else t1
    return samples[-1][0]


def _local_rate(samples: list[tuple[float, int]], k: int, direction: int, span_s: float = 0.05) -> float:
    """Receive rate over ~span_s next to sample k, forward (+1) or backward (-1)."""
    t_k, c_k = samples[k]
    j = k
    while 0 <= j + direction < len(samples) and abs(samples[j][0] - t_k) < span_s:
        j += direction
    t_j, c_j = samples[j]
    return abs(c_j - c_k) / abs(t_j - t_k) if t_j != t_k else 0.0


def _arrival_window(samples: list[tuple[float, int]], final: int) -> tuple[float, float]:
    """First and last arrival times: the sample segments they fall in, refined with the neighbouring rate."""
    k = next(i for i, (_, c) in enumerate(samples) if c > 0)
    t_first = samples[k][0]
    if k > 0:
        rate = _local_rate(samples, k, +1)
        t_first = max(samples[k - 1][0], t_first - samples[k][1] / rate) if rate > 0 else samples[k - 1][0]
    j = next(i for i, (_, c) in enumerate(samples) if c >= final)
    t_last = samples[j][0]
    if j > 0:
        rate = _local_rate(samples, j - 1, -1)
        t_prev, c_prev = samples[j - 1]
        t_last = min(t_last, t_prev + (final - c_prev) / rate) if rate > 0 else t_last
    return t_first, t_last


def run_round(side: str, port: int, n: int, n_topics: int, publisher: str, broker: Broker,
              make_subscriber=None) -> RoundResult:
    """One flood received by one subscriber (``make_subscriber`` overrides the side's own, for experiments)."""
    gc.collect()
    if make_subscriber is not None:
        sub = make_subscriber()
    else:
        sub = PeerSubscriber(port) if side == "paho" else OurSubscriber(port, n_topics)
    payloads = make_payloads()
    try:
        baseline = _wait_subscribed(sub, port, topic_names(n_topics)[0], payloads[0])
        cpu0 = os.times()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--publish-child", str(port), str(n),
                                 str(n_topics), publisher], stdout=subprocess.PIPE, text=True)
        samples: list[tuple[float, int]] = []
        pub_info = None
        last_change = time.monotonic()
        last_count = 0
        rss = 0.0
        while True:
            now = time.monotonic()
            c = sub.count() - baseline
            samples.append((now, c))
            if c != last_count:
                last_count, last_change = c, now
            if pub_info is None and proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                if proc.returncode != 0:
                    raise SystemExit(f"publisher failed (exit {proc.returncode}): {out[-2000:]}")
                pub_info = json.loads(out.strip().splitlines()[-1])
                rss = broker.rss_mib()
            if pub_info is not None and (c >= pub_info["sent"] or now - last_change > STALL_S):
                break
            if pub_info is None and now - last_change > 60:
                proc.kill()
                raise SystemExit(f"{side}: nothing arrived for 60 s while the publisher ran")
            time.sleep(SAMPLE_INTERVAL_S)
        cpu1 = os.times()
        check = sub.check() if hasattr(sub, "check") else ""
    finally:
        sub.stop()
    final = samples[-1][1]
    sent = pub_info["sent"]
    if final <= 0:
        raise SystemExit(f"{side}: none of the {sent:,} messages arrived")
    t_first, t_last = _arrival_window(samples, final)
    quarter = final / 4
    t_q1 = _time_at(samples, quarter)
    t_q3 = _time_at(samples, 3 * quarter)
    t_done = pub_info["t_done"]
    c_done = min(final, _count_at(samples, t_done))
    drain_rate = drain_halves = float("nan")
    if final - c_done > 1000 and t_last > t_done:
        drain_rate = (final - c_done) / (t_last - t_done)
        t_mid = _time_at(samples, (c_done + final) / 2)
        drain_halves = (t_mid - t_done) / max(t_last - t_mid, 1e-9)
    return RoundResult(
        side=side, sent=sent, received=final,
        rate=final / (t_last - t_first),
        first_q_rate=quarter / max(t_q1 - t_first, 1e-9),
        last_q_rate=quarter / max(t_last - t_q3, 1e-9),
        span_s=t_last - t_first,
        tail_s=t_last - t_done,
        backlog_at_pub_done=round(sent - c_done),
        pub_rate=sent / max(t_done - pub_info["t_start"], 1e-9),
        drain_rate=drain_rate,
        drain_halves=drain_halves,
        broker_rss_mib=rss,
        cpu_us_per_msg=((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / max(final, 1) * 1e6,
        check=check,
        samples=samples,
    )


def _count_at(samples: list[tuple[float, int]], t: float) -> float:
    for k in range(1, len(samples)):
        t1, c1 = samples[k]
        if t1 >= t:
            t0, c0 = samples[k - 1]
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
    return samples[-1][1]


# ---- profiling (stderr only) -----------------------------------------------------------------------------------
def profile_ours(port: int, n: int, n_topics: int, publisher: str, broker: Broker) -> list[str]:
    """One round of our client with cProfile on paho's network thread, plus router.handle alone."""
    import cProfile
    import io
    import pstats

    import paho.mqtt.client as paho

    from viewer.telemetry.bindings import BindingTable
    from viewer.telemetry.router import TelemetryRouter
    from viewer.telemetry.store import LatestValueStore

    lines = []
    prof = cProfile.Profile()
    original = paho.Client._thread_main

    def thread_main(self) -> None:
        # cProfile sees only the thread it runs in: run paho's whole network thread under it. Connection
        # set-up is in it too, but is tiny against N messages.
        prof.runcall(original, self)

    paho.Client._thread_main = thread_main
    try:
        res = run_round("ours", port, n, n_topics, publisher, broker)
    finally:
        paho.Client._thread_main = original
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("tottime").print_stats(22)
    lines.append(f"cProfile of paho's thread in our client ({res.received:,} messages, {res.rate:,.0f} msg/s "
                 f"under the profiler); per-function self time:")
    lines += ["    " + ln for ln in stream.getvalue().splitlines() if ln.strip()][:40]
    stream = io.StringIO()
    stats.stream = stream
    stats.sort_stats("cumulative").print_stats(r"telemetry|on_message|_handle_publish|loop_read|_packet_read")
    lines.append("cumulative, message path only:")
    lines += ["    " + ln for ln in stream.getvalue().splitlines() if ln.strip()][:40]

    # The router alone, no network: what our decoding adds per message.
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(bench_layout(n_topics)), store)
    topics = topic_names(n_topics)
    payloads = make_payloads()
    m = 200_000
    work = [(topics[i % n_topics], payloads[i % DISTINCT_PAYLOADS]) for i in range(m)]
    handle = router.handle
    t0 = time.perf_counter()
    for topic, payload in work:
        handle(topic, payload, time.time())
    handle_us = (time.perf_counter() - t0) / m * 1e6
    t0 = time.perf_counter()
    for _topic, payload in work:
        json.loads(payload)
    json_us = (time.perf_counter() - t0) / m * 1e6
    lines.append(f"TelemetryRouter.handle alone: {handle_us:.2f} µs/message (json.loads of the payload alone "
                 f"{json_us:.2f} µs); {store.stats().messages:,} messages, {store.stats().decode_errors} errors")
    return lines


# ---- main ------------------------------------------------------------------------------------------------------
def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: fewer messages per round")
    parser.add_argument("--messages", type=int, default=None, help="messages per round (default 300000, quick 40000)")
    parser.add_argument("--topics", type=int, default=200, help="distinct topics / components (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    parser.add_argument("--publisher", choices=("raw", "paho"), default="raw",
                        help="raw: pre-encoded packets written in batches (default); paho: paho publish() per message")
    parser.add_argument("--profile", action="store_true", help="also profile our client (stderr only)")
    return parser.parse_args(argv)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--publish-child"]:
        _publisher_child(int(argv[1]), int(argv[2]), int(argv[3]), argv[4])
        return 0
    args = _parse_args(argv)
    sys.path.insert(0, str(ROOT))
    n = args.messages or (40_000 if args.quick else 300_000)
    payloads = make_payloads()
    payload_bytes = statistics.mean(len(p) for p in payloads)
    import paho.mqtt

    results: dict[str, list[RoundResult]] = {"paho": [], "ours": []}
    profile_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="telemetry-bench-") as tmp:
        broker = Broker(Path(tmp))
        try:
            # Warm-up (imports, first connections, broker allocations), not counted.
            for side in ("paho", "ours"):
                run_round(side, broker.port, min(n, 5_000), args.topics, args.publisher, broker)
            for r in range(args.rounds):
                order = ("paho", "ours") if r % 2 == 0 else ("ours", "paho")
                for side in order:
                    res = run_round(side, broker.port, n, args.topics, args.publisher, broker)
                    results[side].append(res)
                    print(f"round {r + 1}/{args.rounds} {side:>4}: {res.rate:8,.0f} msg/s  received "
                          f"{res.received:,}/{res.sent:,}  first/last quarter {res.first_q_rate:,.0f}/"
                          f"{res.last_q_rate:,.0f} msg/s  publisher {res.pub_rate:,.0f} msg/s, done "
                          f"{res.tail_s:.2f} s before the last arrival with {res.backlog_at_pub_done:,} in flight, "
                          f"drained at {res.drain_rate:,.0f} msg/s (2nd/1st half {res.drain_halves:.2f}), "
                          f"{res.cpu_us_per_msg:.1f} µs CPU/msg"
                          f"{'  ' + res.check if res.check else ''}", file=sys.stderr, flush=True)
            if args.profile:
                profile_lines = profile_ours(broker.port, n, args.topics, args.publisher, broker)
        finally:
            broker.stop()
            broker_log = broker.log.read_text(errors="replace").strip()

    ours, peer = results["ours"], results["paho"]
    rate = _median([r.rate for r in ours])
    peer_rate = _median([r.rate for r in peer])
    ratio = rate / peer_rate
    pair_ratios = ", ".join(f"{o.rate / p.rate:.2f}" for o, p in zip(ours, peer, strict=True))
    # The drain alone (after the publisher finished): no publisher or broker ingest competing for the CPUs.
    drain_ratio = _median([r.drain_rate for r in ours]) / _median([r.drain_rate for r in peer])
    # CPU time per message is less sensitive to scheduling noise than rates are.
    cpu_ours = _median([r.cpu_us_per_msg for r in ours])
    cpu_peer = _median([r.cpu_us_per_msg for r in peer])
    cpu_text = (f"subscriber CPU (user + system, whole process) per message: ours {cpu_ours:.1f} µs, paho "
                f"{cpu_peer:.1f} µs, so {cpu_ours - cpu_peer:.1f} µs/msg added by the viewer's path")
    sent = sum(r.sent for r in ours + peer)
    lost_ours = sum(r.sent - r.received for r in ours)
    lost_peer = sum(r.sent - r.received for r in peer)

    def backlog(rs: list[RoundResult]) -> str:
        return (f"last/first quarter rate {_median([r.last_q_rate / r.first_q_rate for r in rs]):.2f} "
                f"({_median([r.first_q_rate for r in rs]):,.0f} -> {_median([r.last_q_rate for r in rs]):,.0f} msg/s), "
                f"last message {_median([r.tail_s for r in rs]):.2f} s after the publisher finished with "
                f"{_median([r.backlog_at_pub_done for r in rs]):,.0f} still in flight (broker queue and socket "
                f"buffers), drained at {_median([r.drain_rate for r in rs]):,.0f} msg/s, second/first half of that "
                f"drain {_median([r.drain_halves for r in rs]):.2f}")

    pub_rate = _median([r.pub_rate for r in ours + peer])
    quick_note = f"; --quick: {n:,} messages per round instead of 300,000" if args.quick else ""
    setup = (f"{n:,} QoS 0 messages per round, ~{payload_bytes:.0f}-byte JSON payloads on {args.topics} topics "
             f"plant/line1/M###/state, publisher in another process ({args.publisher}, median "
             f"{pub_rate:,.0f} msg/s, so the broker queues and the subscriber's drain rate is measured), mosquitto "
             f"on loopback with no QoS 0 drop limits, {args.rounds} rounds per side alternating, median; "
             f"paho-mqtt {paho.mqtt.__version__}, {os.cpu_count()} CPUs")
    loss = (f"received/sent: ours {sum(r.received for r in ours):,}/{sum(r.sent for r in ours):,}, "
            f"paho {sum(r.received for r in peer):,}/{sum(r.sent for r in peer):,}")

    summary = [
        "telemetry_throughput:",
        f"  setup           {setup}",
        f"  ours            median {rate:,.0f} msg/s (rounds: {', '.join(f'{r.rate:,.0f}' for r in ours)})",
        f"  bare paho       median {peer_rate:,.0f} msg/s (rounds: {', '.join(f'{r.rate:,.0f}' for r in peer)})",
        f"  ratio           {ratio:.3f} (per round pair: {pair_ratios}); drain phase alone (after the publisher "
        f"finished): {drain_ratio:.3f}",
        f"  CPU             {cpu_text}",
        f"  loss            {loss} ({lost_ours + lost_peer} lost of {sent:,})",
        f"  backlog ours    {backlog(ours)}",
        f"  backlog paho    {backlog(peer)}",
        f"  broker RSS      up to {max(r.broker_rss_mib for r in ours + peer):.0f} MiB when the publisher finished",
    ]
    for r in ours[:1]:
        summary.append(f"  store check     {r.check}")
    if broker_log:
        summary.append(f"  broker log      {broker_log[-500:]}")
    summary += ["  " + ln for ln in profile_lines]
    print("\n".join(summary), file=sys.stderr, flush=True)

    figures = [
        {"figure": "telemetry_msgs_per_s", "value": round(rate), "unit": "msg/s", "goal": 20000,
         "higher_is_better": True, "peer": PEER_NAME, "peer_value": round(peer_rate),
         "note": (f"TelemetryClient -> TelemetryRouter -> LatestValueStore, binding {TOPIC_FILTER} -> {{1}}.temp "
                  f"(JSON field), counted by store.stats().messages from first to last arrival; rounds "
                  f"{', '.join(f'{r.rate:,.0f}' for r in ours)}; {setup}; {loss}; backlog: {backlog(ours)}"
                  f"{quick_note}")},
        {"figure": "telemetry_ratio_to_paho", "value": round(ratio, 3), "unit": "ratio", "goal": 0.8,
         "higher_is_better": True, "peer": PEER_NAME, "peer_value": round(peer_rate),
         "note": (f"median of ours / median of the bare paho client, same broker, same run, rounds alternating "
                  f"(per pair {pair_ratios}); ratio of the drain phase alone (after the publisher finished, no "
                  f"publisher or broker ingest competing for the CPUs): {drain_ratio:.3f}; {cpu_text}; "
                  f"peer backlog: {backlog(peer)}; {loss}{quick_note}")},
    ]
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
