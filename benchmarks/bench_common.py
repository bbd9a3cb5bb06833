"""What the benchmark scripts share: a display when there is none, and a private mosquitto."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from viewer.telemetry.embedded_broker import free_port, stop_process, wait_for_port  # noqa: E402


def ensure_display(script: str) -> None:
    """Re-execute ``script`` under ``xvfb-run`` when there is no X display (headless box)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or not sys.platform.startswith("linux"):
        return
    name = Path(script).stem
    mark = "_BENCH_UNDER_XVFB"
    if os.environ.get(mark):
        sys.exit(f"{name}: still no DISPLAY under xvfb-run; giving up")
    exe = shutil.which("xvfb-run")
    if exe is None:
        sys.exit(f"{name}: no DISPLAY and no xvfb-run; install xvfb or run under a display")
    env = dict(os.environ, **{mark: "1"})
    argv = [exe, "-a", "-s", "-screen 0 1920x1200x24", sys.executable, str(Path(script).resolve()), *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(exe, argv, env)


def parse_size(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """``1280x800`` -> (1280, 800), or a usage error."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 1280x800, not {text!r}")
    return width, height


def emit(figures: list[dict]) -> None:
    """The closing JSON lines, one per figure (see BENCHMARKS.md)."""
    for figure in figures:
        print(json.dumps(figure, ensure_ascii=False))
    sys.stdout.flush()


def mosquitto_executable() -> str | None:
    """mosquitto from PATH or Debian's /usr/sbin."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


class Broker:
    """One mosquitto on a free loopback port that queues, never drops, QoS 0 messages for slow subscribers."""

    def __init__(self, workdir: Path) -> None:
        exe = mosquitto_executable()
        if exe is None:
            raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
        self.port = free_port()
        lines = [
            f"user {getpass.getuser()}",  # as root, mosquitto would otherwise switch to its own user
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # With no inflight limit (count and bytes), mosquitto sends every QoS 0 message on to an online
            # client whatever its queue length (db__ready_for_flight); the queue limits are lifted as well.
            "max_inflight_messages 0",
            "max_inflight_bytes 0",
            "max_queued_messages 100000000",
            "max_queued_bytes 0",
        ]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = workdir / "mosquitto.log"
        self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen([exe, "-c", str(self.config)], stdout=self._log_handle,
                                        stderr=self._log_handle)
        try:
            wait_for_port(self.port, self.process, 10.0, "mosquitto")
        except RuntimeError as exc:
            raise SystemExit(f"{exc}: {self.log.read_text()[-2000:]}") from None

    def rss_mib(self) -> float:
        """Resident memory of the broker."""
        try:
            with open(f"/proc/{self.process.pid}/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the broker has used so far."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        """Terminate the broker."""
        stop_process(self.process)
        self._log_handle.close()


# MQTT 3.1.1 packets by hand: a publisher fast enough that the broker, not the publisher, sets the pace.
def mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH packet (``topic`` already length-prefixed)."""
    return b"\x30" + remaining_length(len(topic) + len(payload)) + topic + payload


class RawPublisher:
    """A minimal QoS 0 MQTT 3.1.1 publisher on a blocking socket."""

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = mqtt_string("MQTT") + b"\x04\x02" + struct.pack("!H", 120) + mqtt_string(client_id)
        self.sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        connack = b""
        while len(connack) < 4:
            chunk = self.sock.recv(4 - len(connack))
            if not chunk:
                raise ConnectionError("broker closed the connection before CONNACK")
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the connection: {connack!r}")

    def publish(self, topic: str, payload: bytes) -> None:
        self.sock.sendall(publish_packet(mqtt_string(topic), payload))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()
