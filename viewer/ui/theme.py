"""The window's two looks: the dark control-room theme (default) and a light one for bright rooms.

Both follow ISA-101 (high-performance HMI): muted greys for everything normal, colour only for abnormal
states (amber warning, red fault) and the operator's own selection. The light theme darkens the alarm text
colours so they keep their contrast on a pale background. One theme is current for the whole application;
widgets read it when they draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from viewer.scene.theme import DARK, LIGHT, SceneTheme

_Role = QPalette.ColorRole


@dataclass(frozen=True)
class UiTheme:
    """Colours of the widgets, the plots and the 3D view for one look."""

    name: str
    palette: dict[QPalette.ColorRole, str]
    disabled_text: str
    scene: SceneTheme
    plot_background: str
    plot_foreground: str
    plot_pens: tuple[str, str, str]  # calm line colours; never alarm colours
    text_warning: str  # alarm text on the theme's background (readable, not just the 3D amber)
    text_fault: str
    text_muted: str  # shelved alarms, secondary labels
    text_strong: str = field(default="")

    def color(self, role: QPalette.ColorRole) -> QColor:
        return QColor(self.palette[role])


THEMES: dict[str, UiTheme] = {
    "dark": UiTheme(
        name="dark",
        palette={
            _Role.Window: "#2b3036", _Role.WindowText: "#dde1e5", _Role.Base: "#23272c",
            _Role.AlternateBase: "#292e33", _Role.Text: "#dde1e5", _Role.Button: "#353b41",
            _Role.ButtonText: "#dde1e5", _Role.Highlight: "#2f6f9f", _Role.HighlightedText: "#ffffff",
            _Role.ToolTipBase: "#353b41", _Role.ToolTipText: "#dde1e5", _Role.PlaceholderText: "#8a9299",
        },
        disabled_text="#6c737a", scene=DARK,
        plot_background="#23272c", plot_foreground="#aab1b8", plot_pens=("#d6dade", "#7fb2d9", "#b9a6d6"),
        text_warning="#f2a900", text_fault="#ff6b6b", text_muted="#8a9299", text_strong="#e6e9ec",
    ),
    "light": UiTheme(
        name="light",
        palette={
            _Role.Window: "#e6e8eb", _Role.WindowText: "#1d2125", _Role.Base: "#f6f7f8",
            _Role.AlternateBase: "#eceef0", _Role.Text: "#1d2125", _Role.Button: "#d9dde1",
            _Role.ButtonText: "#1d2125", _Role.Highlight: "#2f6f9f", _Role.HighlightedText: "#ffffff",
            _Role.ToolTipBase: "#f6f7f8", _Role.ToolTipText: "#1d2125", _Role.PlaceholderText: "#6c737a",
        },
        disabled_text="#9aa1a8", scene=LIGHT,
        plot_background="#f6f7f8", plot_foreground="#4a5058", plot_pens=("#3d4349", "#2f6f9f", "#6f5a96"),
        text_warning="#8a5a00", text_fault="#b3261e", text_muted="#6c737a", text_strong="#101316",
    ),
}
DEFAULT_THEME = "dark"
_current = THEMES[DEFAULT_THEME]


def current() -> UiTheme:
    """The theme in force (what widgets colour themselves with)."""
    return _current


def apply_theme(app: QApplication, name: str) -> UiTheme:
    """Make ``name`` ("dark" or "light"; anything else: the default) the application's look."""
    global _current
    theme = THEMES.get(name, THEMES[DEFAULT_THEME])
    _current = theme
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in theme.palette.items():
        palette.setColor(role, QColor(colour))
    for role in (_Role.Text, _Role.ButtonText, _Role.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.disabled_text))
    app.setPalette(palette)
    return theme
