"""The real main window under Xvfb, driven with pytest-qt: open, select, pick, camera, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow()
    win.resize(1280, 800)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()  # window shortcuts need the active window (no window manager on Xvfb)
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    yield win
    win.loader.cancel()
    win.loader.wait(5)
    win.close()


@pytest.fixture
def demo_window(window, qtbot, demo_layout_path):
    with qtbot.waitSignal(window.layout_loaded, timeout=30_000):
        window.open_layout(demo_layout_path)
    qtbot.wait(50)
    return window


def _frame(win) -> np.ndarray:
    """The view's current frame as an (H, W, 3) array, rendered now."""
    image = win.view.grab_frame().convertToFormat(win.view.grab_frame().Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def _widget_point(win, world) -> QPoint:
    """Widget coordinates (origin top-left, logical pixels) of a world point in the 3D view."""
    x, y = win.scene.project(world)
    dpr = win.view.devicePixelRatioF()
    return QPoint(round(x / dpr), round(win.view.height() - 1 - y / dpr))


def test_demo_opens_with_every_component_listed(demo_window):
    win = demo_window
    layout = win.plant_layout
    assert layout is not None and layout.name.startswith("Demo plant")
    for comp in layout.components:
        assert win.components.item_for(comp.id).text(1) == comp.id
    assert "Demo plant" in win.windowTitle()
    assert f"{len(layout.components)} components" in win.scene_label.text()
    assert win.status_label.text().startswith("Opened demo_plant.json")


def test_clicking_the_list_selects_highlights_and_shows_details(demo_window, qtbot):
    win = demo_window
    item = win.components.item_for("ST60")
    tree = win.components.tree
    rect = tree.visualItemRect(item)
    with qtbot.waitSignal(win.selection_changed, timeout=5000) as blocker:
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["ST60"]
    assert win.scene.selected == "ST60"
    # Details panel: the chosen component's facts, as in the layout file.
    comp = win.plant_layout.component("ST60")
    assert win.details.value_of("ID") == "ST60"
    assert win.details.value_of("Name") == comp.display_name
    assert win.details.value_of("Scrap rate") == "2 %"
    assert win.details.value_of("Fed by") == "B2"
    # Highlight: the component's faces are blended toward the selection blue, others untouched.
    base = np.array([int(comp.display_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    sel = np.array([int(win.scene.theme.selection[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    shown = win.scene.displayed_rgb("ST60").astype(float)
    assert np.all(np.abs(shown - (0.4 * base + 0.6 * sel)) <= 1.0)
    other = win.plant_layout.component("ST70")
    other_base = np.array([int(other.display_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    assert np.all(np.abs(win.scene.displayed_rgb("ST70").astype(float) - other_base) <= 1.0)
    # And the frame on screen shows it: blue dominates at the component's centre.
    frame = _frame(win)
    p = _widget_point(win, win.scene.geometry.component_center(win.scene.component_index("ST60")))
    pixel = frame[p.y() - 1:p.y() + 2, p.x() - 1:p.x() + 2].reshape(-1, 3).mean(axis=0)
    assert pixel[2] > pixel[0] + 25, pixel


def test_clicking_in_the_3d_view_selects_the_component_under_the_cursor(demo_window, qtbot):
    win = demo_window
    win.view_top()
    qtbot.wait(50)
    target = "ST10"
    pos = _widget_point(win, win.scene.geometry.component_center(win.scene.component_index(target)))
    with qtbot.waitSignal(win.selection_changed, timeout=5000):
        qtbot.mouseClick(win.view, Qt.MouseButton.LeftButton, pos=pos)
    assert win.selected == target
    assert win.components.tree.currentItem().text(1) == target
    assert win.details.value_of("ID") == target
    # A click on bare floor clears the selection.
    b = win.scene.geometry.plant_bounds()
    empty = _widget_point(win, (b[0] + 1.0, b[3] - 0.3, 0.0))  # inside the AGV loop, by the wall
    assert win.scene.pick(*win.scene.project((b[0] + 1.0, b[3] - 0.3, 0.0))) is None
    with qtbot.waitSignal(win.selection_changed, timeout=5000) as blocker:
        qtbot.mouseClick(win.view, Qt.MouseButton.LeftButton, pos=empty)
    assert blocker.args == [None]
    assert win.details.value_of("ID") is None


def test_a_drag_rotates_and_does_not_select(demo_window, qtbot):
    win = demo_window
    before = np.array(win.view.camera.GetPosition())
    start = QPoint(400, 400)
    qtbot.mousePress(win.view, Qt.MouseButton.LeftButton, pos=start)
    for dx in range(10, 120, 10):
        qtbot.mouseMove(win.view, start + QPoint(dx, 0))
        qtbot.wait(5)
    qtbot.mouseRelease(win.view, Qt.MouseButton.LeftButton, pos=start + QPoint(120, 0))
    assert win.selected is None
    assert np.linalg.norm(np.array(win.view.camera.GetPosition()) - before) > 0.5


def test_camera_presets_from_keyboard(demo_window, qtbot):
    win = demo_window
    camera = win.view.camera
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_T)
    normal = np.array(camera.GetDirectionOfProjection())
    assert np.allclose(normal, (0, 0, -1), atol=1e-6)  # looking straight down
    qtbot.keyClick(win.view, Qt.Key.Key_I)
    direction = np.array(camera.GetDirectionOfProjection())
    assert direction[2] < -0.3 and direction[1] > 0.3  # from the front, above
    # Fit all: every component's centre is inside the view.
    qtbot.keyClick(win.view, Qt.Key.Key_Home)
    w, h = win.view.width(), win.view.height()
    for i, _cid in enumerate(win.scene.geometry.component_ids):
        p = _widget_point(win, win.scene.geometry.component_center(i))
        assert 0 <= p.x() < w and 0 <= p.y() < h
    # Focus on selection: the selected component's centre becomes the focal point, and it fills more of the view.
    win.select_component("ST30")
    center = win.scene.geometry.component_center(win.scene.component_index("ST30"))
    distance_before = camera.GetDistance()
    qtbot.keyClick(win.view, Qt.Key.Key_F)
    assert np.allclose(camera.GetFocalPoint(), center, atol=1e-6)
    assert camera.GetDistance() < distance_before * 0.6 or camera.GetViewAngle() < 15


def test_malformed_file_reports_where_and_keeps_the_open_plant(demo_window, qtbot, tmp_path):
    win = demo_window
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "twin-viewer-layout", "version": 1,\n "name": "x", "components": [,]}')
    with qtbot.waitSignal(win.load_failed, timeout=10_000):
        win.open_layout(bad)
    summary, details = win.last_error
    assert "broken.json" in summary
    assert any("line 2" in d and "column" in d for d in details)
    assert win.plant_layout.name.startswith("Demo plant")  # still showing the demo
    assert win.layout_path.name == "demo_plant.json"
    assert "Still showing demo_plant.json" in win.status_label.text()


def test_missing_mesh_and_escaping_path_are_reported(window, qtbot, tmp_path):
    layout = {"format": "twin-viewer-layout", "version": 1, "name": "bad meshes", "components": [
        {"id": "A", "kind": "station", "position": [0, 0, 0], "mesh": "meshes/missing.stl"}]}
    path = tmp_path / "missing.json"
    path.write_text(__import__("json").dumps(layout))
    with qtbot.waitSignal(window.load_failed, timeout=10_000):
        window.open_layout(path)
    assert any("missing.stl" in d and "not found" in d for d in window.last_error[1])
    layout["components"][0]["mesh"] = "../../etc/passwd.stl"
    path.write_text(__import__("json").dumps(layout))
    with qtbot.waitSignal(window.load_failed, timeout=10_000):
        window.open_layout(path)
    assert any("$.components[0].mesh" in d and "escapes" in d for d in window.last_error[1])
    assert window.plant_layout is None


def test_loading_a_large_plant_shows_progress_and_can_be_cancelled(window, qtbot, large_layout_path):
    fractions = []
    window.loader.progress.connect(lambda f, _m: fractions.append(f))
    with qtbot.waitSignal(window.loader.cancelled, timeout=30_000):
        window.open_layout(large_layout_path)
        window.cancel_button.click()
    assert window.plant_layout is None
    assert "cancelled" in window.status_label.text()
    assert not window.progress_bar.isVisible()
    with qtbot.waitSignal(window.layout_loaded, timeout=60_000):
        window.open_layout(large_layout_path)
    assert fractions and fractions[-1] == 1.0
    assert len(window.plant_layout.components) >= 1000


def test_one_render_per_frame_while_dragging(demo_window, qtbot):
    """VTK interaction must not render outside paintGL (pyvistaqt renders twice otherwise)."""
    win = demo_window
    starts = []
    tag = win.view.renderer.AddObserver("StartEvent", lambda *_: starts.append(1))
    try:
        paints_before = win.view.renders
        start = QPoint(300, 300)
        qtbot.mousePress(win.view, Qt.MouseButton.LeftButton, pos=start)
        for dx in range(5, 100, 5):
            qtbot.mouseMove(win.view, start + QPoint(dx, dx // 3))
            qtbot.wait(2)
        qtbot.mouseRelease(win.view, Qt.MouseButton.LeftButton, pos=start + QPoint(100, 33))
        qtbot.wait(100)
        paints = win.view.renders - paints_before
        assert paints >= 1
        assert len(starts) == paints  # every render happened inside a paint, none twice
    finally:
        win.view.renderer.RemoveObserver(tag)


def test_void_qt_calls_do_not_drain_none_refcount(demo_window, qtbot):
    """PySide6 6.12.0 dropped a reference to None per void call and crashed long-running apps."""
    import gc

    from PySide6.QtWidgets import QApplication

    win = demo_window
    gc.collect()  # measure leaks, not garbage that happens to be freed during the loop
    before = sys.getrefcount(None)
    frames = win.view.renders
    for i in range(3000):
        win.view.update()  # a void call: 6.12.0 loses one reference per call
        if i % 25 == 0:
            QApplication.processEvents()  # and let real frames be drawn on the way
    gc.collect()
    after = sys.getrefcount(None)
    assert win.view.renders - frames >= 50
    assert after - before > -500, (before, after)  # the broken release loses 3,000 here


def test_screenshot_of_the_window_for_review(demo_window, qtbot):
    """Writes the window to out/ (when run from the project) for a human to look at; checks it is not blank."""
    win = demo_window
    win.select_component("ST10")
    qtbot.wait(100)
    frame = _frame(win)
    assert frame.std() > 10
    out = Path(__file__).resolve().parents[1] / "out"
    out.mkdir(exist_ok=True)
    win.grab().save(str(out / "test_window.png"))


def test_a_superseded_load_reports_nothing(window, qtbot, large_layout_path, demo_layout_path):
    """Opening B while A still loads: A's cancellation must not hide B's progress or overwrite its status."""
    cancelled = []
    window.loader.cancelled.connect(cancelled.append)
    with qtbot.waitSignal(window.layout_loaded, timeout=60_000):
        window.open_layout(large_layout_path)
        window.open_layout(demo_layout_path)
    qtbot.wait(1500)  # long enough for the large load to have noticed its cancellation
    assert cancelled == []
    assert window.layout_path.name == "demo_plant.json"
    assert window.status_label.text().startswith("Opened demo_plant.json")


def test_names_from_files_are_not_markup(window, qtbot, tmp_path):
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "html", "components": [
        {"id": "A", "kind": "station", "name": "<b>bold</b> & co", "position": [0, 0, 0]}]}
    path = tmp_path / "html.json"
    path.write_text(__import__("json").dumps(doc))
    with qtbot.waitSignal(window.layout_loaded, timeout=10_000):
        window.open_layout(path)
    window.select_component("A")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in window.details.title.text()
    assert window.status_label.text() == "Selected <b>bold</b> & co (station)"


def test_garbage_is_collected_on_the_gui_thread_only(window, qtbot):
    """Automatic collection could free Qt/VTK objects from paho's thread; the app collects on a GUI timer."""
    import gc

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    assert not gc.isenabled()
    assert app._twin_gc.timer.isActive()

    class Cycle:
        def __init__(self):
            self.me = self

    import weakref

    probe = Cycle()
    ref = weakref.ref(probe)
    del probe
    for _ in range(800):  # enough allocations to pass generation 0's threshold
        Cycle()
    qtbot.waitUntil(lambda: ref() is None, timeout=5_000)  # the GUI timer collected it


def test_compare_with_another_file_simulates_both_and_shows_them_side_by_side(demo_window, qtbot, tmp_path,
                                                                              demo_layout_path):
    import json
    import shutil

    folder = tmp_path / "variant"
    shutil.copytree(demo_layout_path.parent, folder)
    variant = folder / demo_layout_path.name
    doc = json.loads(variant.read_text())
    st90 = next(c for c in doc["components"] if c["id"] == "ST90")
    st90["position"][1] += 2
    variant.write_text(json.dumps(doc))
    assert demo_window.compare_file_action.isEnabled()
    demo_window.compare_files(demo_layout_path, variant)
    qtbot.waitUntil(lambda: getattr(demo_window, "compare_dialog", None) is not None, timeout=60_000)
    dialog = demo_window.compare_dialog
    assert dialog.differences == {"ST90": "moved"}
    assert len(dialog.plans) == 2 and dialog.table.rowCount() >= 10
    assert "Compared" in demo_window.status_label.text()
    dialog.close()
    demo_window.compare_files(demo_layout_path, tmp_path / "missing.json")  # a bad file: said, nothing else
    qtbot.waitUntil(lambda: "Cannot compare" in demo_window.status_label.text(), timeout=30_000)
