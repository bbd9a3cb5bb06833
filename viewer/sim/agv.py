"""AGV travel on the layout's AGV path network: where stations join it and how far apart they are.

The network is the union of the layout's ``agv-path`` polylines (closed ones loop). A station joins it at
the nearest point of the nearest segment, and walks the straight leg between (both ways); the distance
between two stations is the leg out, the shortest way along the network (Dijkstra, both directions), and
the leg in. So moving a station away from the path, or along it, changes the AGVs' travel times.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

from viewer.model.layout import path_polyline

Point = tuple[float, float]


@dataclass
class PathNetwork:
    """Vertices and undirected edges (metres) of the AGV paths; stations are added as they join."""

    points: list[Point] = field(default_factory=list)
    edges: dict[int, dict[int, float]] = field(default_factory=dict)
    speed: float = 1.0  # m/s, the slowest path's speed
    fleet: int = 1
    load_time: float = 10.0
    _segments: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def from_layout(cls, layout: object) -> PathNetwork | None:
        """The network of the layout's AGV paths; None when there are none."""
        paths = [c for c in layout.components if c.kind == "agv-path" and c.section("path").get("points")]  # type: ignore[attr-defined]
        if not paths:
            return None
        net = cls()
        speeds, fleet, load = [], 0, []
        for comp in paths:
            section = comp.section("path")
            ids = [net._vertex(p) for p in path_polyline(comp)]  # closed paths repeat their first point
            for a, b in itertools.pairwise(ids):
                # A path that runs out and back (or two paths along the same line) gives the same piece twice:
                # kept once, so a stop joins the one piece that later stops split further.
                if a != b and (a, b) not in net._segments and (b, a) not in net._segments:
                    net._edge(a, b)
                    net._segments.append((a, b))
            speeds.append(float(section.get("speed", 1.0)))
            fleet += int(section.get("fleet", 1))
            load.append(float(section.get("load_time", 10.0)))
        net.speed = min(speeds)
        net.fleet = fleet
        net.load_time = max(load)
        return net

    def _vertex(self, p: Point) -> int:
        for i, q in enumerate(self.points):
            if math.dist(p, q) < 1e-6:
                return i
        self.points.append(p)
        return len(self.points) - 1

    def _edge(self, a: int, b: int) -> None:
        length = math.dist(self.points[a], self.points[b])
        self.edges.setdefault(a, {})[b] = length
        self.edges.setdefault(b, {})[a] = length

    def join(self, p: Point) -> int:
        """Add a stop at ``p``: a vertex joined by a straight leg to the nearest point of the network."""
        best = None
        for a, b in self._segments:
            q = _closest_on_segment(p, self.points[a], self.points[b])
            d = math.dist(p, q)
            if best is None or d < best[0]:
                best = (d, a, b, q)
        assert best is not None
        _d, a, b, q = best
        on = self._vertex(q)
        if on not in (a, b):  # split the segment at the join point: later stops join the pieces
            self._edge(a, on)
            self._edge(on, b)
            self.edges[a].pop(b, None)
            self.edges[b].pop(a, None)
            i = self._segments.index((a, b))
            self._segments[i:i + 1] = [(a, on), (on, b)]
        stop = len(self.points)
        self.points.append(p)
        self._edge(stop, on)
        return stop

    def distance(self, a: int, b: int) -> float:
        """Shortest way along the network (metres); inf when not connected."""
        if a == b:
            return 0.0
        best = {a: 0.0}
        todo = [(0.0, a)]
        while todo:
            d, v = heapq.heappop(todo)
            if v == b:
                return d
            if d > best.get(v, math.inf):
                continue
            for w, length in self.edges.get(v, {}).items():
                nd = d + length
                if nd < best.get(w, math.inf):
                    best[w] = nd
                    heapq.heappush(todo, (nd, w))
        return math.inf


def _closest_on_segment(p: Point, a: Point, b: Point) -> Point:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return a
    t = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return (ax + t * dx, ay + t * dy)
