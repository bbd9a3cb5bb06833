"""Records which VTK libraries and modules the viewer loads, for the bundle's pruning (vtk_used.txt).

Run from the project root with a display (Xvfb is fine); it opens the window on the demo plant, uses edit
mode and a robot's reach, then renders off screen in a second process, and writes the union.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded() -> tuple[set[str], set[str]]:
    libs = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        m = re.search(r"(libvtk[^/\s]*\.so)", line)
        if m:
            libs.add(m.group(1))
    return libs, {m for m in sys.modules if m.startswith("vtkmodules")}


def window_session() -> None:
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    app = create_application()
    w = MainWindow()
    w.show()
    w.open_layout(ROOT / "layouts" / "demo_plant" / "demo_plant.json")
    t = time.time()
    while w.plant_layout is None and time.time() - t < 30:
        app.processEvents()
        time.sleep(0.01)
    w.edit_action.trigger()
    w.select_component("R1")
    w.editor_panel.reach_button.setChecked(True)
    w.view.grab_frame()
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:
        from viewer.cli import main

        main(["render", str(ROOT / "layouts" / "demo_plant" / "demo_plant.json"), "--out", "/tmp/_vtk_usage.png"])
        libs, mods = loaded()
        print("\n".join(sorted(libs | mods)))
        sys.exit(0)
    window_session()
    libs, mods = loaded()
    render = subprocess.run([sys.executable, __file__, "--render"], capture_output=True, text=True, check=True)
    names = libs | mods | {line for line in render.stdout.splitlines() if line.startswith(("libvtk", "vtkmodules"))}
    header = "# VTK libraries and modules the viewer loads (packaging/vtk_usage.py); the bundle keeps only these.\n"
    (ROOT / "packaging" / "vtk_used.txt").write_text(header + "\n".join(sorted(names)) + "\n")
    print(f"{len(names)} names")
