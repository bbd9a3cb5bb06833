"""Decode an arrived message and put its values in the store (runs on the network thread).

One code path for live and replayed telemetry: whoever has a (topic, payload,
time) calls :meth:`TelemetryRouter.handle`. A payload that cannot be decoded is
counted per topic with its reason and never raised: the network loop must keep
running whatever a plant publishes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from viewer.telemetry.bindings import BindingTable, Route, extract_field
from viewer.telemetry.sparkplug import MetricUpdate, SparkplugProblem, SparkplugTracker
from viewer.telemetry.store import LatestValueStore, Sample

MAX_PAYLOAD_BYTES = 1 << 20  # telemetry is small; a larger payload is refused, not parsed


class DecodeError(ValueError):
    """A payload that does not carry what its binding expects."""


def _decode_number(payload: bytes) -> float:
    text = payload.decode("utf-8").strip()
    if text.lower() in ("true", "false"):
        return 1.0 if text.lower() == "true" else 0.0
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"not a finite number: {text[:40]!r}")
    return value


def decode_value(route: Route, payload: bytes, parsed: dict[int, Any]) -> Any:
    """The value a binding reads from a payload; :class:`DecodeError` with the reason otherwise.

    ``parsed`` caches the JSON document per payload so several bindings on one topic parse it once.
    """
    encoding = route.binding.encoding
    try:
        if encoding == "json":
            if 0 not in parsed:
                parsed[0] = json.loads(payload)
            return extract_field(parsed[0], route.binding.field_path)
        if encoding == "number":
            return _decode_number(payload)
        if encoding == "text":
            return payload.decode("utf-8")
    except DecodeError:
        raise
    except json.JSONDecodeError as exc:
        raise DecodeError(f"malformed JSON at column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise DecodeError("payload is not UTF-8 text") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
    except (KeyError, ValueError, TypeError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise DecodeError(str(reason)) from None
    raise DecodeError(f"encoding {encoding!r} is not decoded by this router")


class TelemetryRouter:
    """Routes (topic, payload) to bindings, decodes, and stores the values."""

    def __init__(self, table: BindingTable, store: LatestValueStore) -> None:
        self.table = table
        self.store = store
        # Sparkplug B payloads are stateful (aliases, sequence numbers per edge node): one tracker sees
        # every Sparkplug message exactly once, whatever number of bindings share its topic.
        self.sparkplug = SparkplugTracker()

    def handle(self, topic: str, payload: bytes, received: float) -> None:
        """Decode one message into the store. Never raises."""
        store = self.store
        try:
            routes = self.table.routes(topic)
            store.count_message(received, bound=bool(routes))
            if not routes:
                return
            if len(payload) > MAX_PAYLOAD_BYTES:
                store.count_error(topic, f"payload of {len(payload):,} bytes is over the {MAX_PAYLOAD_BYTES:,} limit",
                                  received)
                return
            parsed: dict[int, Any] = {}
            sparkplug_routes = []
            for route in routes:
                if route.component is None or route.component not in self.table.component_ids:
                    store.count_error(topic, f"no component {route.component!r} in the layout", received)
                    continue
                if route.binding.encoding == "sparkplug":
                    sparkplug_routes.append(route)
                    continue
                try:
                    value = decode_value(route, payload, parsed)
                except DecodeError as exc:
                    store.count_error(topic, str(exc), received)
                    continue
                store.put((route.component, route.binding.signal),
                          Sample(value, received, None, topic, route.binding.index))
            if sparkplug_routes:
                self._handle_sparkplug(sparkplug_routes, topic, payload, received)
        except Exception as exc:  # the network thread must survive any payload
            store.count_error(topic, f"internal error: {type(exc).__name__}: {exc}", received)

    def _handle_sparkplug(self, routes: list[Route], topic: str, payload: bytes, received: float) -> None:
        """Metrics go to the bindings that name them in ``field`` (or, without ``field``, under their own name)."""
        for event in self.sparkplug.handle(topic, payload, received):
            if isinstance(event, SparkplugProblem):
                self.store.count_error(topic, event.reason, received)
            elif isinstance(event, MetricUpdate) and not event.is_historical:
                for route in routes:
                    wanted = route.binding.field_path
                    if wanted is None or wanted == event.name:
                        signal = route.binding.signal if wanted else event.name
                        self.store.put((route.component or "", signal),
                                       Sample(event.value, received, event.timestamp, topic, route.binding.index))
