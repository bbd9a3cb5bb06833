"""Help > About: version, build, what it runs on, the policy in force, and the third-party licences."""

from __future__ import annotations

import html
import platform
import sys
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.licences import components
from viewer.runtime import build_info, log_dir

APP_NAME = "twin-viewer"


def licence_file() -> Path | None:
    """The full licence texts shipped with the bundle (a source install points at its packages instead)."""
    frozen = getattr(sys, "_MEIPASS", None)
    path = Path(frozen) / "third_party" / "THIRD_PARTY_LICENSES.txt" if frozen else None
    return path if path is not None and path.exists() else None


class AboutDialog(QDialog):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, policy_text: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.resize(640, 560)
        info = build_info()
        try:
            from vtkmodules.vtkCommonCore import vtkVersion

            vtk_version = vtkVersion.GetVTKVersion()
        except ImportError:  # pragma: no cover - the viewer cannot run without VTK
            vtk_version = "?"
        rows = [("Version", info["version"]), ("Build", info["build"]),
                ("Runs on", f"Python {platform.python_version()}, Qt {qVersion()} (PySide6 {pyside_version}), "
                            f"VTK {vtk_version}, {platform.system()} {platform.release()}"),
                ("Log folder", str(log_dir()))]
        if policy_text:
            rows.append(("Policy", policy_text))
        table = "".join(f"<tr><td style='padding-right:12px'><b>{html.escape(k)}</b></td>"
                        f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
        self.summary = QLabel(f"<h3>{APP_NAME} {html.escape(info['version'])}</h3>"
                              "<p>3D digital-twin viewer for factory control rooms.</p>"
                              f"<table>{table}</table><p>Third-party components and their licences:</p>")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(self.summary.textInteractionFlags()
                                             | self.summary.textInteractionFlags().TextSelectableByMouse)

        self.components = components()
        self.table = QTableWidget(len(self.components), 3, self)
        self.table.setHorizontalHeaderLabels(["Component", "Version", "Licence"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, comp in enumerate(self.components):
            for col, text in enumerate((comp.name, comp.version, comp.licence)):
                item = QTableWidgetItem(text)
                if comp.note:
                    item.setToolTip(comp.note)
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.texts_path = licence_file()
        if self.texts_path is not None:
            texts = buttons.addButton("Licence Texts…", QDialogButtonBox.ButtonRole.ActionRole)
            texts.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.texts_path))))

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
