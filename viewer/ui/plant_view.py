"""The 3D view widget: pyvistaqt's ``QtInteractor``, tuned for a control room.

- **One render per frame.** pyvistaqt 0.13 renders in VTK directly (``render()``,
  mouse interaction) and again in ``paintGL``, halving the frame rate while the
  user drags (shared FIELD_NOTES, pitfall 2). Here every render request becomes
  ``QWidget.update()`` and only ``paintGL`` renders: VTK's interactor still
  announces its renders through ``RenderEvent``, which we turn into ``update()``.
- **No multisampling on software OpenGL** (pitfall 3): 8x MSAA costs 4x on
  llvmpipe. FXAA is used where a real GPU is present.
- **No surprise keys.** VTK's and PyVista's single-letter bindings (``q`` quits,
  ``w`` wireframe, ``e`` exits...) are removed; the window's actions own the keys.
- **Terrain camera**: the floor stays level, z stays up.
- A click (press and release within a few pixels) emits :attr:`clicked` with VTK
  display coordinates, for picking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QWidget
from pyvistaqt import QtInteractor

CLICK_SLOP_PX = 4
HOVER_REST_MS = 350


class PlantView(QtInteractor):
    """A VTK render widget that renders only from ``paintGL`` and reports clicks."""

    clicked = Signal(float, float)  # VTK display coordinates (origin bottom-left, device pixels)
    hovered = Signal(float, float, QPoint)  # VTK display coordinates, and the global position for a tooltip
    frame_drawn = Signal(float)  # time.time() when a frame finished drawing (latency measurements)
    drag_moved = Signal(float, float, bool)  # edit mode: display coordinates, Shift held (no snapping)
    drag_finished = Signal()
    camera_moved = Signal()  # the user turned, panned or zoomed the view (a fitted view is no longer kept fitted)
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, auto_update=False, multi_samples=0)
        self._painting = False
        self._press: QPoint | None = None
        self._dragging = False
        # Edit mode: called with display (x, y) on a left press; True = a component is there and is being
        # moved, so VTK must not turn the camera.
        self.drag_probe: Callable[[float, float], bool] | None = None
        self.renders = 0  # frames actually drawn (benchmarks and tests read it)
        interactor = self.ren_win.GetInteractor()
        interactor.EnableRenderOff()
        interactor.AddObserver("RenderEvent", self._on_vtk_render_requested)
        self.enable_terrain_style(mouse_wheel_zooms=True, shift_pans=True)
        self._silence_default_keys()
        self.software_gl: bool | None = None
        # Hover: pick only once the pointer rests, never on every mouse move.
        self.setMouseTracking(True)
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(HOVER_REST_MS)
        self._hover_timer.timeout.connect(self._on_hover_rest)
        self._hover_pos: QPoint | None = None

    # ----------------------------------------------------------------- rendering
    def render(self) -> None:
        """Schedule a repaint; the frame is drawn in ``paintGL`` (never synchronously here)."""
        if not getattr(self, "_closed", False):
            self.update()

    def _on_vtk_render_requested(self, _obj: Any, _event: str) -> None:
        if not self._painting:
            self.update()

    def paintGL(self) -> None:  # noqa: N802 - Qt override
        """Draw one frame: let the interactor render for the duration of this paint only."""
        interactor = self.ren_win.GetInteractor()
        self._painting = True
        interactor.EnableRenderOn()
        try:
            super().paintGL()
            self.renders += 1
            self.frame_drawn.emit(time.time())
        finally:
            interactor.EnableRenderOff()
            self._painting = False
        if self.software_gl is None:
            self._configure_anti_aliasing()

    def _configure_anti_aliasing(self) -> None:
        try:
            caps = self.ren_win.ReportCapabilities() or ""
        except Exception:
            caps = ""
        self.software_gl = any(name in caps for name in ("llvmpipe", "softpipe", "SwiftShader"))
        if not self.software_gl and caps:
            self.renderer.enable_anti_aliasing("fxaa")
            self.update()

    def grab_frame(self) -> QImage:
        """Render now and return the frame (for screenshots and tests)."""
        return self.grabFramebuffer()

    # ----------------------------------------------------------------- input
    def _silence_default_keys(self) -> None:
        if self.iren is None:
            return
        self.iren.clear_key_event_callbacks()
        self.add_key_event("Up", lambda: self._zoom(1.1))
        self.add_key_event("Down", lambda: self._zoom(1 / 1.1))
        style = self.ren_win.GetInteractor().GetInteractorStyle()
        if style is not None:
            # A style with an observer for an event calls the observer instead of its
            # built-in handler, which drops VTK's single-letter shortcuts.
            style.AddObserver("CharEvent", lambda *_: None)

    def _zoom(self, factor: float) -> None:
        self.camera.Zoom(factor)
        self.camera_moved.emit()
        self.update()

    def wheelEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        self.camera_moved.emit()
        super().wheelEvent(event)  # type: ignore[arg-type]

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.resized.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        """Restart the hover timer (no buttons held) and pass the move on to VTK (or drag, in edit mode)."""
        if self._dragging:
            x, y = self._display(event)
            self.drag_moved.emit(x, y, bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
            return
        if not event.buttons():
            self._hover_pos = event.position().toPoint()
            self._hover_timer.start()
        else:
            self._hover_timer.stop()
            self.camera_moved.emit()  # a drag with a button held turns or pans the camera
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        """No hover outside the view."""
        self._hover_timer.stop()
        super().leaveEvent(event)  # type: ignore[arg-type]

    def _on_hover_rest(self) -> None:
        if self._hover_pos is None:
            return
        pos = self._hover_pos
        dpr = self.devicePixelRatioF()
        self.hovered.emit(pos.x() * dpr, (self.height() - pos.y() - 1) * dpr, self.mapToGlobal(pos))

    def _display(self, event: QMouseEvent) -> tuple[float, float]:
        pos = event.position().toPoint()
        dpr = self.devicePixelRatioF()
        return pos.x() * dpr, (self.height() - pos.y() - 1) * dpr

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        """Remember where a left press started, to tell a click from a drag; in edit mode a press on a
        component starts moving it (``drag_probe`` says whether one is there) instead of turning the view."""
        if event.button().name == "LeftButton":
            self._press = event.position().toPoint()
            if self.drag_probe is not None and self.drag_probe(*self._display(event)):
                self._dragging = True
                return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        """A left release near the press point is a click: emit it in VTK display coordinates."""
        if self._dragging:
            self._dragging = False
            self._press = None
            self.drag_finished.emit()
            return
        super().mouseReleaseEvent(event)
        if event.button().name != "LeftButton" or self._press is None:
            return
        pos = event.position().toPoint()
        moved = (pos - self._press).manhattanLength()
        self._press = None
        if moved <= CLICK_SLOP_PX:
            dpr = self.devicePixelRatioF()
            self.clicked.emit(pos.x() * dpr, (self.height() - pos.y() - 1) * dpr)
