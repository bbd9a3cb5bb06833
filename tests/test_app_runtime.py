"""The installed app: policy (operator mode), per-user settings, opening by extension, log and crash dialog."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from PySide6.QtCore import QTimer

pytestmark = pytest.mark.gui


def test_policy_file_kiosk_flag_and_an_unreadable_policy(tmp_path, monkeypatch):
    from viewer.runtime import load_policy

    monkeypatch.setenv("TWIN_VIEWER_POLICY", str(tmp_path / "missing.json"))
    assert not load_policy().operator and load_policy().describe() == "Planner mode"
    assert load_policy(kiosk=True).operator and not load_policy(kiosk=True).allow_planner  # --kiosk locks
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"mode": "operator", "monitor": 0}))
    monkeypatch.setenv("TWIN_VIEWER_POLICY", str(policy_file))
    policy = load_policy()
    assert policy.operator and policy.fullscreen and not policy.allow_planner
    assert str(policy_file) in policy.describe()
    policy_file.write_text("{not json")
    broken = load_policy()
    assert broken.operator and "could not be read" in broken.describe()  # the safe choice


def test_operator_mode_hides_editing_and_says_which_policy(qtbot, tmp_path, demo_layout_path):
    from viewer.runtime import Policy
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow(policy=Policy("operator", False, 0, True, "/etc/twin-viewer/policy.json"))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(demo_layout_path)
    assert not win.edit_action.isVisible() and not win.edit_action.isEnabled()
    win.edit_action.setChecked(True)
    win.toggle_edit_mode()
    assert win.editor.document is None and not win.editor_dock.isVisible()
    assert win.policy_label.text() == "Operator mode (policy /etc/twin-viewer/policy.json)"
    assert win.alarm_panel.isVisibleTo(win) and win.open_recording_action.isVisible()  # alarms, replay stay
    assert not win.operator_action.isVisible()  # this policy does not allow the planner's mode
    assert not win.set_operator_mode(False) and win.policy.operator and not win.edit_action.isVisible()


def test_switching_between_operator_and_planner_mode_as_the_policy_allows(qtbot, demo_layout_path):
    from PySide6.QtWidgets import QMessageBox

    from viewer.model.document import MoveComponent
    from viewer.runtime import Policy
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow(policy=Policy("operator", True, 0, True, "/etc/twin-viewer/policy.json"))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(demo_layout_path)
    assert win.operator_action.isVisible() and win.operator_action.isChecked()
    win.operator_action.trigger()  # unchecks it: to the planner's mode, which this policy allows
    assert not win.policy.operator and win.edit_action.isVisible() and win.edit_action.isEnabled()
    assert win.policy_label.text() == "Planner mode (policy /etc/twin-viewer/policy.json)"
    win.edit_action.trigger()
    assert win.editor.document is not None and win.editor_dock.isVisible()
    start = win.plant_layout.component("ST20").position
    assert win.editor.push(MoveComponent("ST20", (start[0] + 1.0, start[1], start[2])))
    assert win.editor.dirty and win.undo_action.isEnabled()
    QTimer.singleShot(0, lambda: win.unsaved_prompt.done(QMessageBox.StandardButton.Cancel))
    win.operator_action.trigger()  # handing over with unsaved edits: the planner cancels
    assert not win.policy.operator and win.editor.dirty
    QTimer.singleShot(0, lambda: win.unsaved_prompt.done(QMessageBox.StandardButton.Discard))
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):  # the plant as saved comes back
        win.operator_action.trigger()
    assert win.policy.operator and not win.editor_dock.isVisible() and not win.edit_action.isVisible()
    assert win.plant_layout.component("ST20").position == start and win.editor.document is None
    assert not win.undo_action.isVisible() and not win.undo_action.isEnabled()
    assert not win.editor_dock.toggleViewAction().isVisible()
    qtbot.waitUntil(win.isFullScreen, timeout=5_000)


def test_settings_keep_window_and_recent_files(qtbot, tmp_path, demo_layout_path, monkeypatch):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow
    from viewer.ui.settings import open_settings, recent_files, restore_window

    monkeypatch.setenv("TWIN_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    create_application()
    win = MainWindow(broker="127.0.0.1:1")
    win.settings = open_settings()
    win.resize(1111, 777)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(demo_layout_path)
    assert recent_files(win.settings) == [str(demo_layout_path.resolve())]
    assert win.close()
    again = MainWindow()
    qtbot.addWidget(again)
    again.settings = open_settings()
    restore_window(again.settings, again)
    again.refresh_recent()
    assert (again.width(), again.height()) == (1111, 777)
    assert [a.text() for a in again.recent_menu.actions()] == [str(demo_layout_path.resolve())]
    assert again.settings.value("last_broker") == "127.0.0.1:1"
    assert again.broker is None  # remembered, never applied by itself
    # Opening by extension: a recording through the same entry as a layout.
    with qtbot.waitSignal(again.layout_loaded, timeout=30_000):
        again.open_any(demo_layout_path)


@pytest.mark.qt_no_exception_capture
def test_an_unexpected_error_is_logged_and_shown_without_stopping_the_app(qtbot, tmp_path, monkeypatch):
    from viewer import runtime
    from viewer.ui import app as app_module

    monkeypatch.setenv("TWIN_VIEWER_LOG_DIR", str(tmp_path / "logs"))
    root = logging.getLogger()
    before = list(root.handlers)
    previous_hook = sys.excepthook
    try:
        path = runtime.setup_logging("ERROR", crash_file=False)  # pytest keeps its own crash handler
        app_module.create_application()
        app_module._install_excepthook()
        QTimer.singleShot(0, lambda: 1 / 0)  # a real error in a Qt slot
        qtbot.waitUntil(lambda: bool(app_module._open_error_boxes), timeout=5_000)
        box = app_module._open_error_boxes[-1]
        assert box.isVisible() and not box.isModal()
        assert "ZeroDivisionError" in box.detailedText() and str(tmp_path / "logs") in box.text()
        for handler in root.handlers:
            handler.flush()
        assert "ZeroDivisionError" in path.read_text()
        box.done(0)
    finally:
        sys.excepthook = previous_hook
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()


def test_docks_and_theme_are_restored_and_the_light_theme_recolours_everything(qtbot, tmp_path, demo_layout_path,
                                                                               monkeypatch):
    from PySide6.QtGui import QPalette

    from viewer.scene.theme import DARK, LIGHT
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow
    from viewer.ui.settings import open_settings, restore_window
    from viewer.ui.theme import THEMES

    monkeypatch.setenv("TWIN_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    app = create_application()
    light_window = THEMES["light"].palette[QPalette.ColorRole.Window]
    win = MainWindow()
    win.settings = open_settings()
    win.show()
    qtbot.waitExposed(win)
    try:
        with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
            win.open_layout(demo_layout_path)
        components_dock = win.components_dock
        components_dock.hide()  # the operator closed a panel
        win.theme_actions["light"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).name() == light_window
        background = win.view.renderer.GetBackground()
        assert max(abs(a - int(LIGHT.background_bottom[i:i + 2], 16) / 255)
                   for a, i in zip(background, (1, 3, 5), strict=True)) < 0.01
        assert win.details.plot.backgroundBrush().color().name() == THEMES["light"].plot_background
        assert win.scene.layout is not None and win.scene.labels_visible  # the plant is still drawn, labels kept
        from viewer.ui.timeline import marker_colours

        assert marker_colours()["alarm"] == THEMES["light"].text_warning != THEMES["dark"].text_warning
        win.select_component("ST10")
        assert THEMES["light"].text_muted in win.details.title.text()
        assert win.settings.value("theme") == "light"
        assert win.close()

        again = MainWindow()
        qtbot.addWidget(again)
        again.settings = open_settings()
        restore_window(again.settings, again)
        again.show()
        assert again.theme_actions["light"].isChecked()
        assert app.palette().color(QPalette.ColorRole.Window).name() == light_window
        assert not again.components_dock.isVisible() and again.alarm_dock.isVisible()
        again.set_theme("dark")
        assert again.settings.value("theme") == "dark"
        background = again.view.renderer.GetBackground()
        assert abs(background[0] - int(DARK.background_bottom[1:3], 16) / 255) < 0.01
    finally:
        from viewer.ui.theme import apply_theme

        apply_theme(app, "dark")  # the application outlives this test


def test_about_shows_version_build_and_the_licences_of_what_it_runs_on(qtbot):
    from viewer import __version__
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.about_action.trigger()
    dialog = win.about_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    text = dialog.summary.text()
    assert __version__ in text and "Build" in text and "Planner mode" in text
    rows = {dialog.table.item(r, 0).text().lower(): dialog.table.item(r, 2).text()
            for r in range(dialog.table.rowCount())}
    assert "LGPL" in rows["qt"] and "LGPL" in rows["pyside6_essentials"]
    assert "BSD" in rows["vtk"] and "EPL-2.0" in rows["paho-mqtt"]
    assert "pytest" not in rows  # test tools are not part of what is shipped
    dialog.reject()


def test_a_pc_without_fonts_gets_readable_text_from_the_bundled_font(tmp_path):
    import os
    import subprocess

    empty = tmp_path / "fonts.conf"  # fontconfig with no font directories: a minimal system
    empty.write_text('<?xml version="1.0"?>\n<fontconfig></fontconfig>\n')
    probe = ("from PySide6.QtGui import QFontMetrics\n"
             "from viewer.ui.app import create_application\n"
             "app = create_application()\n"
             "print(app.font().family(), QFontMetrics(app.font()).inFont('A'))\n")
    env = dict(os.environ, FONTCONFIG_FILE=str(empty), TWIN_VIEWER_SETTINGS=str(tmp_path / "s.ini"))
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DejaVu", "Sans", "True"]
    assert "no fonts installed on this system: using the bundled DejaVu Sans" in result.stderr
