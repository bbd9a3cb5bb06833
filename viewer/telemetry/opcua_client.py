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
- **Security** (:mod:`viewer.telemetry.opcua_security`): Sign or SignAndEncrypt with Basic256Sha256 or
  Aes128_Sha256_RsaOaep. The client certificate is the layout's ``certificate``/``private_key`` or this user's own,
  made on first use; the server's certificate, read from its endpoint description before the secure channel
  opens, must be trusted (the trust folder or the layout's ``server_certificate``), else nothing connects and the
  message says what to copy where. :func:`make_client` is the one place that does this, for the subscriber and
  the editor's browser.
- **The server's news inside a session**: a subscription the server ends (a status-change notification) is
  re-created and counted as a gap; a node the server deletes shows no data and is named (the store's error
  for it, the status detail) and is monitored again when it returns (looked for every ``remonitor_s``).
- The window reads :meth:`OpcUaClient.status` exactly as it reads the MQTT client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
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
from viewer.telemetry.opcua_security import (
    CertificateInfo,
    OpcUaSecurityError,
    OwnCertificate,
    PkiFolders,
    UnsupportedSecurityError,
    check_server_certificate,
    ensure_own_certificate,
    first_certificate,
    read_certificate,
)
from viewer.telemetry.router import OPCUA_ALIVE_TOPIC, OPCUA_PREFIX, TelemetryRouter
from viewer.telemetry.store import SignalKey

log = logging.getLogger(__name__)

SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")
ALIVE_EVERY_S = 1.0  # how often a live session says its unchanged values are current (see _say_alive)
# A monitored item's status that says the node itself is gone (deleted, or never there); asyncua's server says it
# in a status-change notification of the subscription instead, without naming the node.
NODE_GONE = frozenset({"BadNodeIdUnknown", "BadNodeIdInvalid", "BadNodeIdRejected", "BadNotFound"})


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
    remonitor_s: float = 10.0  # how often nodes missing on the server are looked for again within a session
    pki: PkiFolders | None = None  # certificates and trust folders (None: the user's, PkiFolders.default())

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

    def folders(self) -> PkiFolders:
        """Where the own certificate and the trust folders are."""
        return self.pki or PkiFolders.default()

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


def own_certificate_for(settings: OpcUaSettings) -> OwnCertificate:
    """The client certificate of a secured connection: the layout's ``certificate`` and ``private_key``, or
    (naming neither) this user's own, made on first use. :class:`SettingsError` with the path and why."""
    s = settings
    if (s.certificate is None) != (s.private_key is None):
        given, missing = ("certificate", "private_key") if s.certificate is not None else ("private_key", "certificate")
        raise SettingsError(f"the layout's opcua section names a {given} but no {missing}: give both, or neither "
                            f"(the viewer then uses its own certificate in {s.folders().own})")
    try:
        if s.certificate is not None and s.private_key is not None:
            for label, p in (("certificate", s.certificate), ("private key", s.private_key)):
                if not p.is_file():
                    raise SettingsError(f"OPC UA {label} file not found: {p}")
            return OwnCertificate(s.certificate, s.private_key, read_certificate(s.certificate), False)
        return ensure_own_certificate(s.folders())
    except OpcUaSecurityError as exc:
        raise SettingsError(str(exc)) from None


def _no_password(settings: OpcUaSettings) -> str:
    return (f"OPC UA user {settings.username!r} has no password: name the environment variable that holds it with "
            f"password_env (or a keyring entry with password_keyring) in the layout's opcua section")


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
        self._flowing = False  # the subscription delivers: unchanged values are current (see _say_alive)
        self.own_certificate: OwnCertificate | None = None  # the client certificate of a secured connection
        self.server_certificate: CertificateInfo | None = None  # the server's, as trusted at the last connect

    client_id = ""  # the MQTT client's attribute, read by the window and the recorder

    # --- control (GUI thread) ----------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background; returns at once. :class:`SettingsError` for bad settings (a user
        without a password, a missing certificate file, an own certificate that cannot be made or used)."""
        s = self.settings
        self._password = s.password()
        if s.username is not None and self._password is None:
            raise SettingsError(_no_password(s))
        if s.server_certificate is not None and not s.server_certificate.is_file():
            raise SettingsError(f"OPC UA server certificate file not found: {s.server_certificate}")
        made = ""
        if s.secured:
            self.own_certificate = own_certificate_for(s)
            if self.own_certificate.created:
                made = f"; {self.own_certificate.announcement()}"
        for warning in s.warnings():
            log.warning("%s", warning)
        self._set_state(ConnectionState.CONNECTING, f"connecting to {s.describe()}{made}")
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
        said = ""
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
            elif reason != said:  # each new reason once in the log (a refused certificate matters), not every retry
                log.warning("OPC UA: cannot connect to %s: %s", s.describe(), reason)
            said = reason
            with self._lock:
                self._subscribed = False
            self._set_state(ConnectionState.CONNECTING, f"{reason}; retrying in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, s.reconnect_max_s)

    async def _session(self, stop: asyncio.Event) -> float | None:
        """One session: connect, subscribe, serve until it is lost or we stop. Its connect time, or raises."""
        s = self.settings
        client = await make_client(s, self._password)
        self.server_certificate = getattr(client, "twin_server_certificate", None)
        lost = asyncio.Event()

        async def on_lost(_exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        await client.connect()
        connected_at = time.time()
        try:
            monitor = _Monitor(self, client)
            await monitor.subscribe()
            with self._lock:
                self._connects += 1
                self._subscribed = True
            self._flowing = True
            self._close_gap(connected_at)
            self._set_state(ConnectionState.CONNECTED, self._connected_detail(monitor))
            log.info("connected to %s, %d nodes subscribed", s.describe(), len(self._plans) - len(monitor.gone))
            await self._serve(monitor, stop, lost)
        finally:
            self._flowing = False
            try:
                await asyncio.wait_for(client.disconnect(), 2.0)
            except Exception:  # a dead server: the socket is closed anyway
                log.debug("OPC UA disconnect failed", exc_info=True)
        return connected_at

    async def _serve(self, monitor: _Monitor, stop: asyncio.Event, lost: asyncio.Event) -> None:
        """Until stopped or lost: act on the server's news (a subscription it ended, nodes it deleted) and look
        for missing nodes every ``remonitor_s``."""
        alive = asyncio.ensure_future(self._say_alive(lost))
        next_look = time.monotonic() + self.settings.remonitor_s
        try:
            while True:
                news = await _next_news(monitor.news, stop, lost, max(0.0, next_look - time.monotonic()))
                if stop.is_set() or lost.is_set():
                    return
                if news in NODE_GONE:  # asyncua's server: a node was deleted, which one it does not say
                    await monitor.find_gone(news)
                elif news is not None:
                    await self._resubscribe(monitor, news)
                if monitor.gone and time.monotonic() >= next_look:
                    await monitor.remonitor()
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + self.settings.remonitor_s
                self._set_state(ConnectionState.CONNECTED, self._connected_detail(monitor))
        finally:
            alive.cancel()

    async def _resubscribe(self, monitor: _Monitor, status: str) -> None:
        """The server ended the subscription (its lifetime ran out, it was moved, the server dropped it): make
        a new one in the same session; the time without it is a gap."""
        now = time.time()
        reason = f"the server ended the subscription ({status}); re-subscribing"
        log.warning("OPC UA %s: %s", self.settings.describe(), reason)
        self._flowing = False
        with self._lock:
            self._subscribed = False
        self._open_gap(now, reason, self._last_value if self._last_value > 0 else now)
        self._set_state(ConnectionState.CONNECTING, reason)
        await monitor.close()
        await monitor.subscribe()
        self._close_gap(time.time())
        with self._lock:
            self._subscribed = True
        self._flowing = True

    def _connected_detail(self, monitor: _Monitor) -> str:
        detail = f"connected to {self.settings.describe()}"
        gone = [(label, why) for label, why in monitor.gone.items() if why in NODE_GONE]
        if len(gone) == 1:
            return f"{detail}; node {gone[0][0]} is not on the server ({gone[0][1]}): no data until it returns"
        if gone:
            return (f"{detail}; {len(gone)} nodes are not on the server ({gone[0][1]}), e.g. {gone[0][0]}: no data "
                    f"until they return")
        return detail

    async def _say_alive(self, lost: asyncio.Event) -> None:
        """While the session lives (asyncua's watchdog reads the server's state every ``keepalive_s``; a
        failure sets ``lost``) and its subscription delivers, tell the router once a second that the subscribed
        values are current: a subscription reports changes only, and a value that does not change must not
        turn stale."""
        while not lost.is_set():
            if self._flowing:
                self.router.handle(OPCUA_ALIVE_TOPIC, b"{}", time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), ALIVE_EVERY_S)

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


async def _next_news(news: asyncio.Queue, stop: asyncio.Event, lost: asyncio.Event, timeout: float) -> str | None:
    """The next status the subscription reported, or None when stopped, lost or ``timeout`` passed first."""
    if not news.empty():
        return news.get_nowait()
    waiters = [asyncio.ensure_future(news.get()), asyncio.ensure_future(stop.wait()),
               asyncio.ensure_future(lost.wait())]
    done, _pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if waiters[0] in done and not waiters[0].cancelled():
        return waiters[0].result()
    return None


class _Monitor:
    """A session's subscription: one monitored item per bound node, the nodes missing on the server (with why),
    and the statuses the server reported for the subscription (``news``)."""

    def __init__(self, owner: OpcUaClient, client: Any) -> None:
        self.owner = owner
        self.client = client
        self.subscription: Any = None
        self.handler = _Handler(self)
        self.handles: dict[str, int] = {}  # node label -> its monitored item's server handle
        self.gone: dict[str, str] = {}  # node label -> why it is not monitored (a status name, "not found")
        self.news: asyncio.Queue[str] = asyncio.Queue()
        self.limits = (DEFAULT_PER_CALL, DEFAULT_PER_CALL)

    async def subscribe(self) -> None:
        """A new subscription with an item for every bound node; nodes the server lacks are counted errors."""
        from asyncua import ua

        s = self.owner.settings
        self.limits = await _operation_limits(self.client)
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = s.publishing_interval_ms
        params.RequestedLifetimeCount = 300
        params.RequestedMaxKeepAliveCount = max(1, int(s.keepalive_s * 1000 / s.publishing_interval_ms / 2))
        params.MaxNotificationsPerPublish = 0
        params.Priority = 0
        self.handles.clear()
        self.handler.plans.clear()
        self.news = asyncio.Queue()
        self.subscription = await self.client.create_subscription(params, self.handler)
        await self._monitor(list(self.owner._plans.values()))

    async def close(self) -> None:
        """Delete the subscription (the server may have done so already)."""
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            try:
                await subscription.delete()
            except Exception:  # already gone on the server: nothing to delete
                log.debug("deleting the ended OPC UA subscription failed", exc_info=True)

    async def remonitor(self) -> list[str]:
        """Monitor again the nodes that were missing; the labels that came back."""
        labels = list(self.gone)
        old = [self.handles.pop(label) for label in labels if label in self.handles]
        if old:
            try:
                await self.subscription.unsubscribe(old)
            except Exception:  # the server dropped them with their node
                log.debug("OPC UA: unsubscribing the items of deleted nodes failed", exc_info=True)
        await self._monitor([self.owner._plans[label] for label in labels])
        back = [label for label in labels if label not in self.gone]
        for label in back:
            log.info("OPC UA node %s is on the server again: monitored", label)
        return back

    async def find_gone(self, status: str) -> None:
        """The subscription reported ``status`` for a deleted node without naming it: read the monitored nodes'
        values (a read, never a write) and mark those the server no longer has."""
        labels = [label for label in self.handles if label not in self.gone]
        nodes = [self.handler.nodes[label] for label in labels]
        for chunk in _chunks(list(zip(labels, nodes, strict=True)), self.limits[1]):
            try:
                values = await self.client.read_attributes([node for _label, node in chunk])
            except Exception:  # the session is going: the reconnect subscribes afresh
                log.debug("OPC UA: reading the monitored nodes failed", exc_info=True)
                return
            for (label, _node), data_value in zip(chunk, values, strict=True):
                code = data_value.StatusCode
                if code is not None and code.name in NODE_GONE:
                    self.mark_gone(label, code.name, data_value)
        if not any(why == status for why in self.gone.values()):
            log.info("OPC UA subscription status %s, but every monitored node is still there", status)

    def mark_gone(self, label: str, status: str, data_value: Any = None) -> None:
        """The server no longer has this node: its signals show no data, the store's error names it, and it is
        looked for again every ``remonitor_s``."""
        from asyncua import ua

        if label in self.gone:
            return
        self.gone[label] = status
        plan = self.owner._plans[label]
        if data_value is not None:  # a read's answer, not a data change: hand the Bad status on as one
            self.owner.take(plan, None, ua.DataValue(StatusCode=data_value.StatusCode))
        log.warning("OPC UA node %s is not on the server any more (%s)", label, status)
        self.owner.store.count_error(f"opcua:{label}", f"the server no longer has the node ({status}): no data "
                                                       f"until it returns", time.time())
        if self.owner.status().subscribed:  # said at once, not at the next look for missing nodes
            self.owner._set_state(ConnectionState.CONNECTED, self.owner._connected_detail(self))

    async def _resolve(self, plans: list[_NodePlan]) -> list[tuple[_NodePlan, Any]]:
        """The nodes of these plans: NodeIds as they are, browse paths translated (within the server's limit)."""
        owner, now = self.owner, time.time()
        found = [(plan, self.client.get_node(plan.label)) for plan in plans if plan.label not in owner._by_browse]
        by_path = [plan for plan in plans if plan.label in owner._by_browse]
        for chunk in _chunks(by_path, self.limits[0]):  # one request per chunk, within the server's limit
            targets = await self.client.nodes.objects.get_children_by_path(
                [list(owner._by_browse[plan.label]) for plan in chunk], raise_on_partial_error=False)
            for plan, nodes in zip(chunk, targets, strict=True):
                if nodes:
                    found.append((plan, nodes[0]))
                elif plan.label not in self.gone:
                    self.gone[plan.label] = "not found"
                    owner.store.count_error(f"opcua:{plan.label}", "browse path not found on the server", now)
        return found

    async def _monitor(self, plans: list[_NodePlan]) -> None:
        """Create the monitored items of these plans, in chunks within the server's MaxMonitoredItemsPerCall."""
        from asyncua import ua

        s = self.owner.settings
        found = await self._resolve(plans)
        if not found:
            return
        mfilter = None
        if s.deadband > 0:
            mfilter = ua.DataChangeFilter()
            mfilter.Trigger = ua.DataChangeTrigger.StatusValue
            mfilter.DeadbandType = ua.DeadbandType.Absolute
            mfilter.DeadbandValue = s.deadband
        requests = [self.subscription._make_monitored_item_request(  # asyncua's own request builder
            node, ua.AttributeIds.Value, mfilter, s.queue_size, ua.MonitoringMode.Reporting, s.sampling_interval_ms)
            for _plan, node in found]
        for (plan, node), request in zip(found, requests, strict=True):  # before the answer: a value may come
            self.handler.plans[request.RequestedParameters.ClientHandle] = plan
            self.handler.nodes[plan.label] = node
        results: list[Any] = []
        for chunk in _chunks(requests, self.limits[1]):  # real servers cap the items per call (often 500-1000)
            results += await self.subscription.create_monitored_items(chunk)
        now = time.time()
        for (plan, _node), request, result in zip(found, requests, results, strict=True):
            if not isinstance(result, ua.StatusCode):
                self.handles[plan.label] = result
                self.gone.pop(plan.label, None)
                continue
            self.handler.plans.pop(request.RequestedParameters.ClientHandle, None)
            if plan.label in self.gone:
                continue  # still missing: said when it went
            if result.name in NODE_GONE:
                self.gone[plan.label] = result.name
            self.owner.store.count_error(f"opcua:{plan.label}", f"the server refused to monitor the node: "
                                                                f"{result.name}", now)


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


def _policy_class(name: str) -> Any:
    """asyncua's class for a policy as the layout names it (``Aes128_Sha256_RsaOaep``: the standard's spelling)."""
    from asyncua.crypto import security_policies

    policy = getattr(security_policies, f"SecurityPolicy{name.replace('_', '')}", None)
    if policy is None:
        raise SettingsError(f"security policy {name!r} is not supported; use one of {', '.join(SECURITY_POLICIES)}")
    return policy


def _offered(endpoint: Any) -> str:
    return f"{endpoint.SecurityPolicyUri.rsplit('#', 1)[-1]} {endpoint.SecurityMode.name}"


def _server_name(endpoint: Any) -> str:
    app = endpoint.Server
    name = app.ApplicationName.Text if app.ApplicationName is not None else None
    return f"{name!r} ({app.ApplicationUri})" if name else (app.ApplicationUri or "(unnamed)")


async def _matching_endpoint(client: Any, settings: OpcUaSettings, policy: Any) -> Any:
    """The server's endpoint with the layout's policy and mode, read over a channel without security (as OPC UA
    discovery works); :class:`UnsupportedSecurityError` listing what it offers."""
    from asyncua import ua

    mode = getattr(ua.MessageSecurityMode, settings.security_mode if settings.secured else "None_")
    endpoints = await client.connect_and_get_server_endpoints()
    for endpoint in endpoints:
        if endpoint.SecurityPolicyUri == policy.URI and endpoint.SecurityMode == mode:
            return endpoint
    offers = sorted({_offered(e) for e in endpoints}) or ["nothing"]
    wanted = f"{settings.security_policy} {settings.security_mode}" if settings.secured else "None (no security)"
    raise UnsupportedSecurityError(f"the server at {settings.endpoint} offers no endpoint with security {wanted}; it "
                              f"offers: {', '.join(offers)}. Set security_policy and security_mode in the layout's "
                              f"opcua section to one of those")


async def make_client(settings: OpcUaSettings, password: str | None) -> Any:
    """An asyncua client for these settings, not yet connected: security policy and mode with the client
    certificate (the layout's, or this user's own, made on first use), the user and password. One place for
    the subscriber and the editor's browser.

    It asks the server for its endpoints first (a channel without security, as OPC UA discovery works): the
    layout's policy and mode must be offered (:class:`~viewer.telemetry.opcua_security.UnsupportedSecurityError`),
    and with security the server's certificate must be trusted
    (:class:`~viewer.telemetry.opcua_security.UntrustedServerCertificateError`, saved in ``rejected/``). The trusted
    certificate is kept as ``client.twin_server_certificate``. :class:`SettingsError` for a user without a
    password and unusable certificate files. :func:`describe_opcua_failure` says any of these in a sentence.
    """
    from asyncua import Client, ua

    s = settings
    if s.username is not None and password is None:
        raise SettingsError(_no_password(s))
    client = Client(s.endpoint, timeout=s.timeout_s, watchdog_intervall=s.keepalive_s)
    client.name = client.description = "twin-viewer"
    client.twin_server_certificate = None
    policy = _policy_class(s.security_policy if s.secured else "None")
    endpoint = await _matching_endpoint(client, s, policy)
    if s.secured:
        own = own_certificate_for(s)
        if own.info.application_uri:  # what the server checks against the certificate's URI
            client.application_uri = own.info.application_uri
        server_der = first_certificate(endpoint.ServerCertificate or b"")
        client.twin_server_certificate = check_server_certificate(
            server_der, endpoint=s.endpoint, server=_server_name(endpoint), folders=s.folders(),
            pinned=s.server_certificate)
        await client.set_security(policy, str(own.certificate), str(own.private_key), server_certificate=server_der,
                                  mode=getattr(ua.MessageSecurityMode, s.security_mode))
    if s.username is not None:
        client.set_user(s.username)
        if password is not None:
            client.set_password(password)
    return client


class _Handler:
    """asyncua's subscription handler: hands each data change to the client, the subscription's statuses to
    the session (as news)."""

    def __init__(self, monitor: _Monitor) -> None:
        self.monitor = monitor
        self.plans: dict[int, _NodePlan] = {}  # the monitored item's client handle -> plan
        self.nodes: dict[str, Any] = {}  # node label -> asyncua Node

    def datachange_notification(self, _node: Any, value: Any, data: Any) -> None:
        item = data.monitored_item
        plan = self.plans.get(item.ClientHandle)
        if plan is None:
            return
        self.monitor.owner.take(plan, value, item.Value)
        status = item.Value.StatusCode
        if status is not None and status.name in NODE_GONE:  # the standard's way to say a node was deleted
            self.monitor.mark_gone(plan.label, status.name)

    def status_change_notification(self, status: Any) -> None:
        """The server ended the subscription (its lifetime ran out, it moved, the server shut down), or (asyncua)
        a node was deleted: the session acts on it."""
        code = getattr(status, "Status", status)
        self.monitor.news.put_nowait(getattr(code, "name", str(code)))


_USER_REFUSED = ("BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected",
                 "BadUserSignatureInvalid")
_CERTIFICATE_REFUSED = ("BadSecurityChecksFailed", "BadCertificateUntrusted", "BadCertificateInvalid",
                        "BadCertificateUseNotAllowed", "BadCertificateUriInvalid", "BadCertificateTimeInvalid",
                        "BadCertificateRevoked", "BadCertificateIssuerRevoked", "BadCertificateChainIncomplete",
                        "BadCertificateHostNameInvalid", "BadNoValidCertificates")


def describe_opcua_failure(exc: BaseException, settings: OpcUaSettings) -> str:
    """A failure to connect or a lost session as a sentence for the status bar: what happened, what to do."""
    from asyncua import ua

    s = settings
    if isinstance(exc, OpcUaSecurityError | SettingsError):
        return str(exc)
    if isinstance(exc, ua.UaStatusCodeError):
        name = ua.StatusCode(exc.code).name if hasattr(exc, "code") else type(exc).__name__
        if name in _USER_REFUSED:
            return _user_refused(name, s)
        if name in _CERTIFICATE_REFUSED:
            return _certificate_refused(name, s)
        if name == "BadSecurityPolicyRejected":
            return f"the server at {s.endpoint} refused security {s.security_policy} {s.security_mode} ({name})"
        return f"the server answered {name}"
    if isinstance(exc, ua.UaError) and "certificate mismatch" in str(exc).lower():
        return (f"the server at {s.endpoint} opened the session with another certificate than its endpoint "
                f"offers: not connected (something may be posing as the server)")
    if isinstance(exc, ConnectionRefusedError):
        return (f"connection refused by {s.endpoint}: no OPC UA server listens there; check that the server runs "
                f"and the endpoint (the layout's opcua section, or --opcua)")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return (f"no answer from {s.endpoint} within {s.timeout_s:g} s: check the endpoint, the network and the "
                f"firewall")
    if isinstance(exc, socket.gaierror):
        return f"cannot find the host {s.host!r} of {s.endpoint}: check the endpoint's host name"
    if isinstance(exc, OSError):
        return f"cannot reach {s.endpoint}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _user_refused(name: str, s: OpcUaSettings) -> str:
    if s.username is None:
        return (f"the server at {s.endpoint} refused anonymous access ({name}): give a username and password_env "
                f"in the layout's opcua section")
    source = (f"${s.password_env}" if s.password_env else
              f"the keyring entry {s.password_keyring!r}" if s.password_keyring else "the password")
    return (f"the server at {s.endpoint} refused user {s.username!r} ({name}): wrong user name or password; check "
            f"the user name in the layout and the password in {source}")


def _certificate_refused(name: str, s: OpcUaSettings) -> str:
    own = s.certificate or s.folders().own_certificate
    try:
        info = read_certificate(own)
        which = f"{own} (SHA-1 thumbprint {info.thumbprint}, application URI {info.application_uri})"
    except OpcUaSecurityError:
        which = str(own)
    return (f"the server at {s.endpoint} does not trust this viewer's certificate ({name}): trust {which} on the "
            f"server (copy it into the server's trusted certificates, e.g. pki/trusted/certs/, or accept it in "
            f"its certificate list); the viewer connects at its next attempt")
