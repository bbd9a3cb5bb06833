"""Scene colours, after ISA-101 (high-performance HMI).

Normal equipment is drawn in calm greys on a dark, low-contrast floor; colour is
reserved for what needs attention (amber warning, red fault) and for the
operator's own selection (blue, which no alarm state uses).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SceneTheme:
    """Colours of the 3D view as ``#rrggbb``."""

    background_top: str = "#2a2f35"
    background_bottom: str = "#16191c"
    floor: str = "#30353a"
    grid: str = "#3c4248"
    selection: str = "#3fa9f5"
    label_text: str = "#e6e9ec"
    label_box: str = "#23272b"
    warning: str = "#f2a900"  # reserved for later issues: anomaly/alarm states
    fault: str = "#e0322b"
    stale: str = "#5f6468"


DARK = SceneTheme()
LIGHT = SceneTheme(
    background_top="#dfe3e7",
    background_bottom="#c4cad0",
    floor="#d3d7db",
    grid="#bcc2c8",
    label_text="#1d2125",
    label_box="#eef0f2",
)
