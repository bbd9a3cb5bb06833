"""A virtual plant: publishes realistic telemetry for a layout over MQTT (a separate process).

It stands in for the PLCs of the demo plant so the viewer's whole loop runs over
real MQTT: ``twin-viewer simulate-plant --broker HOST:PORT [--layout L]``, or over OPC UA as an
asyncua server: ``--opcua-port N`` (:mod:`viewer.telemetry.opcua_plant`).

What it publishes under ``<prefix>/<component id>/...`` (prefix ``demo/line1``):

- ``state``: ``{"state": "running"|"idle"|"fault", "count": parts made, "ts": time}``
  once a second per station and robot; stations starve (idle) now and then, and
  a random one faults every minute or two for 10-25 s (injected faults);
- ``joints``: ``{"deg": [six joint angles], "ts": time}`` at 20 Hz per robot: a
  pick-and-place cycle of smooth moves, frozen while the robot is faulted;
- ``current``: ``{"A": motor current}`` at 2 Hz per station, higher when running;
- sensor values as plain numbers at 5 Hz: spindle vibration of ST10 (mm/s) with a
  slow upward drift that ends in "maintenance", the washer bath temperature (°C),
  the leak-test pressure (bar).

Deterministic for a given ``--seed``. This is a demo source, not part of the
viewer's read-only client.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from viewer.model.layout import Layout
from viewer.model.layout_io import load_layout

log = logging.getLogger(__name__)

PREFIX = "demo/line1"
JOINT_HZ = 20.0


@dataclass
class MachineSim:
    """One station or robot: its state and part counter."""

    id: str
    kind: str
    cycle_s: float
    state: str = "running"
    count: int = 0
    fault_until: float = 0.0
    idle_until: float = 0.0
    next_part: float = 0.0
    home: tuple[float, ...] = (0.0, -25.0, 35.0, 0.0, 40.0, 0.0)
    phase: float = 0.0
    frozen: list[float] = field(default_factory=list)


def pick_place_pose(home: tuple[float, ...], t: float, period: float, phase: float) -> list[float]:
    """Six joint angles (degrees) of a smooth pick-and-place cycle around a home pose."""
    u = (t / period + phase) % 1.0
    # Swing between pick (-50°) and place (+50°) on the base axis with eased moves, dipping at each end.
    swing = -math.cos(2 * math.pi * u)  # -1 pick .. +1 place
    dip = max(0.0, math.cos(4 * math.pi * u)) ** 4  # down at both ends
    j1 = home[0] + 50.0 * swing
    j2 = home[1] + 20.0 * dip
    j3 = home[2] - 15.0 * dip
    j4 = home[3] + 30.0 * math.sin(2 * math.pi * u)
    j5 = home[4] + 25.0 * dip
    j6 = home[5] + 90.0 * swing
    return [round(v, 3) for v in (j1, j2, j3, j4, j5, j6)]


class VirtualPlant:
    """Steps the machines and produces (topic, payload) messages."""

    def __init__(self, layout: Layout, seed: int = 1, fault_every_s: float = 75.0) -> None:
        self.rng = random.Random(seed)
        self.machines: list[MachineSim] = []
        for comp in layout.components:
            if comp.kind not in ("station", "robot"):
                continue
            cycle = float(comp.section("sim").get("cycle_time", {}).get("mean", 30.0))
            sim = MachineSim(comp.id, comp.kind, cycle, phase=self.rng.random())
            if comp.kind == "robot":
                sim.home = tuple(float(j) for j in comp.section("robot").get("joints", sim.home))
            self.machines.append(sim)
        self.fault_every_s = fault_every_s
        self.next_fault = 20.0 + self.rng.random() * 20.0
        self.vibration_base = 2.5
        self.drift_start = 0.0

    def faults_now(self, t: float) -> list[str]:
        """Machines faulted at time ``t`` (seconds since the plant started)."""
        return [m.id for m in self.machines if m.state == "fault"]

    def step_states(self, t: float) -> None:
        """Advance states and counters to time ``t``."""
        if t >= self.next_fault and self.machines:
            victim = self.rng.choice(self.machines)
            victim.state = "fault"
            victim.fault_until = t + self.rng.uniform(10.0, 25.0)
            self.next_fault = t + self.rng.expovariate(1.0 / self.fault_every_s) + 15.0
            log.info("injected fault on %s until t=%.0f", victim.id, victim.fault_until)
        for m in self.machines:
            if (m.state == "fault" and t >= m.fault_until) or (m.state == "idle" and t >= m.idle_until):
                m.state = "running"
            elif m.state == "running" and m.kind == "station" and self.rng.random() < 0.01:
                m.state = "idle"  # starved for a while
                m.idle_until = t + self.rng.uniform(3.0, 12.0)
            if m.state == "running" and t >= m.next_part:
                m.count += 1
                m.next_part = t + m.cycle_s * self.rng.uniform(0.9, 1.15)

    def tick_messages(self, tick: int, t: float, now: float, joint_hz: float) -> list[tuple[str, bytes]]:
        """What the plant publishes at loop tick ``tick`` (``joint_hz`` ticks a second): joints every tick,
        sensors every 4th, motor currents every 10th, states (stepped first) once a second. The MQTT and the
        OPC UA publisher both run this one schedule."""
        messages = self.joint_messages(t, now)
        if tick % 4 == 0:
            messages += self.sensor_messages(t)
        if tick % 10 == 0:
            messages += self.current_messages(t)
        if tick % int(joint_hz) == 0:
            self.step_states(t)
            messages += self.state_messages(t, now)
        return messages

    def state_messages(self, t: float, now: float) -> list[tuple[str, bytes]]:
        """One state message per machine."""
        return [(f"{PREFIX}/{m.id}/state", json.dumps({"state": m.state, "count": m.count, "ts": now}).encode())
                for m in self.machines]

    def joint_messages(self, t: float, now: float) -> list[tuple[str, bytes]]:
        """One joints message per robot."""
        out = []
        for m in self.machines:
            if m.kind != "robot":
                continue
            if m.state == "fault":
                pose = m.frozen or pick_place_pose(m.home, t, 2 * m.cycle_s, m.phase)
                m.frozen = pose
            else:
                m.frozen = []
                pose = pick_place_pose(m.home, t, 2 * m.cycle_s, m.phase)
            out.append((f"{PREFIX}/{m.id}/joints", json.dumps({"deg": pose, "ts": now}).encode()))
        return out

    def current_messages(self, t: float) -> list[tuple[str, bytes]]:
        """Motor current per station."""
        out = []
        for m in self.machines:
            if m.kind != "station":
                continue
            base = {"running": 9.0, "idle": 2.5, "fault": 0.4}[m.state]
            amps = base + self.rng.gauss(0.0, 0.4) + (1.5 * math.sin(t / 7.0) if m.state == "running" else 0.0)
            out.append((f"{PREFIX}/{m.id}/current", json.dumps({"A": round(max(amps, 0.0), 2)}).encode()))
        return out

    def sensor_messages(self, t: float) -> list[tuple[str, bytes]]:
        """Vibration with a slow drift (maintenance resets it), bath temperature, test pressure."""
        drift_t = t - self.drift_start
        vibration = self.vibration_base + 0.012 * drift_t + abs(self.rng.gauss(0.0, 0.3))
        if self.rng.random() < 0.004:
            vibration += self.rng.uniform(4.0, 9.0)  # a knock: one spike, not a trend
        if vibration > 12.5:
            self.drift_start = t  # maintenance replaced the bearing
        temperature = 60.0 + 2.0 * math.sin(t / 40.0) + self.rng.gauss(0.0, 0.15)
        pressure = 4.0 + 0.05 * math.sin(t / 3.0) + self.rng.gauss(0.0, 0.01)
        return [
            (f"{PREFIX}/ST10/vibration", f"{vibration:.3f}".encode()),
            (f"{PREFIX}/ST30/temperature", f"{temperature:.2f}".encode()),
            (f"{PREFIX}/ST60/pressure", f"{pressure:.3f}".encode()),
        ]


def run(broker: str, layout_path: Path, seed: int = 1, duration_s: float | None = None, speed: float = 1.0) -> int:
    """Publish until stopped (SIGTERM/SIGINT) or for ``duration_s``."""
    host, _, port = broker.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--broker must be HOST:PORT, got {broker!r}")
    plant = VirtualPlant(load_layout(layout_path), seed=seed)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"virtual-plant-{seed}")
    client.reconnect_delay_set(1, 5)
    client.connect_async(host, int(port))
    client.loop_start()
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    start = time.monotonic()
    tick = 0
    try:
        while not stopping:
            t = (time.monotonic() - start) * speed
            if duration_s is not None and t >= duration_s:
                break
            messages = plant.tick_messages(tick, t, time.time(), JOINT_HZ)
            if client.is_connected():
                for topic, payload in messages:
                    client.publish(topic, payload)
            tick += 1
            next_time = start + tick / (JOINT_HZ * speed)
            time.sleep(max(0.0, next_time - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def default_layout() -> Path:
    """The demo plant layout shipped with the viewer."""
    from viewer.geometry.mesh_library import shared_data_dir

    return shared_data_dir("layouts") / "demo_plant" / "demo_plant.json"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``twin-viewer simulate-plant`` and of the process ``twin-viewer demo`` starts."""
    parser = argparse.ArgumentParser(prog="twin-viewer simulate-plant",
                                     description="Publish realistic telemetry for a layout (a virtual plant)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--broker", help="HOST:PORT of the MQTT broker to publish to")
    where.add_argument("--opcua-port", type=int, help="serve the plant as an OPC UA server on this loopback port")
    parser.add_argument("--layout", type=Path, default=None, help="layout (default: the demo plant)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="run the plant's clock faster")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s virtual-plant %(message)s")
    if args.opcua_port is not None:
        from viewer.telemetry import opcua_plant

        plant = VirtualPlant(load_layout(args.layout or default_layout()), seed=args.seed)
        return opcua_plant.run(args.opcua_port, plant, JOINT_HZ, args.duration, args.speed)
    return run(args.broker, args.layout or default_layout(), args.seed, args.duration, args.speed)


if __name__ == "__main__":
    sys.exit(main())
