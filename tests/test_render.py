"""Off-screen rendering: the picture shows the plant, in the colours the layout gives, where it stands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from viewer.scene.offscreen import render_layout
from viewer.scene.theme import DARK


def _hex(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _write(tmp_path: Path, components: list[dict]) -> Path:
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "colours", "components": components,
           "floor": {"origin": [-4, -4], "size": [16, 16], "grid": 1.0}}
    path = tmp_path / "colours.json"
    path.write_text(json.dumps(doc))
    return path


def _hue_matches(pixel: np.ndarray, color: str) -> bool:
    """Shading scales brightness; the dominant channel and the channel ratios survive it."""
    want = _hex(color)
    got = pixel.astype(float)
    if got.max() < 30:
        return False
    return int(np.argmax(got)) == int(np.argmax(want)) and np.allclose(
        got / got.max(), want / want.max(), atol=0.25)


@pytest.fixture(scope="module")
def coloured_render(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("render")
    components = [
        {"id": "red", "kind": "station", "position": [0, 0, 0], "color": "#d02020",
         "primitive": {"type": "box", "size": [2, 2, 1]}},
        {"id": "blue", "kind": "station", "position": [6, 0, 0], "color": "#2040d0",
         "primitive": {"type": "box", "size": [2, 2, 1]}},
        {"id": "green", "kind": "prop", "position": [0, 6, 0], "color": "#20b030",
         "primitive": {"type": "cylinder", "radius": 1.0, "height": 1.0}},
        {"id": "yellow", "kind": "prop", "position": [6, 6, 0], "color": "#d0c020",
         "primitive": {"type": "box", "size": [2, 2, 1]}},
    ]
    path = _write(tmp, components)
    out = tmp / "top.png"
    result = render_layout(path, out, view="top", size=(640, 480), labels=False)
    return result, out, components


def test_render_writes_png_of_requested_size(coloured_render):
    from PIL import Image

    result, out, _ = coloured_render
    assert out.is_file()
    with Image.open(out) as image:
        assert image.size == (640, 480)
    assert result.image.shape == (480, 640, 3)


def test_component_colours_appear_where_components_stand(coloured_render):
    result, _, components = coloured_render
    for comp in components:
        x, y = result.centers[comp["id"]]
        assert 0 <= x < 640 and 0 <= y < 480, comp["id"]
        patch = result.image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
        pixel = np.median(patch, axis=0)
        assert _hue_matches(pixel, comp["color"]), (comp["id"], pixel)


def test_top_view_keeps_plan_orientation(coloured_render):
    # +x to the right, +y up on screen: red (0,0) left of blue (6,0), below green (0,6).
    result, _, _ = coloured_render
    red, blue, green = (result.centers[k] for k in ("red", "blue", "green"))
    assert red[0] < blue[0] and abs(red[1] - blue[1]) <= 2
    assert green[1] < red[1] and abs(green[0] - red[0]) <= 2


def test_background_between_components_is_not_component_coloured(coloured_render):
    result, _, _ = coloured_render
    # Midway between red and blue lies bare floor (boxes are 2 m wide, 6 m apart).
    (rx, ry), (bx, by) = result.centers["red"], result.centers["blue"]
    mid = result.image[(ry + by) // 2, (rx + bx) // 2].astype(float)
    assert not _hue_matches(mid, "#d02020") and not _hue_matches(mid, "#2040d0")
    assert mid.max() - mid.min() < 25  # a grey: floor or grid


def test_demo_plant_render_is_not_background_only(demo_layout_path, tmp_path):
    result = render_layout(demo_layout_path, tmp_path / "demo.png", view="iso", size=(800, 500))
    image = result.image.astype(int)
    corner = image[0, 0]
    differs = np.abs(image - corner).sum(axis=2) > 30
    assert differs.mean() > 0.15
    # Every station's centre falls inside the picture.
    for cid in ("ST10", "ST30", "ST60", "ST90"):
        x, y = result.centers[cid]
        assert 0 <= x < 800 and 0 <= y < 500


def test_selected_component_is_drawn_in_selection_blue(demo_layout_path, tmp_path):
    plain = render_layout(demo_layout_path, None, view="top", size=(800, 500), labels=False)
    chosen = render_layout(demo_layout_path, None, view="top", size=(800, 500), labels=False, select="ST30")
    x, y = chosen.centers["ST30"]
    before = plain.image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
    after = chosen.image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
    sel = _hex(DARK.selection)
    # The highlighted pixel moved toward the selection colour: blue rose relative to red.
    assert after[2] - after[0] > before[2] - before[0] + 20
    assert np.linalg.norm(after - sel) < np.linalg.norm(before - sel)


def test_a_badge_names_its_component_and_is_drawn_where_its_label_was(demo_layout_path):
    """A fault badge reads "X FAULT  <name>", replaces that component's name label (the plain names give way,
    never the abnormal one's) and is drawn, in the fault colour, near the component."""
    import pyvista as pv

    from viewer.geometry.mesh_library import MeshLibrary
    from viewer.geometry.plant import build_plant_geometry
    from viewer.model.layout_io import load_layout
    from viewer.scene.plant_scene import PlantScene

    layout = load_layout(demo_layout_path)
    geometry = build_plant_geometry(layout, demo_layout_path.parent, MeshLibrary())
    robot = next(c for c in layout.components if c.kind == "robot")
    plotter = pv.Plotter(off_screen=True, window_size=[1366, 768])
    try:
        scene = PlantScene(plotter, DARK)
        scene.show(layout, geometry, labels=True)
        scene.view_iso()
        assert robot.display_name in scene.label_texts()
        before = np.asarray(plotter.screenshot(return_img=True))[:, :, :3]
        scene.set_badges({robot.id: "fault"})
        plotter.render()
        after = np.asarray(plotter.screenshot(return_img=True))[:, :, :3]
        assert scene.badge_texts() == {"fault": [f"X FAULT  {robot.display_name}"]}
        assert robot.display_name not in scene.label_texts()  # the badge carries it
        fault = _hex(DARK.fault)
        is_fault = np.abs(after.astype(float) - fault).max(axis=2) <= 12
        was_fault = np.abs(before.astype(float) - fault).max(axis=2) <= 12
        ys, xs = np.nonzero(is_fault & ~was_fault)
        assert len(xs) > 200  # a filled badge box, not a stray pixel
        b = geometry.bounds[scene.component_index(robot.id)]
        x, y = scene.project(((b[0] + b[1]) / 2, (b[2] + b[3]) / 2, b[5] + 0.35))
        row = after.shape[0] - 1 - y
        assert abs(np.median(xs) - x) < 120 and abs(np.median(ys) - row) < 40
        scene.set_badges({})
        assert robot.display_name in scene.label_texts() and not scene.badge_texts()
    finally:
        plotter.close()
