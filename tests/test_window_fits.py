"""The window fits a control-room screen in every mode: docks scroll or tab, they never force it taller.

1366x768 is the smallest screen the viewer is for; a taskbar and the title bar take about 60 px of it.
"""

from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.gui

SMALL_SCREEN = (1366, 768 - 60)


def test_the_first_size_fits_the_screen():
    from viewer.ui.main_window import initial_size

    assert initial_size((1366, 768)) == (1366, 708)
    assert initial_size((1920, 1080)) == (1440, 900)  # roomy, not the whole screen
    assert initial_size((1024, 600)) == (1024, 540)


def fits(win) -> bool:
    hint, minimum = win.minimumSizeHint(), win.minimumSize()
    return (max(hint.width(), minimum.width()) <= SMALL_SCREEN[0]
            and max(hint.height(), minimum.height()) <= SMALL_SCREEN[1])


def test_every_mode_fits_1366x768(qtbot, tmp_path, demo_layout_path):
    from test_recording import synthetic_recording

    from viewer.model.layout_io import load_layout
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    folder = tmp_path / "plant"
    shutil.copytree(demo_layout_path.parent, folder)
    path = folder / demo_layout_path.name
    doc = json.loads(path.read_text())
    doc.pop("mqtt", None)
    doc["bindings"] = []
    path.write_text(json.dumps(doc))
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(path)
    win.resize(*SMALL_SCREEN)

    def check(mode: str) -> None:
        qtbot.wait(50)  # the layout settles on the event loop
        assert fits(win), f"{mode}: minimum {win.minimumSizeHint().toTuple()} is larger than {SMALL_SCREEN}"
        assert win.height() <= SMALL_SCREEN[1], f"{mode}: the window grew to {win.size().toTuple()}"

    check("plant open")
    win.select_component("ST10")
    check("a station selected")
    win.edit_action.trigger()
    win.select_component("R1")
    check("edit mode, a robot selected")
    assert win.editor_dock.isVisible() and win.details_dock in win.tabifiedDockWidgets(win.editor_dock)
    win.edit_action.trigger()
    recording = tmp_path / "session.mcap"
    synthetic_recording(recording, load_layout(path).to_dict(), seconds=10)
    win.open_recording(recording)
    qtbot.waitUntil(lambda: win.replay is not None, timeout=30_000)
    win.select_component("ST20")
    check("replay")
    win.leave_replay()
    win.set_operator_mode(True)
    win.showNormal()
    win.resize(*SMALL_SCREEN)
    check("operator mode")


def test_operator_mode_keeps_the_alarm_list_and_leaving_it_restores_the_window(qtbot):
    from PySide6.QtWidgets import QDockWidget

    from viewer.runtime import Policy
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow(policy=Policy(mode="planner"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.resize(1200, 650)
    win.move(40, 30)
    qtbot.wait(100)
    before = win.size().toTuple()
    assert win.edit_menu.menuAction().isVisible()
    assert win.set_operator_mode(True)
    qtbot.waitUntil(win.isFullScreen, timeout=5_000)
    assert not win.edit_menu.menuAction().isVisible()  # not an empty menu
    assert not win.alarm_dock.features() & QDockWidget.DockWidgetFeature.DockWidgetClosable
    assert not win.alarm_dock.toggleViewAction().isEnabled()
    assert win.set_operator_mode(False)
    qtbot.waitUntil(lambda: not win.isFullScreen(), timeout=5_000)
    qtbot.waitUntil(lambda: win.size().toTuple() == before, timeout=5_000)  # not left at full-screen size
    assert win.screen().availableGeometry().contains(win.frameGeometry())
    assert win.alarm_dock.features() & QDockWidget.DockWidgetFeature.DockWidgetClosable


def extent(win) -> float:
    """How far the plant's box reaches in the view (1.0: to its edge), as PlantScene._fit measures it."""
    renderer = win.scene.plotter.renderer
    b = win.scene.geometry.plant_bounds()
    most = 0.0
    for x in b[:2]:
        for y in b[2:4]:
            for z in b[4:]:
                renderer.SetWorldPoint(x, y, z, 1.0)
                renderer.WorldToView()
                vx, vy, _ = renderer.GetViewPoint()
                most = max(most, abs(vx), abs(vy))
    return most


def test_a_fitted_view_stays_fitted_when_docks_change_and_labels_stay_as_chosen(qtbot, demo_layout_path):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1366, 708)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(demo_layout_path)
    win.telemetry.stop()
    assert win.scene.fitted
    assert extent(win) == pytest.approx(0.92, abs=0.02)  # _fit's margin: the plant just fills the view
    win.timeline_dock.show()  # the view gets shorter: fitted again, the plant still just fills it
    qtbot.wait(400)
    assert extent(win) == pytest.approx(0.92, abs=0.02)
    win.view.camera_moved.emit()  # the operator zoomed in: the view is theirs now
    assert not win.scene.fitted
    win.view._zoom(1.5)
    zoomed = extent(win)
    win.timeline_dock.hide()
    qtbot.wait(400)
    assert extent(win) != pytest.approx(0.92, abs=0.02) and zoomed > 1.0
    # Labels off, then the same plant opened again: they stay off.
    win.labels_action.trigger()
    assert not win.scene.labels_visible
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.reload()
    assert not win.scene.labels_visible and not win.labels_action.isChecked()
    win.telemetry.stop()
