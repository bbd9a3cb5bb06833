"""Decode an arrived message and put its values in the store (runs on the network thread).

One code path for live and replayed telemetry: whoever has a (topic, payload,
time) calls :meth:`TelemetryRouter.handle`. A payload that cannot be decoded is
counted per topic with its reason and never raised: the network loop must keep
running whatever a plant publishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from viewer.telemetry.bindings import MAX_TOPIC_CACHE, BindingTable, Route, extract_steps, opcua_label
from viewer.telemetry.sparkplug import MetricUpdate, NodeStatus, SparkplugProblem, SparkplugTracker
from viewer.telemetry.store import LatestValueStore, Sample
from viewer.telemetry.values import WrongValueError, check_value, parse_decimal

MAX_PAYLOAD_BYTES = 1 << 20  # telemetry is small; a larger payload is refused, not parsed
_UNPARSED = object()

try:  # orjson parses a small telemetry payload ~4x faster than the standard library
    import orjson

    def _parse_json(payload: bytes) -> Any:
        return orjson.loads(payload)
except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it

    def _parse_json(payload: bytes) -> Any:
        return json.loads(payload)


def _reason(exc: BaseException) -> str:
    """A decode failure as a short sentence for the per-topic error list."""
    if isinstance(exc, json.JSONDecodeError):  # orjson's error is a subclass too
        return f"malformed JSON at column {exc.colno}: {exc.msg}"
    if isinstance(exc, UnicodeDecodeError):
        return "payload is not UTF-8 text"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


class DecodeError(ValueError):
    """A payload that does not carry what its binding expects."""


def _decode_number(payload: bytes) -> float:
    return parse_decimal(payload.decode("utf-8"))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to do with a message on one concrete topic, worked out once per topic."""

    # (signal key, encoding, field path split into steps, field path, binding index, value kind) per binding
    decoded: tuple[tuple[tuple[str, str], str, tuple[str, ...] | None, str, int, str], ...]
    sparkplug: tuple[Route, ...]
    unknown: tuple[str, ...]  # components the topic names that the layout lacks
    bound: bool
    sparkplug_node: bool = False  # a Sparkplug topic: its edge node's state is tracked even when unbound


OPCUA_PREFIX = "opcua/"  # the router's topic for OPC UA values (a node's label follows), live and recorded
OPCUA_ENCODING = "twin-opcua-value/1"
# The OPC UA client's "the subscription is alive" note, once a second while connected (recorded, replayed):
# a subscription reports changes only, so an unchanged value is current, not stale. '#' is in no NodeId
# the layout accepts and in no published MQTT topic.
OPCUA_ALIVE_TOPIC = OPCUA_PREFIX + "#alive"
OPCUA_ALIVE_ENCODING = "twin-opcua-alive/1"  # its payload: "{}"
# The MQTT client's "connected to the broker" note, once a second (recorded, replayed): Sparkplug B edge nodes
# report by exception, so a metric of a node that is online (no NDEATH/DDEATH) is current while we are
# connected; plain MQTT signals still go stale by age.
MQTT_ALIVE_TOPIC = "#alive/mqtt"
MQTT_ALIVE_ENCODING = "twin-mqtt-alive/1"  # its payload: "{}"


class TelemetryRouter:
    """Routes (topic, payload) to bindings, decodes, and stores the values."""

    def __init__(self, table: BindingTable, store: LatestValueStore) -> None:
        self.table = table
        self.store = store
        # Sparkplug B payloads are stateful (aliases, sequence numbers per edge node): one tracker sees
        # every Sparkplug message exactly once, whatever number of bindings share its topic.
        self.sparkplug = SparkplugTracker()
        self._plans: dict[str, _Plan] = {}
        self._opcua: dict[str, list[tuple[tuple[str, str], int, str]]] = {}  # node label -> what it feeds
        self._opcua_keys: list[tuple[str, str]] | None = None  # every signal an OPC UA binding feeds
        self.tap: Callable[[str, bytes, float], None] | None = None  # sees every message first (the recorder)
        # (group, edge node) -> device (None: the node itself) -> the signals its metrics fed
        self._sparkplug_keys: dict[tuple[str, str], dict[str | None, set[tuple[str, str]]]] = {}

    def subscriptions(self) -> list[tuple[str, int]]:
        """The topic filters to subscribe to, with their QoS."""
        return self.table.subscriptions()

    def _plan(self, topic: str) -> _Plan:
        routes = self.table.routes(topic)
        decoded, sparkplug, unknown = [], [], []
        for route in routes:
            if route.component is None or route.component not in self.table.component_ids:
                unknown.append(str(route.component))
            elif route.binding.encoding == "sparkplug":
                sparkplug.append(route)
            else:
                path = route.binding.field_path or ""
                steps = tuple(path.split(".")) if path else None
                decoded.append(((route.component, route.binding.signal), route.binding.encoding, steps, path,
                                route.binding.index, route.binding.kind))
        plan = _Plan(tuple(decoded), tuple(sparkplug), tuple(unknown), bool(routes), topic.startswith("spBv1.0/"))
        if len(self._plans) >= MAX_TOPIC_CACHE:
            self._plans.clear()  # a storm of distinct topics must not grow memory without bound
        self._plans[topic] = plan
        return plan

    def handle(self, topic: str, payload: bytes, received: float) -> None:
        """Decode one message into the store. Never raises."""
        if self.tap is not None:
            self.tap(topic, payload, received)
        store = self.store
        if topic.startswith(OPCUA_PREFIX):
            self._handle_opcua(topic, payload, received)
            return
        if topic == MQTT_ALIVE_TOPIC:
            self._sparkplug_alive(received)
            return
        try:
            plan = self._plans.get(topic) or self._plan(topic)
            if not plan.bound:
                store.count_message(received, bound=False)
                if plan.sparkplug_node:  # births, deaths and sequence numbers of a bound node's sibling
                    self._handle_sparkplug([], topic, payload, received)
                return
            if len(payload) > MAX_PAYLOAD_BYTES:
                store.count_message(received)
                store.count_error(topic, f"payload of {len(payload):,} bytes is over the {MAX_PAYLOAD_BYTES:,} limit",
                                  received)
                return
            samples: list[tuple[tuple[str, str], Sample]] = []
            document: Any = _UNPARSED
            for key, encoding, steps, path, index, kind in plan.decoded:
                try:
                    if encoding == "json":
                        if document is _UNPARSED:
                            document = _parse_json(payload)
                        value = extract_steps(document, steps, path) if steps else document
                    elif encoding == "number":
                        value = _decode_number(payload)
                    elif encoding == "text":
                        value = payload.decode("utf-8")
                    else:
                        raise DecodeError(f"encoding {encoding!r} is not decoded by this router")
                    value = check_value(value, kind)
                except WrongValueError as exc:  # decoded, but not what the binding promises: name the signal
                    store.count_error(topic, f"{key[1]}: {exc}", received)
                    continue
                except (DecodeError, KeyError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
                    store.count_error(topic, _reason(exc), received)
                    continue
                samples.append((key, Sample(value, received, None, topic, index)))
            store.record(received, samples)
            for component in plan.unknown:
                store.count_error(topic, f"no component {component!r} in the layout", received)
            if plan.sparkplug:
                self._handle_sparkplug(list(plan.sparkplug), topic, payload, received)
        except Exception as exc:  # the network thread must survive any payload
            store.count_error(topic, f"internal error: {type(exc).__name__}: {exc}", received)
    # --- OPC UA -----------------------------------------------------------------------------------------
    def opcua_targets(self, label: str) -> list[tuple[tuple[str, str], int, str]]:
        """The (signal key, binding index, value kind) that an OPC UA node (NodeId or browse path as the layout
        writes it) feeds."""
        targets = self._opcua.get(label)
        if targets is None:
            targets = self._opcua[label] = [
                ((b.component, b.signal), b.index, b.kind) for b in self.table.bindings
                if b.is_opcua and opcua_label(b) == label and b.component in self.table.component_ids]
        return targets

    def _handle_opcua(self, topic: str, payload: bytes, received: float) -> None:
        """One OPC UA data change, as the client writes it (and a recording holds it): ``opcua/<node>`` with
        a ``twin-opcua-value/1`` JSON document ``{"value", "status", "source_time", "server_time"}``. A status
        that is not Good is quality, not a value: Bad shows the node's signals as no data, Uncertain as uncertain."""
        store = self.store
        if topic == OPCUA_ALIVE_TOPIC:
            keys = self._opcua_keys
            if keys is None:
                keys = self._opcua_keys = [(b.component, b.signal) for b in self.table.bindings
                                           if b.is_opcua and b.component in self.table.component_ids]
            store.mark_alive(keys, received)
            return
        targets = self.opcua_targets(topic[len(OPCUA_PREFIX):])
        if not targets:
            store.count_message(received, bound=False)
            return
        try:
            document = _parse_json(payload)
            if not isinstance(document, dict) or "value" not in document:
                raise DecodeError("not a twin-opcua-value document (an object with a value)")
            status = str(document.get("status") or "Good")
            source = document.get("source_time")
            source = float(source) if isinstance(source, int | float) and not isinstance(source, bool) else None
        except (DecodeError, ValueError, TypeError, RecursionError) as exc:
            store.count_message(received)
            store.count_error(topic, _reason(exc), received)
            return
        if not status.startswith("Good"):
            store.count_message(received)
            keys = [key for key, _index, _kind in targets]
            # Bad: no data (stale until a good value); Uncertain: the server doubts its own value: not taken
            (store.mark_uncertain if status.startswith("Uncertain") else store.mark_offline)(keys, received)
            return
        samples = []
        raw = document["value"]
        for key, index, kind in targets:
            try:
                samples.append((key, Sample(check_value(raw, kind), received, source, topic, index)))
            except WrongValueError as exc:
                store.count_error(topic, f"{key[1]}: {exc}", received)
        store.record(received, samples)

    def _handle_sparkplug(self, routes: list[Route], topic: str, payload: bytes, received: float) -> None:
        """Metrics go to the bindings that name them in ``field`` (or, without ``field``, under their own name)."""
        for event in self.sparkplug.handle(topic, payload, received):
            if isinstance(event, SparkplugProblem):
                self.store.count_error(topic, event.reason, received)
            elif isinstance(event, NodeStatus):
                if not event.online:
                    self._went_offline(event, received)
            elif isinstance(event, MetricUpdate) and not event.is_historical:
                for route in routes:
                    wanted = route.binding.field_path
                    if wanted is None or wanted == event.name:
                        signal = route.binding.signal if wanted else event.name
                        try:
                            value = check_value(event.value, route.binding.kind)
                        except WrongValueError as exc:
                            self.store.count_error(topic, f"{signal}: {exc}", received)
                            continue
                        key = (route.component or "", signal)
                        self.store.put(key, Sample(value, received, event.timestamp, topic, route.binding.index))
                        sources = self._sparkplug_keys.get((event.group_id, event.edge_node_id))
                        if sources is None:
                            sources = self._sparkplug_keys[(event.group_id, event.edge_node_id)] = {}
                        sources.setdefault(event.device_id, set()).add(key)

    def _sparkplug_alive(self, received: float) -> None:
        """Connected to the broker at ``received``: the signals of every online Sparkplug node and device are
        current (report by exception: an unchanged metric sends nothing)."""
        keys: list[tuple[str, str]] = []
        for (group, edge), devices in self._sparkplug_keys.copy().items():  # copy: the network thread adds
            info = self.sparkplug.node_info(group, edge)
            if info is None or not info.online:
                continue
            for device, device_keys in devices.copy().items():
                if device is None or info.devices.get(device, False):
                    keys += device_keys
        if keys:
            self.store.mark_alive(keys, received)

    def _went_offline(self, event: NodeStatus, received: float) -> None:
        """An edge node (with all its devices) or one device died: its signals show stale until a birth."""
        sources = self._sparkplug_keys.get((event.group_id, event.edge_node_id), {})
        if event.device_id is None:
            keys = [key for device_keys in sources.values() for key in device_keys]
        else:
            keys = list(sources.get(event.device_id, ()))
        if keys:
            self.store.mark_offline(keys, received)
