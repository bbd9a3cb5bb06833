"""A small asyncua server for the tests, in its own process, driven by JSON lines on its stdin.

``python tests/opcua_test_server.py PORT`` serves ``ns=2;s=Line1.ST10.State`` (String),
``ns=2;s=Line1.ST10.Spindle.Vibration`` (Double, also at browse path 2:Line1/2:ST10/2:Spindle/2:Vibration)
and ``ns=2;s=Line1.R1.Joints`` (Double[6]); it prints ``ready`` when it listens. Commands, one per line:

- ``{"set": NODEID, "value": V}``: a new Good value (source timestamp now);
- ``{"set": NODEID, "value": V, "status": "BadSensorFailure"}``: a value with that status code;
- ``{"writes": true}``: prints ``{"writes": N, "calls": M}``, the write and method-call requests clients
  made (counted at the server's session: whatever a client sends, it passes there).

Every variable is writable, so a client write would succeed and be seen: the count is the only guard.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.server.internal_session import InternalSession

COUNTS = {"writes": 0, "calls": 0}


def _count_client_requests(server: Server) -> None:
    """Count the write and call requests of every session but the server's own (it builds the address space)."""
    write, call = InternalSession.write, InternalSession.call

    async def counted_write(self: InternalSession, params: ua.WriteParameters) -> list[ua.StatusCode]:
        if self is not server.iserver.isession:
            COUNTS["writes"] += 1
        return await write(self, params)

    async def counted_call(self: InternalSession, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        if self is not server.iserver.isession:
            COUNTS["calls"] += 1
        return await call(self, params)

    InternalSession.write = counted_write  # type: ignore[method-assign]
    InternalSession.call = counted_call  # type: ignore[method-assign]


async def serve(port: int) -> None:
    server = Server()
    await server.init()
    _count_client_requests(server)
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:twin-viewer:test-plant")
    line = await server.nodes.objects.add_folder(ua.NodeId("Line1", ns), f"{ns}:Line1")
    st10 = await line.add_object(ua.NodeId("Line1.ST10", ns), f"{ns}:ST10")
    spindle = await st10.add_object(ua.NodeId("Line1.ST10.Spindle", ns), f"{ns}:Spindle")
    r1 = await line.add_object(ua.NodeId("Line1.R1", ns), f"{ns}:R1")
    variables = {
        "Line1.ST10.State": await st10.add_variable(ua.NodeId("Line1.ST10.State", ns), f"{ns}:State", "idle"),
        "Line1.ST10.Spindle.Vibration": await spindle.add_variable(
            ua.NodeId("Line1.ST10.Spindle.Vibration", ns), f"{ns}:Vibration", 0.0),
        "Line1.R1.Joints": await r1.add_variable(ua.NodeId("Line1.R1.Joints", ns), f"{ns}:Joints",
                                                 [0.0] * 6, ua.VariantType.Double),
    }
    for variable in variables.values():
        await variable.set_writable()
    types = {name: (await v.read_data_value()).Value.VariantType for name, v in variables.items()}
    async with server:
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line_bytes := await reader.readline():
            command = json.loads(line_bytes)
            if "writes" in command:
                print(json.dumps(COUNTS), flush=True)
                continue
            name = command["set"].split(";s=", 1)[1]
            status = ua.StatusCode(getattr(ua.StatusCodes, command.get("status", "Good")))
            value = ua.DataValue(ua.Variant(command["value"], types[name]), StatusCode=status,
                                 SourceTimestamp=datetime.now(UTC), ServerTimestamp=datetime.now(UTC))
            await server.write_attribute_value(variables[name].nodeid, value)
            print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
