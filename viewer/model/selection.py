"""The selected component, in one Qt-free place the views observe.

The 3D view, the component tree, the details panel and the editor all show the same selection; each
observes :attr:`Selection.changed` instead of being told by whoever changed it (napari's evented model).
"""

from __future__ import annotations

from viewer.model.events import Signal


class Selection:
    """Which component is selected (None: none)."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.changed = Signal()  # (component id or None)

    def select(self, component_id: str | None) -> bool:
        """Select ``component_id``; False (and no event) when it already is."""
        if component_id == self.current:
            return False
        self.current = component_id
        self.changed.emit(component_id)
        return True

    def forget(self) -> None:
        """Drop the selection without an event (a new plant: what was selected may not exist in it)."""
        self.current = None
