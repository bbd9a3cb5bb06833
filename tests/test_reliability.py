"""The reliability suite (fast variants; ``benchmarks/reliability_report.py`` runs the long ones).

Each test drives the real parts: a mosquitto on a free loopback port, the
viewer's own client and pipeline, real files. The scenario numbers follow
``docs/reliability.md``.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from mosquitto_broker import Mosquitto
from test_telemetry_mqtt import Publisher, wait_for

from viewer.model.layout import Component, Layout
from viewer.telemetry.alarms import AlarmState
from viewer.telemetry.mqtt_client import ConnectionState, MqttSettings, TelemetryClient
from viewer.telemetry.pipeline import TelemetryPipeline


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
        wait_for(lambda: client.status().state is ConnectionState.CONNECTED, message="connection")
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
