"""A real mosquitto broker for tests, on a free loopback port, with optional passwords and TLS."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from viewer.telemetry.embedded_broker import free_port, stop_process, wait_for_port


def mosquitto_executable() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


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
        try:
            wait_for_port(self.port, self.process, 10.0, "mosquitto")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log.read_text()[-2000:]}") from None
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self, pause_s: float = 0.5) -> None:
        self.stop()
        time.sleep(pause_s)
        self.start()
