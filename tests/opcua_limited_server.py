"""An asyncua server that keeps to operation limits, as PLC servers do: ``python tests/opcua_limited_server.py
PORT N LIMIT`` serves N Doubles ``ns=2;s=Many.V0000`` ... (browse path ``2:Many/2:V0000``), states LIMIT as its
MaxMonitoredItemsPerCall and MaxNodesPerTranslateBrowsePathsToNodeIds, and answers a request with more than
LIMIT items BadTooManyOperations (asyncua itself states 10,000 and takes any number: this is the behaviour of
a real device's stack). Prints ``ready``; on a line ``go`` it writes every variable once (value = its number
+ 0.5) and prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from asyncua import Server, ua
from asyncua.server.internal_session import InternalSession

REFUSED = {"requests": 0}


def _keep_to(limit: int) -> None:
    create, translate = InternalSession.create_monitored_items, InternalSession.translate_browsepaths_to_nodeids

    async def limited_create(self: InternalSession, params: ua.CreateMonitoredItemsParameters) -> list:
        if len(params.ItemsToCreate) > limit:
            REFUSED["requests"] += 1
            raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations)
        return await create(self, params)

    async def limited_translate(self: InternalSession, params: list[ua.BrowsePath]) -> list:
        if len(params) > limit:
            REFUSED["requests"] += 1
            raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations)
        return await translate(self, params)

    InternalSession.create_monitored_items = limited_create  # type: ignore[method-assign]
    InternalSession.translate_browsepaths_to_nodeids = limited_translate  # type: ignore[method-assign]


async def serve(port: int, count: int, limit: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:twin-viewer:limited")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Many", ns), f"{ns}:Many")
    variables = [await folder.add_variable(ua.NodeId(f"Many.V{i:04d}", ns), f"{ns}:V{i:04d}", 0.0)
                 for i in range(count)]
    for ident in (ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
                  ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds):
        await server.write_attribute_value(ua.NodeId(ident, 0), ua.DataValue(ua.Variant(limit, ua.VariantType.UInt32)))
    _keep_to(limit)
    async with server:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "":
            if line == "go":
                for i, variable in enumerate(variables):
                    await variable.write_value(i + 0.5)
                print("done", flush=True)
            elif line == "refused":
                print(REFUSED["requests"], flush=True)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
