"""The MQTT client: paho-mqtt 2.x on its own network thread, feeding the store.

- **Read-only by default.** There is no publish method unless the layout sets
  ``mqtt.allow_publish``; the viewer only subscribes.
- **Never blocks the GUI.** ``connect_async`` + ``loop_start``: connecting,
  reconnecting and reading happen on paho's thread; ``on_message`` only decodes
  into the store (see :mod:`viewer.telemetry.router`).
- **Reconnects** with capped exponential backoff (paho's ``reconnect_delay_set``)
  and resubscribes on every connect; each disconnection is kept as a gap
  (start, end, reason) so the UI can show it.
- **Secrets** never come from the layout: a password is read from the
  environment variable named by ``password_env`` or from the OS keyring entry
  named by ``password_keyring``, and is never logged. A password without TLS
  travels in clear: :meth:`MqttSettings.warnings` says so (status bar, log, ``check``).
- **One id per instance** (:mod:`viewer.telemetry.client_id`): two viewers on one
  layout never evict each other; a takeover that still happens is named as such.
- **Failures named** (:mod:`viewer.telemetry.connect_errors`): which TLS check
  failed, refused port, unknown host.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from viewer.telemetry.client_id import ClientId, resolve_client_id
from viewer.telemetry.connect_errors import FailureFacts, describe_failure, is_tls_failure
from viewer.telemetry.router import MQTT_ALIVE_TOPIC, TelemetryRouter

log = logging.getLogger(__name__)


BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"  # mosquitto, cumulative, every sys_interval


class ConnectionState(Enum):
    """What the status bar shows."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REFUSED = "refused"  # the broker said no (credentials, authorisation): retrying will not help by itself


class SettingsError(ValueError):
    """Connection settings that cannot work (missing password variable, unreadable certificate...)."""


@dataclass
class MqttSettings:
    """How to reach the broker (from the layout's ``mqtt`` section, overridable on the command line)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""  # a prefix, a template or (client_id_exact) the exact id: see viewer.telemetry.client_id
    client_id_exact: bool = False
    role: str = "viewer"  # "viewer" or "recorder": part of the derived client id
    clean_session: bool = True
    keepalive: int = 30
    username: str | None = None
    password_env: str | None = None
    password_keyring: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    tls: bool = False
    allow_publish: bool = False
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    broker_stats: bool = True  # read the broker's own drop counter ($SYS), where it publishes one

    @classmethod
    def from_layout(cls, mqtt: dict[str, Any] | None, base_dir: Path | None = None) -> MqttSettings:
        """Settings from a layout's ``mqtt`` object; certificate paths are relative to the layout."""
        mqtt = mqtt or {}
        tls = mqtt.get("tls")

        def path(key: str) -> Path | None:
            if not tls or key not in tls:
                return None
            p = Path(tls[key])
            return p if p.is_absolute() or base_dir is None else base_dir / p

        return cls(
            host=mqtt.get("host", "127.0.0.1"),
            port=int(mqtt.get("port", 8883 if tls else 1883)),
            client_id=mqtt.get("client_id", ""),
            client_id_exact=bool(mqtt.get("client_id_exact", False)),
            clean_session=bool(mqtt.get("clean_session", True)),
            keepalive=int(mqtt.get("keepalive", 30)),
            username=mqtt.get("username"),
            password_env=mqtt.get("password_env"),
            password_keyring=mqtt.get("password_keyring"),
            ca_file=path("ca_file"),
            cert_file=path("cert_file"),
            key_file=path("key_file"),
            tls_insecure=bool(tls.get("insecure", False)) if tls else False,
            tls=tls is not None,
            allow_publish=bool(mqtt.get("allow_publish", False)),
            broker_stats=bool(mqtt.get("broker_stats", True)),
        )

    def password(self) -> str | None:
        """The password from the environment or the OS keyring; :class:`SettingsError` when it is named but absent."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise SettingsError(f"the layout asks for the password in ${self.password_env}, which is not set")
            return value
        if self.password_keyring:
            try:
                import keyring
            except ImportError:
                raise SettingsError("the layout asks for a keyring password but the 'keyring' package "
                                    "is not installed") from None
            value = keyring.get_password(self.password_keyring, self.username or "")
            if value is None:
                raise SettingsError(f"no keyring entry {self.password_keyring!r} for user {self.username!r}")
            return value
        return None

    def describe(self) -> str:
        """host:port with the transport, for the status bar (never the password)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def warnings(self) -> list[str]:
        """What is unsafe in these settings (said in the status bar, the log and ``twin-viewer check``)."""
        out = []
        if self.username is not None and (self.password_env or self.password_keyring) and not self.tls:
            out.append(f"the password of MQTT user {self.username!r} is sent unencrypted: the broker "
                       f"connection has no TLS ({self.describe()})")
        if self.tls and self.tls_insecure:
            out.append(f"TLS does not check the broker's host name (tls.insecure) ({self.describe()})")
        return out


@dataclass
class ConnectionGap:
    """A time without a connection: noticed at ``start``, back at ``end``.

    ``quiet_since`` is when the last message arrived before it (a half-open link goes quiet up to
    1.5 keep-alives before it is noticed); ``number`` counts gaps from 1 since the client started.
    """

    start: float
    end: float | None = None
    reason: str = ""
    number: int = 0
    quiet_since: float | None = None


@dataclass
class ConnectionStatus:
    """A snapshot for the status bar."""

    state: ConnectionState
    detail: str
    gaps: list[ConnectionGap] = field(default_factory=list)
    connects: int = 0
    client_id: str = ""
    warnings: list[str] = field(default_factory=list)
    gaps_total: int = 0  # every gap since the start; ``gaps`` keeps the newest MAX_GAPS
    subscribed: bool = False  # the broker acknowledged this connection's subscriptions
    # messages the broker dropped (queues full, all its clients) since this client first connected; None:
    # the broker does not publish the count (no $SYS, or not to us)
    broker_dropped: int | None = None


def _reason_text(reason_code: Any) -> str:
    name = getattr(reason_code, "getName", None)
    return name() if callable(name) else str(reason_code)


REFUSAL_WORDS = ("password", "authori", "banned", "identifier")
ALIVE_EVERY_S = 1.0  # how often a connected client with Sparkplug bindings says so (see _say_alive)
MAX_GAPS = 1000  # kept in memory for the status bar; the recorder writes every one
TAKEOVER_S = 10.0  # connections the broker closes sooner than this, twice in a row: another client's id


def paho_keepalive(keepalive: int) -> int:
    """The keep-alive paho is given, so a half-open link is noticed within 1.5 x the layout's ``keepalive``.

    paho pings after one keep-alive of silence and gives up one keep-alive after an unanswered ping, and
    checks once a second: up to 2k + 2 s. Pinging at k' = (1.5k - 2) / 2 keeps that within 1.5k (from
    3 s up; a ping is 2 bytes).
    """
    return max(1, (3 * keepalive - 4) // 4)


class _PahoLog:
    """Where paho logs: its errors are kept (the socket error behind a lost connection), the rest passed on.

    paho reports a lost connection only as "Unspecified error"; the exception it caught (a TLS alert from
    the broker, a reset) reaches only its log, as an argument of the log call.
    """

    def __init__(self, forward: logging.Logger) -> None:
        self.forward = forward
        self.last_error: tuple[float, BaseException | str] | None = None

    def log(self, level: int, fmt: str, *args: Any) -> None:
        if level >= logging.ERROR:
            exc = next((a for a in args if isinstance(a, BaseException)), None)
            self.last_error = (time.time(), exc if exc is not None else fmt % args)
        if self.forward.isEnabledFor(logging.DEBUG):  # all of paho's chatter, only when debugging it
            self.forward.log(level, fmt, *args)

    def recent_error(self, within_s: float = 5.0) -> BaseException | None:
        if self.last_error is None or time.time() - self.last_error[0] > within_s:
            return None
        error = self.last_error[1]
        return error if isinstance(error, BaseException) else None


class ConnectionLog:
    """One connection's state, detail and gaps, kept thread-safe: the record the MQTT and the OPC UA client
    share (the network thread writes it, the window reads :meth:`_status`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = ConnectionState.DISCONNECTED
        self._detail = "not started"
        self._gaps: list[ConnectionGap] = []
        self._gaps_total = 0
        self._connects = 0
        self._subscribed = False

    def _status(self, client_id: str, warnings: list[str], broker_dropped: int | None) -> ConnectionStatus:
        with self._lock:
            gaps = [ConnectionGap(g.start, g.end, g.reason, g.number, g.quiet_since) for g in self._gaps]
            return ConnectionStatus(self._state, self._detail, gaps, self._connects, client_id, warnings,
                                    self._gaps_total, self._subscribed and self._state is ConnectionState.CONNECTED,
                                    broker_dropped)

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        with self._lock:
            self._state, self._detail = state, detail

    def _open_gap(self, when: float, reason: str, quiet_since: float | None = None) -> None:
        with self._lock:
            if not self._gaps or self._gaps[-1].end is not None:
                self._gaps_total += 1
                self._gaps.append(ConnectionGap(when, None, reason, self._gaps_total, quiet_since))
                del self._gaps[:-MAX_GAPS]

    def _close_gap(self, when: float) -> None:
        with self._lock:
            if self._gaps and self._gaps[-1].end is None:
                self._gaps[-1].end = when


class TelemetryClient(ConnectionLog):
    """Subscribes to the bindings' topics and routes every message into the store."""

    def __init__(self, settings: MqttSettings, router: TelemetryRouter) -> None:
        super().__init__()
        self.settings = settings
        self.router = router
        self._client: paho.Client | None = None
        self._id: ClientId | None = None
        self._connected_at: float | None = None  # of the connection that is up now
        self._last_message = 0.0
        self._short_losses = 0  # connections closed by the broker soon after they opened, in a row
        self._warned_takeover = False
        self._paho_log = _PahoLog(logging.getLogger("paho"))
        self._sys_mid: int | None = None
        self._broker_last: int | None = None  # the broker's counter at the last reading
        self._broker_dropped: int | None = None
        self._alive_stop: threading.Event | None = None

    @property
    def client_id(self) -> str:
        """The id this instance connects with ("" before ``start``)."""
        return self._id.value if self._id is not None else ""

    # --- control (GUI thread) ----------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background; returns at once. Raises :class:`SettingsError` for bad settings."""
        s = self.settings
        password = s.password()
        self._id = resolve_client_id(s.client_id, role=s.role, persistent=not s.clean_session,
                                     exact=s.client_id_exact)
        # A persistent session without a stable id would leave an orphan session on the broker per start.
        clean = s.clean_session or self._id.how == "unique"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self._id.value, clean_session=clean)
        client.enable_logger(self._paho_log)  # type: ignore[arg-type] - duck-typed: paho only calls .log()
        if s.username is not None:
            client.username_pw_set(s.username, password)
        if s.tls:
            self._set_up_tls(client)
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        self._client = client
        for warning in s.warnings():
            log.warning("%s", warning)
        log.info("MQTT client id %s (%s, %s session)", self._id.value, self._id.how,
                 "clean" if clean else "persistent")
        self._set_state(ConnectionState.CONNECTING, f"connecting to {s.describe()}")
        self._open_gap(time.time(), "not connected yet")
        client.connect_async(s.host, s.port, paho_keepalive(s.keepalive))
        client.loop_start()
        if any(b.encoding == "sparkplug" for b in self.router.table.bindings):
            self._alive_stop = threading.Event()
            threading.Thread(target=self._say_alive, args=(self._alive_stop,), name="mqtt-alive",
                             daemon=True).start()

    def _say_alive(self, stop: threading.Event) -> None:
        """Once a second while connected and subscribed, tell the router so (MQTT_ALIVE_TOPIC): Sparkplug
        nodes report by exception, and an online node's unchanged metric must not turn stale."""
        while not stop.wait(ALIVE_EVERY_S):
            with self._lock:
                alive = self._subscribed and self._state is ConnectionState.CONNECTED
            if alive:
                self.router.handle(MQTT_ALIVE_TOPIC, b"{}", time.time())

    def _set_up_tls(self, client: paho.Client) -> None:
        s = self.settings
        for label, p in (("CA", s.ca_file), ("certificate", s.cert_file), ("key", s.key_file)):
            if p is not None and not p.is_file():
                raise SettingsError(f"TLS {label} file not found: {p}")
        try:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None,
                           certfile=str(s.cert_file) if s.cert_file else None,
                           keyfile=str(s.key_file) if s.key_file else None,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise SettingsError(f"TLS settings are not usable: {exc}") from None
        if s.tls_insecure:
            client.tls_insecure_set(True)

    def stop(self, wait: bool = True) -> None:
        """Disconnect and stop the network thread.

        paho may be sleeping in its reconnect back-off for up to a second; with ``wait=False``
        (the GUI) the thread is joined in the background so the window never freezes.
        """
        client, self._client = self._client, None
        if client is None:
            return
        if self._alive_stop is not None:
            self._alive_stop.set()
        self._set_state(ConnectionState.DISCONNECTED, "stopped")
        client.disconnect()
        if wait:
            client.loop_stop()
        else:
            threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True).start()
        if self._id is not None:
            self._id.release()

    def status(self) -> ConnectionStatus:
        """Connection state, detail and gaps (copy)."""
        return self._status(self.client_id, self.settings.warnings(), self._broker_dropped)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish to the plant: refused unless the layout enabled it (read-only by default)."""
        if not self.settings.allow_publish:
            raise PermissionError("this layout is read-only toward the plant (mqtt.allow_publish is not set)")
        if self._client is None:
            raise RuntimeError("not connected")
        self._client.publish(topic, payload)

    # --- paho's thread ---------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any = None) -> None:
        if getattr(reason_code, "is_failure", False):
            text = _reason_text(reason_code)
            refused = any(w in text.lower() for w in REFUSAL_WORDS)
            self._set_state(ConnectionState.REFUSED if refused else ConnectionState.CONNECTING,
                            f"broker refused the connection: {text}")
            log.warning("MQTT connection to %s refused: %s", self.settings.describe(), text)
            return
        now = time.time()
        with self._lock:
            self._connects += 1
        self._connected_at = now
        self._close_gap(now)
        subscriptions = self.router.subscriptions()
        self._subscribed = not subscriptions
        if subscriptions:
            client.subscribe(subscriptions)
        if self.settings.broker_stats:  # its own request: a broker that refuses $SYS refuses only this
            self._sys_mid = client.subscribe(BROKER_DROPPED_TOPIC, 0)[1]
            self._broker_last = None  # a new connection (maybe a restarted broker): a new baseline
        self._set_state(ConnectionState.CONNECTED, f"connected to {self.settings.describe()}")
        log.info("connected to %s as %s, %d subscriptions", self.settings.describe(), self.client_id,
                 len(subscriptions))

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int, reason_codes: Any,
                      _properties: Any = None) -> None:
        failed = [c for c in reason_codes if getattr(c, "is_failure", False)]
        if _mid == self._sys_mid:
            if failed:
                log.info("MQTT: the broker does not let us read its drop counter (%s)", BROKER_DROPPED_TOPIC)
            return
        if failed:
            log.warning("MQTT: the broker refused %d of the subscriptions (%s)", len(failed), _reason_text(failed[0]))
        self._subscribed = True

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # Called from inside paho's ``except OSError`` block: the exception being handled is the cause.
        detail = describe_failure(sys.exc_info()[1], self._facts())
        self._short_losses = 0
        with self._lock:
            refused = self._state is ConnectionState.REFUSED
            changed = detail != self._detail
        if not refused:
            self._set_state(ConnectionState.CONNECTING, detail)
            if changed:
                (log.error if is_tls_failure(detail) else log.warning)("MQTT: %s", detail)

    def _facts(self) -> FailureFacts:
        s = self.settings
        return FailureFacts(s.describe(), s.host, s.port, s.tls, s.ca_file)

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                       _properties: Any = None) -> None:
        now = time.time()
        self._subscribed = False
        connected_at, self._connected_at = self._connected_at, None
        if self._client is None:  # our own stop: not a gap in the plant's data
            return
        text = self._disconnect_reason(_reason_text(reason_code), connected_at, now)
        quiet = self._last_message if connected_at is not None and self._last_message >= connected_at \
            else connected_at
        self._open_gap(now, text, quiet)
        log.warning("MQTT connection to %s lost: %s", self.settings.describe(), text)
        with self._lock:
            refused = self._state is ConnectionState.REFUSED
        if not refused:
            # Never up (closed before CONNACK): the reason is the failure to connect, not a lost connection.
            self._set_state(ConnectionState.CONNECTING,
                            text if connected_at is None else f"connection lost ({text}); reconnecting")

    def _disconnect_reason(self, text: str, connected_at: float | None, now: float) -> str:
        """paho's reason, with what it means here: a keep-alive timeout, a takeover, a port that wants TLS."""
        if text == "Keep alive timeout":
            self._short_losses = 0
            return f"no answer to the keep-alive ping: the link went quiet (half-open?; keep-alive " \
                   f"{self.settings.keepalive} s)"
        if text != "Unspecified error":  # a reason the broker named
            self._short_losses = 0
            return text
        cause = self._paho_log.recent_error(within_s=2.0)
        if connected_at is None:  # closed before the broker answered CONNECT
            if cause is not None and self.settings.tls:  # e.g. a TLS 1.3 alert: no client certificate
                return describe_failure(cause, self._facts())
            return ("the broker closed the connection before answering"
                    + ("; does this port expect TLS (mqtts)?" if not self.settings.tls else ""))
        if cause is not None:  # a socket error (reset, timeout): the network, not another client
            self._short_losses = 0
            return f"the connection failed: {cause}"
        # An orderly close by the broker soon after connecting, again and again: what a takeover looks like.
        self._short_losses = self._short_losses + 1 if now - connected_at < TAKEOVER_S else 0
        if self._short_losses >= 2:
            if not self._warned_takeover:
                self._warned_takeover = True
                log.error("MQTT session taken over: another client connects with the id %r", self.client_id)
            return (f"session taken over: another client connects with this client id ({self.client_id!r}); "
                    "give each viewer and recorder its own id")
        return "the broker or the network closed the connection"

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        received = time.time()
        self._last_message = received
        if message.topic == BROKER_DROPPED_TOPIC:
            self._take_broker_dropped(message.payload)
            return
        self.router.handle(message.topic, message.payload, received)

    def _take_broker_dropped(self, payload: bytes) -> None:
        """The broker's cumulative drop counter: what it grew by since we connected is ours to report."""
        try:
            value = int(payload.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return
        with self._lock:
            if self._broker_dropped is None:
                self._broker_dropped = 0
            if self._broker_last is not None and value >= self._broker_last:
                self._broker_dropped += value - self._broker_last
            self._broker_last = value


def settings_for(layout: Any, broker: str | None, base_dir: Any = None) -> MqttSettings | None:
    """Connection settings: the layout's ``mqtt`` section, with ``--broker HOST:PORT`` overriding the address.

    ``None`` when the layout names no broker and none was given (telemetry stays off).
    """
    if layout.mqtt is None and broker is None:
        return None
    settings = MqttSettings.from_layout(layout.mqtt, base_dir)
    if broker:
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"--broker must be HOST:PORT, got {broker!r}")
        settings.host, settings.port = host, int(port)
    return settings
