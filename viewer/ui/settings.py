"""Per-user settings in the platform's standard place (QSettings): window, docks, theme, recent files, broker.

``$TWIN_VIEWER_SETTINGS`` (an .ini path) overrides the location, for tests and portable installs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

RECENT_MAX = 10


def open_settings() -> QSettings:
    path = os.environ.get("TWIN_VIEWER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, "twin-viewer", "twin-viewer")


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent_files", [])
    items = [value] if isinstance(value, str) else list(value or [])
    return [p for p in items if isinstance(p, str)][:RECENT_MAX]


def add_recent(settings: QSettings, path: Path | str) -> list[str]:
    text = str(Path(path).resolve())
    items = [text] + [p for p in recent_files(settings) if p != text]
    settings.setValue("recent_files", items[:RECENT_MAX])
    return items[:RECENT_MAX]


def save_window(settings: QSettings, window: Any) -> None:
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    if window.broker:
        settings.setValue("last_broker", window.broker)
    settings.sync()


def restore_window(settings: QSettings, window: Any) -> None:
    geometry = settings.value("window/geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = settings.value("window/state")
    if state is not None:
        window.restoreState(state)  # the docks: which are shown, where, how big
    theme = settings.value("theme")
    if isinstance(theme, str):
        window.set_theme(theme, remember=False)
    # The last broker is kept but never applied by itself: silently connecting a layout to another
    # broker than its own would show the wrong plant.
