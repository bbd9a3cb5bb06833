"""Reliability scenario 6: a Sparkplug B edge node publishing through a real mosquitto.

The edge node here is written against the specification, not against the viewer: its payloads are encoded
by Google's protobuf from the official schema (test_sparkplug.REFERENCE), its NDEATH is the MQTT will the
broker publishes when the node's connection dies, and it has a device the layout does not bind.
"""

from __future__ import annotations

import socket
import time

import paho.mqtt.client as paho
import pytest
from mosquitto_broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from test_sparkplug import REFERENCE
from test_telemetry_mqtt import wait_for

from viewer.model.layout import Component, Layout
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.mqtt_client import MqttSettings, TelemetryClient
from viewer.telemetry.pipeline import TelemetryPipeline

GROUP, NODE = "Plant", "Edge1"
DOUBLE, INT32, BOOLEAN, STRING, INT64, DATASET, TEMPLATE = 10, 3, 11, 12, 4, 16, 19


class EdgeNode:
    """A minimal Sparkplug B edge node: NBIRTH/DBIRTH/DDATA with one seq counter, bdSeq, NDEATH as its will."""

    def __init__(self, port: int, bd_seq: int = 0) -> None:
        self.port, self.bd_seq, self.seq = port, bd_seq, 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{bd_seq}")
        death = REFERENCE(timestamp=self.now())
        death.metrics.add(name="bdSeq", datatype=INT64, long_value=bd_seq)
        self.client.will_set(f"spBv1.0/{GROUP}/NDEATH/{NODE}", death.SerializeToString(), qos=1)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    @staticmethod
    def now() -> int:
        return int(time.time() * 1000)

    def publish(self, kind: str, device: str | None, payload) -> None:
        topic = f"spBv1.0/{GROUP}/{kind}/{NODE}" + (f"/{device}" if device else "")
        if kind != "NBIRTH":
            payload.seq = self.seq
        self.seq = (self.seq + 1) & 0xFF
        self.client.publish(topic, payload.SerializeToString(), qos=1).wait_for_publish(5)

    def births(self) -> None:
        self.seq = 0
        birth = REFERENCE(timestamp=self.now(), seq=0)
        birth.metrics.add(name="bdSeq", datatype=INT64, long_value=self.bd_seq)
        birth.metrics.add(name="Node Control/Rebirth", datatype=BOOLEAN, boolean_value=False)
        definition = birth.metrics.add(name="_types_/Motor", datatype=TEMPLATE)
        definition.template_value.is_definition = True
        definition.template_value.metrics.add(name="rpm", datatype=DOUBLE, double_value=0.0)
        self.publish("NBIRTH", None, birth)
        press = REFERENCE(timestamp=self.now())
        press.metrics.add(name="Temperature", alias=1, datatype=DOUBLE, double_value=40.0)
        press.metrics.add(name="State", alias=2, datatype=STRING, string_value="running")
        table = press.metrics.add(name="Recipe", alias=3, datatype=DATASET)
        table.dataset_value.num_of_columns = 1
        table.dataset_value.columns.append("step")
        self.publish("DBIRTH", "Press", press)
        sibling = REFERENCE(timestamp=self.now())
        sibling.metrics.add(name="Level", alias=1, datatype=DOUBLE, double_value=1.0)
        self.publish("DBIRTH", "Tank", sibling)

    def press_data(self, temperature: float, name: str | None = None) -> None:
        data = REFERENCE(timestamp=self.now())
        metric = data.metrics.add(alias=1, double_value=temperature)
        if name:
            metric.name = name
        self.publish("DDATA", "Press", data)

    def tank_data(self, level: float) -> None:
        data = REFERENCE(timestamp=self.now())
        data.metrics.add(alias=1, double_value=level)
        self.publish("DDATA", "Tank", data)

    def recipe_data(self) -> None:
        data = REFERENCE(timestamp=self.now())
        data.metrics.add(alias=3).dataset_value.num_of_columns = 1
        self.publish("DDATA", "Press", data)

    def die(self) -> None:
        """The node's link dies without a DISCONNECT: the broker publishes its will (NDEATH)."""
        self.client.socket().shutdown(socket.SHUT_RDWR)
        self.client.loop_stop()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def press_layout(port: int) -> Layout:
    device = f"spBv1.0/{GROUP}/+/{NODE}/Press"  # only the device is bound: not its node, not its sibling
    return Layout(name="spb", components=[Component("PRESS", "station", (0.0, 0.0, 0.0))], bindings=[
        {"topic": device, "component": "PRESS", "signal": "temperature", "field": "Temperature", "unit": "°C",
         "qos": 1, "rules": [{"above": 80.0, "state": "fault", "message": "Press too hot"}]},
        {"topic": device, "component": "PRESS", "signal": "recipe", "field": "Recipe", "qos": 1}],
        mqtt={"host": "127.0.0.1", "port": port, "stale_after": 60})


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


def test_6_a_device_only_binding_decodes_deaths_show_stale_siblings_are_no_gap(broker):
    layout = press_layout(broker.port)
    subscriptions = BindingTable.from_layout(layout).subscriptions()
    assert subscriptions == [(f"spBv1.0/{GROUP}/+/{NODE}", 1), (f"spBv1.0/{GROUP}/+/{NODE}/+", 1)]
    pipeline = TelemetryPipeline(layout)
    settings = MqttSettings.from_layout(layout.mqtt)
    settings.reconnect_min_s = settings.reconnect_max_s = 1
    client = TelemetryClient(settings, pipeline.router)
    client.start()
    edge = EdgeNode(broker.port)
    store = pipeline.store

    def state() -> str:
        pipeline.step(time.time())
        return pipeline.engine.component_states.get("PRESS", "unknown")

    def errors() -> dict[str, str]:
        return {topic: e.last_reason for topic, e in store.stats().errors_by_topic.items()}

    try:
        wait_for(lambda: client.status().subscribed, message="subscribed")
        edge.births()
        for i in range(20):
            edge.press_data(40.0 + i)
            edge.tank_data(float(i))  # the unbound sibling shares the node's sequence
        edge.press_data(55.5, name="Temperature (renamed)")  # a different name in DATA, a known alias
        wait_for(lambda: (s := store.latest(("PRESS", "temperature"))) is not None and s.value == 55.5,
                 message="the renamed metric by its alias")
        assert not any("seq gap" in reason for reason in errors().values()), errors()
        assert not any("NBIRTH" in reason for reason in errors().values()), errors()
        assert state() == "normal"
        # a DataSet is not a value the viewer shows: counted, named, never stored; the template definition in
        # the NBIRTH is a type, not a signal
        edge.recipe_data()
        wait_for(lambda: any("DataSet" in r for r in errors().values()), message="the DataSet refused")
        assert store.latest(("PRESS", "recipe")) is None
        assert not any("_types_" in signal for _component, signal in store.latest_all())
        assert pipeline.router.sparkplug.template_definitions == 1

        # a real gap: one DDATA lost on the way
        edge.seq += 1
        edge.press_data(50.0)
        wait_for(lambda: any("seq gap" in r for r in errors().values()), message="the gap counted")

        # the edge node dies: the broker publishes its NDEATH, the press shows stale at once (not after 60 s)
        died = time.monotonic()
        edge.die()
        wait_for(lambda: state() == "stale", timeout=20, message="stale on NDEATH")
        assert time.monotonic() - died < 15
        # it comes back with a new session: births bring the values back
        edge = EdgeNode(broker.port, bd_seq=1)
        edge.births()
        edge.press_data(90.0)
        wait_for(lambda: state() == "fault", message="live again after the rebirth, and its rule fires")
    finally:
        edge.stop()
        client.stop()


def test_an_online_nodes_unchanged_metric_stays_current_and_goes_stale_at_its_death(broker, tmp_path):
    """Sparkplug B reports by exception: a node that publishes nothing new is still online and its last
    values hold. With stale_after 1.5 s the press showed stale 1.5 s after its last DDATA; now it stays
    current while the node lives and we are connected, goes stale at the NDEATH, and a replay agrees."""
    from viewer.telemetry.replay import Replayer
    from viewer.telemetry.session import SessionRecording

    layout = press_layout(broker.port)
    layout.mqtt["stale_after"] = 1.5
    pipeline = TelemetryPipeline(layout)
    settings = MqttSettings.from_layout(layout.mqtt)
    client = TelemetryClient(settings, pipeline.router)
    session = SessionRecording(pipeline, tmp_path / "spb.mcap", broker=settings.describe()).start()
    client.start()
    edge = EdgeNode(broker.port)

    def state() -> str:
        pipeline.step(time.time())
        return pipeline.engine.component_states.get("PRESS", "unknown")

    try:
        wait_for(lambda: client.status().subscribed, message="subscribed")
        edge.births()
        edge.press_data(42.0)
        wait_for(lambda: state() == "normal", message="the first value")
        quiet_from = time.time()
        while time.time() - quiet_from < 4.5:  # three times stale_after, no DDATA
            assert state() == "normal", time.time() - quiet_from
            time.sleep(0.1)
        held_until = time.time()
        edge.die()
        wait_for(lambda: state() == "stale", timeout=20, message="stale on NDEATH")
        session.poll()
    finally:
        session.stop()
        edge.stop()
        client.stop()
    replayer = Replayer(tmp_path / "spb.mcap", layout)
    replayer.index()
    replayer.seek(held_until - 0.2)
    assert replayer.pipeline.engine.component_states.get("PRESS") == "normal"
