"""The model tree: every component, grouped by kind, with a filter box.

Components that name a ``parent`` (a sensor on a machine) are listed under it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from viewer.model.layout import Layout

KIND_TITLES = {
    "source": "Sources",
    "station": "Stations",
    "robot": "Robots",
    "conveyor": "Conveyors",
    "buffer": "Buffers",
    "sink": "Sinks",
    "sensor": "Sensors",
    "agv-path": "AGV paths",
    "prop": "Other equipment",
}
ID_ROLE = Qt.ItemDataRole.UserRole


class ComponentPanel(QWidget):
    """Tree of components; emits :attr:`component_selected` and :attr:`component_activated` with an id."""

    component_selected = Signal(object)  # str | None
    component_activated = Signal(str)  # double-click: focus the camera

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter by name or id")
        self.filter_edit.setClearButtonEnabled(True)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Name", "ID"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 210)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.tree)
        self._items: dict[str, QTreeWidgetItem] = {}
        self.filter_edit.textChanged.connect(self._on_filter_changed)
        self.tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self.tree.itemDoubleClicked.connect(self._on_item_double_clicked)

    def set_layout(self, layout: Layout | None) -> None:
        """Show the components of a layout (or nothing)."""
        self.tree.clear()
        self._items.clear()
        if layout is None:
            return
        ids = set(layout.ids())
        groups: dict[str, QTreeWidgetItem] = {}
        for kind, title in KIND_TITLES.items():
            members = [c for c in layout.components if c.kind == kind and (c.parent is None or c.parent not in ids)]
            if not members:
                continue
            group = QTreeWidgetItem(self.tree, [f"{title} ({len(members)})", ""])
            group.setFlags(group.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            groups[kind] = group
        pending = list(layout.components)
        # Parents before children: repeat until every component found its place.
        for _ in range(len(pending) + 1):
            rest = []
            for comp in pending:
                if comp.parent is not None and comp.parent in ids:
                    holder = self._items.get(comp.parent)
                    if holder is None:
                        rest.append(comp)
                        continue
                else:
                    holder = groups[comp.kind]
                item = QTreeWidgetItem(holder, [comp.display_name, comp.id])
                item.setData(0, ID_ROLE, comp.id)
                item.setToolTip(0, f"{comp.display_name} ({comp.kind})")
                self._items[comp.id] = item
            if not rest:
                break
            pending = rest
        self.tree.expandAll()
        self._on_filter_changed(self.filter_edit.text())

    def select(self, component_id: str | None) -> None:
        """Select a component's row without emitting (the window already knows)."""
        self.tree.blockSignals(True)
        try:
            self.tree.clearSelection()
            item = self._items.get(component_id) if component_id else None
            if item is not None:
                item.setSelected(True)
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item)
        finally:
            self.tree.blockSignals(False)

    def item_for(self, component_id: str) -> QTreeWidgetItem:
        """The tree row of a component (tests click it)."""
        return self._items[component_id]

    def _on_tree_selection_changed(self) -> None:
        items = self.tree.selectedItems()
        cid = items[0].data(0, ID_ROLE) if items else None
        self.component_selected.emit(cid)

    def _on_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        cid = item.data(0, ID_ROLE)
        if cid:
            self.component_activated.emit(cid)

    def _on_filter_changed(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            self._filter_item(self.tree.topLevelItem(i), needle)

    def _filter_item(self, item: QTreeWidgetItem, needle: str) -> bool:
        """Hide rows that do not match; a group stays visible while any child matches."""
        own = not needle or needle in item.text(0).lower() or needle in item.text(1).lower()
        child_match = False
        for i in range(item.childCount()):
            child_match |= self._filter_item(item.child(i), needle)
        visible = own if item.data(0, ID_ROLE) else (child_match or not needle)
        visible = visible or child_match
        item.setHidden(not visible)
        return visible
