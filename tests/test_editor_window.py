"""The layout editor in the real window: drag with the mouse, undo, save, KPIs rerun, problems, unsaved prompt."""

from __future__ import annotations

import json
import shutil

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

pytestmark = pytest.mark.gui



def full_report(win):
    """The editor's KPIs once all replications are in (a first estimate of two comes before them)."""
    report = win.editor.report
    return report if report is not None and not report.first_estimate else None

@pytest.fixture
def editing(qtbot, tmp_path, demo_layout_path):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    folder = tmp_path / "plant"
    shutil.copytree(demo_layout_path.parent, folder)
    path = folder / demo_layout_path.name
    doc = json.loads(path.read_text())
    doc.pop("mqtt", None)  # no broker: editing works offline
    doc["bindings"] = []
    path.write_text(json.dumps(doc, indent=2))
    create_application()
    win = MainWindow()
    win.resize(1280, 800)
    # Not qtbot.addWidget: pytest-qt would close it before this fixture's teardown marks the edits as
    # handled, and the unsaved-changes prompt would wait for an answer nobody gives.
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
        win.open_layout(path)
    win.edit_action.trigger()
    qtbot.waitUntil(lambda: full_report(win) is not None, timeout=60_000)  # the KPIs of all replications
    yield win, path
    if win.editor.document is not None:
        win.editor.document._clean_depth = len(win.editor.document._undo)  # no prompt at teardown
    win.close()


def widget_point(win, world):
    x, y = win.scene.project(world)
    dpr = win.view.devicePixelRatioF()
    return QPoint(round(x / dpr), round(win.view.height() - 1 - y / dpr))


def test_dragging_a_station_moves_it_snapped_undo_restores_and_save_writes_it(editing, qtbot, monkeypatch):
    win, path = editing
    start = tuple(win.plant_layout.component("ST20").position)
    press = widget_point(win, (start[0], start[1], 0.6))
    assert win.scene.pick(*win.scene.project((start[0], start[1], 0.6))) in ("ST20", None)
    target = widget_point(win, (start[0] + 1.0, start[1] - 3.0, 0.0))
    qtbot.mousePress(win.view, Qt.MouseButton.LeftButton, pos=press)
    for i in range(1, 6):
        qtbot.mouseMove(win.view, press + (target - press) * i / 5)
    qtbot.mouseRelease(win.view, Qt.MouseButton.LeftButton, pos=target)
    moved = win.editor.document.layout.component("ST20").position
    assert moved != start
    assert moved[0] % 0.5 == pytest.approx(0) and moved[1] % 0.5 == pytest.approx(0)  # snapped to the grid
    assert win.editor.document.undo_text.startswith("Move ST20")
    assert win.undo_action.text().startswith("&Undo Move ST20")
    assert win.windowTitle().endswith(f" * ({path.name}) — twin-viewer")
    # Shortcuts need an active window, which a bare Xvfb has not: trigger the actions, check their keys.
    assert win.undo_action.shortcut().matches(QKeySequence(QKeySequence.StandardKey.Undo)) \
        == QKeySequence.SequenceMatch.ExactMatch
    win.undo_action.trigger()  # one drag, one undo step
    assert tuple(win.editor.document.layout.component("ST20").position) == start
    assert not win.editor.dirty
    win.redo_action.trigger()
    assert win.editor.document.layout.component("ST20").position == moved
    win.save_action.trigger()
    saved = json.loads(path.read_text())
    st20 = next(c for c in saved["components"] if c["id"] == "ST20")
    assert tuple(st20["position"]) == moved
    assert not win.editor.dirty and "*" not in win.windowTitle()
    # Save As: the title names the new file (the user's choice in the dialog stands in for a click).
    other = path.with_name("plant_b.json")
    monkeypatch.setattr("viewer.ui.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (str(other), ""))
    assert win.save_layout_as() and other.is_file()
    assert win.layout_path == other and win.windowTitle().endswith("(plant_b.json) — twin-viewer")


def test_an_edit_reruns_the_kpis_off_the_gui_thread_and_an_overlap_is_listed(editing, qtbot):
    from viewer.model.document import MoveComponent, SetSectionValue

    win, _path = editing
    before = win.editor.report
    assert win.editor.panel.throughput.text().startswith("Throughput")
    assert win.scene.bottleneck == before.bottleneck
    # No buffer between the CNCs and deburring: the line loses throughput, and the panel says so.
    win.editor.push(SetSectionValue("B1", "buffer", "capacity", 0))
    qtbot.waitUntil(lambda: full_report(win) not in (None, before), timeout=60_000)
    after = win.editor.report
    assert after.throughput_per_hour.mean < before.throughput_per_hour.mean
    assert "against the saved layout" in win.editor.panel.delta.text()
    assert win.editor.panel.delta.text().startswith("-")
    # Put a machine on top of another: the problems list names both, and clicking it selects one.
    st30 = win.editor.document.layout.component("ST30").position
    win.editor.push(MoveComponent("ST70", (st30[0] + 0.5, st30[1], 0.0)))
    win.editor._redraw()
    qtbot.waitUntil(lambda: any(p.code == "overlap" for p in win.editor.problems), timeout=30_000)
    items = [win.editor_panel.problems.item(i) for i in range(win.editor_panel.problems.count())]
    overlap = next(i for i in items if "overlap" in i.text() and "ST70" in i.text() and "ST30" in i.text())
    win.editor_panel.problems.itemClicked.emit(overlap)
    assert win.selected in ("ST70", "ST30")
    assert {"ST70", "ST30"} <= set(win.scene.problem_ids)  # amber outlines in the 3D view too
    # A refused edit says why and changes nothing.
    assert not win.editor.push(MoveComponent("ST70", (900.0, 0.0, 0.0)))
    assert "outside the floor" in win.status_label.text()


def test_closing_with_unsaved_changes_asks_first(editing, qtbot):
    from viewer.model.document import MoveComponent

    win, _path = editing
    win.editor.push(MoveComponent("ST20", (20.0, 3.0, 0.0)))
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard]

    def answer():
        box = getattr(win, "unsaved_prompt", None)
        if box is not None and box.isVisible():
            box.done(answers.pop(0))
        else:
            QTimer.singleShot(50, answer)

    QTimer.singleShot(50, answer)
    assert not win.close()  # Cancel: the window stays, the edit too
    assert win.isVisible() and win.editor.dirty
    QTimer.singleShot(50, answer)
    assert win.close()  # Discard


def test_the_property_fields_edit_the_simulation_parameters_with_undo(editing, qtbot):
    win, _path = editing
    win.select_component("ST60")
    fields = win.editor.property_fields
    assert {"mean", "cv", "servers", "mtbf", "mttr", "scrap"} <= set(fields)
    before = win.editor.report
    fields["servers"].setValue(2)  # a second leak tester: the bottleneck gets help
    assert win.editor.document.layout.component("ST60").section("sim")["servers"] == 2
    assert win.editor.document.undo_text == "Change servers of ST60 Leak test"
    qtbot.waitUntil(lambda: full_report(win) not in (None, before), timeout=60_000)
    assert win.editor.report.throughput_per_hour.mean > before.throughput_per_hour.mean
    qtbot.wait(50)  # the fields are rebuilt after the edit
    win.editor.property_fields["mean"].setValue(-1)  # the spin box cannot go below 0: nothing happens
    assert win.editor.document.layout.component("ST60").section("sim")["cycle_time"]["mean"] == 50
    win.select_component("B2")
    win.editor.property_fields["capacity"].setValue(3)
    assert win.editor.document.layout.component("B2").section("buffer")["capacity"] == 3
    win.undo_action.trigger()
    win.undo_action.trigger()
    assert win.editor.document.layout.component("ST60").section("sim").get("servers", 1) == 1
    assert win.editor.document.layout.component("B2").section("buffer")["capacity"] == 8


def test_add_a_station_and_connect_it_into_the_flow(editing, qtbot):
    win, _path = editing
    new = win.editor.add_component("station")
    assert new is not None and new in win.editor.document.layout.ids()
    qtbot.waitUntil(lambda: win.selected == new, timeout=30_000)  # drawn, then selected
    assert any(p.code == "not-connected" and p.components == (new,) for p in win.editor.problems)
    # It stands on free floor: no overlap, nothing off the floor (the view's centre is on the line).
    assert not [p for p in win.editor.problems if new in p.components and p.severity == "error"]
    assert win.scene_label.text().startswith(f"{len(win.plant_layout.components):,} components")
    # Connect mode: the next click on a component makes the selection feed it.
    win.editor_panel.connect_button.setChecked(True)
    x, y = win.scene.project(win.scene.geometry.component_center(win.scene.component_index("SHIP")))
    assert win.view.drag_probe(x, y)  # what a left press in the view does
    assert any(f.source == new and f.target == "SHIP" for f in win.editor.document.layout.flow)
    assert not win.editor_panel.connect_button.isChecked()
    assert win.editor.document.undo_text == f"Connect {new} to SHIP"


def test_reach_volume_and_compare_with_saved(editing, qtbot):
    from PySide6.QtGui import QColor

    from viewer.model.document import SetSectionValue
    from viewer.ui.theme import current as current_theme

    win, _path = editing
    win.select_component("R1")
    assert win.editor_panel.reach_button.isEnabled()
    win.editor_panel.reach_button.setChecked(True)
    assert win.scene.reach_shown == "R1"
    win.select_component("ST10")  # not a robot: no dome, button off limits
    assert win.scene.reach_shown is None and not win.editor_panel.reach_button.isEnabled()
    before = win.editor.report
    win.editor.push(SetSectionValue("B1", "buffer", "capacity", 0))
    start = win.editor.document.layout.component("ST90").position
    win.select_component("ST90")
    win.editor_panel.y.setValue(start[1] + 2.0)  # the Y field, as the planner types it
    qtbot.waitUntil(lambda: full_report(win) not in (None, before), timeout=60_000)
    qtbot.waitUntil(lambda: win.editor.drawn[0].component("ST90").position[1] == start[1] + 2.0, timeout=30_000)
    win.editor_panel.compare_button.click()
    dialog = win.editor.compare_dialog
    assert dialog.comparison.throughput[1] < dialog.comparison.throughput[0]
    assert dialog.table.rowCount() == len(win.editor.report.stations)
    # The two plans side by side: same scale, the moved station and the changed buffer outlined in both.
    assert dialog.differences == {"B1": "changed", "ST90": "moved"}
    saved_plan, edited_plan = dialog.plans
    saved_plan.resize(480, 300)
    edited_plan.resize(480, 300)
    fp_saved, fp_edited = saved_plan.footprints["ST90"], edited_plan.footprints["ST90"]
    assert fp_edited[2] == pytest.approx(fp_saved[2] + 2.0)  # 2 m further in y in the edited plan
    a, b = saved_plan.to_pixel(fp_saved[0], fp_saved[2]), edited_plan.to_pixel(fp_edited[0], fp_edited[2])
    assert a.x() == pytest.approx(b.x()) and b.y() < a.y()  # same scale: drawn higher up, nowhere else
    image = edited_plan.grab().toImage()
    blue = QColor(current_theme().scene.selection)
    centre = edited_plan._rect(fp_edited)
    edge = image.pixelColor(int(centre.left()), int(centre.center().y()))
    assert abs(edge.red() - blue.red()) + abs(edge.green() - blue.green()) + abs(edge.blue() - blue.blue()) < 90
    dialog.close()
    assert win.editor.save()  # saved: nothing differs any more; a property edit alone shows as changed
    win.editor_panel.compare_button.click()
    assert win.editor.compare_dialog.differences == {}
    win.editor.compare_dialog.close()
    win.editor.push(SetSectionValue("B1", "buffer", "capacity", 5))
    win.editor_panel.compare_button.click()
    assert win.editor.compare_dialog.differences == {"B1": "changed"}
    win.editor.compare_dialog.close()


def test_add_a_station_with_a_built_in_mesh_or_a_file_from_the_layout_folder(editing, qtbot, tmp_path):
    import trimesh

    win, path = editing
    menu_names = [a.text() for a in win.editor_panel.add_menu.actions()]
    assert "Station with a mesh" in menu_names
    new = win.editor.add_component("station", mesh="asset:cnc_machine.stl")
    assert win.editor.document.layout.component(new).mesh == "asset:cnc_machine.stl"
    inside = path.parent / "press.stl"
    trimesh.creation.box(extents=(1.2, 0.8, 1.5)).export(inside)
    added = win.editor.add_mesh_file(inside)
    assert win.editor.document.layout.component(added).mesh == "press.stl"  # relative: the folder can move
    outside = tmp_path / "elsewhere.stl"
    trimesh.creation.box(extents=(1, 1, 1)).export(outside)
    assert win.editor.add_mesh_file(outside) is None
    assert "copy elsewhere.stl into the layout's folder" in win.status_label.text()
    qtbot.waitUntil(lambda: added in win.scene.geometry.component_ids, timeout=30_000)  # drawn
    win.select_component(added)
    win.editor_panel.rotation.setValue(45.0)  # free angles as well as 90° steps
    assert win.editor.document.layout.component(added).rotation[2] == 45.0


def test_flow_arrows_in_edit_mode_an_agv_link_apart_and_the_panel_says_what_changed(editing, qtbot):
    import dataclasses

    from viewer.model.document import ReplaceLink

    win, _path = editing
    assert win.scene.flow_arrow_kinds() == {"direct"}  # the demo's links are all direct
    before = win.editor.report
    layout = win.editor.document.layout
    old = next(f for f in layout.flow if (f.source, f.target) == ("ST20", "ST30"))
    assert win.editor.push(ReplaceLink(old, dataclasses.replace(old, transport="agv")))
    assert win.scene.flow_arrow_kinds() == {"direct", "agv"}  # drawn at once, apart
    qtbot.waitUntil(lambda: full_report(win) not in (None, before), timeout=60_000)
    names = {c.id: c.display_name for c in layout.components}
    assert f"{names['ST20']} → {names['ST30']} now goes by AGV" in win.editor_panel.explain.text()
    assert win.editor_panel.explain.isVisible()
    win.edit_action.trigger()  # leaving edit mode: no arrows in the operator's view
    assert win.scene.flow_arrow_kinds() == set()
