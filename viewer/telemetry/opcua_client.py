"""The OPC UA client: asyncua on its own thread with its own event loop, feeding the same store as MQTT.

- **Same samples as MQTT.** Each data change of a bound node is checked against its binding's kind
  (:func:`viewer.telemetry.values.check_value`) and stored as a :class:`~viewer.telemetry.store.Sample`
  under (component, signal) with the binding's index, so state rules, alarms, anomaly scores and robot
  joints work unchanged. The source timestamp is kept (``Sample.source_time``).
- **Quality is not a value.** A Bad or Uncertain status code stores nothing: the node's signals show no
  data (stale, like a Sparkplug death) until a Good value arrives; :meth:`OpcUaClient.node_quality` says
  which code each node had, for the details and the log.
- **Subscriptions, not polling**: one subscription with a monitored item per bound node (data-change
  notifications, the layout's sampling interval, queue size and absolute deadband).
- **Read-only**: this module never writes a value or calls a method; there is no path to do so.
- **Reconnects** with capped exponential backoff (1 to 30 s), re-creating the session and the subscription;
  each time without a connection is kept as a gap like the MQTT client's. The server's state is read every
  keep-alive (asyncua's watchdog), so a silent server is noticed.
- The window reads :meth:`OpcUaClient.status` exactly as it reads the MQTT client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from viewer.telemetry.bindings import Binding
from viewer.telemetry.mqtt_client import (
    ConnectionLog,
    ConnectionState,
    ConnectionStatus,
    MqttSettings,
    SettingsError,
)
from viewer.telemetry.router import OPCUA_ALIVE_TOPIC, OPCUA_PREFIX, TelemetryRouter
from viewer.telemetry.store import SignalKey

log = logging.getLogger(__name__)

SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")
ALIVE_EVERY_S = 1.0  # how often a live session says its unchanged values are current (see _say_alive)


@dataclass
class OpcUaSettings:
    """How to reach the OPC UA server (the layout's ``opcua`` section; ``--opcua URL`` overrides the endpoint)."""

    endpoint: str = "opc.tcp://127.0.0.1:4840"
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = None
    username: str | None = None
    password_env: str | None = None
    password_keyring: str | None = None
    publishing_interval_ms: float = 100.0
    sampling_interval_ms: float = 50.0
    queue_size: int = 10
    deadband: float = 0.0
    timeout_s: float = 4.0  # each request's answer
    keepalive_s: float = 2.0  # the server's state is read this often; a silent server is a lost connection
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0

    @classmethod
    def from_layout(cls, opcua: dict[str, Any] | None, base_dir: Path | None = None) -> OpcUaSettings:
        """Settings from a layout's ``opcua`` object; certificate paths are relative to the layout."""
        opcua = opcua or {}

        def path(key: str) -> Path | None:
            if key not in opcua:
                return None
            p = Path(opcua[key])
            return p if p.is_absolute() or base_dir is None else base_dir / p

        policy = opcua.get("security_policy", "None")
        return cls(
            endpoint=opcua.get("endpoint", cls.endpoint),
            security_policy=policy,
            security_mode=opcua.get("security_mode", "None" if policy == "None" else "SignAndEncrypt"),
            certificate=path("certificate"),
            private_key=path("private_key"),
            server_certificate=path("server_certificate"),
            username=opcua.get("username"),
            password_env=opcua.get("password_env"),
            password_keyring=opcua.get("password_keyring"),
            publishing_interval_ms=float(opcua.get("publishing_interval_ms", 100.0)),
            sampling_interval_ms=float(opcua.get("sampling_interval_ms", 50.0)),
            queue_size=int(opcua.get("queue_size", 10)),
            deadband=float(opcua.get("deadband", 0.0)),
        )

    @property
    def host(self) -> str:
        """The endpoint's host name or address."""
        return urlparse(self.endpoint).hostname or ""

    @property
    def secured(self) -> bool:
        """Messages are at least signed."""
        return self.security_policy != "None" and self.security_mode != "None"

    def password(self) -> str | None:
        """The password from ``password_env`` or the keyring (as for MQTT); :class:`SettingsError` if absent."""
        return MqttSettings(username=self.username, password_env=self.password_env,
                            password_keyring=self.password_keyring).password()

    def describe(self) -> str:
        """The endpoint with its security, for the status bar (never the password)."""
        if not self.secured:
            return f"{self.endpoint} (no security)"
        return f"{self.endpoint} ({self.security_policy}, {self.security_mode})"

    def warnings(self) -> list[str]:
        """What is unsafe in these settings (said in the status bar, the log and ``twin-viewer check``)."""
        out = []
        if not self.secured and not _is_loopback(self.host):
            out.append(f"the OPC UA connection to {self.host} has no security: messages are neither signed "
                       f"nor encrypted ({self.describe()})")
        has_password = self.username is not None and (self.password_env or self.password_keyring)
        if has_password and self.security_mode != "SignAndEncrypt":
            out.append(f"the password of OPC UA user {self.username!r} is sent without SignAndEncrypt "
                       f"({self.describe()})")
        return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_for(layout: Any, endpoint: str | None, base_dir: Path | None = None) -> OpcUaSettings | None:
    """The layout's ``opcua`` section with ``--opcua opc.tcp://HOST:PORT`` overriding the endpoint; ``None``
    when the layout names no server and none was given."""
    if layout.opcua is None and endpoint is None:
        return None
    settings = OpcUaSettings.from_layout(layout.opcua, base_dir)
    if endpoint:
        if not endpoint.startswith("opc.tcp://") or not urlparse(endpoint).hostname:
            raise SettingsError(f"--opcua must be opc.tcp://HOST:PORT, got {endpoint!r}")
        settings.endpoint = endpoint
    return settings


@dataclass
class _NodePlan:
    """A subscribed node: the bindings it feeds, as (signal key, binding index, value kind)."""

    label: str  # the NodeId or browse path as the layout wrote it (error lists, log)
    targets: list[tuple[SignalKey, int, str]] = field(default_factory=list)


def _label(binding: Binding) -> str:
    return binding.node if binding.node is not None else "/".join(binding.browse_path or ())


def _epoch(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None


class OpcUaClient(ConnectionLog):
    """Subscribes to the layout's OPC UA bindings and stores every data change (see the module docstring)."""

    def __init__(self, settings: OpcUaSettings, router: TelemetryRouter) -> None:
        super().__init__()
        self.settings = settings
        self.router = router
        self.store = router.store
        self._last_value = 0.0
        self._quality: dict[str, str] = {}  # node label -> the name of its last status code that was not Good
        self._plans: dict[str, _NodePlan] = {}
        for b in router.table.bindings:
            if not b.is_opcua:
                continue
            label = _label(b)
            if b.component is None or b.component not in router.table.component_ids:
                continue  # validation refuses these; an edited layout may still hold one
            self._plans.setdefault(label, _NodePlan(label)).targets.append(((b.component, b.signal), b.index, b.kind))
        self._by_browse = {_label(b): b.browse_path for b in router.table.bindings if b.browse_path}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._password: str | None = None

    client_id = ""  # the MQTT client's attribute, read by the window and the recorder

    # --- control (GUI thread) ----------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background; returns at once. :class:`SettingsError` for bad settings."""
        s = self.settings
        self._password = s.password()
        for label, p in (("certificate", s.certificate), ("private key", s.private_key),
                         ("server certificate", s.server_certificate)):
            if p is not None and not p.is_file():
                raise SettingsError(f"OPC UA {label} file not found: {p}")
        if s.secured and (s.certificate is None or s.private_key is None):
            raise SettingsError(f"security policy {s.security_policy} needs a client certificate and private key")
        for warning in s.warnings():
            log.warning("%s", warning)
        self._set_state(ConnectionState.CONNECTING, f"connecting to {s.describe()}")
        self._open_gap(time.time(), "not connected yet")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="opcua-client", daemon=True)
        self._thread.start()
        ready.wait(5.0)

    def stop(self, wait: bool = True) -> None:
        """Close the session and end the thread (``wait=False``: joined in the background, for the GUI)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._set_state(ConnectionState.DISCONNECTED, "stopped")
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if wait:
            thread.join(timeout=10.0)

    def status(self) -> ConnectionStatus:
        """Connection state, detail and gaps (a copy), as :meth:`TelemetryClient.status` gives them."""
        return self._status("", self.settings.warnings(), None)

    def node_quality(self) -> dict[str, str]:
        """Nodes whose latest status code was not Good, with that code's name (e.g. ``BadSensorFailure``)."""
        with self._lock:
            return dict(self._quality)

    # --- the client's thread -------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        """Connect, serve the session until it is lost, wait the backoff, again; until stopped."""
        self._stop = stop = asyncio.Event()
        ready.set()
        s = self.settings
        delay = s.reconnect_min_s
        while not stop.is_set():
            connected_at = None
            try:
                connected_at = await self._session(stop)
                reason = "the server closed the session or stopped answering"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever the network or the server does, the thread carries on
                reason = describe_opcua_failure(exc, s)
            if stop.is_set():
                break
            now = time.time()
            if connected_at is not None:
                delay = s.reconnect_min_s  # it was up: start the backoff afresh
                quiet = self._last_value if self._last_value >= connected_at else connected_at
                self._open_gap(now, reason, quiet)
                log.warning("OPC UA connection to %s lost: %s", s.describe(), reason)
            with self._lock:
                self._subscribed = False
            self._set_state(ConnectionState.CONNECTING, f"{reason}; retrying in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, s.reconnect_max_s)

    async def _session(self, stop: asyncio.Event) -> float | None:
        """One session: connect, subscribe, wait until it is lost or we stop. Its connect time, or raises."""
        s = self.settings
        client = await make_client(s, self._password)
        lost = asyncio.Event()

        async def on_lost(_exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        await client.connect()
        connected_at = time.time()
        try:
            await self._subscribe(client, lost)
            with self._lock:
                self._connects += 1
                self._subscribed = True
            self._close_gap(connected_at)
            self._set_state(ConnectionState.CONNECTED, f"connected to {s.describe()}")
            log.info("connected to %s, %d nodes subscribed", s.describe(), len(self._plans))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait()),
                       asyncio.ensure_future(self._say_alive(lost))]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), 2.0)
            except Exception:  # a dead server: the socket is closed anyway
                log.debug("OPC UA disconnect failed", exc_info=True)
        return connected_at

    async def _say_alive(self, lost: asyncio.Event) -> None:
        """While the session lives (asyncua's watchdog reads the server's state every ``keepalive_s``; a
        failure sets ``lost``), tell the router once a second that the subscribed values are current: a
        subscription reports changes only, and a value that does not change must not turn stale."""
        while not lost.is_set():
            self.router.handle(OPCUA_ALIVE_TOPIC, b"{}", time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), ALIVE_EVERY_S)

    async def _subscribe(self, client: Any, lost: asyncio.Event) -> None:
        """One subscription, one monitored item per bound node; nodes the server lacks are counted errors."""
        from asyncua import ua

        s = self.settings
        now = time.time()
        per_translate, per_monitor = await _operation_limits(client)
        nodes, plans = [], []
        for label, plan in self._plans.items():
            if label not in self._by_browse:
                nodes.append(client.get_node(label))
                plans.append(plan)
        by_path = [(label, plan) for label, plan in self._plans.items() if label in self._by_browse]
        for chunk in _chunks(by_path, per_translate):  # one request per chunk, within the server's limit
            found = await client.nodes.objects.get_children_by_path(
                [list(self._by_browse[label]) for label, _plan in chunk], raise_on_partial_error=False)
            for (label, plan), targets in zip(chunk, found, strict=True):
                if targets:
                    nodes.append(targets[0])
                    plans.append(plan)
                else:
                    self.store.count_error(f"opcua:{label}", "browse path not found on the server", now)
        handler = _Handler(self, lost)
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = s.publishing_interval_ms
        params.RequestedLifetimeCount = 300
        params.RequestedMaxKeepAliveCount = max(1, int(s.keepalive_s * 1000 / s.publishing_interval_ms / 2))
        params.MaxNotificationsPerPublish = 0
        params.Priority = 0
        subscription = await client.create_subscription(params, handler)
        if not nodes:
            return
        mfilter = None
        if s.deadband > 0:
            mfilter = ua.DataChangeFilter()
            mfilter.Trigger = ua.DataChangeTrigger.StatusValue
            mfilter.DeadbandType = ua.DeadbandType.Absolute
            mfilter.DeadbandValue = s.deadband
        requests = []
        for node in nodes:
            request = subscription._make_monitored_item_request(  # asyncua's own request builder
                node, ua.AttributeIds.Value, mfilter, s.queue_size, ua.MonitoringMode.Reporting,
                s.sampling_interval_ms)
            requests.append(request)
        results = []
        for chunk in _chunks(requests, per_monitor):  # real servers cap the items per call (often 500-1000)
            results += await subscription.create_monitored_items(chunk)
        for node, plan, result in zip(nodes, plans, results, strict=True):
            if isinstance(result, ua.StatusCode):
                self.store.count_error(f"opcua:{plan.label}", f"the server refused to monitor the node: "
                                                              f"{result.name}", now)
            else:
                handler.plans[node.nodeid] = plan

    # --- notifications (the client's thread) ------------------------------------------------
    def take(self, plan: _NodePlan, value: Any, data_value: Any) -> None:
        """One data change of a node, handed to the router as a ``twin-opcua-value/1`` document on the topic
        ``opcua/<node>`` (see TelemetryRouter._handle_opcua): decoded into the store there, and seen by the
        router's tap, so a recording holds it and a replay decodes it the same way."""
        received = time.time()
        self._last_value = received
        status = data_value.StatusCode
        name = "Good" if status is None or status.value == 0 else status.name
        with self._lock:
            if name == "Good":
                self._quality.pop(plan.label, None)
            else:
                self._quality[plan.label] = name
        document = {"value": list(value) if isinstance(value, tuple) else value, "status": name,
                    "source_time": _epoch(data_value.SourceTimestamp),
                    "server_time": _epoch(data_value.ServerTimestamp)}
        try:
            payload = json.dumps(document, allow_nan=False, default=str).encode()
        except ValueError:  # NaN or infinity: not a value the viewer takes
            self.store.count_message(received)
            self.store.count_error(f"{OPCUA_PREFIX}{plan.label}", "not a finite number", received)
            return
        self.router.handle(f"{OPCUA_PREFIX}{plan.label}", payload, received)


DEFAULT_PER_CALL = 500  # items per request where the server states no operation limit


async def _operation_limits(client: Any) -> tuple[int, int]:
    """The server's MaxNodesPerTranslateBrowsePathsToNodeIds and MaxMonitoredItemsPerCall (0 or unreadable:
    DEFAULT_PER_CALL): a layout with thousands of bindings must not be one request a PLC refuses."""
    from asyncua import ua

    limits = []
    for ident in (ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds,
                  ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall):
        try:
            value = int(await client.get_node(ua.NodeId(ident, 0)).read_value())
        except Exception:  # not exposed (optional in the standard), or not readable: keep to the default
            value = 0
        limits.append(min(value, DEFAULT_PER_CALL) if value > 0 else DEFAULT_PER_CALL)
    return limits[0], limits[1]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


async def make_client(settings: OpcUaSettings, password: str | None) -> Any:
    """An asyncua client for these settings, not yet connected: security policy and mode with the client
    certificate, the user and password. One place for the subscriber and the editor's browser."""
    from asyncua import Client, ua
    from asyncua.crypto import security_policies

    s = settings
    client = Client(s.endpoint, timeout=s.timeout_s, watchdog_intervall=s.keepalive_s)
    client.name = client.description = "twin-viewer"
    if s.secured:
        policy = getattr(security_policies, f"SecurityPolicy{s.security_policy}")
        mode = getattr(ua.MessageSecurityMode, s.security_mode)
        await client.set_security(policy, str(s.certificate), str(s.private_key),
                                  server_certificate=str(s.server_certificate) if s.server_certificate else None,
                                  mode=mode)
    if s.username is not None:
        client.set_user(s.username)
        if password is not None:
            client.set_password(password)
    return client


class _Handler:
    """asyncua's subscription handler: hands each data change to the client."""

    def __init__(self, client: OpcUaClient, lost: asyncio.Event) -> None:
        self.client = client
        self.lost = lost
        self.plans: dict[Any, _NodePlan] = {}  # NodeId -> plan

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        plan = self.plans.get(node.nodeid)
        if plan is not None:
            self.client.take(plan, value, data.monitored_item.Value)

    def status_change_notification(self, status: Any) -> None:
        """The server ended the subscription (a timeout, a shutdown): a new session re-creates it."""
        log.warning("OPC UA subscription status: %s", getattr(status, "Status", status))
        self.lost.set()


def describe_opcua_failure(exc: BaseException, settings: OpcUaSettings) -> str:
    """A failure to connect or a lost session as a sentence for the status bar."""
    from asyncua import ua

    if isinstance(exc, ua.UaStatusCodeError):
        name = ua.StatusCode(exc.code).name if hasattr(exc, "code") else type(exc).__name__
        if name in ("BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected"):
            return f"the server refused user {settings.username!r}: wrong user name or password ({name})"
        if name in ("BadSecurityChecksFailed", "BadCertificateUntrusted", "BadCertificateInvalid"):
            return f"the server does not trust this viewer's certificate ({name})"
        return f"the server answered {name}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {settings.endpoint} (no OPC UA server on that port?)"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer from {settings.endpoint} within {settings.timeout_s:g} s"
    if isinstance(exc, OSError):
        return f"cannot reach {settings.endpoint}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"
