"""The embedded demo broker: amqtt on a loopback port, in a process of its own.

``twin-viewer demo`` starts it so the demo runs end to end over real MQTT with
nothing installed beside the viewer. It listens on 127.0.0.1 only and accepts
anonymous clients: it is a demo broker, never a plant's.

Run alone: ``python -m viewer.telemetry.embedded_broker --port 18830``; it prints
``ready <port>`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from viewer.runtime import own_command


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """In a child process (``preexec_fn``): get SIGTERM when the parent dies, so no orphan outlives the demo."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6").prctl(pr_set_pdeathsig, signal.SIGTERM)


# Popen's preexec_fn exists on POSIX only (Windows raises ValueError): there the children are stopped by
# the parent's cleanup alone.
CHILD_OPTIONS: dict = {"preexec_fn": die_with_parent} if os.name == "posix" else {}


def wait_for_port(port: int, process: subprocess.Popen, timeout: float, what: str = "the broker") -> None:
    """Return once ``port`` accepts connections; ``RuntimeError`` if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a child process, killing it if it does not stop within 5 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def _serve(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 50}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the broker process."""
    parser = argparse.ArgumentParser(description="Embedded demo MQTT broker (amqtt, loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    asyncio.run(_serve(args.port or free_port()))
    return 0


class BrokerProcess:
    """Starts the embedded broker as a child process and stops it again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> BrokerProcess:
        """Start and wait until the port accepts connections."""
        self.process = subprocess.Popen(
            own_command("_broker", "--port", str(self.port)),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **CHILD_OPTIONS)
        try:
            wait_for_port(self.port, self.process, timeout, "the embedded broker")
        except RuntimeError as exc:
            err = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
            self.stop()
            raise RuntimeError(f"{exc}: {err[-1000:]}" if err else str(exc)) from None
        return self

    def stop(self) -> None:
        """Terminate the broker."""
        stop_process(self.process)
        self.process = None


if __name__ == "__main__":
    sys.exit(main())
