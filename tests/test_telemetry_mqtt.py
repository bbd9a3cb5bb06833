"""The MQTT client against a real mosquitto on a free loopback port: receive, decode, reconnect, TLS, auth."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
import pytest
from mosquitto_broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from viewer.model.layout import Component, Layout
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.mqtt_client import ConnectionState, MqttSettings, SettingsError, TelemetryClient
from viewer.telemetry.router import TelemetryRouter
from viewer.telemetry.store import LatestValueStore


def small_layout() -> Layout:
    comps = [Component(id=i, kind="station", position=(0.0, 0.0, 0.0)) for i in ("ST10", "ST20")]
    bindings = [
        {"topic": "plant/+/state", "component": "{1}", "signal": "state", "field": "state"},
        {"topic": "plant/+/temp", "component": "{1}", "signal": "temp", "encoding": "number"},
        {"topic": "plant/ST10/axes", "component": "ST10", "signal": "axis2", "field": "data.axes.2", "qos": 1},
    ]
    return Layout(name="t", components=comps, bindings=bindings)


def wait_for(predicate, timeout: float = 10.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


class Publisher:
    """A plain paho client publishing like a plant would (QoS 1 so nothing is lost in tests)."""

    def __init__(self, port: int, tls_ca: str | None = None, auth: tuple[str, str] | None = None) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        if auth:
            self.client.username_pw_set(*auth)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


def make_client(port: int, **settings) -> tuple[TelemetryClient, LatestValueStore]:
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(small_layout()), store)
    client = TelemetryClient(MqttSettings(host="127.0.0.1", port=port, reconnect_min_s=1, reconnect_max_s=2,
                                          **settings), router)
    return client, store


def test_receives_decodes_and_routes_by_wildcard(broker):
    client, store = make_client(broker.port)
    client.start()
    try:
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED, message="connection")
        pub = Publisher(broker.port)
        pub.send("plant/ST10/state", json.dumps({"state": "running", "count": 41}))
        pub.send("plant/ST20/temp", b" 61.5 ")
        pub.send("plant/ST10/axes", json.dumps({"data": {"axes": [10, 20, 30.5]}}))
        wait_for(lambda: store.stats().messages >= 3, message="three messages")
        assert store.latest(("ST10", "state")).value == "running"
        assert store.latest(("ST20", "temp")).value == 61.5
        assert store.latest(("ST10", "axis2")).value == 30.5
        assert store.stats().decode_errors == 0
        pub.close()
    finally:
        client.stop()


def test_malformed_payloads_are_counted_per_topic_and_the_loop_keeps_running(broker):
    client, store = make_client(broker.port)
    client.start()
    try:
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED)
        pub = Publisher(broker.port)
        pub.send("plant/ST10/state", b"{not json")
        pub.send("plant/ST10/state", json.dumps({"status": "running"}))  # field missing
        pub.send("plant/ST20/temp", b"hot")
        pub.send("plant/ST20/temp", b"\xff\xfe")
        pub.send("plant/GHOST/temp", b"12")  # a component the layout does not have
        pub.send("plant/ST20/temp", b"12.25")  # and the loop still decodes good ones
        wait_for(lambda: store.latest(("ST20", "temp")) is not None, message="the good value")
        stats = store.stats()
        assert stats.decode_errors == 5
        assert stats.errors_by_topic["plant/ST10/state"].count == 2
        assert "no field 'state'" in stats.errors_by_topic["plant/ST10/state"].last_reason
        assert stats.errors_by_topic["plant/ST20/temp"].count == 2
        assert "not UTF-8" in stats.errors_by_topic["plant/ST20/temp"].last_reason
        assert "GHOST" in stats.errors_by_topic["plant/GHOST/temp"].last_reason
        assert store.latest(("ST20", "temp")).value == 12.25
        pub.close()
    finally:
        client.stop()


def test_broker_restart_reconnects_resubscribes_and_records_the_gap(broker):
    client, store = make_client(broker.port)
    client.start()
    try:
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED)
        broker.restart(pause_s=1.0)
        wait_for(lambda: client.status().connects >= 2, timeout=20, message="reconnection")
        pub = Publisher(broker.port)
        pub.send("plant/ST20/temp", b"70")
        wait_for(lambda: store.latest(("ST20", "temp")) is not None, message="a message after the restart")
        status = client.status()
        assert status.state is ConnectionState.CONNECTED
        closed = [g for g in status.gaps if g.end is not None]
        assert len(closed) >= 2  # the initial connect, and the restart
        assert closed[-1].end - closed[-1].start >= 0.9  # the broker was away at least the pause
        pub.close()
    finally:
        client.stop()


def test_wrong_password_is_refused_with_a_clear_status(tmp_path, monkeypatch):
    b = Mosquitto(tmp_path, users={"hmi": "correct horse"}).start()
    try:
        monkeypatch.setenv("TWIN_TEST_PW", "wrong")
        client, _ = make_client(b.port, username="hmi", password_env="TWIN_TEST_PW")
        client.start()
        wait_for(lambda: client.status().state is ConnectionState.REFUSED, message="refusal")
        assert "refused" in client.status().detail and "authori" in client.status().detail.lower()
        client.stop()
        monkeypatch.setenv("TWIN_TEST_PW", "correct horse")
        client, store = make_client(b.port, username="hmi", password_env="TWIN_TEST_PW")
        client.start()
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED, message="connection")
        pub = Publisher(b.port, auth=("hmi", "correct horse"))
        pub.send("plant/ST10/temp", b"1")
        wait_for(lambda: store.latest(("ST10", "temp")) is not None)
        pub.close()
        client.stop()
    finally:
        b.stop()


def test_a_named_but_missing_password_variable_is_a_settings_error(monkeypatch):
    monkeypatch.delenv("TWIN_TEST_MISSING", raising=False)
    client, _ = make_client(1, username="hmi", password_env="TWIN_TEST_MISSING")
    with pytest.raises(SettingsError, match="TWIN_TEST_MISSING"):
        client.start()


def test_tls_with_a_test_ca(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    server.private_key_pem.write_to_path(str(key_file))
    b = Mosquitto(tmp_path, tls=(ca_file, cert_file, key_file)).start()
    try:
        client, store = make_client(b.port, tls=True, ca_file=ca_file)
        client.start()
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED, message="TLS connection")
        assert client.settings.describe().startswith("mqtts://")
        pub = Publisher(b.port, tls_ca=str(ca_file))
        pub.send("plant/ST10/temp", b"42")
        wait_for(lambda: store.latest(("ST10", "temp")) is not None)
        pub.close()
        client.stop()
        # A client that does not trust this CA never connects.
        other = trustme.CA()
        other_file = tmp_path / "other-ca.pem"
        other.cert_pem.write_to_path(str(other_file))
        client, _ = make_client(b.port, tls=True, ca_file=other_file)
        client.start()
        time.sleep(1.5)
        assert client.status().state is not ConnectionState.CONNECTED
        client.stop()
    finally:
        b.stop()


def test_read_only_unless_the_layout_allows_publishing(broker):
    client, _ = make_client(broker.port)
    with pytest.raises(PermissionError, match="read-only"):
        client.publish("plant/ST10/cmd", b"stop")
    settings = MqttSettings.from_layout({"host": "127.0.0.1", "port": broker.port, "allow_publish": True})
    assert settings.allow_publish
    assert not MqttSettings.from_layout({"host": "h"}).allow_publish
