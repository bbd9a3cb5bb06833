"""A small asyncua server for the tests, in its own process, driven by JSON lines on its stdin.

``python tests/opcua_test_server.py PORT`` serves ``ns=2;s=Line1.ST10.State`` (String),
``ns=2;s=Line1.ST10.Spindle.Vibration`` (Double, also at browse path 2:Line1/2:ST10/2:Spindle/2:Vibration)
and ``ns=2;s=Line1.R1.Joints`` (Double[6]); it prints ``ready`` when it listens. Commands, one per line:

- ``{"set": NODEID, "value": V}``: a new Good value (source timestamp now);
- ``{"set": NODEID, "value": V, "status": "BadSensorFailure"}``: a value with that status code;
- ``{"writes": true}``: prints ``{"writes": N, "calls": M}``, the write and method-call requests clients
  made (counted at the server's session: whatever a client sends, it passes there);
- ``{"delete": NODEID}``: deletes the variable, its monitored items told first as the standard has it (a
  notification with status BadNodeIdUnknown); ``{"delete": NODEID, "tell": "subscription"}``: told the way
  asyncua's server means to (a status-change notification of the subscription, not naming the node). asyncua
  2.1's server itself tells nothing: ``AddressSpace._delete_node_callbacks`` calls the monitored items' async
  callback without awaiting it. Prints ``ok``;
- ``{"add": NODEID, "value": V}``: adds a deleted variable again, where it was, with that value; ``ok``;
- ``{"revoke": true}``: ends every client subscription as a server does when a subscription's lifetime runs
  out: a status-change notification (BadTimeout), then the subscription is deleted; prints ``ok N`` (how many).

Options (none: no security, anonymous, as before):

- ``--policy NAME`` (repeatable): the endpoints, asyncua's ``SecurityPolicyType`` names, e.g.
  ``Basic256Sha256_SignAndEncrypt``, ``Aes128Sha256RsaOaep_Sign``, ``NoSecurity`` (default: ``NoSecurity``);
- ``--certificate DER --private-key PEM``: the server's certificate (needed by a secured policy);
- ``--application-uri URI``: the server's application URI (its certificate's URI should match);
- ``--trusted-clients DIR``: only client certificates in DIR are trusted (asyncua's CertificateValidator with a
  TrustStore, read again at each session, so a test can trust one while the server runs); without it every
  client certificate is accepted;
- ``--user NAME:PASSWORD``: only that user may open a session (no anonymous access).

Every variable is writable, so a client write would succeed and be seen: the count is the only guard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager

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


class OneUser(UserManager):
    """Only NAME with PASSWORD opens a session; anonymous and any other name or password are refused."""

    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username == self.name and password == self.password:
            return User(role=UserRole.User, name=username)
        return None


def trusted_clients(folder: Path) -> Any:
    """asyncua's own validator (time, URI, key usage, trusted) over the certificates in ``folder`` now."""

    async def validate(cert: Any, description: ua.ApplicationDescription) -> None:
        if not any(folder.iterdir()):  # asyncua's TrustStore cannot be empty: nothing is trusted
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
        store = TrustStore([folder], [])
        await store.load()
        validator = CertificateValidator(CertificateValidatorOptions.TRUSTED_VALIDATION
                                         | CertificateValidatorOptions.PEER_CLIENT, store)
        await validator.validate(cert, description)

    return validate


async def _revoke(server: Server) -> int:
    """End every client subscription the way an expired one ends: BadTimeout, then deleted."""
    service = server.iserver.subscription_service
    ended = [sid for sid, sub in service.subscriptions.items() if sub.session_id != server.iserver.isession.session_id]
    subscriptions = [service.subscriptions[sid] for sid in ended]
    for subscription in subscriptions:
        await subscription.enqueue_statuschange(ua.StatusCode(ua.StatusCodes.BadTimeout))
    deadline = asyncio.get_running_loop().time() + 10
    while any(s._triggered_statuschanges for s in subscriptions):  # it goes out with the next keep-alive
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    # the client may have deleted it already, once told
    await service.delete_subscriptions([sid for sid in ended if sid in service.subscriptions])
    return len(ended)


async def _delete(server: Server, variable: Any, tell: str) -> None:
    """Delete a variable, telling its monitored items first (see the module docstring)."""
    gone = ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
    if tell == "subscription":
        attribute = server.iserver.aspace[variable.nodeid].attributes[ua.AttributeIds.Value]
        for handle, callback in list(attribute.datachange_callbacks.items()):
            await callback(handle, None, gone)
            server.iserver.aspace.delete_datachange_callback(handle)
    else:
        await server.write_attribute_value(variable.nodeid, ua.DataValue(StatusCode=gone,
                                                                          ServerTimestamp=datetime.now(UTC)))
    await server.delete_nodes([variable])


async def _secured_server(options: argparse.Namespace) -> Server:
    """The server with the options' endpoints, certificate, trusted clients and user."""
    user_manager = OneUser(*options.user.split(":", 1)) if options.user else None
    server = Server(user_manager=user_manager)
    await server.init()
    _count_client_requests(server)
    server.set_endpoint(f"opc.tcp://127.0.0.1:{options.port}")
    if options.application_uri:
        await server.set_application_uri(options.application_uri)
    server.set_security_policy([getattr(ua.SecurityPolicyType, p) for p in options.policy or ["NoSecurity"]])
    if options.certificate:
        await server.load_certificate(options.certificate)
        await server.load_private_key(options.private_key)
    if options.trusted_clients:
        server.set_certificate_validator(trusted_clients(Path(options.trusted_clients)))
    if options.user:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    return server


class Plant:
    """The served variables, where they hang and their types: what the commands act on."""

    def __init__(self, server: Server, ns: int, variables: dict[str, Any], parents: dict[str, Any]) -> None:
        self.server, self.ns, self.variables, self.parents = server, ns, variables, parents
        self.types: dict[str, Any] = {}

    async def command(self, command: dict[str, Any]) -> str:
        """One command line's answer (see the module docstring)."""
        server = self.server
        if "writes" in command:
            return json.dumps(COUNTS)
        if "revoke" in command:
            return f"ok {await _revoke(server)}"
        if "delete" in command:
            await _delete(server, self.variables[command["delete"].split(";s=", 1)[1]], command.get("tell", "item"))
            return "ok"
        if "add" in command:
            name = command["add"].split(";s=", 1)[1]
            browse = f"{self.ns}:{name.rsplit('.', 1)[1]}"
            self.variables[name] = await self.parents[name].add_variable(
                ua.NodeId(name, self.ns), browse, ua.Variant(command["value"], self.types[name]))
            await self.variables[name].set_writable()
            return "ok"
        name = command["set"].split(";s=", 1)[1]
        status = ua.StatusCode(getattr(ua.StatusCodes, command.get("status", "Good")))
        value = ua.DataValue(ua.Variant(command["value"], self.types[name]), StatusCode=status,
                             SourceTimestamp=datetime.now(UTC), ServerTimestamp=datetime.now(UTC))
        await server.write_attribute_value(self.variables[name].nodeid, value)
        return "ok"


async def serve(options: argparse.Namespace) -> None:
    server = await _secured_server(options)
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
    plant = Plant(server, ns, variables,
                  {"Line1.ST10.State": st10, "Line1.ST10.Spindle.Vibration": spindle, "Line1.R1.Joints": r1})
    for variable in variables.values():
        await variable.set_writable()
    plant.types = {name: (await v.read_data_value()).Value.VariantType for name, v in variables.items()}
    async with server:
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line_bytes := await reader.readline():
            print(await plant.command(json.loads(line_bytes)), flush=True)


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--policy", action="append", help="a ua.SecurityPolicyType name (repeatable)")
    parser.add_argument("--certificate", help="the server's certificate (DER)")
    parser.add_argument("--private-key", help="the server's private key (PEM)")
    parser.add_argument("--application-uri", help="the server's application URI")
    parser.add_argument("--trusted-clients", help="folder of the client certificates to trust")
    parser.add_argument("--user", help="NAME:PASSWORD, the only user allowed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(serve(parse_options(sys.argv[1:])))
