"""The editor's "Bind OPC UA node…" dialog: browse a server, pick a variable, bind it to the component's signal.

Every request runs off the GUI thread (:class:`~viewer.ui.background.BackgroundTask`) through the Qt-free
:class:`~viewer.telemetry.opcua_browse.OpcUaBrowser`; the GUI only asks and shows answers:

- :class:`NodeTreeModel`: the address space as a lazy tree; a node's children are browsed when it is expanded
  (``canFetchMore``/``fetchMore``), one background task per node being fetched.
- the search box: a bounded breadth-first search by name, with progress and Cancel; its matches in a list.
- the chosen variable's data type, value rank and current value (Refresh reads it again), its browse path.
- the binding: the target signal (the component's bound signals, or a new name), by NodeId or by browse path,
  and Bind, one undoable :class:`~viewer.model.document.BindOpcUaNode` on the editor's document.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QCloseEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from viewer.model.document import BindOpcUaNode, EditRefusedError, LayoutDocument
from viewer.telemetry.mqtt_client import SettingsError
from viewer.telemetry.opcua_browse import OBJECTS_FOLDER, NodeInfo, NodeValue, OpcUaBrowser, SearchResult
from viewer.telemetry.opcua_client import settings_for
from viewer.ui.background import BackgroundTask, TaskContext

NODE_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's NodeInfo
PATH_ROLE = Qt.ItemDataRole.UserRole + 2  # the browse path from the Objects folder, as the tree reached it
SEARCH_MAX_NODES = 5000
SEARCH_MAX_DEPTH = 10
JOINTS_UNIT = "°"  # the viewer's joint angles are degrees (see the demo layout's joints bindings)
BY_PATH_WHY = ("Bind by browse path: the binding survives a server that gives its nodes new NodeIds (a PLC "
               "program downloaded again, say); the namespace index is part of both")


class NodeTreeModel(QStandardItemModel):
    """The server's address space from the Objects folder, fetched one level at a time when a node is expanded.

    Columns: name (display name), type (class, or data type with its shape), NodeId. ``status`` is called with
    what the model does ("Browsing Line1…") and with errors in words.
    """

    COLUMNS = ("Name", "Type", "NodeId")

    def __init__(self, status: Callable[[str], None], parent: Any = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.status = status
        self.browser: OpcUaBrowser | None = None
        self._fetched: set[str] = set()  # node ids whose children are in the tree (the root: OBJECTS_FOLDER)
        self._fetching: dict[str, BackgroundTask] = {}
        self._epoch = 0  # a new browser drops what an old one was still fetching

    def set_browser(self, browser: OpcUaBrowser | None) -> None:
        """Show this server's address space (None: nothing); the root level is fetched by the view."""
        self.beginResetModel()
        self._epoch += 1
        for task in self._fetching.values():
            task.cancel()
        self._fetching.clear()
        self._fetched.clear()
        self.removeRows(0, self.rowCount())
        self.browser = browser
        self.endResetModel()

    def node_at(self, index: QModelIndex) -> NodeInfo | None:
        """The NodeInfo of a row (any column)."""
        if not index.isValid():
            return None
        return self.itemFromIndex(index.siblingAtColumn(0)).data(NODE_ROLE)

    def path_at(self, index: QModelIndex) -> tuple[str, ...]:
        """The browse path the tree took to a row."""
        return tuple(self.itemFromIndex(index.siblingAtColumn(0)).data(PATH_ROLE) or ()) if index.isValid() else ()

    def is_fetching(self) -> bool:
        """Some node's children are being browsed."""
        return bool(self._fetching)

    def _key(self, parent: QModelIndex) -> str | None:
        if not parent.isValid():
            return OBJECTS_FOLDER
        node = self.node_at(parent)
        if node is None or parent.column() != 0:
            return None
        expandable = node.has_children if node.is_variable else node.has_children is not False
        return node.node_id if expandable else None

    def hasChildren(self, parent: QModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802 - Qt override
        key = self._key(parent)
        if key is not None and key not in self._fetched:
            return self.browser is not None
        return super().hasChildren(parent)

    def canFetchMore(self, parent: QModelIndex) -> bool:  # noqa: N802 - Qt override
        key = self._key(parent)
        return self.browser is not None and key is not None and key not in self._fetched and key not in self._fetching

    def fetchMore(self, parent: QModelIndex) -> None:  # noqa: N802 - Qt override
        key = self._key(parent)
        browser = self.browser
        if browser is None or key is None or key in self._fetching or key in self._fetched:
            return
        where = QPersistentModelIndex(parent)
        node = self.node_at(parent)
        name = node.display_name if node is not None else "the Objects folder"
        epoch = self._epoch
        task = BackgroundTask(f"opcua-browse-{key}", self)
        self._fetching[key] = task
        self.status(f"Browsing {name}…")
        task.run(lambda _context: browser.children(key),
                 lambda children: self._on_children(epoch, key, where, children),
                 lambda exc: self._on_failed(epoch, key, name, exc))

    def _on_children(self, epoch: int, key: str, where: QPersistentModelIndex, children: list[NodeInfo]) -> None:
        if epoch != self._epoch:
            return
        self._fetching.pop(key, None)
        self._fetched.add(key)
        parent = QModelIndex(where) if key != OBJECTS_FOLDER else QModelIndex()
        if key != OBJECTS_FOLDER and not parent.isValid():
            return  # its row went away meanwhile
        holder = self.itemFromIndex(parent) if parent.isValid() else self.invisibleRootItem()
        base = self.path_at(parent)
        for child in children:
            holder.appendRow(self._row(child, (*base, child.browse_name)))
        if not children:  # the view asks hasChildren again: the empty node loses its expand arrow
            self.layoutAboutToBeChanged.emit()
            self.layoutChanged.emit()
        below = self.node_at(parent).display_name if parent.isValid() else "Objects"
        self.status(f"{below}: {len(children)} node{'' if len(children) == 1 else 's'}")

    def _on_failed(self, epoch: int, key: str, name: str, exc: BaseException) -> None:
        if epoch != self._epoch:
            return
        self._fetching.pop(key, None)  # not fetched: expanding it again tries again
        self.status(f"Cannot browse {name}: {exc}")

    @staticmethod
    def _row(node: NodeInfo, path: tuple[str, ...]) -> list[QStandardItem]:
        name = QStandardItem(node.display_name)
        name.setData(node, NODE_ROLE)
        name.setData(list(path), PATH_ROLE)
        name.setToolTip(f"{node.browse_name} ({node.node_class})")
        kind = QStandardItem(node.shape())
        ident = QStandardItem(node.node_id)
        for item in (name, kind, ident):
            item.setEditable(False)
        if node.is_variable and not node.readable:
            name.setToolTip(f"{node.browse_name}: the server does not let clients read its value")
        return [name, kind, ident]


class OpcUaBrowseDialog(QDialog):
    """Browse an OPC UA server and bind a variable to one component's signal (see the module docstring).

    ``message`` is the window's status bar; ``endpoint``: where to browse (the layout's section or ``--opcua``;
    the user may type another).
    """

    def __init__(self, document: LayoutDocument, component_id: str, *, endpoint: str | None = None,
                 message: Callable[[str], None] | None = None, is_current: Callable[[], bool] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.is_current = is_current or (lambda: True)  # False once the editor edits another document
        self.component_id = component_id
        self.message = message or (lambda _text: None)
        self.browser: OpcUaBrowser | None = None
        self.chosen: NodeInfo | None = None
        self.chosen_path: tuple[str, ...] | None = None
        self.value: NodeValue | None = None
        self.last_search: SearchResult | None = None
        comp = document.layout.component(component_id)
        self.setWindowTitle(f"Bind OPC UA node to {comp.display_name}")
        self.connect_task = BackgroundTask("opcua-connect", self)
        self.value_task = BackgroundTask("opcua-value", self)
        self.path_task = BackgroundTask("opcua-path", self)
        self.search_task = BackgroundTask("opcua-search", self)
        self._build(endpoint or (document.layout.opcua or {}).get("endpoint", ""))
        self.resize(1000, 620)  # fits a 1366x768 screen with the taskbar and title bar
        self._update_bind()
        if self.endpoint.text().strip():
            self.connect_to_server()
        else:
            self.say("Type the server's endpoint (opc.tcp://HOST:PORT) and Connect: the layout has no opcua section")

    # --- building ---------------------------------------------------------------------------------
    def _build(self, endpoint: str) -> None:
        top = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Endpoint", self))
        self.endpoint = QLineEdit(endpoint, self)
        self.endpoint.setPlaceholderText("opc.tcp://HOST:PORT")
        self.endpoint.returnPressed.connect(self.connect_to_server)
        self.endpoint.textChanged.connect(lambda _t: self._update_bind())
        row.addWidget(self.endpoint, 1)
        self.connect_button = QPushButton("Connect", self)
        self.connect_button.clicked.connect(self.connect_to_server)
        row.addWidget(self.connect_button)
        top.addLayout(row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self._build_browse(split))
        split.addWidget(self._build_details(split))
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        top.addWidget(split, 1)
        buttons = QHBoxLayout()
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        buttons.addWidget(self.note, 1)
        self.bind_button = QPushButton("Bind", self)
        self.bind_button.setDefault(True)
        self.bind_button.clicked.connect(self.bind)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        buttons.addWidget(self.bind_button)
        buttons.addWidget(close)
        top.addLayout(buttons)

    def _build_browse(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.search_text = QLineEdit(box)
        self.search_text.setPlaceholderText("Search by name, e.g. Vibration")
        self.search_text.returnPressed.connect(self.search)
        self.search_button = QPushButton("Search", box)
        self.search_button.clicked.connect(self.search)
        self.cancel_button = QPushButton("Cancel", box)
        self.cancel_button.clicked.connect(self.cancel_search)
        self.cancel_button.hide()
        for w in (self.search_text, self.search_button, self.cancel_button):
            row.addWidget(w, 1 if w is self.search_text else 0)
        column.addLayout(row)
        self.progress = QProgressBar(box)
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress.hide()
        column.addWidget(self.progress)
        inner = QSplitter(Qt.Orientation.Vertical, box)
        self.model = NodeTreeModel(self.say, self)
        self.tree = QTreeView(inner)
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.header().resizeSection(0, 220)
        self.tree.header().resizeSection(1, 130)
        self.tree.selectionModel().currentChanged.connect(self._on_tree_current)
        self.results = QListWidget(inner)
        self.results.currentItemChanged.connect(self._on_result_current)
        self.results.hide()
        inner.addWidget(self.tree)
        inner.addWidget(self.results)
        inner.setStretchFactor(0, 3)
        inner.setStretchFactor(1, 1)
        column.addWidget(inner, 1)
        return box

    def _build_details(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        node_box = QGroupBox("Node", box)
        form = QFormLayout(node_box)
        self.fields: dict[str, QLabel] = {}
        for key, label in (("name", "Name"), ("node_id", "NodeId"), ("browse_path", "Browse path"),
                           ("data_type", "Data type"), ("value_rank", "Value rank"), ("value", "Value")):
            field = QLabel("—", node_box)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = field
            form.addRow(label, field)
        self.refresh_button = QPushButton("Refresh value", node_box)
        self.refresh_button.clicked.connect(self.refresh_value)
        form.addRow("", self.refresh_button)
        column.addWidget(node_box)
        bind_box = QGroupBox("Binding", box)
        bind_form = QFormLayout(bind_box)
        comp = self.document.layout.component(self.component_id)
        bind_form.addRow("Component", QLabel(f"{comp.display_name} ({comp.kind})", bind_box))
        self.signal = QComboBox(bind_box)
        self.signal.setEditable(True)
        self.signal.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for name in self.bound_signals():
            self.signal.addItem(name)
        if comp.kind == "robot" and "joints" not in self.bound_signals():
            self.signal.addItem("joints")
        self.signal.setCurrentText("")
        self.signal.lineEdit().setPlaceholderText("a bound signal, or a new name")
        self.signal.currentTextChanged.connect(lambda _t: self._update_bind())
        bind_form.addRow("Signal", self.signal)
        self.by_node = QRadioButton("By NodeId", bind_box)
        self.by_path = QRadioButton("By browse path", bind_box)
        self.by_path.setToolTip(BY_PATH_WHY)
        self.by_node.setChecked(True)
        self.by_group = QButtonGroup(self)
        for button in (self.by_node, self.by_path):
            self.by_group.addButton(button)
            button.toggled.connect(lambda _on: self._update_bind())
        choice = QVBoxLayout()
        choice.addWidget(self.by_node)
        choice.addWidget(self.by_path)
        why = QLabel(BY_PATH_WHY, bind_box)
        why.setWordWrap(True)
        why.setStyleSheet("font-size: 11px")
        choice.addWidget(why)
        bind_form.addRow("Name the node", choice)
        self.replaces = QLabel("", bind_box)
        self.replaces.setWordWrap(True)
        bind_form.addRow("", self.replaces)
        column.addWidget(bind_box)
        column.addStretch(1)
        return box

    # --- what the dialog says ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        """What the dialog does now, or what went wrong, in words."""
        self.status.setText(text)

    def bound_signals(self) -> list[str]:
        """The selected component's signals that have a binding now (any source)."""
        out: list[str] = []
        for b in self.document.layout.bindings:
            if b.get("component") == self.component_id and b.get("signal") and b["signal"] not in out:
                out.append(b["signal"])
        return out

    # --- the connection ---------------------------------------------------------------------------------
    def connect_to_server(self) -> None:
        """Open a browsing session on the endpoint in the field (in the background)."""
        text = self.endpoint.text().strip()
        if not text.startswith("opc.tcp://") or len(text) <= len("opc.tcp://"):
            self.say(f"The endpoint must be opc.tcp://HOST:PORT, not {text!r}")
            return
        try:
            settings = settings_for(self.document.layout, text, self.document.base_dir)
        except SettingsError as exc:
            self.say(str(exc).replace("--opcua", "The endpoint"))
            return
        assert settings is not None
        self._drop_browser()
        browser = OpcUaBrowser(settings)
        self.browser = browser
        self.say(f"Connecting to {settings.describe()}…")
        self.message(f"Connecting to {settings.endpoint} to browse…")
        self.connect_button.setEnabled(False)

        def connect(_context: TaskContext) -> OpcUaBrowser:
            browser.connect()
            return browser

        self.connect_task.run(connect, self._on_connected, self._on_connect_failed)

    def _on_connected(self, browser: OpcUaBrowser) -> None:
        self.connect_button.setEnabled(True)
        self.connect_button.setText("Reconnect")
        if browser is not self.browser:
            threading.Thread(target=browser.close, daemon=True).start()
            return
        self.say(f"Connected to {browser.settings.describe()}: expand a node, or search by name")
        self.model.set_browser(browser)
        self._update_bind()

    def _on_connect_failed(self, exc: BaseException) -> None:
        self.connect_button.setEnabled(True)
        self.say(f"Not connected: {exc}")
        self.message(f"OPC UA browse: {exc}")
        self._update_bind()

    def _drop_browser(self) -> None:
        """Forget the session (closed in the background: a dead server takes seconds to give up on)."""
        browser, self.browser = self.browser, None
        for task in (self.value_task, self.path_task, self.search_task):
            task.cancel()
        self.model.set_browser(None)
        self.results.clear()
        self.results.hide()
        self._choose(None, None)
        if browser is not None:
            threading.Thread(target=browser.close, name="opcua-browser-close", daemon=True).start()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.connect_task.cancel()
        self._drop_browser()
        super().closeEvent(event)

    # --- search ------------------------------------------------------------------------------------------
    def search(self) -> None:
        """Search the address space by name, in the background (Cancel stops it with what it found)."""
        browser = self.browser
        text = self.search_text.text().strip()
        if browser is None or not browser.connected:
            self.say("Connect first: there is no session to search in")
            return
        if not text:
            self.say("Type part of a node's name to search for")
            return
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.search_button.setEnabled(False)
        self.say(f"Searching for {text!r}…")

        def work(context: TaskContext) -> SearchResult:
            return browser.search(text, max_depth=SEARCH_MAX_DEPTH, max_nodes=SEARCH_MAX_NODES,
                                  cancelled=context.cancelled,
                                  progress=lambda visited, _found: context.progress(visited / SEARCH_MAX_NODES))

        self.search_task.run(work, lambda result: self._on_searched(text, result), self._on_search_failed,
                             lambda fraction: self.progress.setValue(round(100 * fraction)))

    def cancel_search(self) -> None:
        """Stop the search; the matches so far are dropped with it."""
        self.search_task.cancel()
        self._search_ended()
        self.say("Search cancelled")

    def _search_ended(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.search_button.setEnabled(True)

    def _on_searched(self, text: str, result: SearchResult) -> None:
        self._search_ended()
        self.last_search = result
        self.results.clear()
        for match in result.matches:
            item = QListWidgetItem(f"{match.node.display_name}  ({match.node.shape()})  {'/'.join(match.browse_path)}")
            item.setData(NODE_ROLE, match.node)
            item.setData(PATH_ROLE, list(match.browse_path))
            item.setToolTip(match.node.node_id)
            self.results.addItem(item)
        self.results.setVisible(True)
        why = {"node limit": f"; stopped after {SEARCH_MAX_NODES:,} nodes: type more of the name",
               "match limit": "; stopped at the match limit: type more of the name",
               "time limit": "; stopped at the time limit: type more of the name",
               "cancelled": "; cancelled"}.get(result.stopped, "")
        self.say(f"{len(result.matches)} found for {text!r} among {result.visited:,} nodes{why}")

    def _on_search_failed(self, exc: BaseException) -> None:
        self._search_ended()
        self.say(f"Search failed: {exc}")

    # --- the chosen node ---------------------------------------------------------------------------------
    def _on_tree_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._choose(self.model.node_at(current), self.model.path_at(current))

    def _on_result_current(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is not None:
            self._choose(item.data(NODE_ROLE), tuple(item.data(PATH_ROLE)))

    def _choose(self, node: NodeInfo | None, path: tuple[str, ...] | None) -> None:
        """Show a node's facts; a variable's value and browse path are read in the background."""
        self.chosen, self.chosen_path, self.value = node, None, None
        self.value_task.cancel()
        self.path_task.cancel()
        f = self.fields
        if node is None:
            for field in f.values():
                field.setText("—")
            self._update_bind()
            return
        f["name"].setText(f"{node.display_name}  ({node.browse_name}, {node.node_class})")
        f["node_id"].setText(node.node_id)
        f["data_type"].setText(node.shape() if node.is_variable else "—")
        dims = f", dimensions {list(node.array_dimensions)}" if node.array_dimensions else ""
        f["value_rank"].setText(node.value_rank_text() + dims if node.is_variable else "—")
        f["browse_path"].setText("/".join(path) if path else "…")
        f["value"].setText("…" if node.is_variable else "— (not a variable)")
        if node.is_variable:
            self._suggest_signal(node)
            self.refresh_value()
            self._look_up_path(node, path)
        self._update_bind()

    def _suggest_signal(self, node: NodeInfo) -> None:
        """A robot's numeric array is its joints; a variable named like a bound signal is that signal."""
        comp = self.document.layout.component(self.component_id)
        name = node.browse_name.split(":", 1)[-1].casefold()
        by_name = {s.casefold(): s for s in self.bound_signals()}
        if comp.kind == "robot" and node.is_numeric_array:
            self.signal.setCurrentText("joints")
        elif name in by_name:
            self.signal.setCurrentText(by_name[name])
        elif not self.signal.currentText().strip():
            self.signal.setCurrentText(name)

    def _look_up_path(self, node: NodeInfo, seen: tuple[str, ...] | None) -> None:
        """The browse path, checked on the server (a path through siblings of one name leads elsewhere)."""
        browser = self.browser
        if browser is None:
            return

        def done(path: tuple[str, ...]) -> None:
            self.chosen_path = path
            self.fields["browse_path"].setText("/".join(path))
            self._update_bind()

        def failed(exc: BaseException) -> None:
            self.chosen_path = None
            self.fields["browse_path"].setText(f"none: {exc}" if not seen else f"{'/'.join(seen)} (not usable: {exc})")
            self._update_bind()

        self.path_task.run(lambda _c: browser.browse_path(node.node_id), done, failed)

    def refresh_value(self) -> None:
        """Read the chosen variable's current value again."""
        node, browser = self.chosen, self.browser
        if node is None or not node.is_variable or browser is None:
            return
        if not node.readable:
            self.fields["value"].setText("not readable: the server does not let clients read it")
            return
        self.fields["value"].setText("reading…")
        self.value_task.run(lambda _c: browser.read_value(node.node_id), self._on_value,
                            lambda exc: self.fields["value"].setText(f"not read: {exc}"))

    def _on_value(self, value: NodeValue) -> None:
        self.value = value
        when = time.strftime("%H:%M:%S", time.localtime(value.source_time)) if value.source_time else "no source time"
        self.fields["value"].setText(f"{value.text()}  ({value.status}, {when})")
        self._update_bind()

    # --- binding -----------------------------------------------------------------------------------------
    def _update_bind(self) -> None:
        """Bind is possible with a variable chosen, a signal named and a server connected; say what it will do."""
        if not hasattr(self, "bind_button"):
            return
        node, signal = self.chosen, self.signal.currentText().strip()
        self.by_path.setEnabled(self.chosen_path is not None)
        if self.by_path.isChecked() and self.chosen_path is None:
            self.by_node.setChecked(True)
        variable = node is not None and node.is_variable and self.browser is not None
        self.refresh_button.setEnabled(variable)
        self.bind_button.setEnabled(variable and bool(signal))
        self.replaces.setText(self._replace_text(signal))
        self.note.setText(self._note(node, signal))

    def _replace_text(self, signal: str) -> str:
        for b in self.document.layout.bindings:
            if b.get("component") == self.component_id and b.get("signal") == signal:
                source = b.get("node") or "/".join(b.get("browse_path", ())) or b.get("topic", "?")
                return f"Replaces the binding of {signal} (now {source}); its unit and rules stay"
        return "A new binding" if signal else ""

    def _note(self, node: NodeInfo | None, signal: str) -> str:
        layout_endpoint = (self.document.layout.opcua or {}).get("endpoint")
        typed = self.endpoint.text().strip()
        if signal == "joints" and node is not None and node.is_variable and not node.is_numeric_array:
            return f"joints takes an array of angles in degrees (a Double[6]); {node.display_name} is {node.shape()}"
        if layout_endpoint is None and typed:
            return f"The layout has no opcua section: binding adds one with the endpoint {typed}"
        return ""

    def bind(self) -> bool:
        """Bind the chosen variable to the signal: one undoable edit (Edit > Undo removes it)."""
        node, signal = self.chosen, self.signal.currentText().strip()
        if node is None or not node.is_variable or not signal:
            return False
        if not self.is_current():
            self.say("Not bound: the layout was reloaded or closed since this dialog opened; open it again")
            return False
        by_path = self.by_path.isChecked() and self.chosen_path is not None
        unit = JOINTS_UNIT if signal == "joints" and node.is_numeric_array else None
        command = BindOpcUaNode(self.component_id, signal, node=None if by_path else node.node_id,
                                browse_path=list(self.chosen_path or ()) if by_path else None, unit=unit,
                                endpoint=self.endpoint.text().strip() or None)
        try:
            self.document.push(command)
        except EditRefusedError as exc:
            self.say(f"Not bound: {exc}")
            self.message(f"Not done: {exc}")
            return False
        self.say(f"{command.text}. Edit > Undo removes it; live values come from it once the layout is saved and "
                 f"reloaded")
        self.message(command.text)
        if self.signal.findText(signal) < 0:
            self.signal.addItem(signal)
        self._update_bind()
        return True


def open_bind_dialog(editor: Any) -> OpcUaBrowseDialog | None:
    """The editor's "Bind OPC UA node…": a dialog for the selected component (the previous one is closed); the
    endpoint from ``--opcua`` (the window's) or the layout's ``opcua`` section."""
    document, selected = editor.document, editor.selection.current
    old = getattr(editor, "opcua_dialog", None)
    if old is not None:
        old.close()
    if document is None or not selected:
        editor.message.emit("Select the component to bind an OPC UA node to first")
        return None
    window = editor.panel.window()
    endpoint = getattr(window, "opcua_endpoint", None) or (document.layout.opcua or {}).get("endpoint")
    dialog = OpcUaBrowseDialog(document, selected, endpoint=endpoint, message=editor.message.emit,
                               is_current=lambda: editor.document is document, parent=window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)  # tests and the editor read it after closing
    dialog.show()
    return dialog
