"""The virtual plant served over OPC UA (asyncua): ``twin-viewer simulate-plant --opcua-port N``.

The same plant model as the MQTT virtual plant (:class:`viewer.telemetry.virtual_plant.VirtualPlant`, handed in
by its ``main``: this module does not import it, so the two stay free of an import cycle), in an
address space under ``Objects/Line1`` (namespace ``urn:twin-viewer:demo-plant``, index 2), string NodeIds:

- ``ns=2;s=Line1.<ID>.State`` (String: running, idle, fault) and ``.Count`` (Int64) per station and robot;
- ``ns=2;s=Line1.<ID>.Joints`` (Double[6], degrees) per robot, 20 Hz;
- ``ns=2;s=Line1.<ID>.MotorCurrent`` (Double, A) per station, 2 Hz;
- ``ns=2;s=Line1.ST10.Spindle.Vibration`` (mm/s), ``Line1.ST30.Bath.Temperature`` (°C) and
  ``Line1.ST60.LeakTest.Pressure`` (bar), 5 Hz.

Each value carries its source timestamp. The browse names follow the ids (``2:Line1/2:ST10/2:State``).
Security policy None on loopback: a demo source, not part of the viewer's read-only client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "urn:twin-viewer:demo-plant"
# (component, MQTT message kind) of the sensors -> the node path under Line1
SENSOR_NODES = {
    ("ST10", "vibration"): ("ST10", "Spindle", "Vibration"),
    ("ST30", "temperature"): ("ST30", "Bath", "Temperature"),
    ("ST60", "pressure"): ("ST60", "LeakTest", "Pressure"),
}


class PlantAddressSpace:
    """The demo plant's nodes on an asyncua server, and the writes that turn the plant's messages into values."""

    def __init__(self, server: Any, ns: int) -> None:
        self.server = server
        self.ns = ns
        self.nodes: dict[str, Any] = {}  # "Line1.ST10.State" -> its variable node
        self._objects: dict[str, Any] = {}
        self.types: dict[str, Any] = {}

    async def _object(self, path: tuple[str, ...]) -> Any:
        key = ".".join(path)
        if key not in self._objects:
            from asyncua import ua

            parent = self.server.nodes.objects if len(path) == 1 else await self._object(path[:-1])
            make = parent.add_folder if len(path) == 1 else parent.add_object
            self._objects[key] = await make(ua.NodeId(key, self.ns), f"{self.ns}:{path[-1]}")
        return self._objects[key]

    async def add(self, path: tuple[str, ...], initial: Any, variant: Any) -> None:
        """A variable at ``Line1/<path>`` (its NodeId is the path joined with dots)."""
        from asyncua import ua

        parent = await self._object(("Line1", *path[:-1]))
        key = ".".join(("Line1", *path))
        self.nodes[key] = await parent.add_variable(ua.NodeId(key, self.ns), f"{self.ns}:{path[-1]}", initial, variant)
        self.types[key] = variant

    async def build(self, plant: Any) -> None:
        """Every machine's and sensor's variables."""
        from asyncua import ua

        for m in plant.machines:
            await self.add((m.id, "State"), m.state, ua.VariantType.String)
            await self.add((m.id, "Count"), 0, ua.VariantType.Int64)
            if m.kind == "robot":
                await self.add((m.id, "Joints"), [0.0] * 6, ua.VariantType.Double)
            else:
                await self.add((m.id, "MotorCurrent"), 0.0, ua.VariantType.Double)
        for path in SENSOR_NODES.values():
            await self.add(path, 0.0, ua.VariantType.Double)

    def values_of(self, topic: str, payload: bytes) -> list[tuple[str, Any]]:
        """The (node key, value) pairs one of the MQTT virtual plant's messages stands for."""
        _prefix, _line, component, kind = topic.rsplit("/", 3)
        if (component, kind) in SENSOR_NODES:
            return [(".".join(("Line1", *SENSOR_NODES[(component, kind)])), float(payload))]
        data = json.loads(payload)
        if kind == "state":
            return [(f"Line1.{component}.State", data["state"]), (f"Line1.{component}.Count", int(data["count"]))]
        if kind == "joints":
            return [(f"Line1.{component}.Joints", [float(v) for v in data["deg"]])]
        if kind == "current":
            return [(f"Line1.{component}.MotorCurrent", float(data["A"]))]
        return []

    async def write(self, key: str, value: Any) -> None:
        """A new Good value with the source time now."""
        from asyncua import ua

        now = datetime.now(UTC)
        data_value = ua.DataValue(ua.Variant(value, self.types[key]), SourceTimestamp=now, ServerTimestamp=now)
        await self.server.write_attribute_value(self.nodes[key].nodeid, data_value)


async def serve(port: int, plant: Any, joint_hz: float, duration_s: float | None = None,
                speed: float = 1.0, host: str = "127.0.0.1") -> None:
    """Serve ``plant`` (a VirtualPlant), stepped at ``joint_hz``, until SIGTERM/SIGINT or ``duration_s``."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://{host}:{port}")
    server.set_server_name("twin-viewer virtual plant")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    space = PlantAddressSpace(server, await server.register_namespace(NAMESPACE))
    await space.build(plant)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with server:
        log.info("serving the virtual plant on opc.tcp://%s:%d (%d nodes)", host, port, len(space.nodes))
        start = time.monotonic()
        tick = 0
        while not stopping.is_set():
            t = (time.monotonic() - start) * speed
            if duration_s is not None and t >= duration_s:
                break
            messages = plant.tick_messages(tick, t, time.time(), joint_hz)
            for topic, payload in messages:
                for key, value in space.values_of(topic, payload):
                    await space.write(key, value)
            tick += 1
            next_time = start + tick / (joint_hz * speed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), max(0.0, next_time - time.monotonic()))


def run(port: int, plant: Any, joint_hz: float, duration_s: float | None = None, speed: float = 1.0) -> int:
    """Entry point used by ``virtual_plant.main`` for ``--opcua-port``."""
    asyncio.run(serve(port, plant, joint_hz, duration_s, speed))
    return 0
