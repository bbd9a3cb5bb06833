"""An open layout being viewed or edited: commands with undo/redo, dirty tracking, change events.

Every edit is a :class:`Command` pushed on the document's undo stack; the
document emits plain :class:`~viewer.model.events.Signal` events that views
(the scene, the component list, the editor's KPI panel) connect to. No Qt here:
the editor and tests drive it directly.
"""

from __future__ import annotations

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


class Command:
    """One undoable edit. ``text`` names it for the Edit menu ("Move Station 4")."""

    text = "Edit"

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
    """Move a component to a new floor position."""

    def __init__(self, component_id: str, position: Vec3, display_name: str | None = None) -> None:
        pos = tuple(float(v) for v in position)
        super().__init__(component_id, "position", pos, f"Move {display_name}" if display_name else None)
        if display_name is None:
            self.text = f"Move {component_id}"


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
        doc.layout.flow.append(self.link)
        doc.events.flow_changed.emit()

    def undo(self, doc: LayoutDocument) -> None:
        """Revert the edit."""
        doc.layout.flow.remove(self.link)
        doc.events.flow_changed.emit()


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

    def push(self, command: Command) -> None:
        """Apply an edit and record it for undo."""
        was_dirty = self.is_dirty
        command.redo(self)
        self._undo.append(command)
        if self._clean_depth is not None and self._clean_depth > len(self._undo) - 1:
            self._clean_depth = None  # the saved state was on the discarded redo branch
        self._redo.clear()
        self._after_change(was_dirty)

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
