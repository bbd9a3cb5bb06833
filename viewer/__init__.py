"""twin-viewer: a desktop 3D digital-twin viewer for factory control rooms.

Package map (dependencies point inward)::

    cli ──► ui ──► scene ──► model
             └──► telemetry / analytics / sim ──► model

``model``, ``telemetry``, ``analytics`` and ``sim`` never import Qt or VTK; an
import-linter contract in ``pyproject.toml`` and ``tests/test_architecture.py``
hold that line.
"""

__version__ = "0.1.0"
