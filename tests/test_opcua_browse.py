"""Browsing an OPC UA server for the editor (viewer.telemetry.opcua_browse) and the command that binds a node.

Real servers in their own processes on loopback: the small test server (``tests/opcua_test_server.py``: it
counts every write and method call a client makes) and the virtual plant (``simulate-plant --opcua-port``).
The expected address spaces are written out here from what those servers build (their source and the demo
layout they serve), never read back through the browser under test.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_opcua import DEMO_OPCUA, OpcUaTestServer, free_port, wait_for

from viewer.model.document import BindOpcUaNode, EditRefusedError, LayoutDocument
from viewer.model.layout_io import load_layout, save_layout
from viewer.telemetry.bindings import Binding
from viewer.telemetry.opcua_browse import BrowseError, OpcUaBrowser
from viewer.telemetry.opcua_client import OpcUaSettings

VIBRATION = "ns=2;s=Line1.ST10.Spindle.Vibration"
VIBRATION_PATH = ("2:Line1", "2:ST10", "2:Spindle", "2:Vibration")
# The demo plant's machines as the layout lists them (the virtual plant serves one object per machine).
DEMO_MACHINES = ["R1", "ST10", "ST11", "ST20", "ST30", "ST40", "ST41", "R2", "ST60", "ST70", "ST80", "ST90", "R3"]
DEMO_ROBOTS = {"R1", "R2", "R3"}


def settings(port: int, **changes: float) -> OpcUaSettings:
    out = OpcUaSettings(endpoint=f"opc.tcp://127.0.0.1:{port}")
    for key, value in changes.items():
        setattr(out, key, value)
    return out


@pytest.fixture(scope="module")
def test_server() -> Iterator[OpcUaTestServer]:
    server = OpcUaTestServer(free_port())
    yield server
    server.kill()


@pytest.fixture(scope="module")
def plant_port() -> Iterator[int]:
    port = free_port()
    plant = subprocess.Popen([sys.executable, "-m", "viewer.telemetry.virtual_plant", "--opcua-port", str(port),
                              "--speed", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        plant.terminate()
        plant.wait(10)


def connected(port: int, timeout: float = 30.0) -> OpcUaBrowser:
    """A browser on the server at ``port``, retried until the server (just started) listens."""
    browser = OpcUaBrowser(settings(port))
    deadline = time.monotonic() + timeout
    while True:
        try:
            browser.connect()
            return browser
        except BrowseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def plant(plant_port: int) -> Iterator[OpcUaBrowser]:
    browser = connected(plant_port)
    yield browser
    browser.close()


# --------------------------------------------------------------------------- children, one level per call


def test_the_objects_folder_lists_the_plant_beside_the_server_object(plant: OpcUaBrowser) -> None:
    top = {n.browse_name: n for n in plant.children()}
    assert {"0:Server", "2:Line1"} <= set(top)
    line = top["2:Line1"]
    assert (line.node_id, line.display_name, line.node_class, line.data_type) == ("ns=2;s=Line1", "Line1", "Object",
                                                                                  None)


def test_line1_holds_one_object_per_machine_in_the_servers_order(plant: OpcUaBrowser) -> None:
    machines = plant.children("ns=2;s=Line1")
    assert [n.browse_name for n in machines] == [f"2:{m}" for m in DEMO_MACHINES]
    assert [n.node_id for n in machines] == [f"ns=2;s=Line1.{m}" for m in DEMO_MACHINES]
    assert {n.node_class for n in machines} == {"Object"}


def test_a_robots_variables_come_with_type_rank_and_shape(plant: OpcUaBrowser) -> None:
    state, count, joints = plant.children("ns=2;s=Line1.R1")
    assert (state.browse_name, state.node_id, state.data_type, state.value_rank) == (
        "2:State", "ns=2;s=Line1.R1.State", "String", -1)
    assert (count.data_type, count.value_rank, count.shape()) == ("Int64", -1, "Int64")
    # asyncua writes ValueRank 0 (one or more dimensions) for a variable made with a list, without dimensions
    assert (joints.node_id, joints.data_type, joints.value_rank, joints.array_dimensions) == (
        "ns=2;s=Line1.R1.Joints", "Double", 0, None)
    assert joints.is_numeric_array and not state.is_array and joints.shape() == "Double[]"
    assert all(v.node_class == "Variable" and v.readable and v.has_children is False for v in (state, count, joints))


def test_a_station_and_its_sensor_object(plant: OpcUaBrowser) -> None:
    names = {n.browse_name: n for n in plant.children("ns=2;s=Line1.ST10")}
    assert list(names) == ["2:State", "2:Count", "2:MotorCurrent", "2:Spindle"]
    assert names["2:MotorCurrent"].shape() == "Double" and names["2:Spindle"].node_class == "Object"
    (vibration,) = plant.children("ns=2;s=Line1.ST10.Spindle")
    assert (vibration.node_id, vibration.data_type, vibration.value_rank) == (VIBRATION, "Double", -1)
    assert plant.children(VIBRATION) == []  # a variable without children of its own


def test_one_node_by_its_nodeid(plant: OpcUaBrowser) -> None:
    node = plant.node("ns=2;s=Line1.R2.Joints")
    assert (node.browse_name, node.display_name, node.node_class, node.data_type) == (
        "2:Joints", "Joints", "Variable", "Double")


def test_a_wrong_or_unknown_nodeid_is_said_in_words(plant: OpcUaBrowser) -> None:
    with pytest.raises(BrowseError, match=r"'Line1\.ST10' is not a NodeId"):
        plant.children("Line1.ST10")
    with pytest.raises(BrowseError, match=r"has no node ns=2;s=Line1\.ST99"):
        plant.children("ns=2;s=Line1.ST99")
    with pytest.raises(BrowseError, match=r"has no node ns=2;s=Line1\.ST99\.State"):
        plant.read_value("ns=2;s=Line1.ST99.State")
    assert plant.connected  # a refused request leaves the session as it was


# --------------------------------------------------------------------------- search


def test_search_finds_the_vibration_sensor_with_its_browse_path(plant: OpcUaBrowser) -> None:
    calls: list[tuple[int, int]] = []
    result = plant.search("vibRATion", progress=lambda visited, found: calls.append((visited, found)))
    assert [(m.node.node_id, m.browse_path) for m in result.matches] == [(VIBRATION, VIBRATION_PATH)]
    assert result.matches[0].node.data_type == "Double"
    assert result.complete and result.stopped == ""
    assert calls and calls == sorted(calls) and calls[-1] == (result.visited, 1)


def test_search_for_state_finds_every_machines_state_and_only_names_with_it(plant: OpcUaBrowser) -> None:
    result = plant.search("state")
    found = {m.node.node_id: m.browse_path for m in result.matches}
    for machine in DEMO_MACHINES:
        assert found[f"ns=2;s=Line1.{machine}.State"] == ("2:Line1", f"2:{machine}", "2:State")
    for match in result.matches:  # the Server object's ServerStatus/State and others match too
        names = (match.node.browse_name.split(":", 1)[1] + match.node.display_name).casefold()
        assert "state" in names
        assert match.browse_path[-1] == match.node.browse_name


def test_search_is_bounded_by_depth_nodes_and_matches(plant: OpcUaBrowser) -> None:
    top = plant.search("line1", max_depth=1)
    assert [(m.node.node_id, m.browse_path) for m in top.matches] == [("ns=2;s=Line1", ("2:Line1",))]
    assert top.visited == len(plant.children()) and top.complete
    two = plant.search("ST1", max_depth=2)  # Line1's machines are at depth 2, their variables deeper
    assert {m.node.node_id for m in two.matches} == {"ns=2;s=Line1.ST10", "ns=2;s=Line1.ST11"}
    few = plant.search("state", max_nodes=10)
    assert (few.visited, few.stopped, few.complete) == (10, "node limit", False)
    capped = plant.search("state", max_matches=3)
    assert (len(capped.matches), capped.stopped) == (3, "match limit")


def test_search_stops_when_cancelled_with_what_it_found(plant: OpcUaBrowser) -> None:
    progress: list[int] = []
    result = plant.search("state", cancelled=lambda: len(progress) >= 1,
                          progress=lambda visited, _found: progress.append(visited))
    assert result.stopped == "cancelled" and not result.complete
    assert len(progress) == 1 and result.visited == progress[0] == len(plant.children())  # after the first level


def test_search_needs_a_text(plant: OpcUaBrowser) -> None:
    with pytest.raises(BrowseError, match="type part of a node's name"):
        plant.search("   ")


# --------------------------------------------------------------------------- browse paths


def test_the_browse_path_of_a_node_and_back(plant: OpcUaBrowser) -> None:
    assert plant.browse_path(VIBRATION) == VIBRATION_PATH
    assert plant.browse_path("ns=2;s=Line1.R3.Joints") == ("2:Line1", "2:R3", "2:Joints")
    assert plant.browse_path("i=2253") == ("0:Server",)
    assert plant.resolve_browse_path(list(VIBRATION_PATH)) == VIBRATION
    with pytest.raises(BrowseError, match=r"2:Line1/2:ST99 is not on"):
        plant.resolve_browse_path(["2:Line1", "2:ST99"])
    with pytest.raises(BrowseError, match="NAMESPACE_INDEX:Name"):
        plant.resolve_browse_path(["Line1"])


def test_a_node_outside_the_objects_folder_has_no_browse_path(plant: OpcUaBrowser) -> None:
    with pytest.raises(BrowseError, match="not below the Objects folder"):
        plant.browse_path("i=58")  # BaseObjectType: in the Types folder


# --------------------------------------------------------------------------- values, read-only


def test_values_are_read_with_their_status_and_nothing_is_ever_written(test_server: OpcUaTestServer) -> None:
    browser = connected(test_server.port)
    try:
        test_server.set(VIBRATION, 8.25)
        value = browser.read_value(VIBRATION)
        assert (value.value, value.status, value.good, value.variant_type) == (8.25, "Good", True, "Double")
        assert value.source_time is not None and abs(value.source_time - time.time()) < 60
        test_server.set("ns=2;s=Line1.R1.Joints", [10.0, -20.0, 30.0, 0.0, 45.5, 90.0])
        joints = browser.read_value("ns=2;s=Line1.R1.Joints")
        assert joints.value == [10.0, -20.0, 30.0, 0.0, 45.5, 90.0] and joints.text() == "[10, -20, 30, 0, 45.5, 90]"
        test_server.set(VIBRATION, 99.0, "BadSensorFailure")
        bad = browser.read_value(VIBRATION)
        assert (bad.status, bad.good) == ("BadSensorFailure", False)
        # everything the dialog does, once more: browse, look ahead, search, paths, values
        assert [n.browse_name for n in browser.children("ns=2;s=Line1")] == ["2:ST10", "2:R1"]
        assert [n.browse_name for n in browser.children("ns=2;s=Line1.ST10")] == ["2:Spindle", "2:State"]  # made first
        assert [m.node.node_id for m in browser.search("joints").matches] == ["ns=2;s=Line1.R1.Joints"]
        assert browser.browse_path(VIBRATION) == VIBRATION_PATH
        browser.node("ns=2;s=Line1.ST10.State")
    finally:
        browser.close()
    assert test_server.requests() == {"writes": 0, "calls": 0}


# --------------------------------------------------------------------------- failures, in words and in bounded time


def test_nobody_listening_is_said_at_once() -> None:
    browser = OpcUaBrowser(settings(free_port()))
    started = time.monotonic()
    with pytest.raises(BrowseError, match=r"connection refused by opc\.tcp://127\.0\.0\.1"):
        browser.connect()
    assert time.monotonic() - started < 5 and not browser.connected


def test_a_server_that_never_answers_is_a_timeout_within_the_bound() -> None:
    with socket.socket() as silent:  # accepts the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
        browser = OpcUaBrowser(settings(silent.getsockname()[1], timeout_s=1.0))
        started = time.monotonic()
        with pytest.raises(BrowseError, match=r"no answer from opc\.tcp://127\.0\.0\.1:\d+ within 1 s"):
            browser.connect()
        elapsed = time.monotonic() - started
        for conn in accepted:
            conn.close()
    assert elapsed < 1.0 + browser.call_timeout_s


def test_calls_before_connecting_and_after_the_server_died_are_said() -> None:
    with pytest.raises(BrowseError, match=r"not connected to opc\.tcp://127\.0\.0\.1"):
        OpcUaBrowser(settings(4840)).children()
    server = OpcUaTestServer(free_port())
    browser = connected(server.port)
    try:
        assert browser.children("ns=2;s=Line1")
        server.kill()
        started = time.monotonic()
        with pytest.raises(BrowseError) as failure:
            browser.children("ns=2;s=Line1")
            wait_for(lambda: not browser.connected, timeout=browser.call_timeout_s, what="the loss")
            browser.children("ns=2;s=Line1")
        assert time.monotonic() - started < browser.call_timeout_s + 2
        assert str(failure.value) and "Traceback" not in str(failure.value)
    finally:
        browser.close()


def test_a_user_without_a_password_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWIN_TEST_NO_SUCH_PASSWORD", raising=False)
    s = settings(4840)
    s.username, s.password_env = "viewer", "TWIN_TEST_NO_SUCH_PASSWORD"
    with pytest.raises(BrowseError, match="TWIN_TEST_NO_SUCH_PASSWORD"):
        OpcUaBrowser(s).connect()


def test_a_secured_server_is_browsed_once_its_certificate_is_trusted(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """make_client's checks hold for the browser: an untrusted server certificate is refused (and saved in
    rejected/), then trusted by moving it into trusted/, and the SignAndEncrypt session browses."""
    from test_opcua_security import SecureServer, make_server_certificate, secure_options, sha1_of

    from viewer.telemetry.opcua_security import PkiFolders

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cert = make_server_certificate(tmp_path / "server", "plant-server-a")
    server = SecureServer(free_port(), *secure_options(cert, "Basic256Sha256_SignAndEncrypt"))
    try:
        secured = settings(server.port, security_policy="Basic256Sha256", security_mode="SignAndEncrypt")
        browser = OpcUaBrowser(secured)
        with pytest.raises(BrowseError) as refused:
            browser.connect()
        rejected = PkiFolders.default().rejected / f"{sha1_of(cert[0])}.der"
        assert str(rejected) in str(refused.value) and rejected.read_bytes() == cert[0].read_bytes()
        rejected.rename(PkiFolders.default().trusted / rejected.name)  # what the administrator does
        browser.connect()
        try:
            assert [n.browse_name for n in browser.children("ns=2;s=Line1")] == ["2:ST10", "2:R1"]
            assert browser.read_value(VIBRATION).good
        finally:
            browser.close()
        assert server.requests() == {"writes": 0, "calls": 0}
    finally:
        server.kill()


# --------------------------------------------------------------------------- the command


@pytest.fixture
def doc() -> LayoutDocument:
    return LayoutDocument(load_layout(DEMO_OPCUA), DEMO_OPCUA)


def test_binding_a_new_signal_appends_it_and_undo_removes_it(doc: LayoutDocument) -> None:
    before = copy.deepcopy(doc.layout.to_dict())
    doc.push(BindOpcUaNode("ST10", "spindle_vibration", node=VIBRATION, unit="mm/s"))
    assert doc.layout.bindings[-1] == {"node": VIBRATION, "component": "ST10", "signal": "spindle_vibration",
                                       "unit": "mm/s"}
    assert len(doc.layout.bindings) == len(before["bindings"]) + 1
    assert doc.undo_text == f"Bind spindle_vibration of {doc.layout.component('ST10').display_name} to {VIBRATION}"
    doc.undo()
    assert doc.layout.to_dict() == before and not doc.is_dirty
    doc.redo()
    assert doc.layout.bindings[-1]["signal"] == "spindle_vibration"
    assert doc.undo_text == f"Bind spindle_vibration of ST10 CNC milling A to {VIBRATION}"  # said once, not twice


def test_binding_the_same_signal_again_replaces_it_in_place_and_keeps_its_rules(doc: LayoutDocument) -> None:
    before = copy.deepcopy(doc.layout.bindings)
    at = next(i for i, b in enumerate(before) if b.get("component") == "ST10" and b["signal"] == "current")
    doc.push(BindOpcUaNode("ST10", "current", browse_path=["2:Line1", "2:ST10", "2:MotorCurrent"]))
    new = doc.layout.bindings[at]
    assert new == {"browse_path": ["2:Line1", "2:ST10", "2:MotorCurrent"], "component": "ST10", "signal": "current",
                   "unit": "A", "rules": before[at]["rules"]}
    assert len(doc.layout.bindings) == len(before)
    assert doc.layout.bindings[:at] == before[:at] and doc.layout.bindings[at + 1:] == before[at + 1:]
    doc.undo()
    assert doc.layout.bindings == before


def test_a_robots_joints_bind_to_a_double_array_as_the_demo_layout_has_them(doc: LayoutDocument) -> None:
    doc.layout.bindings = [b for b in doc.layout.bindings if not (b["component"] == "R2" and b["signal"] == "joints")]
    doc.push(BindOpcUaNode("R2", "joints", node="ns=2;s=Line1.R2.Joints", unit="°"))
    new = doc.layout.bindings[-1]
    assert new == {"node": "ns=2;s=Line1.R2.Joints", "component": "R2", "signal": "joints", "unit": "°"}
    assert Binding.from_dict(0, new).kind == "joints"  # what drives the arm's kinematics


def test_an_mqtt_binding_of_the_same_signal_is_replaced_too_and_undo_brings_both_back(doc: LayoutDocument) -> None:
    doc.layout.bindings.insert(0, {"topic": "plant/line1/ST10/state", "component": "ST10", "signal": "state",
                                   "field": "state", "qos": 1})
    before = copy.deepcopy(doc.layout.bindings)
    doc.push(BindOpcUaNode("ST10", "state", node="ns=2;s=Line1.ST10.State"))
    states = [b for b in doc.layout.bindings if b["component"] == "ST10" and b["signal"] == "state"]
    assert states == [{"node": "ns=2;s=Line1.ST10.State", "component": "ST10", "signal": "state"}]
    assert doc.layout.bindings[0] is states[0]  # where the first of them was
    doc.undo()
    assert doc.layout.bindings == before


def test_an_endpoint_gives_a_layout_without_an_opcua_section_one(doc: LayoutDocument, tmp_path: Path) -> None:
    doc.layout.opcua = None
    doc.push(BindOpcUaNode("ST30", "bath", node="ns=2;s=Line1.ST30.Bath.Temperature", endpoint="opc.tcp://plc:4840"))
    assert doc.layout.opcua == {"endpoint": "opc.tcp://plc:4840"}
    save_layout(doc.layout, tmp_path / "bound.json")
    again = load_layout(tmp_path / "bound.json")
    assert again.opcua == {"endpoint": "opc.tcp://plc:4840"} and again.bindings == doc.layout.bindings
    doc.undo()
    assert doc.layout.opcua is None
    doc.layout.opcua = {"endpoint": "opc.tcp://other:4840"}
    doc.push(BindOpcUaNode("ST30", "bath", node="ns=2;s=Line1.ST30.Bath.Temperature", endpoint="opc.tcp://plc:4840"))
    assert doc.layout.opcua == {"endpoint": "opc.tcp://other:4840"}  # a section it has is never changed


@pytest.mark.parametrize(("make", "words"), [
    (lambda: BindOpcUaNode("ST10", "x", node="Line1.ST10.State"), "is not a NodeId"),
    (lambda: BindOpcUaNode("ST10", "x", browse_path=["Line1"]), "NAMESPACE_INDEX:Name"),
    (lambda: BindOpcUaNode("NOPE", "x", node=VIBRATION), "there is no component 'NOPE'"),
    (lambda: BindOpcUaNode("ST10", "x", node=VIBRATION, browse_path=list(VIBRATION_PATH)), "one of them"),
    (lambda: BindOpcUaNode("ST10", "x"), "one of them"),
    (lambda: BindOpcUaNode("ST10", "  ", node=VIBRATION), "name the signal"),
])
def test_a_wrong_binding_is_refused_and_changes_nothing(doc: LayoutDocument, make, words: str) -> None:
    before = copy.deepcopy(doc.layout.to_dict())
    with pytest.raises(EditRefusedError, match=words):
        doc.push(make())
    assert doc.layout.to_dict() == before and doc.undo_text is None
