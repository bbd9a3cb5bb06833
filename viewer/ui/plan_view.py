"""A plan (top view) of a layout drawn with QPainter: the floor, the AGV paths, each component's footprint,
the flow links, and the components that differ from another layout picked out. Two of them side by side are the compare
dialog's "where did things move"; no second 3D view (and GL context) is needed for that."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from viewer.model.checks import Footprint
from viewer.model.layout import Layout, path_polyline
from viewer.ui.theme import current as current_theme

ROLES = ("moved", "added", "removed", "changed")


def differences(a: Layout, b: Layout) -> dict[str, str]:
    """Component id -> "moved", "added", "removed" or "changed" (properties), from ``a`` to ``b``."""
    in_a = {c.id: c for c in a.components}
    in_b = {c.id: c for c in b.components}
    out: dict[str, str] = {}
    for cid, comp in in_b.items():
        old = in_a.get(cid)
        if old is None:
            out[cid] = "added"
        elif tuple(old.position) != tuple(comp.position) or tuple(old.rotation) != tuple(comp.rotation):
            out[cid] = "moved"
        elif old != comp:
            out[cid] = "changed"
    out.update({cid: "removed" for cid in in_a if cid not in in_b})
    return out


class PlanView(QWidget):
    """See the module docstring. ``extent`` (xmin, xmax, ymin, ymax) is shared by the views being compared,
    so the same place on the floor is at the same place in both."""

    def __init__(self, title: str, layout: Layout, footprints: Mapping[str, Footprint],
                 marked: Mapping[str, str], extent: Footprint, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.layout, self.footprints, self.marked, self.extent = title, layout, footprints, marked, extent
        self.setMinimumSize(320, 180)
        self.setMaximumHeight(300)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def to_pixel(self, x: float, y: float) -> QPointF:
        """Plant metres to widget pixels (y up on the floor is up on screen)."""
        x0, x1, y0, y1 = self.extent
        margin, top = 8.0, 22.0
        scale = min((self.width() - 2 * margin) / max(x1 - x0, 1e-6),
                    (self.height() - margin - top) / max(y1 - y0, 1e-6))
        left = margin + (self.width() - 2 * margin - scale * (x1 - x0)) / 2
        return QPointF(left + (x - x0) * scale, top + (y1 - y) * scale)

    def _rect(self, fp: Footprint) -> QRectF:
        a, b = self.to_pixel(fp[0], fp[3]), self.to_pixel(fp[1], fp[2])
        return QRectF(a, b).normalized()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.scene.background_bottom))
        floor_rect = _floor(self.layout)
        if floor_rect is not None:
            p.fillRect(self._rect(floor_rect), QColor(theme.scene.floor))
        for comp in self.layout.components:  # AGV paths, dashed, in the colour the 3D view draws them
            if comp.kind == "agv-path":
                p.setPen(QPen(QColor(comp.display_color), 1.5, Qt.PenStyle.DashLine))
                points = [self.to_pixel(x, y) for x, y in path_polyline(comp)]
                for a, b in itertools.pairwise(points):
                    p.drawLine(a, b)
        p.setPen(QPen(QColor(theme.scene.grid), 1.2))
        for link in self.layout.flow:
            if link.source in self.footprints and link.target in self.footprints:
                p.drawLine(self._rect(self.footprints[link.source]).center(),
                           self._rect(self.footprints[link.target]).center())
        selection = QColor(theme.scene.selection)
        for comp in self.layout.components:
            fp = self.footprints.get(comp.id)
            if fp is None or comp.kind in ("sensor", "agv-path"):
                continue
            rect = self._rect(fp)
            role = self.marked.get(comp.id)
            p.fillRect(rect, QColor(comp.display_color))
            if role in ("moved", "added", "changed"):
                p.setPen(QPen(selection, 2.5))
            elif role == "removed":
                p.setPen(QPen(selection, 2.0, Qt.PenStyle.DashLine))
            else:
                p.setPen(QPen(QColor(theme.scene.background_bottom), 1))
            p.drawRect(rect)
        p.setPen(QColor(theme.scene.label_text))
        for cid in self.marked:  # name what differs, just above its outline
            if cid in self.footprints and any(c.id == cid for c in self.layout.components):
                rect = self._rect(self.footprints[cid])
                p.drawText(QRectF(rect.left() - 40, rect.top() - 16, rect.width() + 80, 14),
                           Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, cid)
        changed = sum(1 for role in self.marked.values() if role != "removed")
        p.drawText(QRectF(8, 2, self.width() - 16, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   f"{self.title}" + (f" — {changed} changed (outlined)" if self.marked else ""))
        p.end()


def _floor(layout: Layout) -> Footprint | None:
    """The floor rectangle when the layout gives a size (origin (0, 0) unless given, as the checks read it)."""
    floor = layout.floor
    if "size" not in floor:
        return None
    ox, oy = (floor.get("origin") or (0.0, 0.0))[:2]
    sx, sy = floor["size"][:2]
    return (float(ox), float(ox) + float(sx), float(oy), float(oy) + float(sy))


def shared_extent(*footprint_maps: Mapping[str, Footprint], layouts: tuple[Layout, ...] = ()) -> Footprint:
    """The floor area that holds every footprint and floor of the plans compared."""
    xs0, xs1, ys0, ys1 = [], [], [], []
    for fps in footprint_maps:
        for fp in fps.values():
            xs0.append(fp[0])
            xs1.append(fp[1])
            ys0.append(fp[2])
            ys1.append(fp[3])
    for layout in layouts:
        rect = _floor(layout)
        if rect is not None:
            xs0.append(rect[0])
            xs1.append(rect[1])
            ys0.append(rect[2])
            ys1.append(rect[3])
    if not xs0:
        return (0.0, 1.0, 0.0, 1.0)
    return (min(xs0), max(xs1), min(ys0), max(ys1))
