"""The core packages stay free of Qt and VTK, checked two ways.

1. At run time: a fresh interpreter imports the core packages and does real work with
   them (load, validate, edit, build geometry); afterwards no Qt or VTK module may be loaded.
2. Statically: import-linter's contracts in ``pyproject.toml`` hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "layouts" / "demo_plant" / "demo_plant.json"

FORBIDDEN = ("PySide6", "shiboken6", "vtk", "vtkmodules", "pyvista", "pyvistaqt", "qtpy")

PROBE = r"""
import json, sys, tempfile
from pathlib import Path

import viewer.model
import viewer.model.layout_io
import viewer.geometry.plant
import viewer.model.document
import viewer.geometry.mesh_library
import viewer.geometry.kinematics
import viewer.geometry.urdf
import viewer.telemetry
import viewer.telemetry.alarms
import viewer.telemetry.bindings
import viewer.telemetry.embedded_broker
import viewer.telemetry.mqtt_client
import viewer.telemetry.router
import viewer.telemetry.sparkplug
import viewer.telemetry.states
import viewer.telemetry.store
import viewer.telemetry.virtual_plant
import viewer.analytics
import viewer.sim
{extra_import}
from viewer.model.document import LayoutDocument, MoveComponent, RemoveComponent
from viewer.geometry.plant import build_plant_geometry
from viewer.geometry.validate import validate_layout_file
from viewer.model.layout_io import load_layout
from viewer.geometry.mesh_library import MeshLibrary

demo = Path(sys.argv[1])
assert validate_layout_file(demo) == []
document = LayoutDocument(load_layout(demo), demo)
document.push(MoveComponent("ST20", (15.0, 0.5, 0.0)))
document.push(RemoveComponent("CV04"))
with tempfile.TemporaryDirectory() as tmp:
    document.save(Path(tmp) / "edited.json")
    edited = load_layout(Path(tmp) / "edited.json")
geometry = build_plant_geometry(edited, demo.parent, MeshLibrary())
assert geometry.n_triangles > 0

forbidden = {forbidden!r}
loaded = sorted(name for name in sys.modules
                if any(name == root or name.startswith(root + ".") for root in forbidden))
print(json.dumps({{"loaded": loaded, "triangles": geometry.n_triangles}}))
"""


def run_probe(extra_import: str = "") -> dict:
    code = PROBE.format(extra_import=extra_import, forbidden=FORBIDDEN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    result = subprocess.run([sys.executable, "-c", code, str(DEMO)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_packages_load_no_qt_and_no_vtk() -> None:
    report = run_probe()
    assert report["triangles"] > 0
    assert report["loaded"] == [], f"the core pulled in {report['loaded']}"


def test_the_probe_would_notice_vtk() -> None:
    # The control: the same probe with one VTK import must report it, or the test above proves nothing.
    report = run_probe("import vtkmodules.vtkCommonCore")
    assert "vtkmodules.vtkCommonCore" in report["loaded"]


def test_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).parent / ("lint-imports.exe" if os.name == "nt" else "lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
