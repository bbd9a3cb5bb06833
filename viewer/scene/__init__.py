"""Model + state -> PyVista/VTK actors. Knows VTK, not widgets (no Qt imports here)."""

import os

# With no display server, VTK's default X window fails (with a warning) before
# falling back; ask for the EGL window straight away. Must precede the first
# VTK import. A Qt window does not use this factory, so the GUI is unaffected.
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
