"""Where the installed app keeps its log and reads the administrator's policy (Qt-free).

- **Log**: ``twin-viewer.log`` in the user's log folder (``$XDG_STATE_HOME/twin-viewer/log`` on Linux,
  ``%LOCALAPPDATA%\\twin-viewer\\Logs`` on Windows, ``~/Library/Logs/twin-viewer`` on macOS;
  ``$TWIN_VIEWER_LOG_DIR`` overrides), rotated at 2 MB, 5 files kept. A hard crash (segfault in a
  native library) writes its stack to ``crash.log`` beside it.
- **Policy**: a JSON file an operator cannot write (``/etc/twin-viewer/policy.json``,
  ``%PROGRAMDATA%\\twin-viewer\\policy.json``, ``/Library/Application Support/twin-viewer/policy.json``;
  ``$TWIN_VIEWER_POLICY`` overrides) with ``{"mode": "operator" | "planner", "allow_planner": bool,
  "monitor": N, "fullscreen": bool}``. Operator mode opens full screen and hides editing and connection
  settings; alarms and replay stay. A policy that cannot be read is reported and the safe operator
  mode is used.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass
from pathlib import Path

LOG_BYTES = 2_000_000
LOG_FILES = 5


def build_info() -> dict[str, str]:
    """Version and build of this copy: the bundle's build stamp (written by ``make package``), else the git
    commit of a source checkout, else "source"."""
    from viewer import __version__

    info = {"version": __version__, "build": "source"}
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        try:
            stamp = json.loads((Path(frozen) / "third_party" / "build.json").read_text(encoding="utf-8"))
            info["build"] = f"{stamp.get('commit', '?')} ({stamp.get('date', '?')}, bundle)"
        except (OSError, ValueError, AttributeError):
            info["build"] = "bundle (no build stamp)"
        return info
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / ".git").exists():
        import subprocess

        try:
            commit = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                                    capture_output=True, text=True, timeout=2).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit:
            info["build"] = f"{commit} (source checkout)"
    return info


def own_command(*args: str) -> list[str]:
    """The command line that starts this program again with ``args`` (helper processes: broker, virtual
    plant, simulation worker): the bundled executable when frozen, else this interpreter with ``-m viewer``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "viewer", *args]


def log_dir() -> Path:
    """The user's log folder for this app."""
    env = os.environ.get("TWIN_VIEWER_LOG_DIR")
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "twin-viewer" / "Logs"
    if sys.platform == "darwin":
        return home / "Library" / "Logs" / "twin-viewer"
    return Path(os.environ.get("XDG_STATE_HOME", home / ".local" / "state")) / "twin-viewer" / "log"


_crash_file = None


def setup_logging(level: str = "WARNING", crash_file: bool = True) -> Path | None:
    """Console logging at ``level``, plus the rotating log file at INFO or finer; returns the log file.

    ``crash_file``: also send hard crashes' stacks (faulthandler) to crash.log for the rest of the process.
    """
    global _crash_file
    root = logging.getLogger()
    root.setLevel(min(logging.getLevelName(level), logging.INFO))
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "twin-viewer.log"
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_FILES,
                                                       encoding="utf-8")
    except OSError as exc:  # a read-only home: keep running, say so on the console
        logging.getLogger(__name__).warning("no log file: %s", exc)
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if crash_file and _crash_file is None:
        _crash_file = open(folder / "crash.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the process
        faulthandler.enable(file=_crash_file)
    return path


def policy_path() -> Path:
    """Where the administrator's policy file is looked for."""
    env = os.environ.get("TWIN_VIEWER_POLICY")
    if env:
        return Path(env)
    if sys.platform.startswith("win"):
        return Path(os.environ.get("PROGRAMDATA", "C:/ProgramData")) / "twin-viewer" / "policy.json"
    if sys.platform == "darwin":
        return Path("/Library/Application Support/twin-viewer/policy.json")
    return Path("/etc/twin-viewer/policy.json")


@dataclass(frozen=True)
class Policy:
    """How the app may be used on this PC."""

    mode: str = "planner"  # "operator": full screen, no editing, no connection settings
    allow_planner: bool = True  # may an operator switch to the planner's full mode?
    monitor: int = 0
    fullscreen: bool = False
    source: str = ""  # the file it came from ("" = defaults), for the status bar
    problem: str = ""

    @property
    def operator(self) -> bool:
        return self.mode == "operator"

    def describe(self) -> str:
        if self.problem:
            return f"Operator mode: the policy {self.source} could not be read ({self.problem})"
        where = f" (policy {self.source})" if self.source else ""
        return f"{'Operator' if self.operator else 'Planner'} mode{where}"


def load_policy(kiosk: bool = False) -> Policy:
    """The policy in force: the file's, with ``--kiosk`` asking for operator mode on top."""
    path = policy_path()
    policy = Policy()
    explicit_allow = False
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            mode = data.get("mode", "planner")
            if mode not in ("operator", "planner"):
                raise ValueError(f"mode must be operator or planner, not {mode!r}")
            policy = Policy(mode, bool(data.get("allow_planner", mode != "operator")), int(data.get("monitor", 0)),
                            bool(data.get("fullscreen", mode == "operator")), str(path))
            explicit_allow = data.get("allow_planner") is True
        except (OSError, ValueError, TypeError) as exc:  # unreadable: the safe choice is operator mode
            policy = Policy("operator", False, 0, True, str(path), str(exc))
    if kiosk and not policy.operator:
        # --kiosk locks: back to the planner's mode only where a policy file says so explicitly.
        policy = Policy("operator", explicit_allow, policy.monitor, True, policy.source or "--kiosk")
    return policy
