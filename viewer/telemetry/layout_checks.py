"""What ``twin-viewer check`` says about a layout's telemetry: settings that are unsafe or cannot work."""

from __future__ import annotations

from viewer.model.checks import LayoutProblem
from viewer.model.layout import Layout
from viewer.telemetry.mqtt_client import MqttSettings


def check_telemetry(layout: Layout) -> list[LayoutProblem]:
    """Warnings about the layout's broker connection and bindings (never errors: the layout still loads)."""
    problems: list[LayoutProblem] = []
    if layout.mqtt is not None:
        settings = MqttSettings.from_layout(layout.mqtt)
        for warning in settings.warnings():
            code = "password in clear" if "unencrypted" in warning else "tls unchecked"
            problems.append(LayoutProblem("warning", code, (), warning))
        if settings.client_id_exact and settings.client_id:
            problems.append(LayoutProblem(
                "warning", "fixed client id", (),
                f"every viewer and recorder on this layout connects as {settings.client_id!r}: two of them "
                "evict each other from the broker (drop client_id_exact to give each its own id)"))
    if layout.opcua is not None:
        from viewer.telemetry.opcua_client import OpcUaSettings

        for warning in OpcUaSettings.from_layout(layout.opcua).warnings():
            code = "opcua password unencrypted" if "password" in warning else "opcua unsecured"
            problems.append(LayoutProblem("warning", code, (), warning))
    return problems
