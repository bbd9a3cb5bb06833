"""The editor's "Bind OPC UA node…" dialog in the real window, on the demo plant served over OPC UA.

The virtual plant runs in its own process (``simulate-plant --opcua-port``); the window edits a copy of
``layouts/demo_plant/demo_plant_opcua.json`` with ``--opcua`` pointing at it. Expected nodes are the plant's
address space as ``viewer/telemetry/opcua_plant.py`` builds it (``Line1/<machine>/<variable>``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QModelIndex, Qt
from test_opcua import DEMO_OPCUA, free_port

pytestmark = pytest.mark.gui

VIBRATION = "ns=2;s=Line1.ST10.Spindle.Vibration"
SMALL_SCREEN = (1366, 768)


@pytest.fixture(scope="module")
def plant_endpoint() -> Iterator[str]:
    port = free_port()
    plant = subprocess.Popen([sys.executable, "-m", "viewer.telemetry.virtual_plant", "--opcua-port", str(port),
                              "--speed", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, plant)  # a dialog opened before the server listens fails its one connection
        yield f"opc.tcp://127.0.0.1:{port}"
    finally:
        plant.terminate()
        plant.wait(10)


def _wait_listening(port: int, plant: subprocess.Popen, timeout: float = 60.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert plant.poll() is None, "the virtual plant ended"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the virtual plant's OPC UA server did not listen on {port} within {timeout:g} s")


@pytest.fixture
def editing(qtbot, tmp_path: Path, plant_endpoint: str):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    folder = tmp_path / "plant"
    shutil.copytree(DEMO_OPCUA.parent, folder)
    path = folder / DEMO_OPCUA.name
    create_application()
    win = MainWindow()
    win.opcua_endpoint = plant_endpoint  # as --opcua does
    win.resize(SMALL_SCREEN[0], SMALL_SCREEN[1] - 60)  # 1366x768 less the taskbar and title bar
    win.show()  # not qtbot.addWidget: the teardown marks the edits as handled before closing
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(path)
    win.edit_action.trigger()
    yield win, json.loads(path.read_text())
    dialog = getattr(win.editor, "opcua_dialog", None)
    if dialog is not None:
        dialog.close()
    if win.editor.document is not None:
        win.editor.document._clean_depth = len(win.editor.document._undo)  # no prompt at teardown
    win.close()


def open_dialog(win, qtbot, component: str):
    win.select_component(component)
    button = win.editor_panel.bind_opcua_button
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = win.editor.opcua_dialog
    assert dialog is not None and dialog.isVisible() and dialog.component_id == component
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=30_000)  # connected, the root level browsed
    return dialog


def child_named(dialog, qtbot, parent: QModelIndex, name: str) -> QModelIndex:
    """Expand ``parent`` (the root needs none) and wait for its child ``name``."""
    model = dialog.model
    if parent.isValid():
        dialog.tree.expand(parent)

    def find() -> QModelIndex | None:
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            if model.data(index) == name:
                return index
        return None

    qtbot.waitUntil(lambda: find() is not None, timeout=20_000)
    return find()


def save_screenshot(widget, name: str, tmp_path: Path) -> None:
    """The picture of the dialog, for a person to look at ($TWIN_VIEWER_SCREENSHOTS keeps it)."""
    folder = Path(os.environ.get("TWIN_VIEWER_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    assert widget.grab().save(str(folder / name))


def test_the_button_needs_a_selected_component(editing, qtbot) -> None:
    win, _file = editing
    win.select_component(None)
    assert not win.editor_panel.bind_opcua_button.isEnabled()
    win.select_component("ST10")
    assert win.editor_panel.bind_opcua_button.isEnabled()


def test_expand_to_a_variable_bind_it_and_undo_removes_it(editing, qtbot, tmp_path: Path) -> None:
    win, file = editing
    dialog = open_dialog(win, qtbot, "ST10")
    assert dialog.endpoint.text() == win.opcua_endpoint
    line = child_named(dialog, qtbot, QModelIndex(), "Line1")
    station = child_named(dialog, qtbot, line, "ST10")
    spindle = child_named(dialog, qtbot, station, "Spindle")  # expanded: its children are there
    assert [dialog.model.data(dialog.model.index(r, 0, station)) for r in range(dialog.model.rowCount(station))] == [
        "State", "Count", "MotorCurrent", "Spindle"]
    vibration = child_named(dialog, qtbot, spindle, "Vibration")
    dialog.tree.setCurrentIndex(vibration)
    qtbot.waitUntil(lambda: dialog.value is not None and dialog.chosen_path is not None, timeout=20_000)
    assert dialog.chosen.node_id == VIBRATION
    assert dialog.fields["node_id"].text() == VIBRATION
    assert dialog.fields["data_type"].text() == "Double" and dialog.fields["value_rank"].text() == "-1: scalar"
    assert dialog.chosen_path == ("2:Line1", "2:ST10", "2:Spindle", "2:Vibration")
    assert dialog.value.good and isinstance(dialog.value.value, float) and "Good" in dialog.fields["value"].text()
    assert dialog.signal.currentText() == "vibration"  # a free name: ST10 has no vibration binding yet
    assert [dialog.signal.itemText(i) for i in range(dialog.signal.count())] == ["state", "count", "current"]
    assert dialog.replaces.text() == "A new binding" and dialog.bind_button.isEnabled()
    save_screenshot(dialog, "opcua_browse_dialog_tree.png", tmp_path)
    assert dialog.frameGeometry().width() <= SMALL_SCREEN[0] and dialog.frameGeometry().height() <= SMALL_SCREEN[1]
    assert dialog.minimumSizeHint().width() <= SMALL_SCREEN[0] and dialog.minimumSizeHint().height() <= 700

    qtbot.mouseClick(dialog.bind_button, Qt.MouseButton.LeftButton)
    bindings = win.editor.document.layout.bindings
    assert bindings[:-1] == file["bindings"]
    assert bindings[-1] == {"node": VIBRATION, "component": "ST10", "signal": "vibration"}
    assert win.editor.dirty and "Bind vibration of ST10" in win.status_label.text()
    assert win.undo_action.isEnabled() and "Bind vibration" in win.undo_action.text()
    win.undo_action.trigger()
    assert win.editor.document.layout.bindings == file["bindings"] and not win.editor.dirty

    # a server that is not there: said in words in the dialog, the tree emptied
    dialog.endpoint.setText(f"opc.tcp://127.0.0.1:{free_port()}")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "connection refused" in dialog.status.text(), timeout=20_000)
    assert dialog.model.rowCount() == 0 and not dialog.bind_button.isEnabled()
    dialog.endpoint.setText("plc:4840")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "The endpoint must be opc.tcp://HOST:PORT, not 'plc:4840'"


def test_search_offers_a_robots_double_array_as_its_joints_by_browse_path(editing, qtbot, tmp_path: Path) -> None:
    win, file = editing
    dialog = open_dialog(win, qtbot, "R2")
    dialog.search_text.setText("state")  # cancelled at once: its answer, whenever it comes, is dropped
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    assert dialog.progress.isVisible() and dialog.cancel_button.isVisible() and not dialog.search_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "Search cancelled" and dialog.search_button.isEnabled()
    qtbot.waitUntil(lambda: not any(t.name == "opcua-search" for t in threading.enumerate()), timeout=30_000)
    QCoreApplication.processEvents()  # its answer, queued before the thread ended, is delivered (and dropped)
    assert dialog.last_search is None and dialog.results.count() == 0
    dialog.search_text.setText("joints")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_search is not None, timeout=30_000)
    found = [dialog.results.item(i).toolTip() for i in range(dialog.results.count())]
    assert sorted(found) == [f"ns=2;s=Line1.{r}.Joints" for r in ("R1", "R2", "R3")]
    assert dialog.status.text().startswith("3 found for 'joints' among ")
    assert not dialog.progress.isVisible() and not dialog.cancel_button.isVisible()
    dialog.results.setCurrentRow(found.index("ns=2;s=Line1.R2.Joints"))
    qtbot.waitUntil(lambda: dialog.value is not None and dialog.chosen_path is not None, timeout=20_000)
    assert dialog.fields["data_type"].text() == "Double[]" and isinstance(dialog.value.value, list)
    assert len(dialog.value.value) == 6
    assert dialog.signal.currentText() == "joints"  # a robot's numeric array
    assert dialog.replaces.text() == "Replaces the binding of joints (now ns=2;s=Line1.R2.Joints); its unit and " \
                                     "rules stay"
    assert dialog.by_path.isEnabled()
    dialog.by_path.setChecked(True)
    save_screenshot(dialog, "opcua_browse_dialog_search.png", tmp_path)
    assert dialog.bind()
    at = next(i for i, b in enumerate(file["bindings"]) if b["component"] == "R2" and b["signal"] == "joints")
    expected = copy.deepcopy(file["bindings"])
    expected[at] = {"browse_path": ["2:Line1", "2:R2", "2:Joints"], "component": "R2", "signal": "joints",
                    "unit": "°"}
    assert win.editor.document.layout.bindings == expected
    win.editor.undo()
    assert win.editor.document.layout.bindings == file["bindings"]
