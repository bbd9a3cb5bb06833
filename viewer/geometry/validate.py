"""Whether a layout file opens: the document, every mesh it names, and the plant built as the viewer builds it."""

from __future__ import annotations

from pathlib import Path

from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import build_plant_geometry
from viewer.model.errors import LayoutError, MeshError, Problem
from viewer.model.layout_io import load_layout


def validate_layout_file(path: Path | str, *, open_meshes: bool = True) -> list[Problem]:
    """All problems of a layout file, mesh files included; an empty list means it is good.

    With ``open_meshes`` every distinct mesh is loaded once, so a corrupt file or
    one over the size limit is reported here rather than when the scene is built.
    """
    path = Path(path)
    try:
        layout = load_layout(path)
    except LayoutError as exc:
        return exc.problems
    library = MeshLibrary()
    problems: list[Problem] = []
    checked: dict[str, str | None] = {}
    for i, comp in enumerate(layout.components):
        if comp.mesh is None:
            continue
        if comp.mesh not in checked:
            try:
                resolved = library.resolve(comp.mesh, path.parent)
                if open_meshes:
                    library.load(resolved)
                elif not resolved.is_file():
                    raise MeshError(f"{comp.mesh!r}: file not found")
                checked[comp.mesh] = None
            except MeshError as exc:
                checked[comp.mesh] = str(exc)
        if checked[comp.mesh]:
            problems.append(Problem(f"$.components[{i}].mesh", checked[comp.mesh] or ""))
    if open_meshes and not problems:
        # Build the plant exactly as the viewer will, so whatever it would hit is reported here.
        try:
            build_plant_geometry(layout, path.parent, library)
        except MeshError as exc:
            problems.append(Problem("$.components", str(exc)))
    return problems
