"""OPC UA beside MQTT: the layout's ``opcua`` section and node bindings, the client against real asyncua servers.

The servers run in their own processes on loopback (the virtual plant's server, or the small test server in
``tests/opcua_test_server.py`` driven over its stdin); expected values are what the test told the server
to publish, never read back from the code under test.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from viewer.model.errors import LayoutError
from viewer.model.layout import Layout
from viewer.model.layout_io import check_document, parse_layout
from viewer.telemetry.bindings import BindingTable


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
