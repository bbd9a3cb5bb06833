"""The OPC UA client against a server from another stack: node-opcua (JavaScript), which nobody here wrote.

The server (``tests/tools/node-opcua/server.js``, installed by ``tests/tools/install.sh`` from the npm
registry at pinned versions) serves a String state, a Double vibration and a Double[6] joints variable in
its own namespace, with browse names under Objects/Line1/ST10; it sets a value (with a status code) for each
JSON line on its stdin. These tests skip where node or the package is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_opcua import free_port, pipeline_and_client, wait_for

from viewer.telemetry.mqtt_client import ConnectionState
from viewer.telemetry.opcua_client import OpcUaClient
from viewer.telemetry.opcua_client import settings_for as opcua_settings_for
from viewer.telemetry.pipeline import TelemetryPipeline

TOOL = Path(__file__).resolve().parent / "tools" / "node-opcua"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None or not (TOOL / "node_modules" / "node-opcua-server").is_dir(),
                                reason="node-opcua is not installed (tests/tools/install.sh needs node and npm)")


class NodeOpcUaServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([str(NODE), str(TOOL / "server.js"), str(self.port)], cwd=TOOL,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self._line()
        assert line.startswith("ready "), line
        self.namespace = int(line.split()[1])

    def _line(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise AssertionError("the node-opcua server ended")
            if line.startswith(("ready", "ok")):  # node-opcua logs its own lines to stdout too
                return line.strip()
        raise AssertionError("the node-opcua server did not answer")

    def set(self, variable: str, value: Any, status: str | None = None) -> None:
        command = {"set": variable, "value": value} | ({"status": status} if status else {})
        self.proc.stdin.write(json.dumps(command) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        assert self._line() == "ok"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def node_server() -> Iterator[NodeOpcUaServer]:
    server = NodeOpcUaServer()
    yield server
    server.stop()


@pytest.fixture
def live(node_server: NodeOpcUaServer) -> Iterator[tuple[TelemetryPipeline, OpcUaClient]]:
    ns = node_server.namespace
    doc = {
        "format": "twin-viewer-layout", "version": 1, "name": "node-opcua cell",
        "components": [{"id": "ST10", "kind": "station", "position": [0, 0, 0]},
                       {"id": "VIB", "kind": "sensor", "position": [1, 0, 0], "parent": "ST10"},
                       {"id": "R1", "kind": "robot", "position": [3, 0, 0]}],
        "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{node_server.port}", "security_policy": "None",
                  "publishing_interval_ms": 50, "sampling_interval_ms": 0, "queue_size": 10},
        "bindings": [
            {"node": f"ns={ns};s=Line1.ST10.State", "component": "ST10", "signal": "state",
             "rules": [{"equals": "running", "state": "running"}, {"equals": "fault", "state": "fault"}]},
            {"browse_path": [f"{ns}:Line1", f"{ns}:ST10", f"{ns}:Vibration"], "component": "VIB",
             "signal": "vibration", "unit": "mm/s", "rules": [{"above": 7.1, "state": "fault"}]},
            {"node": f"ns={ns};s=Line1.R1.Joints", "component": "R1", "signal": "joints", "unit": "°"},
        ],
    }
    pipeline, client = pipeline_and_client(doc)
    client.start()
    wait_for(lambda: client.status().subscribed, timeout=30, what="the subscription")
    yield pipeline, client
    client.stop()


def stepped(pipeline: TelemetryPipeline, key: str, expected: Any) -> bool:
    pipeline.step(time.time())
    return pipeline.snapshot()["values"].get(key) == expected


def test_values_from_node_opcua_arrive_by_node_id_and_by_browse_path(node_server: NodeOpcUaServer,
                                                                      live: Any) -> None:
    pipeline, client = live
    assert client.status().state is ConnectionState.CONNECTED
    node_server.set("state", "running")
    node_server.set("vib", 3.25)
    node_server.set("joints", [10.0, -20.0, 30.0, 0.0, 45.0, 90.0])
    wait_for(lambda: stepped(pipeline, "ST10/state", "running"), what="the state")
    wait_for(lambda: stepped(pipeline, "VIB/vibration", 3.25), what="the vibration by browse path")
    wait_for(lambda: stepped(pipeline, "R1/joints", [10.0, -20.0, 30.0, 0.0, 45.0, 90.0]), what="the joints")
    assert pipeline.component_states()["ST10"] == "running"
    node_server.set("vib", 9.5)
    wait_for(lambda: stepped(pipeline, "VIB/vibration", 9.5), what="a fault value")
    assert pipeline.component_states()["VIB"] == "fault"
    sample = pipeline.store.latest(("VIB", "vibration"))
    assert sample is not None and sample.source_time is not None and abs(sample.source_time - time.time()) < 30
    assert pipeline.store.stats().decode_errors == 0


def test_node_opcua_status_codes_bad_is_no_data_and_uncertain_is_uncertain(node_server: NodeOpcUaServer,
                                                                          live: Any) -> None:
    pipeline, client = live
    node_server.set("vib", 2.0)
    wait_for(lambda: stepped(pipeline, "VIB/vibration", 2.0), what="a good value")
    node_server.set("vib", 50.0, "BadSensorFailure")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "stale",
             what="no data")
    node_server.set("vib", 50.0, "UncertainLastUsableValue")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "uncertain",
             what="uncertain")
    assert pipeline.snapshot()["values"]["VIB/vibration"] == 2.0 and not pipeline.snapshot()["alarms"]
    assert "Uncertain" in next(iter(client.node_quality().values()))


class SecureNodeOpcUaServer(NodeOpcUaServer):
    """The same server with Basic256Sha256 SignAndEncrypt only, user viewer/s3cret, and its own certificate
    made by node-opcua's PKI in ``pki`` (it accepts the viewer's certificate)."""

    def __init__(self, pki: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([str(NODE), str(TOOL / "server.js"), str(self.port), "secure", str(pki)],
                                     cwd=TOOL, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        words = self._line().split()
        assert words[0] == "ready", words
        self.namespace, self.certificate = int(words[1]), Path(words[2])


def test_sign_and_encrypt_against_node_opcua_with_trust_set_up_as_the_readme_says(tmp_path: Path,
                                                                                  monkeypatch: Any) -> None:
    """The viewer's own certificate is made on first use; node-opcua's certificate is refused until an
    administrator copies it into the trust folder (it lies in rejected/ meanwhile); then values flow under
    SignAndEncrypt with a user and password; a wrong password is said as such."""
    from viewer.telemetry.opcua_security import PkiFolders, thumbprint

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("INTEROP_OPCUA_PASSWORD", "s3cret")
    server = SecureNodeOpcUaServer(tmp_path / "node-pki")
    try:
        ns = server.namespace
        doc = {
            "format": "twin-viewer-layout", "version": 1, "name": "secure node-opcua cell",
            "components": [{"id": "VIB", "kind": "sensor", "position": [0, 0, 0]}],
            "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{server.port}", "security_policy": "Basic256Sha256",
                      "security_mode": "SignAndEncrypt", "username": "viewer",
                      "password_env": "INTEROP_OPCUA_PASSWORD", "publishing_interval_ms": 50},
            "bindings": [{"node": f"ns={ns};s=Line1.ST10.Vibration", "component": "VIB", "signal": "vibration"}],
        }
        pipeline, client = pipeline_and_client(doc)
        layout = pipeline.layout
        client.start()
        folders = PkiFolders.default()
        try:
            wait_for(lambda: any(folders.rejected.glob("*.der")), timeout=30, what="the refused certificate")
            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import Encoding

            der = x509.load_pem_x509_certificate(server.certificate.read_bytes()).public_bytes(Encoding.DER)
            detail = client.status().detail
            assert thumbprint(der).replace(":", "").lower()[:8] in detail.replace(":", "").lower(), detail
            assert client.status().state is not ConnectionState.CONNECTED
            assert folders.own_key.stat().st_mode & 0o077 == 0  # the viewer's key: the user's only
            folders.trusted.mkdir(parents=True, exist_ok=True)
            (folders.trusted / "node-opcua.der").write_bytes(der)  # what the administrator does
            wait_for(lambda: client.status().subscribed, timeout=30, what="connected once trusted")
            server.set("vib", 4.75)
            wait_for(lambda: stepped(pipeline, "VIB/vibration", 4.75), what="a value under SignAndEncrypt")
        finally:
            client.stop()
        monkeypatch.setenv("INTEROP_OPCUA_PASSWORD", "wrong")
        wrong = OpcUaClient(opcua_settings_for(layout, None), TelemetryPipeline(layout).router)
        wrong.start()
        try:
            wait_for(lambda: "password" in wrong.status().detail, timeout=30, what="the wrong password said")
            assert wrong.status().connects == 0
        finally:
            wrong.stop()
    finally:
        server.stop()
