"""An open layout being viewed or edited: commands with undo/redo, dirty tracking, change events.

Every edit is a :class:`Command` pushed on the document's undo stack; the
document emits plain :class:`~viewer.model.events.Signal` events that views
(the scene, the component list, the editor's KPI panel) connect to. No Qt here:
the editor and tests drive it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.model.events import Signal
from viewer.model.layout import Component, FlowLink, Layout, Vec3
from viewer.model.layout_io import check_document, save_layout


@dataclass
class DocumentEvents:
    """The change events of a :class:`LayoutDocument`."""

    component_added: Signal = field(default_factory=Signal)  # (component_id)
    component_removed: Signal = field(default_factory=Signal)  # (component_id)
    component_changed: Signal = field(default_factory=Signal)  # (component_id, field_name)
    flow_changed: Signal = field(default_factory=Signal)  # ()
    dirty_changed: Signal = field(default_factory=Signal)  # (is_dirty)
    history_changed: Signal = field(default_factory=Signal)  # ()


class EditRefusedError(ValueError):
    """An edit that would leave the layout invalid; the model is unchanged and the message says why."""


class Command:
    """One undoable edit. ``text`` names it for the Edit menu ("Move Station 4")."""

    text = "Edit"
    validate = True  # check the whole layout after the edit (moves check themselves: they come in bursts)

    def merge(self, newer: Command) -> bool:
        """Absorb ``newer`` (already applied) into this undo step; False when they are separate steps."""
        return False

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        raise NotImplementedError

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        raise NotImplementedError


class SetComponentField(Command):
    """Change one field of a component (position, rotation, name, colour, a section...)."""

    def __init__(self, component_id: str, field_name: str, value: Any, text: str | None = None) -> None:
        self.component_id = component_id
        self.field_name = field_name
        self.value = value
        self.old: Any = None
        self._auto_text = text is None
        self.text = text or f"Change {field_name} of {component_id}"

    def _set(self, doc: LayoutDocument, value: Any) -> None:
        comp = doc.layout.component(self.component_id)
        if self.field_name in Component.__dataclass_fields__:
            setattr(comp, self.field_name, value)
        elif value is None:
            comp.sections.pop(self.field_name, None)
        else:
            comp.sections[self.field_name] = value
        doc.events.component_changed.emit(self.component_id, self.field_name)

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        if self.field_name == "id":
            raise ValueError("a component's id is its identity; renaming ids is not a field edit")
        comp = doc.layout.component(self.component_id)
        if self._auto_text and comp.name:
            self.text = self.text[: -len(self.component_id)] + comp.display_name  # "Move ST10 CNC milling A"
        if self.field_name in Component.__dataclass_fields__:
            self.old = getattr(comp, self.field_name)
        else:
            self.old = comp.sections.get(self.field_name)
        self._set(doc, self.value)

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        self._set(doc, self.old)


class MoveComponent(SetComponentField):
    """Move a component to a new floor position; conveyors it feeds or is fed by stretch to follow.

    A conveyor runs between the component feeding it and the one it feeds: when either end moves, its length
    changes by the change in distance between them and its centre follows the midpoint, so the simulation
    (transit = length / speed) sees the move. Consecutive moves of one component during a drag merge into one
    undo step.
    """

    validate = False

    def __init__(self, component_id: str, position: Vec3, display_name: str | None = None) -> None:
        pos = tuple(float(v) for v in position)
        if not all(math.isfinite(v) for v in pos):
            raise EditRefusedError("a position must be finite numbers")
        super().__init__(component_id, "position", pos, f"Move {display_name}" if display_name else None)
        if display_name is None:
            self.text = f"Move {component_id}"
        self._follow: list[tuple[str, dict[str, Any], Vec3, dict[str, Any], Vec3]] = []
        self.open = True  # still merging (the drag goes on)

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        _check_on_floor(doc.layout, self.value)
        before = {c.id: tuple(c.position) for c in doc.layout.components}
        super().redo(doc)
        if not self._follow:
            try:
                self._follow = _conveyors_following(doc.layout, self.component_id, before)
            except EditRefusedError:
                super().undo(doc)  # refused: nothing moved
                raise
        for conveyor, _old_section, _old_pos, new_section, new_pos in self._follow:
            comp = doc.layout.component(conveyor)
            if new_section is not None:
                comp.sections["conveyor"] = dict(new_section)
            comp.position = new_pos
            doc.events.component_changed.emit(conveyor, "conveyor" if new_section is not None else "position")

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        for conveyor, old_section, old_pos, _new_section, _new_pos in reversed(self._follow):
            comp = doc.layout.component(conveyor)
            if old_section is not None:
                comp.sections["conveyor"] = dict(old_section)
            comp.position = old_pos
            doc.events.component_changed.emit(conveyor, "conveyor" if old_section is not None else "position")
        super().undo(doc)

    def merge(self, newer: Command) -> bool:
        """A drag: keep the first position to undo to, take the newest one."""
        if not (self.open and isinstance(newer, MoveComponent) and newer.component_id == self.component_id):
            return False
        self.value = newer.value
        follow = {c: (old_s, old_p) for c, old_s, old_p, _ns, _np in self._follow}
        self._follow = [(c, *follow.get(c, (old_s, old_p)), new_s, new_p)
                        for c, old_s, old_p, new_s, new_p in newer._follow]
        return True


def _check_on_floor(layout: Layout, position: Vec3) -> None:
    floor = layout.floor or {}
    if "size" not in floor:
        return
    ox, oy = (floor.get("origin") or (0.0, 0.0))[:2]
    w, d = floor["size"][:2]
    x, y = position[0], position[1]
    if not (ox <= x <= ox + w and oy <= y <= oy + d):
        raise EditRefusedError(f"({x:.1f}, {y:.1f}) is outside the floor "
                               f"({ox:g}..{ox + w:g} m by {oy:g}..{oy + d:g} m)")


MIN_CONVEYOR_M = 0.3


def _conveyors_following(layout: Layout, moved: str, before: dict[str, Vec3]) -> list:
    """(component, old conveyor section, old position, new section, new position) for conveyors between the
    moved component and another one, then for its children (section None: they only move)."""
    out = []
    feeders: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}
    for link in layout.flow:
        targets.setdefault(link.source, []).append(link.target)
        feeders.setdefault(link.target, []).append(link.source)
    for comp in layout.components:
        if comp.kind != "conveyor" or "conveyor" not in comp.sections:
            continue
        ins, outs = feeders.get(comp.id, []), targets.get(comp.id, [])
        if len(ins) != 1 or len(outs) != 1 or moved not in (ins[0], outs[0]):
            continue
        a0, b0 = before[ins[0]], before[outs[0]]
        a1, b1 = layout.component(ins[0]).position, layout.component(outs[0]).position
        old_gap = math.dist(a0[:2], b0[:2])
        new_gap = math.dist(a1[:2], b1[:2])
        section = dict(comp.sections["conveyor"])
        length = float(section.get("length", 1.0))
        new_length = length + (new_gap - old_gap)
        if new_length < MIN_CONVEYOR_M:
            raise EditRefusedError(f"{comp.display_name} would be {new_length:.2f} m long: move "
                              f"{layout.component(moved).display_name} less close")
        new_section = dict(section, length=round(new_length, 4))
        shift = ((a1[0] - a0[0] + b1[0] - b0[0]) / 2, (a1[1] - a0[1] + b1[1] - b0[1]) / 2)
        new_pos = (comp.position[0] + shift[0], comp.position[1] + shift[1], comp.position[2])
        out.append((comp.id, section, tuple(comp.position), new_section, new_pos))
    # Children (a machine's sensors) move with their parent, by the same offset.
    was, now = before[moved], layout.component(moved).position
    delta = (now[0] - was[0], now[1] - was[1], now[2] - was[2])
    todo = [moved]
    while todo:
        parent = todo.pop()
        for child in layout.components:
            if child.parent == parent and child.id != moved:
                old = tuple(child.position)
                out.append((child.id, None, old, None, (old[0] + delta[0], old[1] + delta[1], old[2] + delta[2])))
                todo.append(child.id)
    return out


class SetSectionValue(Command):
    """Set one value of a component's section (``sim.cycle_time``, ``buffer.capacity``...); None removes it."""

    def __init__(self, component_id: str, section: str, key: str, value: Any, text: str | None = None) -> None:
        self.component_id, self.section, self.key, self.value = component_id, section, key, value
        self.old: Any = None
        self.had = False
        self.text = text or f"Change {section}.{key} of {component_id}"

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        comp = doc.layout.component(self.component_id)
        section = comp.sections.setdefault(self.section, {})
        self.had = self.key in section
        self.old = section.get(self.key)
        if self.value is None:
            section.pop(self.key, None)
        else:
            section[self.key] = self.value
        doc.events.component_changed.emit(self.component_id, self.section)

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        section = doc.layout.component(self.component_id).sections.setdefault(self.section, {})
        if self.had:
            section[self.key] = self.old
        else:
            section.pop(self.key, None)
        if not section:
            doc.layout.component(self.component_id).sections.pop(self.section, None)
        doc.events.component_changed.emit(self.component_id, self.section)


class AddComponent(Command):
    """Add a component (at the end of the list, or at ``index``)."""

    def __init__(self, component: Component, index: int | None = None) -> None:
        self.component = component
        self.index = index
        self.text = f"Add {component.display_name}"

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        if self.component.id in doc.layout.ids():
            raise ValueError(f"a component with id {self.component.id!r} exists already")
        at = len(doc.layout.components) if self.index is None else self.index
        doc.layout.components.insert(at, self.component.copy())
        doc.events.component_added.emit(self.component.id)

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        doc.layout.components.pop(doc.layout.index_of(self.component.id))
        doc.events.component_removed.emit(self.component.id)


class RemoveComponent(Command):
    """Delete a component and the flow links that touch it.

    So the layout stays valid (and saveable), children move up to the removed
    component's own parent and bindings that name it are dropped; undo restores both.
    """

    def __init__(self, component_id: str) -> None:
        self.component_id = component_id
        self.text = f"Delete {component_id}"
        self._removed: Component | None = None
        self._index = 0
        self._links: list[tuple[int, FlowLink]] = []
        self._children: list[str] = []
        self._bindings: list[tuple[int, dict[str, Any]]] = []

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        self._index = doc.layout.index_of(self.component_id)
        self._removed = doc.layout.components.pop(self._index)
        self.text = f"Delete {self._removed.display_name}"
        self._links = [(i, f) for i, f in enumerate(doc.layout.flow) if self.component_id in (f.source, f.target)]
        for i, _ in reversed(self._links):
            doc.layout.flow.pop(i)
        self._children = [c.id for c in doc.layout.components if c.parent == self.component_id]
        for child in self._children:
            doc.layout.component(child).parent = self._removed.parent
        self._bindings = [(i, b) for i, b in enumerate(doc.layout.bindings) if b.get("component") == self.component_id]
        for i, _ in reversed(self._bindings):
            doc.layout.bindings.pop(i)
        doc.events.component_removed.emit(self.component_id)
        for child in self._children:
            doc.events.component_changed.emit(child, "parent")
        if self._links:
            doc.events.flow_changed.emit()

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        assert self._removed is not None
        doc.layout.components.insert(self._index, self._removed)
        for i, link in self._links:
            doc.layout.flow.insert(i, link)
        for child in self._children:
            doc.layout.component(child).parent = self.component_id
        for i, binding in self._bindings:
            doc.layout.bindings.insert(i, binding)
        doc.events.component_added.emit(self.component_id)
        for child in self._children:
            doc.events.component_changed.emit(child, "parent")
        if self._links:
            doc.events.flow_changed.emit()


class ConnectComponents(Command):
    """Add a material-flow link."""

    def __init__(self, source: str, target: str, share: float | None = None) -> None:
        self.link = FlowLink(source, target, share)
        self.text = f"Connect {source} to {target}"

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        ids = set(doc.layout.ids())
        if self.link.source not in ids or self.link.target not in ids:
            raise ValueError("both ends of a flow link must be existing components")
        if self.link.source == self.link.target:
            raise ValueError(f"{self.link.source!r} cannot feed itself")
        if any((f.source, f.target) == (self.link.source, self.link.target) for f in doc.layout.flow):
            raise ValueError(f"{self.link.source!r} already feeds {self.link.target!r}")
        if self.link.source in doc.layout.downstream(self.link.target):
            raise EditRefusedError(f"{self.link.target!r} already feeds {self.link.source!r} further down the line: "
                                   "the link would send parts round in a loop (use a station's rework_rate "
                                   "for rework)")
        doc.layout.flow.append(self.link)
        doc.events.flow_changed.emit()

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        doc.layout.flow.remove(self.link)
        doc.events.flow_changed.emit()


class DisconnectComponents(Command):
    """Remove a material-flow link."""

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target
        self.text = f"Disconnect {source} from {target}"
        self._removed: tuple[int, FlowLink] | None = None

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        for i, link in enumerate(doc.layout.flow):
            if (link.source, link.target) == (self.source, self.target):
                self._removed = (i, doc.layout.flow.pop(i))
                doc.events.flow_changed.emit()
                return
        raise EditRefusedError(f"{self.source!r} does not feed {self.target!r}")

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        assert self._removed is not None
        doc.layout.flow.insert(*self._removed)
        doc.events.flow_changed.emit()


class ReplaceLink(Command):
    """Change a flow link's routing share or transport (same ends)."""

    def __init__(self, old: FlowLink, new: FlowLink) -> None:
        if (old.source, old.target) != (new.source, new.target):
            raise EditRefusedError("a link keeps its ends: disconnect and connect to move it")
        self.old, self.new = old, new
        self.text = f"Change the link {old.source} to {old.target}"

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        doc.layout.flow[doc.layout.flow.index(self.old)] = self.new
        doc.events.flow_changed.emit()

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        doc.layout.flow[doc.layout.flow.index(self.new)] = self.old
        doc.events.flow_changed.emit()


def duplicate_of(layout: Layout, component_id: str, offset: tuple[float, float] = (2.0, 0.0)) -> AddComponent:
    """A command that adds a copy of a component beside it, with a fresh id ("ST10-2") and no flow links."""
    comp = layout.component(component_id)
    ids = set(layout.ids())
    n = 2
    while f"{component_id}-{n}" in ids:
        n += 1
    new_id = f"{component_id}-{n}"
    copy = comp.copy(id=new_id, name=f"{comp.display_name} ({n})" if comp.name else "",
                     position=(comp.position[0] + offset[0], comp.position[1] + offset[1], comp.position[2]),
                     parent=None)
    command = AddComponent(copy)
    command.text = f"Duplicate {comp.display_name}"
    return command


class LayoutDocument:
    """A layout with its file path, undo history and change events."""

    def __init__(self, layout: Layout, path: Path | None = None) -> None:
        self.layout = layout
        self.path = Path(path) if path is not None else None
        self.events = DocumentEvents()
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._clean_depth: int | None = 0

    @property
    def base_dir(self) -> Path:
        """The folder mesh paths are relative to."""
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def is_dirty(self) -> bool:
        """True when the layout differs from the file last saved or opened."""
        return self._clean_depth != len(self._undo)

    def push(self, command: Command, merge: bool = False) -> None:
        """Apply an edit and record it for undo; :class:`EditRefusedError` (model unchanged) for an invalid one.

        ``merge``: fold it into the previous step when that step accepts it (a drag in progress), unless the
        previous step is where the file was last saved.
        """
        was_dirty = self.is_dirty
        try:
            command.redo(self)
        except (KeyError, ValueError) as exc:
            if isinstance(exc, EditRefusedError):
                raise
            raise EditRefusedError(str(exc).strip("'\"")) from None
        if command.validate:
            problems = check_document(self.layout.to_dict())
            if problems:
                command.undo(self)
                raise EditRefusedError("; ".join(str(p) for p in problems[:3]))
        last = self._undo[-1] if self._undo else None
        if merge and last is not None and self._clean_depth != len(self._undo) and last.merge(command):
            self._redo.clear()
            self._after_change(was_dirty)
            return
        if self._undo and isinstance(self._undo[-1], MoveComponent):
            self._undo[-1].open = False  # a different edit ends a drag
        self._undo.append(command)
        if self._clean_depth is not None and self._clean_depth > len(self._undo) - 1:
            self._clean_depth = None  # the saved state was on the discarded redo branch
        self._redo.clear()
        self._after_change(was_dirty)

    def end_merge(self) -> None:
        """The drag is over: the next move is a new undo step."""
        if self._undo and isinstance(self._undo[-1], MoveComponent):
            self._undo[-1].open = False

    def undo(self) -> None:
        """Revert the newest edit, if any."""
        if not self._undo:
            return
        was_dirty = self.is_dirty
        command = self._undo.pop()
        command.undo(self)
        self._redo.append(command)
        self._after_change(was_dirty)

    def redo(self) -> None:
        """Re-apply the newest undone edit, if any."""
        if not self._redo:
            return
        was_dirty = self.is_dirty
        command = self._redo.pop()
        command.redo(self)
        self._undo.append(command)
        self._after_change(was_dirty)

    @property
    def undo_text(self) -> str | None:
        """Name of the edit Undo would revert."""
        return self._undo[-1].text if self._undo else None

    @property
    def redo_text(self) -> str | None:
        """Name of the edit Redo would re-apply."""
        return self._redo[-1].text if self._redo else None

    def save(self, path: Path | None = None) -> None:
        """Write the layout (to ``path``, or where it came from) and mark it clean."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name: use Save As")
        save_layout(self.layout, target)
        was_dirty = self.is_dirty
        self.path = target
        self._clean_depth = len(self._undo)
        self._after_change(was_dirty)

    def problems(self) -> list[str]:
        """Schema and semantic problems of the current state (empty when it would save)."""
        return [str(p) for p in check_document(self.layout.to_dict())]

    def _after_change(self, was_dirty: bool) -> None:
        if was_dirty != self.is_dirty:
            self.events.dirty_changed.emit(self.is_dirty)
        self.events.history_changed.emit()


OPCUA_SOURCE_KEYS = ("topic", "node", "browse_path", "field", "encoding", "qos")  # what names a binding's source


class BindOpcUaNode(Command):
    """Bind an OPC UA node to a component's signal (the editor's "Bind OPC UA node…").

    The node is named by its NodeId (``node``) or by its browse path from the Objects folder (``browse_path``),
    exactly one. Bindings of the same component and signal are replaced: the first keeps its place and what it
    says besides its source (unit, rules, stale_after), the others are removed; undo restores them all. A new
    binding takes ``unit`` (a robot's joints: degrees). ``endpoint`` gives a layout without an ``opcua`` section
    one (the server the user browsed), removed again by undo.
    """

    def __init__(self, component_id: str, signal: str, *, node: str | None = None,
                 browse_path: list[str] | tuple[str, ...] | None = None, unit: str | None = None,
                 endpoint: str | None = None) -> None:
        if (node is None) == (browse_path is None):
            raise EditRefusedError("an OPC UA binding names its node by NodeId or by browse path, one of them")
        if not signal.strip():
            raise EditRefusedError("name the signal the node feeds (e.g. state, joints, vibration)")
        self.component_id, self.signal = component_id, signal.strip()
        self.source: dict[str, Any] = {"node": node} if node is not None else {"browse_path": list(browse_path or ())}
        self.unit, self.endpoint = unit, endpoint
        self.label = node if node is not None else "/".join(browse_path or ())
        self.text = f"Bind {self.signal} of {component_id} to {self.label}"
        self._replaced: list[tuple[int, dict[str, Any]]] = []
        self._added_opcua = False

    def binding(self, kept: dict[str, Any] | None) -> dict[str, Any]:
        """The new binding: its source, component and signal first (as the layout files write them), then what
        the replaced binding said besides its source, or the unit."""
        out = {**self.source, "component": self.component_id, "signal": self.signal}
        rest = {k: v for k, v in (kept or {}).items() if k not in OPCUA_SOURCE_KEYS and k not in out}
        if kept is None and self.unit:
            rest["unit"] = self.unit
        return {**out, **rest}

    def redo(self, doc: LayoutDocument) -> None:
        """Apply the edit."""
        layout = doc.layout
        if self.component_id not in layout.ids():
            raise EditRefusedError(f"there is no component {self.component_id!r} (deleted meanwhile?)")
        comp = layout.component(self.component_id)
        self.text = f"Bind {self.signal} of {comp.display_name} to {self.label}"
        self._replaced = [(i, b) for i, b in enumerate(layout.bindings)
                          if b.get("component") == self.component_id and b.get("signal") == self.signal]
        for i, _old in reversed(self._replaced):
            layout.bindings.pop(i)
        at = self._replaced[0][0] if self._replaced else len(layout.bindings)
        layout.bindings.insert(at, self.binding(self._replaced[0][1] if self._replaced else None))
        self._added_opcua = layout.opcua is None and self.endpoint is not None
        if self._added_opcua:
            layout.opcua = {"endpoint": self.endpoint}
        doc.events.component_changed.emit(self.component_id, "bindings")

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        layout = doc.layout
        at = self._replaced[0][0] if self._replaced else len(layout.bindings) - 1
        layout.bindings.pop(at)
        for i, old in self._replaced:
            layout.bindings.insert(i, old)
        if self._added_opcua:
            layout.opcua = None
        doc.events.component_changed.emit(self.component_id, "bindings")
