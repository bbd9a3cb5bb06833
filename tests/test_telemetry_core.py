"""Topic matching, payload decoding, state rules and the ISA-18.2 alarm life cycle, without a broker."""

from __future__ import annotations

import json

import pytest

from viewer.model.layout import Component, Layout
from viewer.telemetry.alarms import AlarmManager, AlarmState
from viewer.telemetry.bindings import Binding, BindingTable, extract_field, topic_matches
from viewer.telemetry.router import TelemetryRouter
from viewer.telemetry.states import RuleChange, StateEngine, rule_holds
from viewer.telemetry.store import LatestValueStore


@pytest.mark.parametrize(("flt", "topic", "expected"), [
    ("a/b/c", "a/b/c", []),
    ("a/b/c", "a/b/d", None),
    ("a/+/c", "a/X/c", ["X"]),
    ("a/+/+", "a/X/Y", ["X", "Y"]),
    ("a/+", "a/X/c", None),
    ("a/#", "a/X/c", ["X/c"]),
    ("a/#", "a", None) if False else ("a/b/#", "a/b/c/d", ["c/d"]),
    ("#", "a/b", ["a/b"]),
    ("+/b", "$SYS/b", None),  # $-topics are not matched by leading wildcards
    ("+", "", [""]),
    ("a/+/c", "a//c", [""]),
])
def test_topic_filters(flt, topic, expected):
    assert topic_matches(flt, topic) == expected


def test_field_paths_into_json():
    doc = {"data": {"joints": [1.5, 2.5], "ok": True}, "state": "run"}
    assert extract_field(doc, "data.joints.1") == 2.5
    assert extract_field(doc, "state") == "run"
    assert extract_field(doc, None) is doc
    with pytest.raises(KeyError, match="no field 'temp'"):
        extract_field(doc, "data.temp")
    with pytest.raises(KeyError, match="no element '5'"):
        extract_field(doc, "data.joints.5")
    with pytest.raises(KeyError, match="reaches into a str"):
        extract_field(doc, "state.x")


def test_component_placeholders_and_route_cache():
    layout = Layout(name="t", components=[Component("ST10", "station", (0.0, 0.0, 0.0))],
                    bindings=[{"topic": "p/+/s/+", "component": "{2}", "signal": "x"}])
    table = BindingTable.from_layout(layout)
    first = table.routes("p/a/s/ST10")
    assert [r.component for r in first] == ["ST10"]
    assert table.routes("p/a/s/ST10") is first  # cached tuple, not recomputed
    assert table.routes("q/a") == ()
    assert table.subscriptions() == [("p/+/s/+", 0)]


def test_router_counts_and_never_raises():
    layout = Layout(name="t", components=[Component("M", "station", (0.0, 0.0, 0.0))], bindings=[
        {"topic": "m/j", "component": "M", "signal": "j1", "field": "deg.0"},
        {"topic": "m/j", "component": "M", "signal": "j2", "field": "deg.1"},
    ])
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(layout), store)
    router.handle("m/j", json.dumps({"deg": [10, 20]}).encode(), 1.0)
    router.handle("m/j", b"\x00" * 10, 2.0)
    router.handle("m/j", b"[" * 100_000, 3.0)  # deeply nested: a RecursionError must not escape
    router.handle("unbound/topic", b"1", 4.0)
    assert store.latest(("M", "j1")).value == 10 and store.latest(("M", "j2")).value == 20
    stats = store.stats()
    assert stats.messages == 4 and stats.unbound_messages == 1
    assert stats.decode_errors == 4  # two bindings x two bad payloads
    assert stats.newest_received == 4.0
    drained = store.drain()
    assert set(drained) == {("M", "j1"), ("M", "j2")}
    assert store.drain() == {}


def test_store_coalesces_a_burst_into_one_update_per_signal():
    store = LatestValueStore()
    layout = Layout(name="t", components=[Component("M", "station", (0.0, 0.0, 0.0))],
                    bindings=[{"topic": "m/t", "component": "M", "signal": "t", "encoding": "number"}])
    router = TelemetryRouter(BindingTable.from_layout(layout), store)
    for i in range(1000):
        router.handle("m/t", str(i).encode(), float(i))
    drained = store.drain()
    assert list(drained) == [("M", "t")]
    assert drained[("M", "t")].value == 999.0
    assert store.previous(("M", "t")).value == 998.0


def test_threshold_rules_with_hysteresis():
    rule = {"above": 80.0, "hysteresis": 2.0, "state": "warning"}
    assert not rule_holds(rule, 80.0, was_active=False)
    assert rule_holds(rule, 80.5, was_active=False)
    assert rule_holds(rule, 78.5, was_active=True)  # inside the band: stays active
    assert not rule_holds(rule, 77.9, was_active=True)
    low = {"below": 10, "hysteresis": 1, "state": "warning"}
    assert rule_holds(low, 9.9, False) and rule_holds(low, 10.5, True) and not rule_holds(low, 11.1, True)
    band = {"above": 1, "below": 3, "state": "idle"}
    assert rule_holds(band, 2, False) and not rule_holds(band, 3.5, False)


def test_status_codes_fault_bits_and_strings():
    assert rule_holds({"equals": 3, "state": "fault"}, 3, False)
    assert rule_holds({"equals": 3, "state": "fault"}, "3", False)
    assert not rule_holds({"equals": 3, "state": "fault"}, 4, False)
    assert rule_holds({"equals": "fault", "state": "fault"}, "fault", False)
    assert rule_holds({"equals": True, "state": "fault"}, True, False)
    assert not rule_holds({"equals": True, "state": "fault"}, False, False)
    word = 0b1010_0000
    assert rule_holds({"bit": 5, "state": "fault"}, word, False)
    assert not rule_holds({"bit": 4, "state": "fault"}, word, False)
    assert rule_holds({"bit": 4, "equals": False, "state": "warning"}, word, False)
    assert not rule_holds({"above": 1, "state": "warning"}, "n/a", False)


def engine_with(rules, stale_after=10.0):
    return StateEngine([Binding(index=0, topic="t", component="C", signal="v", rules=tuple(rules))], stale_after)


def test_component_state_is_the_most_severe_active_rule_and_stale_wins():
    engine = engine_with([{"above": 7.1, "state": "warning", "message": "high"},
                          {"above": 11.2, "state": "fault", "message": "too high"}])
    assert engine.update("C", "v", 5.0, 100.0, 0) == []
    assert engine.refresh(100.0) == {"C": "normal"}
    changes = engine.update("C", "v", 12.0, 101.0, 0)
    assert [(c.rule_index, c.active) for c in changes] == [(0, True), (1, True)]
    assert engine.refresh(101.0) == {"C": "fault"}
    changes = engine.update("C", "v", 8.0, 102.0, 0)
    assert [(c.rule_index, c.active) for c in changes] == [(1, False)]
    assert engine.refresh(102.0) == {"C": "warning"}
    assert engine.refresh(102.5) == {}  # nothing changed, nothing reported
    assert engine.refresh(112.1) == {"C": "stale"}  # no data for more than 10 s
    engine.update("C", "v", 8.0, 113.0, 0)
    assert engine.refresh(113.0) == {"C": "warning"}


def change(active, t, state="fault", rule=0):
    return RuleChange("ST10", "temp", rule, active, state, "Spindle too hot", 99.0, t)


def test_alarm_life_cycle_acknowledged_while_active():
    alarms = AlarmManager()
    alarm = alarms.apply(change(True, 10.0))
    assert alarm.state is AlarmState.UNACK_ACTIVE and alarm.needs_attention and alarm.severity == "high"
    assert alarms.acknowledge(alarm.id, 11.0)
    assert alarm.state is AlarmState.ACK_ACTIVE and not alarm.needs_attention
    alarms.apply(change(False, 12.0))
    assert alarm.state is AlarmState.NORMAL and alarms.listed() == []
    assert [e.kind for e in alarms.history] == ["raised", "acknowledged", "cleared"]


def test_alarm_that_clears_unacknowledged_stays_listed_until_acknowledged():
    alarms = AlarmManager()
    alarm = alarms.apply(change(True, 10.0))
    alarms.apply(change(False, 11.0))
    assert alarm.state is AlarmState.UNACK_RTN and alarms.listed() == [alarm]
    assert alarms.unacknowledged_count() == 1
    alarms.acknowledge(alarm.id, 12.0)
    assert alarm.state is AlarmState.NORMAL and alarms.listed() == []
    again = alarms.apply(change(True, 20.0))
    assert again is alarm and alarm.state is AlarmState.UNACK_ACTIVE and alarm.raised_at == 20.0


def test_shelving_is_limited_in_time_and_returns_to_the_true_state():
    alarms = AlarmManager()
    alarm = alarms.apply(change(True, 0.0))
    assert alarms.shelve(alarm.id, 1.0, 60.0)
    assert alarm.state is AlarmState.SHELVED and not alarm.needs_attention
    alarms.apply(change(False, 5.0))
    alarms.apply(change(True, 6.0))  # condition toggles while shelved: no disturbance
    assert alarm.state is AlarmState.SHELVED
    assert alarms.expire_shelving(30.0) == []
    assert alarms.expire_shelving(61.0) == [alarm]
    assert alarm.state is AlarmState.UNACK_ACTIVE  # still active, so it comes back unacknowledged
    assert alarms.shelve(alarm.id, 100.0, 10 * 24 * 3600)
    assert alarm.shelved_until == 100.0 + 8 * 3600  # never longer than a shift


def test_only_warning_and_fault_rules_make_alarms_and_listing_is_by_urgency():
    alarms = AlarmManager()
    assert alarms.apply(RuleChange("C", "s", 0, True, "idle", "", 0, 1.0)) is None
    warn = alarms.apply(change(True, 1.0, state="warning", rule=1))
    fault = alarms.apply(change(True, 2.0, state="fault", rule=2))
    old_fault = alarms.apply(change(True, 0.5, state="fault", rule=3))
    alarms.acknowledge(old_fault.id, 3.0)
    assert alarms.listed() == [fault, warn, old_fault]  # unacknowledged first, then severity
    assert alarms.acknowledge_all(4.0) == 2
    assert alarms.unacknowledged_count() == 0


def test_sparkplug_bindings_resolve_aliases_once_per_message_and_report_gaps():
    from viewer.telemetry.sparkplug import DataType, Metric, Payload, encode_payload

    layout = Layout(name="t", components=[Component("PRESS", "station", (0.0, 0.0, 0.0))], bindings=[
        {"topic": "spBv1.0/Plant1/+/Line2", "component": "PRESS", "signal": "temperature", "field": "Temperature"},
        {"topic": "spBv1.0/Plant1/+/Line2", "component": "PRESS", "signal": "state", "field": "State"},
    ])
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(layout), store)
    assert all(b.encoding == "sparkplug" for b in router.table.bindings)  # inferred from the namespace
    birth = Payload(timestamp=1_760_000_000_000, seq=0, metrics=[
        Metric(name="bdSeq", datatype=DataType.UINT64, value=0),
        Metric(name="Temperature", alias=1, datatype=DataType.DOUBLE, value=20.0),
        Metric(name="State", alias=2, datatype=DataType.INT32, value=0),
    ])
    router.handle("spBv1.0/Plant1/NBIRTH/Line2", encode_payload(birth), 1.0)
    data = Payload(timestamp=1_760_000_001_000, seq=1, metrics=[
        Metric(alias=1, datatype=DataType.DOUBLE, value=81.5),
        Metric(alias=2, datatype=DataType.INT32, value=-5),
    ])
    router.handle("spBv1.0/Plant1/NDATA/Line2", encode_payload(data), 2.0)
    assert store.latest(("PRESS", "temperature")).value == 81.5
    assert store.latest(("PRESS", "state")).value == -5
    assert store.latest(("PRESS", "temperature")).source_time == 1_760_000_001.0
    assert store.stats().decode_errors == 0  # two bindings on one topic: still one tracker call, no false gap
    gap = Payload(timestamp=1_760_000_002_000, seq=4, metrics=[Metric(alias=1, datatype=DataType.DOUBLE, value=82.0)])
    router.handle("spBv1.0/Plant1/NDATA/Line2", encode_payload(gap), 3.0)
    errors = store.stats().errors_by_topic["spBv1.0/Plant1/NDATA/Line2"]
    assert errors.count == 1 and "2" in errors.last_reason and "4" in errors.last_reason
    router.handle("spBv1.0/Plant1/NDATA/Line2", b"\xff\xff\xff", 4.0)
    assert store.stats().errors_by_topic["spBv1.0/Plant1/NDATA/Line2"].count == 2


def wrong_type_layout() -> Layout:
    comps = [Component(i, "station", (0.0, 0.0, 0.0)) for i in ("M", "N")]
    return Layout(name="t", components=comps, bindings=[
        {"topic": "m/temp", "component": "M", "signal": "temp", "field": "t",
         "rules": [{"above": 80.0, "state": "warning", "message": "hot"}]},
        {"topic": "m/raw", "component": "M", "signal": "raw", "encoding": "number"},
        {"topic": "m/fault", "component": "M", "signal": "fault", "field": "f",
         "rules": [{"equals": True, "state": "fault"}]},
        {"topic": "m/joints", "component": "M", "signal": "joints", "field": "deg"},
        {"topic": "n/any", "component": "N", "signal": "any"},
        {"topic": "m/mode", "component": "M", "signal": "mode", "field": "m",
         "rules": [{"equals": "auto", "state": "running"}]},
    ])


@pytest.mark.parametrize("value", ["NaN", "abc", None, True, False, [1, 2], {"x": 1}, "1_000", "٣", "inf",
                                   "0x10", "", "nan"])
def test_a_wrong_type_on_a_number_field_is_a_decode_error_not_a_value(value):
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(wrong_type_layout()), store)
    router.handle("m/temp", json.dumps({"t": 85.0}).encode(), 1.0)
    router.handle("m/temp", json.dumps({"t": value}).encode(), 2.0)
    assert store.latest(("M", "temp")).value == 85.0  # the good value stays; the wrong one is not stored
    errors = store.stats().errors_by_topic["m/temp"]
    assert errors.count == 1 and errors.last_reason.startswith("temp: expected a number")


@pytest.mark.parametrize("payload", [b"NaN", b"nan", b"inf", b"-Infinity", b"true", b"false", b"1_000",
                                     "١٢".encode(), "１２".encode(), b"0x1A", b"", b"12 13", b"1e999", b"null"])
def test_the_number_encoding_reads_plain_ascii_decimals_only(payload):
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(wrong_type_layout()), store)
    router.handle("m/raw", payload, 1.0)
    assert store.latest(("M", "raw")) is None
    assert store.stats().errors_by_topic["m/raw"].count == 1


@pytest.mark.parametrize(("payload", "expected"), [(b"12", 12.0), (b" -0.5 ", -0.5), (b"+3", 3.0), (b"1e3", 1000.0),
                                                   (b".25", 0.25), (b"7.", 7.0), (b"-1.5E-2\n", -0.015)])
def test_the_number_encoding_reads_every_decimal_form(payload, expected):
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(wrong_type_layout()), store)
    router.handle("m/raw", payload, 1.0)
    assert store.latest(("M", "raw")).value == expected


def test_each_binding_kind_keeps_what_fits_and_refuses_the_rest():
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(wrong_type_layout()), store)

    def value_after(topic, document, key):
        router.handle(topic, json.dumps(document).encode(), 1.0)
        sample = store.latest(key)
        return None if sample is None else sample.value

    assert value_after("m/temp", {"t": "81.5"}, ("M", "temp")) == 81.5  # a gateway that quotes numbers
    assert value_after("m/fault", {"f": 1}, ("M", "fault")) is True
    assert value_after("m/fault", {"f": "yes"}, ("M", "fault")) is True  # refused: the previous value stays
    assert value_after("m/joints", {"deg": [0, 45.5, -10]}, ("M", "joints")) == [0.0, 45.5, -10.0]
    assert value_after("m/joints", {"deg": [0, "x"]}, ("M", "joints")) == [0.0, 45.5, -10.0]
    assert value_after("m/joints", {"deg": 5}, ("M", "joints")) == [0.0, 45.5, -10.0]
    assert value_after("m/mode", {"m": "auto"}, ("M", "mode")) == "auto"
    assert value_after("m/mode", {"m": None}, ("M", "mode")) == "auto"
    assert value_after("n/any", [1, 2.5], ("N", "any")) == [1.0, 2.5]
    assert value_after("n/any", {"deep": {"er": 1}}, ("N", "any")) == [1.0, 2.5]  # an object is no value
    assert value_after("n/any", [[1], [2]], ("N", "any")) == [1.0, 2.5]
    assert value_after("n/any", "ok", ("N", "any")) == "ok"
    errors = store.stats().errors_by_topic
    assert {topic: e.count for topic, e in errors.items()} == {"m/fault": 1, "m/joints": 2, "m/mode": 1, "n/any": 2}
    assert errors["m/joints"].last_reason == "joints: expected a list of joint values, got int"
    assert errors["n/any"].last_reason == "any: expected a value or a flat list of numbers, element 0 is a list of 1"


def test_five_hundred_levels_of_json_never_become_a_signal_value():
    store = LatestValueStore()
    router = TelemetryRouter(BindingTable.from_layout(wrong_type_layout()), store)
    router.handle("n/any", b"[" * 500 + b"1" + b"]" * 500, 1.0)
    router.handle("n/any", b"{\"a\":" * 500 + b"1" + b"}" * 500, 2.0)
    assert store.latest(("N", "any")) is None
    assert store.stats().errors_by_topic["n/any"].count == 2
