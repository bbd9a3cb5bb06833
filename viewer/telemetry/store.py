"""The latest-value store: the only meeting point of the network thread and the GUI thread.

The network thread ``put``s decoded samples; the GUI's frame timer ``drain``s
what changed since the last frame. Many messages for one signal within a frame
coalesce into one entry, so a burst costs the GUI one update per signal, not
one per message. Holding the lock is a few dictionary operations, never I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SignalKey = tuple[str, str]  # (component id, signal name)


@dataclass(slots=True)
class Sample:
    """One decoded value with its times (seconds since the epoch)."""

    value: Any
    received: float
    source_time: float | None = None
    topic: str = ""
    binding: int | None = None  # index of the layout binding that produced it (its rules apply)


@dataclass(slots=True)
class TopicErrors:
    """Decode failures of one topic: how many, and the latest reason."""

    count: int = 0
    last_reason: str = ""
    last_time: float = 0.0


@dataclass
class StoreStats:
    """A consistent snapshot of the counters."""

    messages: int
    decode_errors: int
    newest_received: float
    errors_by_topic: dict[str, TopicErrors] = field(default_factory=dict)
    unbound_messages: int = 0


class LatestValueStore:
    """Thread-safe latest values per (component, signal), with the previous sample for interpolation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[SignalKey, Sample] = {}
        self._previous: dict[SignalKey, Sample] = {}
        self._dirty: dict[SignalKey, Sample] = {}
        self._errors: dict[str, TopicErrors] = {}
        self._messages = 0
        self._decode_errors = 0
        self._unbound = 0
        self._newest = 0.0
        self._offline: dict[SignalKey, float] = {}  # signals whose source went offline, since when
        self._uncertain: dict[SignalKey, float] = {}  # signals whose source said "Uncertain" (OPC UA), since when
        self._alive: dict[SignalKey, float] = {}  # signals whose source said "still current" (OPC UA keep-alive)

    # --- network thread -------------------------------------------------------
    def mark_offline(self, keys: list[SignalKey], when: float) -> None:
        """These signals' source said it is offline (a Sparkplug DEATH): stale until a newer value."""
        with self._lock:
            for key in keys:
                self._offline[key] = when

    def mark_alive(self, keys: list[SignalKey], when: float) -> None:
        """These signals' source is alive and reports changes only (an OPC UA subscription): their latest
        values are still current at ``when``, so they do not go stale for not changing."""
        with self._lock:
            for key in keys:
                self._alive[key] = when

    def drain_alive(self) -> dict[SignalKey, float]:
        """Signals confirmed current since the last call, with the latest time."""
        with self._lock:
            alive, self._alive = self._alive, {}
        return alive

    def mark_uncertain(self, keys: list[SignalKey], when: float) -> None:
        """These signals' source sent a value of uncertain quality (OPC UA Uncertain...): the value is not
        taken; the signals show "uncertain" until a good value newer than ``when``."""
        with self._lock:
            for key in keys:
                self._uncertain[key] = when

    def put(self, key: SignalKey, sample: Sample) -> None:
        """Record a decoded sample."""
        with self._lock:
            previous = self._latest.get(key)
            if previous is not None:
                self._previous[key] = previous
            self._latest[key] = sample
            self._dirty[key] = sample

    def record(self, received: float, samples: list[tuple[SignalKey, Sample]]) -> None:
        """Count one bound message and store its decoded samples under a single lock (the hot path)."""
        with self._lock:
            self._messages += 1
            if received > self._newest:
                self._newest = received
            for key, sample in samples:
                previous = self._latest.get(key)
                if previous is not None:
                    self._previous[key] = previous
                self._latest[key] = sample
                self._dirty[key] = sample

    def count_message(self, received: float, *, bound: bool = True) -> None:
        """Count one arrived message (decoded or not)."""
        with self._lock:
            self._messages += 1
            if not bound:
                self._unbound += 1
            if received > self._newest:
                self._newest = received

    def count_error(self, topic: str, reason: str, when: float) -> None:
        """Count a payload that could not be decoded, per topic, keeping the latest reason."""
        with self._lock:
            self._decode_errors += 1
            errors = self._errors.get(topic)
            if errors is None:
                if len(self._errors) >= 10_000:  # a storm of distinct bad topics must not grow memory
                    self._errors.clear()
                errors = self._errors[topic] = TopicErrors()
            errors.count += 1
            errors.last_reason = reason
            errors.last_time = when

    # --- GUI thread -----------------------------------------------------------
    def drain(self) -> dict[SignalKey, Sample]:
        """Samples that changed since the last drain (the newest per signal)."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        return dirty

    def drain_offline(self) -> dict[SignalKey, float]:
        """Signals marked offline since the last call, with the time of the death."""
        with self._lock:
            offline, self._offline = self._offline, {}
        return offline

    def drain_uncertain(self) -> dict[SignalKey, float]:
        """Signals marked uncertain since the last call, with the time of the uncertain value."""
        with self._lock:
            uncertain, self._uncertain = self._uncertain, {}
        return uncertain

    def latest(self, key: SignalKey) -> Sample | None:
        """The newest sample of a signal."""
        with self._lock:
            return self._latest.get(key)

    def previous(self, key: SignalKey) -> Sample | None:
        """The sample before the newest (for interpolating motion between samples)."""
        with self._lock:
            return self._previous.get(key)

    def latest_all(self) -> dict[SignalKey, Sample]:
        """Every signal's newest sample (a copy)."""
        with self._lock:
            return dict(self._latest)

    def signals_of(self, component: str) -> dict[str, Sample]:
        """Every signal's newest sample of one component."""
        with self._lock:
            return {sig: s for (comp, sig), s in self._latest.items() if comp == component}

    def message_count(self) -> int:
        """Messages arrived so far (cheap: the frame loop reads it every frame)."""
        with self._lock:
            return self._messages

    def stats(self) -> StoreStats:
        """A snapshot of the counters."""
        with self._lock:
            return StoreStats(
                messages=self._messages,
                decode_errors=self._decode_errors,
                newest_received=self._newest,
                errors_by_topic={t: TopicErrors(e.count, e.last_reason, e.last_time) for t, e in self._errors.items()},
                unbound_messages=self._unbound,
            )

    def __getstate__(self) -> dict:
        """Everything but the lock (replay keyframes copy the store)."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every value and counter (a new layout or a new connection)."""
        with self._lock:
            self._latest.clear()
            self._previous.clear()
            self._dirty.clear()
            self._offline.clear()
            self._uncertain.clear()
            self._alive.clear()
            self._errors.clear()
            self._messages = self._decode_errors = self._unbound = 0
            self._newest = 0.0


class MessageRate:
    """Messages per second over the last ``window`` frames, from a running message count.

    The count belongs to one store; a new layout, a reload or a replay brings a new store whose count
    starts again at 0. A count that went down (or a clock that went back) starts the window afresh, so
    the rate is never computed across two stores: it is never negative.
    """

    def __init__(self, window: int = 40) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, now: float, count: int) -> None:
        """Note the message count at ``now`` (once a frame)."""
        if self._samples and (count < self._samples[-1][1] or now < self._samples[-1][0]):
            self._samples.clear()
        self._samples.append((now, count))

    def reset(self) -> None:
        """Forget the samples (the counted store is replaced)."""
        self._samples.clear()

    def rate(self) -> float:
        """Messages per second across the window; 0 until two samples span some time."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def __len__(self) -> int:
        return len(self._samples)
