"""The plant and layout model: load, validate, edit (with undo) and save.

Qt-free and render-free: nothing here imports PySide6 or VTK (an import-linter
contract and ``tests/test_architecture.py`` enforce it). Views subscribe to the
plain change events of :class:`~viewer.model.document.LayoutDocument`. What needs mesh files (the plant's
geometry, robots, a file's full validation) is in :mod:`viewer.geometry`, one layer up.
"""

from viewer.model.errors import LayoutError, MeshError, Problem
from viewer.model.layout import Component, FlowLink, Layout
from viewer.model.layout_io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    load_layout,
    parse_layout,
    save_layout,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Component",
    "FlowLink",
    "Layout",
    "LayoutError",
    "MeshError",
    "Problem",
    "load_layout",
    "parse_layout",
    "save_layout",
]
