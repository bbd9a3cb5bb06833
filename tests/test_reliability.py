"""The reliability suite (fast variants; ``benchmarks/reliability_report.py`` runs the long ones).

Each test drives the real parts: a mosquitto on a free loopback port, the
viewer's own client and pipeline, real files. The scenario numbers follow
``docs/reliability.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import time

import pytest
from mosquitto_broker import Mosquitto
from tcp_proxy import TcpProxy
from test_cli import twin_viewer
from test_telemetry_mqtt import Publisher, wait_for

from viewer.model.layout import Component, Layout
from viewer.model.layout_io import save_layout
from viewer.telemetry.alarms import AlarmState
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.mqtt_client import ConnectionState, MqttSettings, TelemetryClient
from viewer.telemetry.pipeline import TelemetryPipeline
from viewer.telemetry.router import TelemetryRouter
from viewer.telemetry.session import SessionRecording
from viewer.telemetry.store import LatestValueStore


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


def rules_layout() -> Layout:
    comps = [Component(i, "station", (0.0, 0.0, 0.0)) for i in ("OVEN", "PRESS")]
    return Layout(name="t", components=comps, bindings=[
        {"topic": "plant/OVEN/temp", "component": "OVEN", "signal": "temp", "field": "t", "unit": "°C",
         "rules": [{"above": 80.0, "hysteresis": 1.0, "state": "warning", "message": "Oven hot"}]},
        {"topic": "plant/PRESS/force", "component": "PRESS", "signal": "force", "encoding": "number",
         "rules": [{"below": 10.0, "state": "warning", "message": "Force low"}]},
        {"topic": "plant/PRESS/door", "component": "PRESS", "signal": "door_open", "field": "open",
         "rules": [{"equals": True, "state": "fault", "message": "Door open"}]},
    ])


WRONG_JSON = ["NaN", "abc", None, True, [1, 2], {"x": 1}, "1_000", "١٢", "-inf"]
WRONG_NUMBER_TEXT = [b"NaN", b"abc", b"null", b"true", b"[1,2]", b'{"x":1}', b"1_000", "١٢".encode(), b"inf"]


def test_4_wrong_type_values_are_counted_and_never_clear_an_active_alarm(broker):
    pipeline = TelemetryPipeline(rules_layout())
    client = TelemetryClient(MqttSettings(host="127.0.0.1", port=broker.port), pipeline.router)
    client.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: client.status().subscribed, message="subscribed")
        pub.send("plant/OVEN/temp", json.dumps({"t": 85.0}))
        pub.send("plant/PRESS/force", b"4.5")
        pub.send("plant/PRESS/door", json.dumps({"open": True}))
        wait_for(lambda: pipeline.store.stats().messages >= 3, message="the good values")
        pipeline.step(time.time())
        active = {(a.component, a.signal) for a in pipeline.alarms.alarms.values() if a.condition_active}
        assert active == {("OVEN", "temp"), ("PRESS", "force"), ("PRESS", "door_open")}
        for value in WRONG_JSON:
            pub.send("plant/OVEN/temp", json.dumps({"t": value}))
            pub.send("plant/PRESS/door", json.dumps({"open": value if value is not True else "yes"}))
        for payload in WRONG_NUMBER_TEXT:
            pub.send("plant/PRESS/force", payload)
        sent = 3 + 2 * len(WRONG_JSON) + len(WRONG_NUMBER_TEXT)
        wait_for(lambda: pipeline.store.stats().messages >= sent, message="every wrong value")
        pipeline.step(time.time())
        stats = pipeline.store.stats()
        assert {t: e.count for t, e in stats.errors_by_topic.items()} == {
            "plant/OVEN/temp": len(WRONG_JSON), "plant/PRESS/door": len(WRONG_JSON),
            "plant/PRESS/force": len(WRONG_NUMBER_TEXT)}
        # No alarm cleared, no state went back to normal, no value changed, no NaN in the plotted history.
        still = {(a.component, a.signal) for a in pipeline.alarms.alarms.values() if a.condition_active}
        assert still == active
        assert all(a.state is AlarmState.UNACK_ACTIVE for a in pipeline.alarms.alarms.values())
        assert pipeline.component_states() == {"OVEN": "warning", "PRESS": "fault"}
        assert pipeline.store.latest(("OVEN", "temp")).value == 85.0
        assert pipeline.store.latest(("PRESS", "force")).value == 4.5
        assert pipeline.store.latest(("PRESS", "door_open")).value is True
        assert all(math.isfinite(v) for hist in pipeline.history.values() for _t, v in hist)
    finally:
        pub.close()
        client.stop()


# --------------------------------------------------------------------------- client ids and takeovers
def counting_layout() -> Layout:
    return Layout(name="t", components=[Component("ST10", "station", (0.0, 0.0, 0.0))], bindings=[
        {"topic": "plant/ST10/count", "component": "ST10", "signal": "count", "encoding": "number", "qos": 1}],
        mqtt={"host": "127.0.0.1", "client_id": "twin-viewer"})


def layout_client(port: int, **mqtt) -> tuple[TelemetryClient, TelemetryPipeline]:
    layout = counting_layout()
    layout.mqtt = {**layout.mqtt, "port": port, **mqtt}
    pipeline = TelemetryPipeline(layout)
    settings = MqttSettings.from_layout(layout.mqtt)
    settings.reconnect_min_s = settings.reconnect_max_s = 1
    return TelemetryClient(settings, pipeline.router), pipeline


def test_two_viewers_on_one_layout_get_their_own_ids_and_lose_nothing(broker):
    (a, pa), (b, pb) = layout_client(broker.port), layout_client(broker.port)
    a.start()
    b.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: a.status().subscribed and b.status().subscribed, message="both subscribed")
        assert a.client_id != b.client_id and a.client_id.startswith("twin-viewer-")
        for i in range(200):
            pub.send("plant/ST10/count", str(i))
            if i % 50 == 0:
                time.sleep(1.2)  # long enough for a second of mutual eviction to show, if ids collided
        wait_for(lambda: pa.store.stats().messages >= 200 and pb.store.stats().messages >= 200,
                 message="every message at both viewers")
        assert pa.store.stats().messages == pb.store.stats().messages == 200
        assert a.status().connects == b.status().connects == 1  # nobody was thrown out
    finally:
        pub.close()
        a.stop()
        b.stop()


def test_a_persistent_session_keeps_a_stable_id_and_a_second_instance_gets_the_next(broker):
    a, _ = layout_client(broker.port, clean_session=False)
    b, _ = layout_client(broker.port, clean_session=False)
    a.start()
    b.start()
    try:
        wait_for(lambda: a.status().state is b.status().state is ConnectionState.CONNECTED, message="both up")
        first, second = a.client_id, b.client_id
        assert second == first + "-2"
        a.stop()
        again, _ = layout_client(broker.port, clean_session=False)
        again.start()  # the first instance restarted: it finds its own session (and queued messages) again
        wait_for(lambda: again.status().state is ConnectionState.CONNECTED, message="restarted instance")
        assert again.client_id == first
        again.stop()
    finally:
        a.stop()
        b.stop()


def test_an_exact_client_id_used_twice_is_named_a_takeover(broker):
    a, _ = layout_client(broker.port, client_id="line1-hmi", client_id_exact=True)
    b, _ = layout_client(broker.port, client_id="line1-hmi", client_id_exact=True)
    a.start()
    wait_for(lambda: a.status().state is ConnectionState.CONNECTED, message="first up")
    b.start()
    try:
        def named() -> bool:
            reasons = [g.reason for c in (a, b) for g in c.status().gaps]
            return any(r.startswith("session taken over") and "'line1-hmi'" in r for r in reasons)
        wait_for(named, timeout=20, message="a gap named as a takeover")
    finally:
        a.stop()
        b.stop()


def test_recorder_and_viewer_on_the_same_persistent_layout_do_not_collide(broker):
    viewer, _ = layout_client(broker.port, clean_session=False)
    recorder, _ = layout_client(broker.port, clean_session=False)
    recorder.settings.role = "recorder"
    viewer.start()
    recorder.start()
    try:
        wait_for(lambda: viewer.status().state is recorder.status().state is ConnectionState.CONNECTED)
        assert viewer.client_id.endswith("-viewer") and recorder.client_id.endswith("-recorder")
    finally:
        viewer.stop()
        recorder.stop()


# --------------------------------------------------------------------------- 8: TLS failures, each named
@pytest.fixture(scope="module")
def tls_brokers(tmp_path_factory):
    """Real mosquitto TLS listeners, each broken in one way, and the CA files a client may trust."""
    trustme = pytest.importorskip("trustme")
    root = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()

    def write(name, blob):
        blob.write_to_path(str(root / name))
        return root / name

    ca_file, other_file = write("ca.pem", ca.cert_pem), write("other-ca.pem", other.cert_pem)
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    leaves = {"good": ca.issue_cert("127.0.0.1"),
              "expired": ca.issue_cert("127.0.0.1", not_before=now - 30 * day, not_after=now - day),
              "not yet valid": ca.issue_cert("127.0.0.1", not_before=now + 2 * day, not_after=now + 30 * day),
              "other host": ca.issue_cert("broker.example"),
              "client cert": ca.issue_cert("127.0.0.1")}
    brokers = {}
    for name, leaf in leaves.items():
        folder = root / name.replace(" ", "-")
        folder.mkdir()
        cert = write(f"{folder.name}.pem", leaf.cert_chain_pems[0])
        key = write(f"{folder.name}.key", leaf.private_key_pem)
        b = Mosquitto(folder, tls=(ca_file, cert, key))
        if name == "client cert":
            b.config.write_text(b.config.read_text().replace("require_certificate false", "require_certificate true"))
        brokers[name] = b.start()
    (root / "plain").mkdir()
    brokers["plain"] = Mosquitto(root / "plain").start()
    yield brokers, ca_file, other_file
    for b in brokers.values():
        b.stop()


def tls_detail(port: int, ca_file, tls: bool = True) -> tuple[str, ConnectionState, int]:
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(rules_layout()), store)
    client = TelemetryClient(MqttSettings(host="127.0.0.1", port=port, tls=tls, ca_file=ca_file,
                                          reconnect_min_s=1, reconnect_max_s=1), router)
    client.start()
    try:
        wait_for(lambda: client.status().detail not in ("", f"connecting to {client.settings.describe()}"),
                 message="the first attempt's outcome")
        time.sleep(1.5)  # a second attempt: the description stays the same, and no plain fallback connects
        status = client.status()
        return status.detail, status.state, status.connects
    finally:
        client.stop()


@pytest.mark.parametrize(("case", "trust", "expected"), [
    ("expired", "ca", "certificate has expired"),
    ("not yet valid", "ca", "not valid yet; check this PC's clock"),
    ("other host", "ca", "not issued for '127.0.0.1' (host name mismatch)"),
    ("good", "other", "not signed by the CA in other-ca.pem"),
    ("client cert", "ca", "requires a client certificate"),
    ("plain", "ca", "is it a plain MQTT port?"),
])
def test_8_each_tls_failure_is_named_and_never_falls_back_to_plain(tls_brokers, case, trust, expected):
    brokers, ca_file, other_file = tls_brokers
    detail, state, connects = tls_detail(brokers[case].port, ca_file if trust == "ca" else other_file)
    assert expected in detail, detail
    assert detail.startswith("TLS")
    assert connects == 0 and state is not ConnectionState.CONNECTED


def test_8_the_good_certificate_connects_and_a_plain_client_on_a_tls_port_is_told(tls_brokers):
    brokers, ca_file, _ = tls_brokers
    detail, state, connects = tls_detail(brokers["good"].port, ca_file)
    assert state is ConnectionState.CONNECTED and connects == 1, detail
    detail, state, connects = tls_detail(brokers["good"].port, None, tls=False)
    assert connects == 0
    assert "does this port expect TLS (mqtts)?" in detail, detail


def test_8_record_exits_3_naming_the_failure(tls_brokers, tmp_path):
    brokers, ca_file, _ = tls_brokers
    layout = rules_layout()
    layout.mqtt = {"host": "127.0.0.1", "port": brokers["expired"].port, "tls": {"ca_file": str(ca_file)}}
    path = tmp_path / "layout.json"
    save_layout(layout, path)
    result = twin_viewer("record", "--layout", path, "--out", tmp_path / "s.mcap", "--duration", "3")
    assert result.returncode == 3, result.stderr
    assert "never connected: TLS: the broker's certificate has expired" in result.stderr


# --------------------------------------------------------------------------- 9: secrets
def test_9_a_password_without_tls_is_warned_about_in_status_log_and_check(broker, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TWIN_TEST_SECRET", "hunter2-not-in-any-file")
    layout = rules_layout()
    layout.mqtt = {"host": "127.0.0.1", "port": broker.port, "username": "hmi", "password_env": "TWIN_TEST_SECRET"}
    settings = MqttSettings.from_layout(layout.mqtt)
    client = TelemetryClient(settings, TelemetryPipeline(layout).router)
    with caplog.at_level(logging.WARNING, logger="viewer.telemetry.mqtt_client"):
        client.start()
    try:
        assert any("sent unencrypted" in r.getMessage() for r in caplog.records)
        assert any("sent unencrypted" in w for w in client.status().warnings)
        assert "hunter2" not in caplog.text
    finally:
        client.stop()
    path = tmp_path / "layout.json"
    save_layout(layout, path)
    checked = twin_viewer("check", path)
    assert "password in clear" in checked.stdout and "'hmi' is sent unencrypted" in checked.stdout
    layout.mqtt["tls"] = {}
    save_layout(layout, path)
    assert "password in clear" not in twin_viewer("check", path).stdout


# --------------------------------------------------------------------------- 1, 2: link losses become gaps
def recorded_events(path) -> list[dict]:
    from viewer.telemetry.recording import EVENTS_TOPIC, read_messages

    return [json.loads(m.payload) for m in read_messages(path) if m.topic == EVENTS_TOPIC]


def test_a_flapping_link_records_every_gap_with_its_start_and_end(broker, tmp_path):
    proxy = TcpProxy(broker.port)
    client, pipeline = layout_client(proxy.port)
    client.settings.reconnect_min_s = client.settings.reconnect_max_s = 0.02
    session = SessionRecording(pipeline, tmp_path / "flap.mcap", gaps=lambda: client.status().gaps).start()
    client.start()
    flaps = 105  # more than the 100 the client used to keep
    try:
        for n in range(flaps):
            wait_for(lambda n=n: client.status().connects == n + 1, message=f"connection {n + 1}")
            session.poll()
            proxy.cut()
        wait_for(lambda: client.status().connects == flaps + 1, message="the last reconnection")
        session.poll()
    finally:
        session.stop()
        client.stop()
        proxy.close()
    status = client.status()
    assert status.gaps_total == flaps + 1  # and the first "not connected yet"
    events = recorded_events(tmp_path / "flap.mcap")
    starts = [e for e in events if e["kind"] == "gap"]
    ends = [e for e in events if e["kind"] == "gap_end"]
    assert [e["number"] for e in starts] == [e["number"] for e in ends] == list(range(2, flaps + 2))
    for start, end in zip(starts, ends, strict=True):
        assert start["start"] <= end["end"] and end["start"] == start["start"]
        assert "Connection reset by peer" in start["reason"]  # named as the network's doing, not a takeover


def test_2_a_half_open_link_is_noticed_within_one_and_a_half_keepalives(broker, tmp_path):
    proxy = TcpProxy(broker.port)
    client, pipeline = layout_client(proxy.port, keepalive=4)
    session = SessionRecording(pipeline, tmp_path / "half.mcap", gaps=lambda: client.status().gaps).start()
    client.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: client.status().subscribed, message="subscribed")
        pub.send("plant/ST10/count", b"1")
        wait_for(lambda: pipeline.store.stats().messages == 1, message="a message")
        proxy.freeze()
        frozen_at = time.time()
        wait_for(lambda: client.status().gaps_total == 2, timeout=10, message="the half-open link noticed")
        noticed = client.status().gaps[-1]
        assert noticed.start - frozen_at <= 1.5 * 4, noticed  # keep-alive 4 s
        assert "keep-alive" in noticed.reason
        assert noticed.quiet_since is not None and noticed.quiet_since <= frozen_at
        proxy.thaw()
        wait_for(lambda: client.status().connects == 2, timeout=15, message="back")
        session.poll()
    finally:
        session.stop()
        pub.close()
        client.stop()
        proxy.close()
    starts = [e for e in recorded_events(tmp_path / "half.mcap") if e["kind"] == "gap"]
    assert len(starts) == 1 and starts[0]["quiet_since"] <= frozen_at <= starts[0]["start"]


def test_1_broker_restart_with_a_persistent_session_loses_nothing(tmp_path):
    broker = Mosquitto(tmp_path)
    broker.config.write_text(broker.config.read_text().replace(
        "persistence false", f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 1"))
    broker.start()
    client, pipeline = layout_client(broker.port, clean_session=False)
    session = SessionRecording(pipeline, tmp_path / "restart.mcap", gaps=lambda: client.status().gaps).start()
    client.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: client.status().subscribed, message="subscribed")
        for i in range(300):
            pub.send("plant/ST10/count", str(i))
        broker.stop()  # killed mid-session (SIGTERM: it saves the sessions it holds)
        pub.close()
        time.sleep(2)
        broker.start()
        pub = Publisher(broker.port)
        for i in range(300, 600):
            pub.send("plant/ST10/count", str(i))  # queued for the viewer's session until it is back
        wait_for(lambda: pipeline.store.stats().messages >= 600, timeout=30, message="all 600 messages")
        # QoS 1 redelivers what was in flight at the kill: those duplicates reach 600 before the last
        # originals do, so wait until nothing more arrives
        settled = {"count": -1, "since": time.monotonic()}

        def quiet() -> bool:
            count = pipeline.store.stats().messages
            if count != settled["count"]:
                settled["count"], settled["since"] = count, time.monotonic()
            return time.monotonic() - settled["since"] > 1.5

        wait_for(quiet, timeout=30, message="the redeliveries to settle")
        session.poll()
    finally:
        stats = session.stop()
        pub.close()
        client.stop()
        broker.stop()
    from viewer.telemetry.recording import read_messages

    # QoS 1 is at least once: a message in flight at the kill may come twice, none may be missing.
    values = [int(m.payload) for m in read_messages(tmp_path / "restart.mcap") if m.topic == "plant/ST10/count"]
    missing = sorted(set(range(600)) - set(values))
    assert not missing and len(values) - 600 <= 5, (missing[:20], len(values), client.status().gaps)
    assert stats.dropped == 0
    gap = [e for e in recorded_events(tmp_path / "restart.mcap") if e["kind"] == "gap_end"]
    assert len(gap) == 1 and gap[0]["end"] - gap[0]["start"] >= 1.9


FLOOD_PUBLISHER = """
import sys, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port, count = int(sys.argv[1]), int(sys.argv[2])
c = paho.Client(CallbackAPIVersion.VERSION2, client_id="flood")
c.max_inflight_messages_set(0)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", port)
c.loop_start()
infos = [c.publish(f"plant/ST10/count", str(i), qos=1) for i in range(count)]
for info in infos[-100:]:
    info.wait_for_publish(30)
c.loop_stop()
c.disconnect()
"""


def test_3_a_flood_the_broker_cannot_queue_is_counted_and_marked_in_the_recording(tmp_path):
    """The broker's queue for the viewer holds 200 messages; a slow viewer under a flood from another process
    makes mosquitto drop ("outgoing messages are being dropped"): the drops the broker counts reach the
    status, the recording and the replay's timeline."""
    import subprocess
    import sys

    broker = Mosquitto(tmp_path)
    broker.config.write_text(broker.config.read_text().replace("max_queued_messages 1000000",
                                                               "max_queued_messages 200\nsys_interval 1"))
    broker.start()
    client, pipeline = layout_client(broker.port)
    handle = pipeline.router.handle

    def slow_viewer(topic: str, payload: bytes, received: float) -> None:  # a weak control-room PC
        time.sleep(0.0005)
        handle(topic, payload, received)

    client.router.handle = slow_viewer
    session = SessionRecording(pipeline, tmp_path / "flood.mcap", gaps=lambda: client.status().gaps,
                               broker_dropped=lambda: client.status().broker_dropped).start()
    client.start()
    try:
        wait_for(lambda: client.status().subscribed and client.status().broker_dropped == 0, timeout=15,
                 message="subscribed, with the broker's drop counter read")
        flood = subprocess.run([sys.executable, "-c", FLOOD_PUBLISHER, str(broker.port), "20000"], timeout=120,
                               capture_output=True, text=True)
        assert flood.returncode == 0, flood.stderr
        wait_for(lambda: (client.status().broker_dropped or 0) > 0, timeout=15, message="the broker's drops")
        time.sleep(1.5)  # the next $SYS reading, after the flood settled
        session.poll()
        dropped = client.status().broker_dropped
    finally:
        stats = session.stop()
        client.stop()
        broker.stop()
    received = pipeline.store.stats().messages
    assert stats.dropped == 0 and stats.messages == received  # the recorder kept what arrived
    assert received + dropped >= 20000 * 0.98 and dropped > 1000  # what did not arrive, the broker counted
    events = [e for e in recorded_events(tmp_path / "flood.mcap") if e["kind"] == "broker_dropped"]
    assert sum(e["count"] for e in events) == dropped and events[-1]["total"] == dropped
    from viewer.telemetry.replay import Replayer

    replayer = Replayer(tmp_path / "flood.mcap", pipeline.layout)
    replayer.index()
    assert any(m.kind == "dropped" and "broker dropped" in m.text for m in replayer.markers)
