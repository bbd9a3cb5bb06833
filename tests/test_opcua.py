"""OPC UA beside MQTT: the layout's ``opcua`` section and node bindings, the client against real asyncua servers.

The servers run in their own processes on loopback (the virtual plant's server, or the small test server in
``tests/opcua_test_server.py`` driven over its stdin); expected values are what the test told the server
to publish, never read back from the code under test.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from viewer.model.errors import LayoutError
from viewer.model.layout import Layout
from viewer.model.layout_io import check_document, load_layout, parse_layout
from viewer.telemetry.bindings import BindingTable
from viewer.telemetry.mqtt_client import ConnectionState
from viewer.telemetry.opcua_client import OpcUaClient
from viewer.telemetry.opcua_client import settings_for as opcua_settings_for
from viewer.telemetry.pipeline import TelemetryPipeline


def opcua_doc() -> dict[str, Any]:
    """A small layout read over OPC UA: a station with a state node, a sensor with a vibration node."""
    return {
        "format": "twin-viewer-layout",
        "version": 1,
        "name": "OPC UA cell",
        "components": [
            {"id": "ST10", "kind": "station", "position": [0, 0, 0]},
            {"id": "VIB", "kind": "sensor", "position": [1, 0, 0], "parent": "ST10"},
            {"id": "R1", "kind": "robot", "position": [3, 0, 0]},
        ],
        "opcua": {"endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "None",
                  "publishing_interval_ms": 50, "sampling_interval_ms": 0, "queue_size": 10, "deadband": 0},
        "bindings": [
            {"node": "ns=2;s=Line1.ST10.State", "component": "ST10", "signal": "state",
             "rules": [{"equals": "running", "state": "running"}, {"equals": "fault", "state": "fault"}]},
            {"browse_path": ["2:Line1", "2:ST10", "2:Spindle", "2:Vibration"], "component": "VIB",
             "signal": "vibration", "unit": "mm/s", "rules": [{"above": 7.1, "state": "fault"}]},
            {"node": "ns=2;s=Line1.R1.Joints", "component": "R1", "signal": "joints", "unit": "°"},
        ],
    }


def problems_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in check_document(doc)]


# --------------------------------------------------------------------------- the layout


def test_an_opcua_layout_loads_and_saves_back_equal() -> None:
    layout = parse_layout(opcua_doc())
    assert layout.opcua == opcua_doc()["opcua"]
    assert Layout.from_dict(layout.to_dict()) == layout
    assert layout.to_dict()["opcua"] == opcua_doc()["opcua"]


def test_opcua_bindings_compile_beside_mqtt_ones_and_mqtt_ignores_them() -> None:
    doc = opcua_doc()
    doc["bindings"].append({"topic": "plant/+/state", "component": "{1}", "signal": "state"})
    table = BindingTable.from_layout(parse_layout(doc))
    node, path, joints, mqtt = table.bindings
    assert (node.node, node.browse_path, node.is_opcua) == ("ns=2;s=Line1.ST10.State", None, True)
    assert path.browse_path == ("2:Line1", "2:ST10", "2:Spindle", "2:Vibration") and path.kind == "number"
    assert joints.kind == "joints"
    assert not mqtt.is_opcua
    assert table.subscriptions() == [("plant/+/state", 0)]  # no empty topic filter for the OPC UA ones
    assert [r.binding.index for r in table.routes("plant/ST10/state")] == [3]


def test_a_password_in_the_opcua_section_is_refused_with_the_way_to_give_it() -> None:
    doc = opcua_doc()
    doc["opcua"]["username"] = "viewer"
    doc["opcua"]["password"] = "hunter2"
    with pytest.raises(LayoutError) as err:
        parse_layout(doc)
    (problem,) = err.value.problems
    assert problem.path == "$.opcua" and "password_env" in problem.message


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda b: b.update(topic="plant/x"), "$.bindings[0]", "exactly one source"),
    (lambda b: b.pop("node"), "$.bindings[0]", "names none"),
    (lambda b: b.update(node="Line1.ST10.State"), "$.bindings[0].node", "not a NodeId"),
    (lambda b: b.update(node="ns=2;q=x"), "$.bindings[0].node", "not a NodeId"),
    (lambda b: b.update(component="{1}"), "$.bindings[0].component", "names its component"),
    (lambda b: b.update(qos=1), "$.bindings[0].qos", "MQTT topics"),
    (lambda b: (b.pop("node"), b.update(browse_path=["Line1"])), "$.bindings[0].browse_path[0]",
     "NAMESPACE_INDEX:Name"),
])
def test_a_wrong_opcua_binding_is_refused_at_its_json_path(change: Any, path: str, words: str) -> None:
    doc = opcua_doc()
    change(doc["bindings"][0])
    found = problems_of(doc)
    assert any(p == path and words in m for p, m in found), found


@pytest.mark.parametrize(("key", "value"), [
    ("endpoint", "http://127.0.0.1:4840"), ("security_policy", "Basic128Rsa15"), ("security_mode", "Encrypt"),
    ("queue_size", -1), ("publishing_interval_ms", 0), ("deadband", -0.5),
])
def test_wrong_opcua_settings_are_refused_at_their_json_path(key: str, value: Any) -> None:
    doc = opcua_doc()
    doc["opcua"][key] = value
    assert [p for p, _ in problems_of(doc)] == [f"$.opcua.{key}"]


def test_other_node_id_forms_are_accepted() -> None:
    for node in ("ns=2;i=1001", "i=2258", "nsu=urn:plant;s=A.B", "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a",
                 "ns=1;b=M/RbKBsRVkePCePcx24oRA=="):
        doc = copy.deepcopy(opcua_doc())
        doc["bindings"][0]["node"] = node
        assert problems_of(doc) == [], node


# --------------------------------------------------------------------------- the client against a real server

SERVER_SCRIPT = Path(__file__).with_name("opcua_test_server.py")
STATE = "ns=2;s=Line1.ST10.State"
VIBRATION = "ns=2;s=Line1.ST10.Spindle.Vibration"
JOINTS = "ns=2;s=Line1.R1.Joints"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OpcUaTestServer:
    """tests/opcua_test_server.py in its own process; ``set`` waits for the server's "ok"."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), str(port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._line() == "ready"

    def _line(self) -> str:
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line, "the test server ended"
        return line

    def command(self, command: dict[str, Any]) -> str:
        self.proc.stdin.write(json.dumps(command) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._line()

    def set(self, node: str, value: Any, status: str = "Good") -> None:
        assert self.command({"set": node, "value": value, "status": status}) == "ok"

    def requests(self) -> dict[str, int]:
        return json.loads(self.command({"writes": True}))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def wait_for(condition: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[OpcUaTestServer]:
    started = OpcUaTestServer(free_port())
    yield started
    started.kill()


def pipeline_and_client(doc: dict[str, Any]) -> tuple[TelemetryPipeline, OpcUaClient]:
    """A pipeline for the layout ``doc`` and an OPC UA client feeding it (not started), retrying every 0.5 s."""
    layout = parse_layout(doc)
    pipeline = TelemetryPipeline(layout)
    settings = opcua_settings_for(layout, None)
    assert settings is not None
    settings.reconnect_min_s = settings.reconnect_max_s = 0.5
    return pipeline, OpcUaClient(settings, pipeline.router)


@pytest.fixture
def live(server: OpcUaTestServer) -> Iterator[tuple[TelemetryPipeline, OpcUaClient]]:
    doc = opcua_doc()
    doc["opcua"]["endpoint"] = f"opc.tcp://127.0.0.1:{server.port}"
    pipeline, client = pipeline_and_client(doc)
    client.start()
    wait_for(lambda: client.status().subscribed, what="the subscription")
    yield pipeline, client
    client.stop()


def stepped_value(pipeline: TelemetryPipeline, key: str, expected: Any) -> bool:
    pipeline.step(time.time())
    return pipeline.snapshot()["values"].get(key) == expected


def test_values_arrive_as_samples_and_colour_components(server: OpcUaTestServer, live: Any) -> None:
    pipeline, client = live
    server.set(STATE, "fault")
    server.set(VIBRATION, 8.25)
    server.set(JOINTS, [10.0, -20.0, 30.0, 0.0, 45.5, 90.0])
    wait_for(lambda: stepped_value(pipeline, "R1/joints", [10.0, -20.0, 30.0, 0.0, 45.5, 90.0]), what="joints")
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 8.25), what="vibration")
    assert pipeline.snapshot()["values"]["ST10/state"] == "fault"
    assert pipeline.component_states()["ST10"] == "fault"  # its rule, and its sensor's above-7.1 fault
    assert {(a[0], a[1]) for a in pipeline.snapshot()["alarms"]} == {("ST10", "state"), ("VIB", "vibration")}
    sample = pipeline.store.latest(("VIB", "vibration"))
    assert sample is not None and sample.source_time is not None and abs(sample.source_time - time.time()) < 30
    server.set(STATE, "running")
    wait_for(lambda: stepped_value(pipeline, "ST10/state", "running"), what="running")
    assert pipeline.engine.signal_state("ST10", "state") == "running"
    assert client.status().state is ConnectionState.CONNECTED


def test_bad_status_shows_no_data_and_uncertain_shows_uncertain_never_a_value(server: OpcUaTestServer,
                                                                             live: Any) -> None:
    pipeline, client = live
    server.set(VIBRATION, 3.5)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 3.5), what="a good value")
    assert pipeline.component_states()["VIB"] == "normal"
    server.set(VIBRATION, 99.0, "BadSensorFailure")  # 99 would be a fault: it must never be taken as a value
    wait_for(lambda: client.node_quality().get("2:Line1/2:ST10/2:Spindle/2:Vibration") == "BadSensorFailure")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "stale")
    assert pipeline.snapshot()["values"]["VIB/vibration"] == 3.5 and not pipeline.snapshot()["alarms"]
    server.set(VIBRATION, 4.0)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 4.0), what="good again")
    assert pipeline.component_states()["VIB"] == "normal" and client.node_quality() == {}
    server.set(VIBRATION, 50.0, "UncertainLastUsableValue")  # 50 would be a fault too
    wait_for(lambda: client.node_quality() != {}, what="the uncertain code")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "uncertain")
    assert pipeline.snapshot()["values"]["VIB/vibration"] == 4.0 and not pipeline.snapshot()["alarms"]
    assert pipeline.engine.signal_state("VIB", "vibration") == "uncertain"
    server.set(VIBRATION, 4.5)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 4.5), what="good after uncertain")
    assert pipeline.component_states()["VIB"] == "normal"


def test_a_restarted_server_is_resubscribed_and_the_gap_recorded(server: OpcUaTestServer, live: Any) -> None:
    pipeline, client = live
    server.set(VIBRATION, 1.5)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 1.5), what="before")
    before_kill = time.time()
    server.kill()
    wait_for(lambda: client.status().state is not ConnectionState.CONNECTED, what="the loss")
    restarted = OpcUaTestServer(server.port)
    try:
        wait_for(lambda: client.status().subscribed, timeout=30, what="the new subscription")
        restarted.set(VIBRATION, 2.75)
        wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 2.75), what="after")
        status = client.status()
        assert status.connects == 2 and status.gaps_total == 2  # "not connected yet", then the restart
        gap = status.gaps[-1]
        assert gap.end is not None and before_kill <= gap.start <= gap.end
        assert gap.quiet_since is not None and gap.quiet_since <= gap.start
    finally:
        restarted.kill()


def test_the_client_never_writes_or_calls(server: OpcUaTestServer, live: Any) -> None:
    pipeline, client = live
    for value in (1.0, 2.0, 3.0):
        server.set(VIBRATION, value)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 3.0), what="values")
    client.stop()
    assert server.requests() == {"writes": 0, "calls": 0}
    # the hook sees a client's write: one made here on purpose is counted
    asyncio.run(_write_once(server.port))
    assert server.requests() == {"writes": 1, "calls": 0}


async def _write_once(port: int) -> None:
    from asyncua import Client

    async with Client(f"opc.tcp://127.0.0.1:{port}") as other:
        await other.get_node(VIBRATION).write_value(5.0)


# --------------------------------------------------------------------------- the virtual plant over OPC UA

DEMO_OPCUA = Path(__file__).resolve().parents[1] / "layouts" / "demo_plant" / "demo_plant_opcua.json"


def test_the_virtual_plant_served_over_opcua_feeds_the_demo_layout() -> None:
    port = free_port()
    plant = subprocess.Popen([sys.executable, "-m", "viewer.telemetry.virtual_plant", "--opcua-port", str(port),
                              "--speed", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    layout = load_layout(DEMO_OPCUA)
    pipeline = TelemetryPipeline(layout)
    settings = opcua_settings_for(layout, f"opc.tcp://127.0.0.1:{port}")
    assert settings is not None and settings.endpoint.endswith(f":{port}")
    settings.reconnect_min_s = settings.reconnect_max_s = 0.5  # the server takes a moment to come up
    client = OpcUaClient(settings, pipeline.router)
    try:
        client.start()
        machines = [c.id for c in layout.components if c.kind in ("station", "robot")]
        robots = [c.id for c in layout.components if c.kind == "robot"]
        wanted = {f"{m}/state" for m in machines} | {f"{r}/joints" for r in robots} | {
            "S-ST10-VIB/vibration", "S-ST30-TEMP/temperature", "S-ST60-P/pressure"}
        wait_for(lambda: (pipeline.step(time.time()), wanted <= set(pipeline.snapshot()["values"]))[1],
                 timeout=60, what="every machine, robot and sensor")
        values = pipeline.snapshot()["values"]
        assert all(values[f"{m}/state"] in ("running", "idle", "fault") for m in machines)
        assert all(len(values[f"{r}/joints"]) == 6 for r in robots)
        assert 50 < values["S-ST30-TEMP/temperature"] < 70  # 60 °C +- 2 and noise, as the plant makes it
        assert pipeline.store.stats().decode_errors == 0
        states = pipeline.component_states()
        assert all(states[m] in ("running", "idle", "fault", "warning") for m in machines)
    finally:
        client.stop()
        plant.terminate()
        plant.wait(10)


def test_check_warns_of_an_unsecured_remote_server_and_a_password_without_encryption() -> None:
    from viewer.model.layout import Layout
    from viewer.telemetry.layout_checks import check_telemetry

    doc = opcua_doc()
    assert check_telemetry(Layout.from_dict(doc)) == []  # loopback, no user: nothing to say
    doc["opcua"]["endpoint"] = "opc.tcp://10.20.0.5:4840"
    doc["opcua"].update({"username": "viewer", "password_env": "PLANT_OPCUA_PASSWORD"})
    codes = sorted(p.code for p in check_telemetry(Layout.from_dict(doc)))
    assert codes == ["opcua password unencrypted", "opcua unsecured"]


def test_opcua_values_are_recorded_and_replay_through_the_same_pipeline(server: OpcUaTestServer, live: Any,
                                                                         tmp_path: Path) -> None:
    """A session read over OPC UA, recorded: one channel per node (twin-opcua-value/1 JSON with value,
    status, source and server time), and its replay reaches the states the live session showed."""
    import json as _json

    from mcap.reader import make_reader

    from viewer.telemetry.replay import Replayer
    from viewer.telemetry.session import SessionRecording

    pipeline, client = live
    session = SessionRecording(pipeline, tmp_path / "opcua.mcap", broker=client.settings.describe()).start()
    server.set(STATE, "fault")
    server.set(VIBRATION, 8.25)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 8.25), what="vibration")
    wait_for(lambda: stepped_value(pipeline, "ST10/state", "fault"), what="fault")
    server.set(VIBRATION, 99.0, "BadSensorFailure")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "stale", what="no data")
    session.stop()
    with open(tmp_path / "opcua.mcap", "rb") as f:  # read with the independent mcap reader
        channels = {c.topic: c.message_encoding for c in make_reader(f).get_summary().channels.values()}
    assert channels[f"opcua/{STATE}"] == "twin-opcua-value/1"
    with open(tmp_path / "opcua.mcap", "rb") as f:
        documents = [_json.loads(m.data) for _s, c, m in make_reader(f).iter_messages()
                     if c.topic == "opcua/2:Line1/2:ST10/2:Spindle/2:Vibration"]  # the layout's browse path
    assert {"value", "status", "source_time", "server_time"} <= set(documents[0])
    assert [d["status"] for d in documents][-1].startswith("Bad")
    replayer = Replayer(tmp_path / "opcua.mcap", pipeline.layout)
    replayer.index()
    fault_marks = [m for m in replayer.markers if m.kind == "alarm" and m.text.startswith("ST10")]
    assert fault_marks  # the recorded fault raised its alarm again in the replay
    replayer.seek(fault_marks[0].time + 0.1)
    assert replayer.pipeline.engine.signal_state("ST10", "state") == "fault"
    assert replayer.pipeline.store.latest(("ST10", "state")).value == "fault"


def test_twin_viewer_record_records_an_opcua_layout(tmp_path: Path) -> None:
    """``twin-viewer record`` on an OPC UA layout (no broker) with ``--opcua`` overriding its endpoint: the
    file holds a channel per served node, read back with the independent mcap reader."""
    from mcap.reader import make_reader

    port = free_port()
    plant = subprocess.Popen([sys.executable, "-m", "viewer.telemetry.virtual_plant", "--opcua-port", str(port),
                              "--speed", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "opcua-record.mcap"
    try:
        wait_for(lambda: _listening(port), timeout=30, what="the virtual plant's OPC UA server")
        done = subprocess.run([sys.executable, "-m", "viewer.cli", "record", "--layout", str(DEMO_OPCUA),
                               "--opcua", f"opc.tcp://127.0.0.1:{port}", "--out", str(out), "--duration", "4"],
                              capture_output=True, text=True, timeout=60)
    finally:
        plant.terminate()
        plant.wait(10)
    assert done.returncode == 0, done.stderr
    assert f"opc.tcp://127.0.0.1:{port}" in done.stderr
    with open(out, "rb") as f:
        summary = make_reader(f).get_summary()
    topics = {c.topic: c.message_encoding for c in summary.channels.values()}
    layout = load_layout(DEMO_OPCUA)
    robots = [c.id for c in layout.components if c.kind == "robot"]
    opcua_topics = [t for t, encoding in topics.items() if encoding == "twin-opcua-value/1"]
    assert all(t.startswith("opcua/") for t in opcua_topics)
    assert len(opcua_topics) >= len(robots) + 3  # at least every robot's joints and the three sensors
    counts = summary.statistics.channel_message_counts
    assert sum(counts[cid] for cid, c in summary.channels.items() if c.topic in opcua_topics) > 50


def test_record_without_a_source_says_how_to_give_one(tmp_path: Path) -> None:
    doc = json.loads(DEMO_OPCUA.read_text())
    del doc["opcua"]
    path = tmp_path / "no_source.json"
    path.write_text(json.dumps(doc))
    done = subprocess.run([sys.executable, "-m", "viewer.cli", "record", "--layout", str(path), "--out",
                           str(tmp_path / "x.mcap"), "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--opcua opc.tcp://HOST:PORT" in done.stderr
    assert "Traceback" not in done.stderr


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_an_unchanged_value_stays_current_while_the_session_lives_and_goes_stale_when_it_dies(
        server: OpcUaTestServer, tmp_path: Path) -> None:
    """A subscription reports changes only: a state that holds for longer than stale_after is current, not
    stale, as long as the session lives (it showed '? NO DATA' on every machine of the OPC UA demo after
    10 s); when the server dies the values go stale. The recording replays the same."""
    from viewer.telemetry.replay import Replayer
    from viewer.telemetry.session import SessionRecording

    doc = opcua_doc()
    doc["opcua"].update(endpoint=f"opc.tcp://127.0.0.1:{server.port}", stale_after=1.5)
    pipeline, client = pipeline_and_client(doc)
    layout = pipeline.layout
    session = SessionRecording(pipeline, tmp_path / "still.mcap", broker=client.settings.describe()).start()
    try:
        client.start()
        wait_for(lambda: client.status().subscribed, what="the subscription")
        server.set(STATE, "running")
        wait_for(lambda: stepped_value(pipeline, "ST10/state", "running"), what="running")
        changed_at = time.time()
        while time.time() - changed_at < 4.5:  # three times stale_after without a change
            pipeline.step(time.time())
            assert pipeline.component_states()["ST10"] == "running", time.time() - changed_at
            time.sleep(0.1)
        held_until = time.time()
        server.kill()
        wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["ST10"])[1] == "stale",
                 timeout=15, what="stale after the server died")
        session.poll()
    finally:
        session.stop()
        client.stop()
    replayer = Replayer(tmp_path / "still.mcap", layout)
    replayer.index()
    replayer.seek(held_until - 0.2)
    assert replayer.pipeline.component_states()["ST10"] == "running"  # 4 s after the change: current


def test_a_layout_larger_than_the_servers_operation_limits_is_subscribed_in_batches(tmp_path: Path) -> None:
    """A PLC's server takes at most MaxMonitoredItemsPerCall items (and browse paths) per request and refuses
    more with BadTooManyOperations: 600 bindings (half by browse path) against a limit of 100 all arrive."""
    port, count = free_port(), 600
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "opcua_limited_server.py"), str(port),
                               str(count), "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        components = [{"id": f"M{i:04d}", "kind": "sensor", "position": [i * 0.1, 0, 0]} for i in range(count)]
        bindings = [({"node": f"ns=2;s=Many.V{i:04d}"} if i % 2 else {"browse_path": ["2:Many", f"2:V{i:04d}"]})
                    | {"component": f"M{i:04d}", "signal": "value"} for i in range(count)]
        layout = parse_layout({"format": "twin-viewer-layout", "version": 1, "name": "many", "components": components,
                               "bindings": bindings, "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{port}"}})
        pipeline = TelemetryPipeline(layout)
        settings = opcua_settings_for(layout, None)
        assert settings is not None
        client = OpcUaClient(settings, pipeline.router)
        client.start()
        try:
            wait_for(lambda: client.status().subscribed, timeout=60, what="the subscription")
            server.stdin.write("go\n")  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
            assert server.stdout.readline().strip() == "done"  # type: ignore[union-attr]
            wanted = {f"M{i:04d}/value": i + 0.5 for i in range(count)}
            wait_for(lambda: (pipeline.step(time.time()),
                              all(pipeline.snapshot()["values"].get(k) == v for k, v in wanted.items()))[1],
                     timeout=60, what="every value")
            assert not pipeline.store.stats().errors_by_topic
            server.stdin.write("refused\n")  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
            assert server.stdout.readline().strip() == "0"  # type: ignore[union-attr]  # no request over the limit
        finally:
            client.stop()
    finally:
        server.kill()
        server.wait(10)
