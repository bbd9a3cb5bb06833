"""Topic bindings: which MQTT topics feed which component signal, and how to read the payload.

A binding in the layout names a topic filter (``+`` and ``#`` allowed), a
component (an id, or ``{1}`` for the text the first ``+`` matched), a signal
name, an encoding and, for JSON, a dotted field path (``data.joints.0``).
Matching runs on the network thread for every message, so results are cached
per concrete topic: after the first message of a topic, routing is one dict look-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from viewer.model.layout import Layout
from viewer.telemetry.values import value_kind

_PLACEHOLDER = re.compile(r"\{(\d+)\}")
MAX_TOPIC_CACHE = 100_000  # distinct topics remembered; beyond that the cache starts afresh


def topic_matches(topic_filter: str, topic: str) -> list[str] | None:
    """The segments matched by the filter's wildcards, or ``None`` when the topic does not match.

    ``plant/+/state`` on ``plant/ST10/state`` gives ``['ST10']``; ``#`` captures the rest joined by ``/``.
    Topics starting with ``$`` are not matched by a leading wildcard (MQTT 3.1.1, 4.7.2).
    """
    f_parts = topic_filter.split("/")
    t_parts = topic.split("/")
    if topic.startswith("$") and f_parts[0] in ("+", "#"):
        return None
    captures: list[str] = []
    for i, part in enumerate(f_parts):
        if part == "#":
            captures.append("/".join(t_parts[i:]))
            return captures
        if i >= len(t_parts):
            return None
        if part == "+":
            captures.append(t_parts[i])
        elif part != t_parts[i]:
            return None
    return captures if len(t_parts) == len(f_parts) else None


def filter_covers(a: str, b: str) -> bool:
    """Whether every topic filter ``b`` matches is matched by filter ``a`` too."""
    a_parts, b_parts = a.split("/"), b.split("/")
    for i, part in enumerate(a_parts):
        if part == "#":
            return True
        if i >= len(b_parts) or b_parts[i] == "#":
            return False
        if part != "+" and part != b_parts[i]:
            return False
    return len(a_parts) == len(b_parts)


def sparkplug_node_filters(topic_filter: str) -> list[str]:
    """The filters that bring every message of the edge nodes a Sparkplug binding names: its NBIRTH and NDEATH
    (a device binding needs the node's birth to decode anything) and all its devices' messages (sequence
    numbers run per edge node: a message of an unbound sibling device is not a gap). [] for other filters."""
    levels = topic_filter.split("/")
    if levels[0] != "spBv1.0" or len(levels) < 2 or levels[1] == "STATE" or "#" in levels[:4]:
        return []
    group = levels[1]
    node = levels[3] if len(levels) > 3 else "+"
    return [f"spBv1.0/{group}/+/{node}", f"spBv1.0/{group}/+/{node}/+"]


def extract_field(document: Any, path: str | None) -> Any:
    """Follow a dotted path (``data.joints.0``) into parsed JSON; ``KeyError`` says which step failed."""
    if not path:
        return document
    return extract_steps(document, tuple(path.split(".")), path)


def extract_steps(document: Any, steps: tuple[str, ...], path: str) -> Any:
    """:func:`extract_field` with the path already split (the router caches the split per binding)."""
    value = document
    for step in steps:
        if isinstance(value, dict):
            if step not in value:
                raise KeyError(f"no field {step!r} in the payload (path {path!r})")
            value = value[step]
        elif isinstance(value, list):
            try:
                value = value[int(step)]
            except (ValueError, IndexError):
                raise KeyError(f"no element {step!r} in a list of {len(value)} (path {path!r})") from None
        else:
            raise KeyError(f"{step!r} of path {path!r} reaches into a {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Binding:
    """One compiled binding of the layout."""

    index: int  # position in the layout's ``bindings`` list
    topic: str
    component: str | None
    signal: str
    encoding: str = "json"
    field_path: str | None = None
    qos: int = 0
    unit: str | None = None
    rules: tuple[dict[str, Any], ...] = ()
    stale_after: float | None = None
    kind: str = "scalar"  # what a value must be to be stored (viewer.telemetry.values)
    node: str | None = None  # an OPC UA binding: its NodeId (viewer.telemetry.opcua_client), topic ""
    browse_path: tuple[str, ...] | None = None  # an OPC UA binding: browse names from the Objects folder

    @classmethod
    def from_dict(cls, index: int, data: dict[str, Any]) -> Binding:
        """Compile a binding object of the layout."""
        topic = data.get("topic", "")
        opcua = "node" in data or "browse_path" in data
        encoding = "opcua" if opcua else data.get("encoding") or (
            "sparkplug" if topic.startswith("spBv1.0/") else "json")
        rules = tuple(data.get("rules", ()))
        return cls(
            index=index,
            topic=topic,
            component=data.get("component"),
            signal=data["signal"],
            encoding=encoding,
            field_path=data.get("field"),
            qos=int(data.get("qos", 0)),
            unit=data.get("unit"),
            rules=rules,
            stale_after=float(data["stale_after"]) if "stale_after" in data else None,
            kind=value_kind(data["signal"], encoding, data.get("unit"), rules),
            node=data.get("node"),
            browse_path=tuple(data["browse_path"]) if "browse_path" in data else None,
        )

    @property
    def is_opcua(self) -> bool:
        """Fed by an OPC UA node, not an MQTT topic (MQTT subscription and routing skip it)."""
        return self.node is not None or self.browse_path is not None

    def component_for(self, captures: list[str]) -> str | None:
        """The component id for a topic with these wildcard captures."""
        if self.component is None:
            return None

        def fill(match: re.Match[str]) -> str:
            n = int(match.group(1))
            return captures[n - 1] if 0 < n <= len(captures) else match.group(0)

        return _PLACEHOLDER.sub(fill, self.component)


@dataclass(frozen=True)
class Route:
    """A binding resolved for one concrete topic."""

    binding: Binding
    component: str | None


@dataclass
class BindingTable:
    """All bindings of a layout, with a per-topic route cache (used from the network thread)."""

    bindings: list[Binding]
    component_ids: frozenset[str] = frozenset()
    _cache: dict[str, tuple[Route, ...]] = field(default_factory=dict)

    @classmethod
    def from_layout(cls, layout: Layout) -> BindingTable:
        """Compile the layout's bindings."""
        return cls([Binding.from_dict(i, b) for i, b in enumerate(layout.bindings)], frozenset(layout.ids()))

    def subscriptions(self) -> list[tuple[str, int]]:
        """Distinct topic filters with the highest QoS any binding asks for, none covered by another (some
        brokers deliver a message once per matching subscription: a duplicate would be a false Sparkplug
        sequence gap). A Sparkplug binding subscribes to its whole edge node (see sparkplug_node_filters)."""
        qos: dict[str, int] = {}
        for b in self.bindings:
            if b.is_opcua:
                continue
            for topic_filter in sparkplug_node_filters(b.topic) or [b.topic]:
                qos[topic_filter] = max(qos.get(topic_filter, 0), b.qos)
        kept = {f: level for f, level in qos.items() if not any(o != f and filter_covers(o, f) for o in qos)}
        for topic_filter, level in qos.items():  # a covered filter's QoS goes to what covers it
            for other in kept:
                if other != topic_filter and filter_covers(other, topic_filter):
                    kept[other] = max(kept[other], level)
        return sorted(kept.items())

    def routes(self, topic: str) -> tuple[Route, ...]:
        """Every binding that a message on ``topic`` feeds (cached)."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        found = []
        for b in self.bindings:
            if b.is_opcua:
                continue
            captures = topic_matches(b.topic, topic)
            if captures is not None:
                found.append(Route(b, b.component_for(captures)))
        routes = tuple(found)
        if len(self._cache) >= MAX_TOPIC_CACHE:
            self._cache.clear()  # a topic storm must not grow memory without bound
        self._cache[topic] = routes
        return routes


def opcua_label(binding: Binding) -> str:
    """An OPC UA binding's node as the layout writes it: the NodeId, or the browse path joined by "/"."""
    return binding.node if binding.node is not None else "/".join(binding.browse_path or ())
