"""The edge-node tracker: Sparkplug B session state (births, deaths, aliases, sequence numbers) per broker."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from viewer.telemetry.sparkplug.codec import (
    _CONVERTERS,
    _F_DATASET,
    _F_EXTENSION,
    _F_TEMPLATE,
    DataType,
    MetricValue,
    SparkplugDecodeError,
    _as_datatype,
    _decode_raw,
    _RawMetric,
    _RawPayload,
    _skip,
    _varint,
)
from viewer.telemetry.sparkplug.topic import (
    BDSEQ_METRIC,
    MessageType,
    SparkplugTopic,
    SparkplugTopicError,
    parse_topic,
)

# --------------------------------------------------------------------------------------------------
# Tracker output
# --------------------------------------------------------------------------------------------------


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__ per field and costs four
# times as much, on the path that runs for every metric of every message. Treat it as read-only.
@dataclass(slots=True)
class MetricUpdate:
    """A metric value from a BIRTH or DATA message, with its alias resolved to a name.

    ``timestamp`` is in seconds since the Unix epoch: the metric's own, else the payload's, else
    ``received_at``. ``device_id`` is ``None`` for the edge node's own metrics. Historical values
    (``is_historical``) should be stored but should not replace the live value.
    """

    group_id: str
    edge_node_id: str
    device_id: str | None
    name: str
    value: MetricValue
    timestamp: float
    datatype: DataType
    alias: int | None = None
    is_null: bool = False
    is_historical: bool = False
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """An edge node (``device_id is None``) or device came online (BIRTH) or went offline (DEATH).

    Offline means the viewer shows its components stale until the next BIRTH.
    """

    group_id: str
    edge_node_id: str
    device_id: str | None
    online: bool
    received_at: float
    reason: str


class ProblemKind(enum.StrEnum):
    """What went wrong with a message; the client counts problems per topic and kind."""

    BAD_TOPIC = "bad-topic"
    MALFORMED_PAYLOAD = "malformed-payload"
    DATA_BEFORE_BIRTH = "data-before-birth"
    UNKNOWN_ALIAS = "unknown-alias"
    UNKNOWN_METRIC = "unknown-metric"
    SEQ_GAP = "seq-gap"
    MISSING_SEQ = "missing-seq"
    BDSEQ_MISMATCH = "bdseq-mismatch"
    BAD_BIRTH = "bad-birth"
    DATATYPE_MISMATCH = "datatype-mismatch"
    INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True, slots=True)
class SparkplugProblem:
    """Something wrong with one message, with a reason a person can read.

    ``rebirth_needed`` says that, per Sparkplug, the host application should ask this edge node for a
    rebirth (see :func:`rebirth_command`); ``expected_seq``/``got_seq`` are set for sequence gaps.
    """

    topic: str
    kind: ProblemKind
    reason: str
    received_at: float
    group_id: str | None = None
    edge_node_id: str | None = None
    device_id: str | None = None
    expected_seq: int | None = None
    got_seq: int | None = None
    rebirth_needed: bool = False

    def __str__(self) -> str:
        return f"{self.topic}: {self.kind}: {self.reason}"


SparkplugEvent = MetricUpdate | NodeStatus | SparkplugProblem


@dataclass(frozen=True, slots=True)
class EdgeNodeInfo:
    """A snapshot of what the tracker knows about one edge node."""

    group_id: str
    edge_node_id: str
    online: bool
    bd_seq: int | None
    last_seq: int | None
    rebirth_needed: bool
    metric_names: tuple[str, ...]
    devices: dict[str, bool]  # device id -> online


# --------------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------------


_TOPIC_CACHE_SIZE = 10_000
_STRUCTURED_KINDS = {_F_DATASET: "DataSet", _F_TEMPLATE: "Template", _F_EXTENSION: "extension"}


@dataclass(frozen=True, slots=True)
class StructuredValue:
    """A DataSet, Template or extension value: kept as what it is, never stored as a signal value (the store
    holds flat values; a binding that names such a metric gets a counted error saying so)."""

    kind: str
    size: int
    definition: bool = False  # a template definition (a type, sent in BIRTH)

    @property
    def description(self) -> str:
        what = "template definition" if self.definition else self.kind
        return f"a Sparkplug {what} ({self.size:,} bytes), which the viewer does not show"


def structured_value(value_field: int, raw: bytes) -> StructuredValue:
    return StructuredValue(_STRUCTURED_KINDS.get(value_field, "extension"), len(raw),
                           value_field == _F_TEMPLATE and _is_template_definition(raw))


def _is_template_definition(raw: bytes) -> bool:
    """Whether a Template message has ``is_definition`` (field 5) set; walks its top-level fields only."""
    pos, end = 0, len(raw)
    try:
        while pos < end:
            tag, pos = _varint(raw, pos)
            if tag == 0x28:
                value, pos = _varint(raw, pos)
                return value != 0
            pos = _skip(raw, pos, tag, end, {}, "Template")  # any other field: the codec's own skipping
    except (IndexError, SparkplugDecodeError):
        return False
    return False


def _bd_seq(metrics: list[_RawMetric]) -> int | None:
    """The value of the ``bdSeq`` metric of an NBIRTH or NDEATH, if it has an integer one."""
    for metric in metrics:
        if metric[0] == BDSEQ_METRIC and isinstance(metric[4], int) and not isinstance(metric[4], bool):
            return metric[4]
    return None


class _MetricDef:
    __slots__ = ("alias", "datatype", "name")

    def __init__(self, name: str, alias: int | None, datatype: DataType) -> None:
        self.name = name
        self.alias = alias
        self.datatype = datatype


class _Scope:
    """The metrics an edge node or one of its devices declared in its last BIRTH."""

    __slots__ = ("by_alias", "by_name", "online")

    def __init__(self) -> None:
        self.by_alias: dict[int, _MetricDef] = {}
        self.by_name: dict[str, _MetricDef] = {}
        self.online = False


class _NodeState(_Scope):
    __slots__ = ("bd_seq", "born", "devices", "rebirth_needed", "seq")

    def __init__(self) -> None:
        super().__init__()
        self.born = False
        self.bd_seq: int | None = None
        self.seq: int | None = None
        self.rebirth_needed = False
        self.devices: dict[str, _Scope] = {}


class SparkplugTracker:
    """Sparkplug B host-side state for one broker connection: births, aliases, sequence, deaths.

    Feed it every message received under ``spBv1.0/#`` with :meth:`handle`. Not thread-safe: call
    it from one thread (the MQTT client's network thread) and pass its results on.

    Parameters
    ----------
    on_rebirth_needed
        Called with ``(group_id, edge_node_id)`` the first time an edge node needs a rebirth (sequence
        gap, DATA before BIRTH, unknown alias) since its last NBIRTH. A client that may publish
        sends :func:`rebirth_command` from it; the read-only viewer leaves it ``None`` and only
        reports. It runs inside :meth:`handle`; an exception from it becomes a problem.
    """

    def __init__(self, on_rebirth_needed: Callable[[str, str], object] | None = None) -> None:
        self._nodes: dict[tuple[str, str], _NodeState] = {}
        self._on_rebirth_needed = on_rebirth_needed
        self._topics: dict[str, SparkplugTopic] = {}
        self.problem_counts: Counter[str] = Counter()
        """Problems so far per topic, for the status bar's per-topic error counts."""
        self.template_definitions = 0
        """Template definitions seen in births (types, not signals: never stored)."""

    # ---------------------------------------------------------------- public

    def handle(self, topic: str, payload: bytes, received_at: float) -> list[SparkplugEvent]:
        """Process one MQTT message.

        Parameters
        ----------
        topic
            The MQTT topic it arrived on.
        payload
            The raw message payload.
        received_at
            Arrival time, seconds since the Unix epoch (``time.time()``).

        Returns
        -------
        list of MetricUpdate, NodeStatus and SparkplugProblem
            Metric values (with aliases resolved), online/offline changes and problems, in that
            order of discovery. Empty for messages that carry no telemetry (NCMD, DCMD, STATE).
            Never raises: every fault is returned as a :class:`SparkplugProblem`.
        """
        events: list[SparkplugEvent] = []
        try:
            self._handle(topic, payload, received_at, events)
        except Exception as exc:  # the guard of last resort: nothing may escape into the MQTT loop
            events.append(SparkplugProblem(str(topic), ProblemKind.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}",
                                           received_at))
        for event in events:
            if type(event) is SparkplugProblem:
                self.problem_counts[event.topic] += 1
        return events

    def node_info(self, group_id: str, edge_node_id: str) -> EdgeNodeInfo | None:
        """What is known about an edge node, or ``None`` if no message from it was seen."""
        node = self._nodes.get((group_id, edge_node_id))
        if node is None:
            return None
        return EdgeNodeInfo(group_id, edge_node_id, node.online, node.bd_seq, node.seq, node.rebirth_needed,
                            tuple(node.by_name), {d: s.online for d, s in node.devices.items()})

    def nodes(self) -> list[EdgeNodeInfo]:
        """Snapshots of every edge node seen so far."""
        return [info for g, e in list(self._nodes) if (info := self.node_info(g, e)) is not None]

    # ---------------------------------------------------------------- dispatch

    def _handle(self, topic: str, payload: bytes, received_at: float, events: list[SparkplugEvent]) -> None:
        parsed = self._topics.get(topic)
        if parsed is None:
            try:
                parsed = parse_topic(topic)
            except SparkplugTopicError as exc:
                events.append(SparkplugProblem(str(topic), ProblemKind.BAD_TOPIC, str(exc), received_at))
                return
            # A plant has a fixed set of topics; caching their parse saves ~1 µs a message. The bound
            # only guards against a publisher inventing topics.
            if len(self._topics) >= _TOPIC_CACHE_SIZE:
                self._topics.clear()
            self._topics[topic] = parsed
        kind = parsed.message_type
        # Commands come from host applications and STATE carries JSON, not a Payload: no telemetry.
        if kind is MessageType.NCMD or kind is MessageType.DCMD or kind is MessageType.STATE:
            return
        try:
            decoded = _decode_raw(payload)
        except SparkplugDecodeError as exc:
            events.append(self._problem(topic, parsed, ProblemKind.MALFORMED_PAYLOAD, str(exc), received_at))
            return
        if kind is MessageType.NDATA or kind is MessageType.DDATA:
            self._on_data(topic, parsed, decoded, received_at, events)
        elif kind is MessageType.NBIRTH:
            self._on_nbirth(topic, parsed, decoded, received_at, events)
        elif kind is MessageType.DBIRTH:
            self._on_dbirth(topic, parsed, decoded, received_at, events)
        elif kind is MessageType.NDEATH:
            self._on_ndeath(topic, parsed, decoded, received_at, events)
        else:
            self._on_ddeath(topic, parsed, decoded, received_at, events)

    # ---------------------------------------------------------------- message handlers

    def _on_nbirth(self, topic: str, t: SparkplugTopic, p: _RawPayload, received_at: float,
                   events: list[SparkplugEvent]) -> None:
        _, metrics, seq, _, _ = p
        node = self._nodes.get((t.group_id, t.edge_node_id))
        if node is None:
            node = self._nodes[(t.group_id, t.edge_node_id)] = _NodeState()
        # A new session: aliases of the old one are void, devices must send DBIRTH again.
        node.born = node.online = True
        node.rebirth_needed = False
        node.seq = seq if seq is not None and seq <= 255 else None
        if node.seq is None:
            events.append(self._problem(topic, t, ProblemKind.MISSING_SEQ,
                                        f"NBIRTH has no valid seq ({seq!r}); gaps go undetected until the next",
                                        received_at))
        for device_id, device in node.devices.items():
            if device.online:
                events.append(NodeStatus(t.group_id, t.edge_node_id, device_id, False, received_at,
                                         "edge node reborn; waiting for DBIRTH"))
            device.online = False
            device.by_alias, device.by_name = {}, {}
        node.bd_seq = _bd_seq(metrics)
        events.append(NodeStatus(t.group_id, t.edge_node_id, None, True, received_at, "NBIRTH"))
        self._record_birth(topic, t, node, p, received_at, events)

    def _on_dbirth(self, topic: str, t: SparkplugTopic, p: _RawPayload, received_at: float,
                   events: list[SparkplugEvent]) -> None:
        node = self._born_node(topic, t, received_at, events)
        if node is None:
            return
        self._check_seq(topic, t, node, p[2], received_at, events)
        device = node.devices.get(t.device_id)  # type: ignore[arg-type]
        if device is None:
            device = node.devices[t.device_id] = _Scope()  # type: ignore[index]
        device.online = True
        events.append(NodeStatus(t.group_id, t.edge_node_id, t.device_id, True, received_at, "DBIRTH"))
        self._record_birth(topic, t, device, p, received_at, events)

    def _on_data(self, topic: str, t: SparkplugTopic, p: _RawPayload, received_at: float,
                 events: list[SparkplugEvent]) -> None:
        payload_ts, metrics, seq, _, _ = p
        node = self._born_node(topic, t, received_at, events)
        if node is None:
            return
        self._check_seq(topic, t, node, seq, received_at, events)
        scope: _Scope | None = node
        if t.device_id is not None:
            scope = node.devices.get(t.device_id)
            if scope is None or not scope.online:
                events.append(self._problem(topic, t, ProblemKind.DATA_BEFORE_BIRTH,
                                            f"DDATA for device {t.device_id!r} without a DBIRTH in this session",
                                            received_at, rebirth=True))
                self._rebirth(t, node, events, topic, received_at)
                return
        by_alias, by_name = scope.by_alias, scope.by_name
        default_ts = payload_ts / 1000.0 if payload_ts is not None else received_at
        group, edge, device = t.group_id, t.edge_node_id, t.device_id
        append = events.append
        unknown: list[str] = []
        # The hot loop of the viewer's Sparkplug ingest: one pass, no per-metric method calls.
        for name, alias, ts, wire_datatype, value, is_null, is_historical, _, value_field in metrics:
            definition = by_name.get(name) if name is not None else None
            if definition is None and alias is not None:
                # some edge libraries send a different name in DATA than in BIRTH: the alias still says which
                definition = by_alias.get(alias)
            if definition is None:
                unknown.append(f"name {name!r}" if name is not None else f"alias {alias}")
                continue
            datatype = definition.datatype
            if wire_datatype is None:
                # DATA may leave the datatype out: convert the wire value with the one from the BIRTH.
                if value_field and datatype in _CONVERTERS:
                    try:
                        value = _CONVERTERS[datatype](value_field, value)
                    except (SparkplugDecodeError, UnicodeDecodeError) as exc:
                        append(self._problem(topic, t, ProblemKind.MALFORMED_PAYLOAD,
                                             f"metric {definition.name!r} ({datatype.name}): {exc}", received_at))
                        continue
            elif wire_datatype != datatype:
                append(self._problem(
                    topic, t, ProblemKind.DATATYPE_MISMATCH,
                    f"metric {definition.name!r} sent as {_as_datatype(wire_datatype).name}, born as {datatype.name}",
                    received_at))
                datatype = _as_datatype(wire_datatype)
            if value_field >= _F_DATASET:
                value = structured_value(value_field, value)  # type: ignore[arg-type]
            append(MetricUpdate(group, edge, device, definition.name, value,
                                ts / 1000.0 if ts is not None else default_ts,
                                datatype, definition.alias, is_null, is_historical, received_at))
        if unknown:
            kind = ProblemKind.UNKNOWN_ALIAS if unknown[0].startswith("alias") else ProblemKind.UNKNOWN_METRIC
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            append(self._problem(topic, t, kind, f"{len(unknown)} metric(s) not declared in the BIRTH: {shown}",
                                 received_at, rebirth=True))
            self._rebirth(t, node, events, topic, received_at)

    def _on_ndeath(self, topic: str, t: SparkplugTopic, p: _RawPayload, received_at: float,
                   events: list[SparkplugEvent]) -> None:
        node = self._nodes.get((t.group_id, t.edge_node_id))
        if node is None or not node.online:
            return  # never seen alive (or already dead): nothing to mark stale
        death_bd_seq = _bd_seq(p[1])
        if node.bd_seq is not None:
            if death_bd_seq is None:
                # Cannot tell which session died; going stale is safer than showing dead values as live.
                events.append(self._problem(topic, t, ProblemKind.BDSEQ_MISMATCH,
                                            f"NDEATH has no bdSeq metric (NBIRTH bdSeq {node.bd_seq}); "
                                            "marking the node offline anyway", received_at))
            elif death_bd_seq != node.bd_seq:
                # The broker delivers the Will of an older session late: it must not kill the new one.
                events.append(self._problem(topic, t, ProblemKind.BDSEQ_MISMATCH,
                                            f"NDEATH bdSeq {death_bd_seq} does not match NBIRTH bdSeq "
                                            f"{node.bd_seq}; ignored (a death of an earlier session)",
                                            received_at))
                return
        node.online = False
        node.seq = None
        events.append(NodeStatus(t.group_id, t.edge_node_id, None, False, received_at, "NDEATH"))
        for device_id, device in node.devices.items():
            if device.online:
                device.online = False
                events.append(NodeStatus(t.group_id, t.edge_node_id, device_id, False, received_at,
                                         "edge node NDEATH"))

    def _on_ddeath(self, topic: str, t: SparkplugTopic, p: _RawPayload, received_at: float,
                   events: list[SparkplugEvent]) -> None:
        node = self._born_node(topic, t, received_at, events)
        if node is None:
            return
        self._check_seq(topic, t, node, p[2], received_at, events)
        device = node.devices.get(t.device_id)  # type: ignore[arg-type]
        if device is not None and device.online:
            device.online = False
            events.append(NodeStatus(t.group_id, t.edge_node_id, t.device_id, False, received_at, "DDEATH"))

    # ---------------------------------------------------------------- helpers

    def _record_birth(self, topic: str, t: SparkplugTopic, scope: _Scope, p: _RawPayload, received_at: float,
                      events: list[SparkplugEvent]) -> None:
        payload_ts, metrics, _, _, _ = p
        by_alias: dict[int, _MetricDef] = {}
        by_name: dict[str, _MetricDef] = {}
        default_ts = payload_ts / 1000.0 if payload_ts is not None else received_at
        faults: list[str] = []
        for name, alias, ts, wire_datatype, value, is_null, is_historical, _, value_field in metrics:
            if not name:
                faults.append(f"a metric without a name (alias {alias})")
                continue
            if value_field >= _F_DATASET:
                value = structured_value(value_field, value)  # type: ignore[arg-type]
                if value.definition:  # a template definition describes a type: it is not a signal
                    self.template_definitions += 1
                    continue
            datatype = _as_datatype(wire_datatype)
            if datatype is DataType.UNKNOWN:
                faults.append(f"{name!r} has no known datatype ({wire_datatype!r})")
            definition = _MetricDef(name, alias, datatype)
            if alias is not None:
                other = by_alias.get(alias)
                if other is not None:
                    faults.append(f"alias {alias} used by both {other.name!r} and {name!r}")
                by_alias[alias] = definition
            by_name[name] = definition
            events.append(MetricUpdate(t.group_id, t.edge_node_id, t.device_id, name, value,
                                       ts / 1000.0 if ts is not None else default_ts,
                                       datatype, alias, is_null, is_historical, received_at))
        scope.by_alias, scope.by_name = by_alias, by_name
        if faults:
            shown = "; ".join(faults[:5]) + (f"; and {len(faults) - 5} more" if len(faults) > 5 else "")
            events.append(self._problem(topic, t, ProblemKind.BAD_BIRTH, f"{t.message_type}: {shown}", received_at))

    def _born_node(self, topic: str, t: SparkplugTopic, received_at: float,
                   events: list[SparkplugEvent]) -> _NodeState | None:
        """The node if it is alive; otherwise report DATA/DBIRTH/DDEATH before NBIRTH and return None."""
        key = (t.group_id, t.edge_node_id)
        node = self._nodes.get(key)
        if node is not None and node.online:
            return node
        if node is None:
            node = self._nodes[key] = _NodeState()
        state = "after its NDEATH" if node.born else "before any NBIRTH"
        events.append(self._problem(topic, t, ProblemKind.DATA_BEFORE_BIRTH,
                                    f"{t.message_type} from edge node {t.edge_node_id!r} {state}",
                                    received_at, rebirth=True))
        self._rebirth(t, node, events, topic, received_at)
        return None

    def _check_seq(self, topic: str, t: SparkplugTopic, node: _NodeState, seq: int | None, received_at: float,
                   events: list[SparkplugEvent]) -> None:
        """One seq counter per edge node runs over NBIRTH, DBIRTH, NDATA, DDATA and DDEATH, 0..255."""
        if seq is None or seq > 255:
            events.append(self._problem(topic, t, ProblemKind.MISSING_SEQ,
                                        f"{t.message_type} has no valid seq ({seq!r})", received_at))
            return
        last = node.seq
        node.seq = seq
        if last is None:
            return
        expected = (last + 1) & 0xFF
        if seq != expected:
            events.append(SparkplugProblem(
                topic, ProblemKind.SEQ_GAP,
                f"seq gap: expected {expected}, got {seq} ({(seq - expected) & 0xFF} message(s) missing or "
                "out of order)", received_at, t.group_id, t.edge_node_id, t.device_id,
                expected_seq=expected, got_seq=seq, rebirth_needed=True))
            self._rebirth(t, node, events, topic, received_at)

    def _rebirth(self, t: SparkplugTopic, node: _NodeState, events: list[SparkplugEvent], topic: str,
                 received_at: float) -> None:
        # Ask once per session: repeating the request on every bad message would flood the node.
        if node.rebirth_needed:
            return
        node.rebirth_needed = True
        if self._on_rebirth_needed is None:
            return
        try:
            self._on_rebirth_needed(t.group_id, t.edge_node_id)
        except Exception as exc:  # client code: report it, keep decoding
            events.append(self._problem(topic, t, ProblemKind.INTERNAL_ERROR,
                                        f"rebirth callback failed: {type(exc).__name__}: {exc}", received_at))

    @staticmethod
    def _problem(topic: str, t: SparkplugTopic, kind: ProblemKind, reason: str, received_at: float,
                 rebirth: bool = False) -> SparkplugProblem:
        return SparkplugProblem(topic, kind, reason, received_at, t.group_id, t.edge_node_id, t.device_id,
                                rebirth_needed=rebirth)
