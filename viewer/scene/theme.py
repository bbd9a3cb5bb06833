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
    # Abnormal states. Amber and red differ in lightness as well as hue (colour-blind safe), and
    # every abnormal state also gets a text badge, so colour is never the only cue.
    warning: str = "#f2a900"
    fault: str = "#d7263d"
    stale: str = "#8c8fb0"  # a pale violet-grey: "do not trust this", unlike any process colour
    idle: str = "#767c82"  # a darker grey than running: calm, no attention needed
    off: str = "#4b5055"
    blink_dim: str = "#5a5f64"  # the off phase of a blinking unacknowledged alarm
    badge_text_dark: str = "#1a1a1a"
    badge_text_light: str = "#ffffff"


DARK = SceneTheme()
LIGHT = SceneTheme(
    background_top="#dfe3e7",
    background_bottom="#c4cad0",
    floor="#d3d7db",
    grid="#bcc2c8",
    label_text="#1d2125",
    label_box="#eef0f2",
)
