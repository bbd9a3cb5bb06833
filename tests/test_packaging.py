"""What the installed bundle relies on, checked from the source tree: its licence list, its build stamp, and
how it starts its own helper processes. (The bundle itself: `make package-test`, run by CI.)"""

from __future__ import annotations

import json
import sys

import pytest

from viewer import licences, runtime


def test_the_licence_list_covers_what_runs_and_the_bundle_reads_the_written_copy(tmp_path, monkeypatch):
    names = {d.metadata["Name"].lower().replace("_", "-") for d in licences.runtime_distributions()}
    assert {"vtk", "pyside6-essentials", "paho-mqtt", "numpy", "trimesh", "pyvista"} <= names
    assert not names & {"pytest", "pytest-qt", "ruff", "twin-viewer"}  # test tools and the app itself
    live = licences.components()
    licences.write_bundle_files(tmp_path / "third_party")
    texts = (tmp_path / "third_party" / "THIRD_PARTY_LICENSES.txt").read_text()
    assert "paho-mqtt" in texts and "vtk" in texts.lower() and len(texts) > 10_000
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert licences.components() == live  # the bundle shows what the build machine's packages said
    (tmp_path / "third_party" / "licences.json").write_text("[{broken")
    assert "could not be read" in licences.components()[0].note


def test_build_stamp_and_helper_commands_in_the_bundle_and_from_source(tmp_path, monkeypatch):
    assert runtime.own_command("_broker", "--port", "1") == [sys.executable, "-m", "viewer", "_broker", "--port", "1"]
    assert runtime.build_info()["build"] != ""
    (tmp_path / "third_party").mkdir()
    (tmp_path / "third_party" / "build.json").write_text(json.dumps({"commit": "abc1234", "date": "2026-11-23"}))
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert runtime.build_info()["build"] == "abc1234 (2026-11-23, bundle)"
    # A bundle has no Python to run `-m viewer`: helpers are the bundled executable with a hidden subcommand.
    assert runtime.own_command("simulate-plant", "--seed", "3") == [sys.executable, "simulate-plant", "--seed", "3"]


@pytest.mark.parametrize("requirement, name", [("numpy>=1.24", "numpy"), ("pytest>=8; extra == 'test'", None),
                                               ("pyobjc-framework-Cocoa; sys_platform == 'darwin'",
                                                "pyobjc-framework-Cocoa"), ("paho-mqtt (>=2.0)", "paho-mqtt")])
def test_requirement_names(requirement, name):
    assert licences._requirement_name(requirement) == name
