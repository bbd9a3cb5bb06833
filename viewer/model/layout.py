"""The layout model: components on a floor, the material flow, bindings (MQTT and OPC UA).

Plain dataclasses with value equality, so "save then load gives an equal model"
is a one-line assertion. Typed fields hold what every component has (id, kind,
placement, look); the kind-specific sections (``sim``, ``buffer``, ``conveyor``,
``robot``, ``path``) stay the plain dicts the schema already validated, so the
simulation and telemetry packages own their interpretation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("station", "conveyor", "buffer", "robot", "agv-path", "sensor", "prop", "source", "sink")

# ISA-101 high-performance HMI: equipment in calm greys; colour is kept for
# abnormal states (amber/red) and for the operator's selection (blue).
DEFAULT_COLORS: dict[str, str] = {
    "station": "#8d949c",
    "conveyor": "#5d636a",
    "buffer": "#a3a9af",
    "robot": "#c3c8cd",
    "agv-path": "#8f8c7c",
    "sensor": "#747c84",
    "prop": "#6c7177",
    "source": "#7f868d",
    "sink": "#7f868d",
}

SECTION_KEYS = ("sim", "buffer", "conveyor", "robot", "path", "anomaly", "health", "properties")

Vec3 = tuple[float, float, float]


def _vec3(values: Any, default: Vec3 = (0.0, 0.0, 0.0)) -> Vec3:
    if values is None:
        return default
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def _scale3(value: Any) -> Vec3:
    if value is None:
        return (1.0, 1.0, 1.0)
    if isinstance(value, int | float):
        s = float(value)
        return (s, s, s)
    return _vec3(value)


def _written(values: Vec3, before: Any = None) -> list[float | int]:
    """A vector as a layout file writes it: each number as the file had it if unchanged, else whole numbers
    without ".0", so a saved file differs from the hand-written one only where something moved."""
    old = list(before) if isinstance(before, list) and len(before) == len(values) else [None] * len(values)
    return [o if o is not None and o == v else int(v) if float(v).is_integer() and abs(v) < 1e15 else v
            for v, o in zip(values, old, strict=True)]


def _as_written(out: dict[str, Any], source: dict[str, Any] | None) -> dict[str, Any]:
    """``out`` with the values that did not change taken verbatim from ``source``, in ``source``'s key order."""
    if not source:
        return out
    ordered: dict[str, Any] = {}
    for key in [k for k in source if k in out] + [k for k in out if k not in source]:
        value = out[key]
        ordered[key] = copy.deepcopy(source[key]) if key in source and source[key] == value else value
    return ordered


def _plain(value: Any) -> Any:
    """Ints that are whole floats stay as written; deep-copy so the model owns its data."""
    return copy.deepcopy(value)


FORMAT_NAME = "twin-viewer-layout"
FORMAT_VERSION = 1  # what this viewer writes; viewer.model.layout_io reads 1 to this


@dataclass
class Component:
    """One piece of equipment placed in the plant."""

    id: str
    kind: str
    position: Vec3
    name: str = ""
    rotation: Vec3 = (0.0, 0.0, 0.0)
    scale: Vec3 = (1.0, 1.0, 1.0)
    color: str | None = None
    mesh: str | None = None
    primitive: dict[str, Any] | None = None
    parent: str | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    # The object as the file had it: saving writes unchanged values exactly as they were written and keeps the
    # file's key order, so a saved file differs from the original only where something was edited.
    as_read: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def display_name(self) -> str:
        """The name if given, else the id."""
        return self.name or self.id

    @property
    def display_color(self) -> str:
        """The colour drawn for the component in its normal state."""
        return self.color or DEFAULT_COLORS.get(self.kind, "#8d949c")

    def section(self, key: str) -> dict[str, Any]:
        """A kind-specific section (``sim``, ``conveyor``, ...) or an empty dict."""
        return self.sections.get(key) or {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Component:
        """Build from a schema-valid JSON object."""
        return cls(
            id=data["id"],
            kind=data["kind"],
            name=data.get("name", ""),
            position=_vec3(data["position"]),
            rotation=_vec3(data.get("rotation")),
            scale=_scale3(data.get("scale")),
            color=data.get("color", "").lower() or None,
            mesh=data.get("mesh"),
            primitive=_plain(data.get("primitive")),
            parent=data.get("parent"),
            sections={k: _plain(data[k]) for k in SECTION_KEYS if k in data},
            as_read=copy.deepcopy(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to a layout file (defaults left out unless the file had them)."""
        written = self.as_read or {}
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.name or "name" in written:
            out["name"] = self.name
        out["position"] = _written(self.position, written.get("position"))
        if any(self.rotation) or "rotation" in written:
            out["rotation"] = _written(self.rotation, written.get("rotation"))
        if self.scale != (1.0, 1.0, 1.0) or "scale" in written:
            sx, sy, sz = self.scale
            as_list = isinstance(written.get("scale"), list) or not sx == sy == sz
            out["scale"] = _written(self.scale, written.get("scale")) if as_list else _written((sx, sx, sx))[0]
        if self.color:
            before = written.get("color")
            out["color"] = before if isinstance(before, str) and before.lower() == self.color else self.color
        if self.mesh is not None:
            out["mesh"] = self.mesh
        if self.primitive is not None:
            out["primitive"] = _plain(self.primitive)
        if self.parent:
            out["parent"] = self.parent
        for key in SECTION_KEYS:
            if key in self.sections:
                out[key] = _plain(self.sections[key])
        return _as_written(out, self.as_read)

    def copy(self, **changes: Any) -> Component:
        """A deep copy with some fields changed."""
        clone = copy.deepcopy(self)
        return replace(clone, **changes) if changes else clone


@dataclass(frozen=True)
class FlowLink:
    """Material moves from ``source`` to ``target``; ``share`` is its routing probability."""

    source: str
    target: str
    share: float | None = None
    transport: str | None = None  # "direct" or "agv"; None = decided by distance (see viewer.sim.model)
    as_read: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see Component.as_read

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowLink:
        """Build from a schema-valid JSON object."""
        share = data.get("share")
        return cls(data["from"], data["to"], float(share) if share is not None else None, data.get("transport"),
                   copy.deepcopy(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to a layout file."""
        out: dict[str, Any] = {"from": self.source, "to": self.target}
        if self.share is not None:
            out["share"] = self.share
        if self.transport is not None:
            out["transport"] = self.transport
        return _as_written(out, self.as_read)


def path_polyline(comp: Component) -> list[tuple[float, float]]:
    """An ``agv-path`` component's floor points in plant coordinates, the first repeated at the end if closed."""
    path = comp.section("path")
    points = [(comp.position[0] + float(p[0]), comp.position[1] + float(p[1])) for p in path.get("points", [])]
    if path.get("closed") and len(points) > 2:
        points.append(points[0])
    return points


@dataclass
class Layout:
    """A whole plant layout, as read from or written to a layout file."""

    name: str
    components: list[Component] = field(default_factory=list)
    flow: list[FlowLink] = field(default_factory=list)
    description: str = ""
    floor: dict[str, Any] = field(default_factory=dict)
    mqtt: dict[str, Any] | None = None
    opcua: dict[str, Any] | None = None  # an OPC UA server (viewer.telemetry.opcua_client reads it)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    simulation: dict[str, Any] = field(default_factory=dict)  # warm-up, shift calendar (viewer.sim reads it)
    as_read: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see Component.as_read

    def component(self, component_id: str) -> Component:
        """The component with this id; ``KeyError`` if there is none."""
        for comp in self.components:
            if comp.id == component_id:
                return comp
        raise KeyError(component_id)

    def index_of(self, component_id: str) -> int:
        """Position of the component in :attr:`components`; ``KeyError`` if absent."""
        for i, comp in enumerate(self.components):
            if comp.id == component_id:
                return i
        raise KeyError(component_id)

    def ids(self) -> list[str]:
        """Component ids in file order."""
        return [c.id for c in self.components]

    def downstream(self, start: str) -> set[str]:
        """Every component material can reach from ``start`` along the flow (``start`` itself excluded)."""
        nxt: dict[str, list[str]] = {}
        for f in self.flow:
            nxt.setdefault(f.source, []).append(f.target)
        seen: set[str] = set()
        todo = [start]
        while todo:
            for t in nxt.get(todo.pop(), []):
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return seen

    def links_touching(self, component_id: str) -> list[FlowLink]:
        """Flow links into or out of a component."""
        return [f for f in self.flow if component_id in (f.source, f.target)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        """Build from a schema-valid JSON document."""
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            floor=_plain(data.get("floor", {})),
            components=[Component.from_dict(c) for c in data["components"]],
            flow=[FlowLink.from_dict(f) for f in data.get("flow", [])],
            mqtt=_plain(data.get("mqtt")),
            opcua=_plain(data.get("opcua")),
            bindings=_plain(data.get("bindings", [])),
            simulation=_plain(data.get("simulation", {})),
            # (the components keep their own; None holds the key's place in the order)
            as_read={k: None if k == "components" else copy.deepcopy(v) for k, v in data.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written to a layout file."""
        out: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "units": "m",
        }
        had = self.as_read or {}  # empty values the file wrote stay written
        if self.description or "description" in had:
            out["description"] = self.description
        if self.floor or "floor" in had:
            out["floor"] = _plain(self.floor)
        out["components"] = [c.to_dict() for c in self.components]
        if self.flow or "flow" in had:
            out["flow"] = [f.to_dict() for f in self.flow]
        if self.mqtt is not None:
            out["mqtt"] = _plain(self.mqtt)
        if self.opcua is not None:
            out["opcua"] = _plain(self.opcua)
        if self.bindings or "bindings" in had:
            out["bindings"] = _plain(self.bindings)
        if self.simulation or "simulation" in had:
            out["simulation"] = _plain(self.simulation)
        if self.as_read is not None and "units" not in self.as_read:
            del out["units"]  # metres are the only unit; a file that did not say so need not start to
        return _as_written(out, self.as_read)
