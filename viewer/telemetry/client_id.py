"""The MQTT client id of one running viewer or recorder.

A broker allows one connection per client id: a second client with the same id
takes the session over and the first is thrown out (MQTT 3.1.1, 3.1.4-2). With
a fixed id in a shared layout, two viewers, or a viewer and a recorder, evict
each other every second. So the layout's ``client_id`` is a *prefix* unless it
says otherwise:

- a clean session gets ``PREFIX-HOST-ROLE-RANDOM``: unique per running instance;
- a persistent session (``clean_session: false``) must find its queued messages
  again after a restart, so it gets a stable ``PREFIX-HOST-USER-ROLE``; a second
  instance of the same user, PC and role on this machine gets ``...-2`` (a lock
  file in the user's runtime folder says which numbers are taken);
- ``client_id_exact: true`` uses the layout's id as it is, and a template with
  ``{host}``, ``{user}``, ``{role}`` or ``{instance}`` is filled in exactly
  (for brokers whose access rules name client ids).
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no claim files; ids stay per user and PC
    fcntl = None  # type: ignore[assignment]

DEFAULT_PREFIX = "twin-viewer"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_INSTANCES = 9  # persistent sessions of one user, PC and role claimed side by side


def _safe(text: str, limit: int) -> str:
    return _UNSAFE.sub("-", text).strip("-")[:limit] or "x"


def _host() -> str:
    return _safe(socket.gethostname().split(".")[0], 24)


def _user() -> str:
    try:
        return _safe(getpass.getuser(), 16)
    except (KeyError, OSError):  # no login name (a container without passwd entry)
        return _safe(str(os.getuid()) if hasattr(os, "getuid") else "user", 16)


def _claims_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(tempfile.gettempdir()) / f"twin-viewer-{_user()}"
    return base / "twin-viewer-mqtt-ids"


@dataclass
class ClientId:
    """A resolved client id; ``release()`` frees a claimed persistent id for the next instance."""

    value: str
    how: str  # "unique", "persistent" or "exact": how it came about, for the log and the status
    _claim: IO[bytes] | None = None

    def release(self) -> None:
        if self._claim is not None:
            self._claim.close()  # closing drops the lock
            self._claim = None


def _claim(candidate: str) -> IO[bytes] | None:
    """An exclusive lock on this id's claim file, or ``None`` when another running instance holds it."""
    if fcntl is None:
        return None
    folder = _claims_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (folder / f"{candidate}.lock").open("ab")
    except OSError:
        return None  # no writable runtime folder: use the id without a claim
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise BlockingIOError(candidate) from None
    return handle


def resolve_client_id(configured: str | None, *, role: str, persistent: bool, exact: bool = False) -> ClientId:
    """The client id this instance connects with (see the module docstring)."""
    configured = (configured or "").strip()
    if exact and configured:
        return ClientId(configured, "exact")
    if "{" in configured:
        values = {"host": _host(), "user": _user(), "role": _safe(role, 16), "instance": secrets.token_hex(3)}
        try:
            return ClientId(configured.format(**values), "exact")
        except (KeyError, IndexError, ValueError):
            pass  # an unknown placeholder: treat the text as a plain prefix
    prefix = _safe(configured, 32) if configured else DEFAULT_PREFIX
    if not persistent:
        return ClientId(f"{prefix}-{_host()}-{_safe(role, 16)}-{secrets.token_hex(3)}", "unique")
    stable = f"{prefix}-{_host()}-{_user()}-{_safe(role, 16)}"
    for n in range(1, MAX_INSTANCES + 1):
        candidate = stable if n == 1 else f"{stable}-{n}"
        try:
            return ClientId(candidate, "persistent", _claim(candidate))
        except BlockingIOError:
            continue
    return ClientId(f"{stable}-{secrets.token_hex(3)}", "unique")  # more instances than places: not persistent

