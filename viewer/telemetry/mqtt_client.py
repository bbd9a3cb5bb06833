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
  named by ``password_keyring``, and is never logged.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from viewer.telemetry.router import TelemetryRouter

log = logging.getLogger(__name__)


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
    client_id: str = ""
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


@dataclass
class ConnectionGap:
    """A time without a connection."""

    start: float
    end: float | None = None
    reason: str = ""


@dataclass
class ConnectionStatus:
    """A snapshot for the status bar."""

    state: ConnectionState
    detail: str
    gaps: list[ConnectionGap] = field(default_factory=list)
    connects: int = 0


def _reason_text(reason_code: Any) -> str:
    name = getattr(reason_code, "getName", None)
    return name() if callable(name) else str(reason_code)


REFUSAL_WORDS = ("password", "authori", "banned", "identifier")


class TelemetryClient:
    """Subscribes to the bindings' topics and routes every message into the store."""

    def __init__(self, settings: MqttSettings, router: TelemetryRouter) -> None:
        self.settings = settings
        self.router = router
        self._lock = threading.Lock()
        self._state = ConnectionState.DISCONNECTED
        self._detail = "not started"
        self._gaps: list[ConnectionGap] = []
        self._connects = 0
        self._client: paho.Client | None = None

    # --- control (GUI thread) ----------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background; returns at once. Raises :class:`SettingsError` for bad settings."""
        s = self.settings
        password = s.password()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id or "",
                             clean_session=s.clean_session if s.client_id else True)
        paho_log = logging.getLogger("paho")
        if paho_log.isEnabledFor(logging.DEBUG):
            # paho logs a line per message when a logger is set: only worth it when debugging.
            client.enable_logger(paho_log)
        if s.username is not None:
            client.username_pw_set(s.username, password)
        if s.tls:
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
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        self._set_state(ConnectionState.CONNECTING, f"connecting to {s.describe()}")
        self._open_gap(time.time(), "not connected yet")
        client.connect_async(s.host, s.port, s.keepalive)
        client.loop_start()

    def stop(self, wait: bool = True) -> None:
        """Disconnect and stop the network thread.

        paho may be sleeping in its reconnect back-off for up to a second; with ``wait=False``
        (the GUI) the thread is joined in the background so the window never freezes.
        """
        client, self._client = self._client, None
        if client is None:
            return
        self._set_state(ConnectionState.DISCONNECTED, "stopped")
        client.disconnect()
        if wait:
            client.loop_stop()
        else:
            threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True).start()

    def status(self) -> ConnectionStatus:
        """Connection state, detail and gaps (copy)."""
        with self._lock:
            return ConnectionStatus(self._state, self._detail,
                                    [ConnectionGap(g.start, g.end, g.reason) for g in self._gaps], self._connects)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish to the plant: refused unless the layout enabled it (read-only by default)."""
        if not self.settings.allow_publish:
            raise PermissionError("this layout is read-only toward the plant (mqtt.allow_publish is not set)")
        if self._client is None:
            raise RuntimeError("not connected")
        self._client.publish(topic, payload)

    # --- paho's thread ---------------------------------------------------------------------
    def _set_state(self, state: ConnectionState, detail: str) -> None:
        with self._lock:
            self._state, self._detail = state, detail

    def _open_gap(self, when: float, reason: str) -> None:
        with self._lock:
            if not self._gaps or self._gaps[-1].end is not None:
                self._gaps.append(ConnectionGap(when, None, reason))
                del self._gaps[:-100]

    def _close_gap(self, when: float) -> None:
        with self._lock:
            if self._gaps and self._gaps[-1].end is None:
                self._gaps[-1].end = when

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any = None) -> None:
        if getattr(reason_code, "is_failure", False):
            text = _reason_text(reason_code)
            refused = any(w in text.lower() for w in REFUSAL_WORDS)
            self._set_state(ConnectionState.REFUSED if refused else ConnectionState.CONNECTING,
                            f"broker refused the connection: {text}")
            log.warning("MQTT connection to %s refused: %s", self.settings.describe(), text)
            return
        with self._lock:
            self._connects += 1
        self._close_gap(time.time())
        subscriptions = self.router.table.subscriptions()
        if subscriptions:
            client.subscribe(subscriptions)
        self._set_state(ConnectionState.CONNECTED, f"connected to {self.settings.describe()}")
        log.info("connected to %s, %d subscriptions", self.settings.describe(), len(subscriptions))

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        with self._lock:
            refused = self._state is ConnectionState.REFUSED
        if not refused:
            self._set_state(ConnectionState.CONNECTING, f"cannot reach {self.settings.describe()}; retrying")

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                       _properties: Any = None) -> None:
        text = _reason_text(reason_code)
        self._open_gap(time.time(), text)
        with self._lock:
            refused = self._state is ConnectionState.REFUSED
        if self._client is not None and not refused:
            self._set_state(ConnectionState.CONNECTING, f"connection lost ({text}); reconnecting")

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.router.handle(message.topic, message.payload, time.time())


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
