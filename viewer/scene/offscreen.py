"""Render a layout to a PNG without opening a window (``twin-viewer render``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyvista as pv

from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import build_plant_geometry
from viewer.model.layout_io import load_layout
from viewer.scene.plant_scene import PlantScene
from viewer.scene.theme import DARK, LIGHT

VIEWS = ("iso", "top")


@dataclass
class RenderedImage:
    """The picture and where each component's centre landed in it (pixels, origin top-left)."""

    image: np.ndarray  # (H, W, 3) uint8
    centers: dict[str, tuple[int, int]] = field(default_factory=dict)


def render_layout(
    layout_path: Path | str,
    out: Path | str | None = None,
    *,
    view: str = "iso",
    size: tuple[int, int] = (1600, 1000),
    labels: bool | None = None,
    select: str | None = None,
    theme: str = "dark",
) -> RenderedImage:
    """Load, build and render a layout off screen; write a PNG when ``out`` is given.

    Raises :class:`~viewer.model.errors.LayoutError` or :class:`~viewer.model.errors.MeshError`
    for a bad file, before anything is drawn.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    layout_path = Path(layout_path)
    layout = load_layout(layout_path)
    geometry = build_plant_geometry(layout, layout_path.parent, MeshLibrary())
    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    try:
        # A still image can afford anti-aliasing even on software OpenGL.
        plotter.enable_anti_aliasing("ssaa")
        scene = PlantScene(plotter, DARK if theme == "dark" else LIGHT)
        scene.show(layout, geometry, labels=labels)
        if select:
            scene.select(select)
        if view == "top":
            scene.view_top()
        else:
            scene.view_iso()
        plotter.render()
        image = np.asarray(plotter.screenshot(return_img=True))[:, :, :3]
        height = image.shape[0]
        centers = {}
        for cid in geometry.component_ids:
            x, y = scene.project(geometry.component_center(scene.component_index(cid)))
            centers[cid] = (round(x), round(height - 1 - y))
    finally:
        plotter.close()
    if out is not None:
        from PIL import Image

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out)
    return RenderedImage(image=image, centers=centers)
