"""Test harness: starts a private Xvfb when there is no display, so GUI tests run the real window.

Core tests (model, geometry, CLI validate) need no display at all; GUI tests are
marked ``gui`` and skip with a clear reason when neither a display nor Xvfb exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_LAYOUT = ROOT / "layouts" / "demo_plant" / "demo_plant.json"
LARGE_LAYOUT = ROOT / "layouts" / "large_plant" / "large_plant.json"
SHARED = ROOT.parent / "shared"

_xvfb: subprocess.Popen | None = None


def _start_xvfb() -> str | None:
    """Start Xvfb on a free display number (it tells us which through -displayfd)."""
    global _xvfb
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    read_fd, write_fd = os.pipe()
    _xvfb = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "1920x1200x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    return f":{number}" if number else None


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        display = _start_xvfb()
        if display:
            os.environ["DISPLAY"] = display
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    # Keep the user's real settings and logs out of test runs.
    os.environ.setdefault("XDG_CONFIG_HOME", str(Path(config.rootpath) / ".pytest_cache" / "xdg-config"))
    os.environ.setdefault("TWIN_VIEWER_ALARM_JOURNAL", str(Path(config.rootpath) / ".pytest_cache" / "alarm-journal"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _xvfb is not None:
        _xvfb.terminate()
        try:
            _xvfb.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _xvfb.kill()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DISPLAY"):
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the GUI tests, but there is no display and no Xvfb "
                                "(make test installs xvfb when run as root)")
    skip = pytest.mark.skip(reason="no display and no Xvfb: install xvfb (make test does) to run GUI tests")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def demo_layout_path() -> Path:
    return DEMO_LAYOUT


@pytest.fixture
def large_layout_path() -> Path:
    return LARGE_LAYOUT
