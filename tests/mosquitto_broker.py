"""A real mosquitto broker for tests, on a free loopback port, with optional passwords and TLS."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def mosquitto_executable() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """Starts, stops and restarts one mosquitto process (the port stays the same across restarts)."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        exe = mosquitto_executable()
        if exe is None:
            pytest.skip("mosquitto is not installed (make test installs it)")
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # As root, mosquitto would switch to its own user, who cannot read pytest's private tmp folders.
        lines = [f"user {getpass.getuser()}", f"listener {self.port} 127.0.0.1", "persistence false",
                 "log_dest stderr",
                 "log_type error", "log_type warning", "max_queued_messages 1000000"]
        if users:
            passwd = workdir / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "require_certificate false"]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = workdir / "mosquitto.log"

    def start(self) -> Mosquitto:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([self.exe, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self, pause_s: float = 0.5) -> None:
        self.stop()
        time.sleep(pause_s)
        self.start()
