"""Replaying a recording through the live pipeline, with keyframes for fast seeking.

Time in a replay is *recording* time. The pipeline steps at the live frame cadence
(every ``FRAME_S`` of recording time, counted from the first message), with the
messages received up to that instant routed first, so the states, alarms and anomaly
scores follow the same sequence as in the live session, whatever the playback speed.
Operator actions recorded in the session (acknowledge, shelve, accept an anomaly as the new
normal) are applied at their times, so the alarm list and the scorers show what the operator saw.

Keyframes. A keyframe is the pipeline's state at a tick: it has stepped at that tick and not
beyond. Encoded by :mod:`viewer.telemetry.state_codec` (safe, versioned, compressed; never pickle).

- Recorded: :class:`KeyframeWriter` runs this replay on the recorder's writer thread as the file
  is written and writes a keyframe every ``RECORDED_KEYFRAME_EVERY_S`` on the channel
  ``KEYFRAME_TOPIC`` (encoding ``twin-keyframe/1``), and the timeline's markers as the attachment
  ``timeline.json`` when the file is finished. :meth:`Replayer.open` reads their times from the
  summary's message indexes and the timeline, no pass over the file: opening is instant. A seek
  reads the nearest keyframe at or before the target (an LRU of ``KEYFRAME_CACHE``), restores it and
  plays to the target; a keyframe that is refused (tampered, another version, another layout) is
  reported in ``problems`` and the one before serves.
- In memory: a file without them (older, imported, another writer) opens at the first frame with
  ``needs_index`` true; :meth:`Replayer.index_steps` (a generator a worker thread may drive, with
  progress and cancel) plays it through on a pipeline of its own, keeping encoded keyframes every
  ``keyframe_every`` (within KEYFRAME_BUDGET_BYTES) and the markers; meanwhile seeks within
  ``indexed_until`` are quick. :meth:`Replayer.index` does both at once (the window's path so far).

A seek restores a keyframe and plays the few seconds up to the target: the state after a seek is
the state playback from the start reaches at that instant (tests check it). The plot history is not
part of a keyframe; the alarm history is (its last ``HISTORY_IN_KEYFRAME`` events; the in-memory
path rebuilds it whole from the index pass's log).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.model.layout import Layout
from viewer.telemetry import mcap_file, state_codec
from viewer.telemetry.pipeline import FRAME_S, StepResult, TelemetryPipeline
from viewer.telemetry.recording import (
    EVENTS_TOPIC,
    KEYFRAME_TOPIC,
    NS,
    RecordedMessage,
    RecordingInfo,
    data_section_problem,
    quick_info,
    read_messages,
)

log = logging.getLogger(__name__)

EPS_S = 1e-6  # times within this of a tick are at the tick (float epoch seconds carry ~0.2 µs)

KEYFRAME_EVERY_S = 2.0  # in memory, for a file without recorded keyframes
RECORDED_KEYFRAME_EVERY_S = 1.5  # in the file: a seek plays at most this much (~3,000 messages at 2,000/s)
KEYFRAME_SHARE = 0.15  # ... and further apart when they would be more than this share of the messages' bytes
MAX_RECORDED_KEYFRAME_EVERY_S = 30.0  # (a big plant's state) but never further than this
REORDER_S = 1.0  # the recorder's replay waits this long for a message stamped earlier than one already written
TIMELINE_FORMAT, TIMELINE_VERSION = "twin-timeline", 1
MAX_MARKERS = 200_000  # a timeline longer than this is cut (a day of a plant that alarms every second)
KEYFRAME_CACHE = 8  # recorded keyframes kept (encoded, a few KB each) for seeks near each other
KEYFRAME_BUDGET_BYTES = 256 * 1024 * 1024  # past this, every other keyframe goes (seeks play a little longer)
QUIET_STEP_S = 120.0  # after this long without a message, playback jumps to the next one (no tick between
#                       changes anything: scores move on new values, stale and shelving are checked by time)


@dataclass
class Marker:
    """A point on the timeline worth jumping to."""

    time: float
    kind: str  # "alarm", "ack", "gap", "dropped", "damaged", "mark"
    text: str
    end: float | None = None  # a span (a connection gap), when its end is known


@dataclass
class _Keyframe:
    time: float  # the pipeline has stepped at this tick and not beyond
    state: bytes  # the pipeline's state, encoded by state_codec (compressed, never pickle)
    last_routed: float = 0.0  # the time of the last message routed before it (quiet stretches jump from it)


@dataclass(slots=True)
class _FileKeyframe:  # one per recorded keyframe (~100 bytes: ~4 MB for a day's 43,000)
    time: float  # its tick (log_time), read from the message index without its body
    chunk: Any  # mcap_file.ChunkIndex of the chunk holding it
    offset: int  # in the chunk's records


@dataclass
class Replayer:
    """Plays one recording into a :class:`TelemetryPipeline` (see the module docstring)."""

    path: Path
    layout: Layout
    tick: float = FRAME_S
    keyframe_every: float = KEYFRAME_EVERY_S
    info: RecordingInfo | None = None
    pipeline: TelemetryPipeline | None = None
    markers: list[Marker] = field(default_factory=list)
    position: float = 0.0  # recording time the pipeline has reached (a tick)
    _keyframes: list[_Keyframe] = field(default_factory=list)
    _pending: Iterator[RecordedMessage] | None = None
    _next: RecordedMessage | None = None
    _alarm_log: list[Any] = field(default_factory=list)  # every alarm event of the recording, in order
    damage: list[Any] = field(default_factory=list)  # mcap_file.Damage: what could not be read, and was skipped
    played: int = 0  # messages the index pass routed (events included): what the replay really holds
    problems: list[str] = field(default_factory=list)  # keyframes refused (why), shown to whoever asks
    keep_alarm_log: bool = True
    _last_routed: float = 0.0
    _file_keyframes: list[_FileKeyframe] = field(default_factory=list)
    _keyframe_cache: OrderedDict[float, bytes] = field(default_factory=OrderedDict)  # LRU of read keyframes
    _initial: _Keyframe | None = None  # the state at the first message (fresh pipeline, learned scorers)
    _indexed_until: float = 0.0
    _needs_index: bool = True
    _opened: bool = False
    _from_initial: bool = False  # the state restored is the first one: play every message, the first included
    _layout_sha256: str = ""

    # --- opening --------------------------------------------------------------------------------------
    def open(self) -> RecordingInfo:
        """Open for playing at once: the summary, the recorded keyframes' times (not their bodies) and the
        timeline; the first frame is shown. Without recorded keyframes (or timeline) ``needs_index`` is True:
        run :meth:`index_steps` (a background thread may), playing and seeking meanwhile within
        ``indexed_until``."""
        self.info = quick_info(self.path)  # the summary; a file without one is read through, past any damage
        self._layout_sha256 = layout_sha256(self.layout)
        self.pipeline = self._fresh_pipeline()
        self._keyframes = []
        self._alarm_log = []
        self.markers = []
        self.problems = []
        self.damage = list(self.info.damage)
        self._keyframe_cache.clear()
        self.position = self.start
        self._initial = _Keyframe(self.start, state_codec.encode_pipeline(self.pipeline), self.start)
        self._keyframes.append(self._initial)
        self._file_keyframes = self._find_file_keyframes()
        recorded_layout = self.info.metadata.get("layout_sha256")
        if self._file_keyframes and recorded_layout and recorded_layout != layout_sha256(self.layout):
            self.problems.append("the recorded keyframes are of another layout: the recording is indexed")
            self._file_keyframes = []
        timeline = self._read_timeline()
        self.played = max(self.info.messages - len(self._file_keyframes), 0)
        if self._file_keyframes and timeline is not None:
            self.markers = timeline + self._damage_markers()
            self.markers.sort(key=lambda m: m.time)
            self._indexed_until = self.end
            self._needs_index = False
        else:
            self._indexed_until = self.end if self._file_keyframes else self.start
            self._needs_index = True
        self._opened = True
        self.seek(self.start)
        return self.info

    @property
    def needs_index(self) -> bool:
        """Whether :meth:`index_steps` still has work: no recorded keyframes (an older file, an import, another
        writer) or no recorded timeline (a recording cut off before its end)."""
        return self._needs_index

    @property
    def indexed_until(self) -> float:
        """Recording time up to which a seek is quick (a keyframe is at most ``keyframe_every`` before it)."""
        return self._indexed_until

    def _fresh_pipeline(self) -> TelemetryPipeline:
        pipeline = TelemetryPipeline(self.layout, health={})  # replays estimate by the trend (no refit per seek)
        if self.info is not None and self.info.anomaly_state:  # the scorers start from what they had learned
            pipeline.anomaly.load_state(self.info.anomaly_state)
        return pipeline

    def index(self, progress: Callable[[float], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> RecordingInfo:
        """Open and index to the end (the window's path so far: with recorded keyframes it returns at once)."""
        self.open()
        for fraction in self.index_steps(cancelled=cancelled):
            if progress is not None:
                progress(min(fraction, 0.999))
        if progress is not None:
            progress(1.0)
        self.seek(self.start)
        return self.info  # type: ignore[return-value]

    def index_steps(self, cancelled: Callable[[], bool] | None = None,
                    ticks_per_step: int = 300) -> Iterator[float]:
        """The index pass, a slice at a time (each ``next`` plays ``ticks_per_step`` ticks on a pipeline of its
        own, so a worker thread may drive it while this replayer plays): yields the fraction done. It keeps
        keyframes (encoded, within KEYFRAME_BUDGET_BYTES) where the file has none, and the timeline's markers.
        ``cancelled()`` true raises InterruptedError; what is indexed so far stays usable."""
        if not self._opened:
            self.open()
        if not self._needs_index:
            return
        keep_keyframes = not self._file_keyframes
        scout = Replayer(self.path, self.layout, self.tick, self.keyframe_every, info=self.info)
        scout.pipeline = self._fresh_pipeline()
        scout.position = self.start
        scout._alarm_log = self._alarm_log if keep_keyframes else []
        start, span = self.start, max(self.end - self.start, 1e-9)
        next_key = start + self.keyframe_every
        keyframe_bytes = sum(len(k.state) for k in self._keyframes)
        damage: list[Any] = []
        scout._pending = _without_keyframes(read_messages(self.path, damage=damage))
        scout._next = next(scout._pending, None)
        scout._last_routed = start
        ticks = 0

        def at_tick(t: float) -> None:
            nonlocal next_key, ticks, keyframe_bytes
            ticks += 1

            if keep_keyframes and t >= next_key:
                try:
                    state = state_codec.encode_pipeline(scout.pipeline)
                except state_codec.StateCodecError as exc:
                    log.warning("%s: no keyframe at this point (%s)", self.path.name, exc)
                else:
                    self._keyframes = [*self._keyframes, _Keyframe(t, state, scout._last_routed)]  # one swap
                    keyframe_bytes += len(state)
                    if keyframe_bytes > KEYFRAME_BUDGET_BYTES:  # bounded: thin out, space the next ones wider
                        self._keyframes = self._keyframes[::2]
                        keyframe_bytes = sum(len(k.state) for k in self._keyframes)
                        self.keyframe_every *= 2
                next_key = t + self.keyframe_every
            if keep_keyframes:
                self._indexed_until = t
            if ticks % ticks_per_step == 0:
                raise _SliceDoneError  # after the tick is complete: the next _play goes on from here

        while scout.position < self.end - EPS_S:
            if cancelled is not None and cancelled():
                raise InterruptedError("cancelled")
            with contextlib.suppress(_SliceDoneError):  # a slice of ticks (a quiet stretch is one tick, however long)
                scout._play(self.end, at_tick, markers=True, merged=None)
            self.markers = sorted(scout.markers, key=lambda m: m.time)  # one swap: a reader sees old or new
            yield (scout.position - start) / span
        self._finish_index(scout, damage)

    def _finish_index(self, scout: Replayer, damage: list[Any]) -> None:
        assert self.info is not None
        self.played = scout.played
        known = {d.offset for d in self.info.damage}
        self.damage = list(self.info.damage) + [d for d in damage if d.offset not in known]
        unprotected = data_section_problem(self.path) if self.info.complete and not self.damage else None
        if unprotected:  # every chunk was whole, but a record without its own CRC is not
            self.info.complete = False
            self.info.problem = unprotected
        markers = scout.markers + self._damage_markers()
        markers.sort(key=lambda m: m.time)
        self.markers = markers
        self._indexed_until = self.end
        self._needs_index = False

    def _damage_markers(self) -> list[Marker]:
        """The timeline shows what is missing, where the file still says when."""
        out = []
        for d in self.damage:
            if d.start_ns is not None and d.end_ns is not None and self.start <= d.start_ns / 1e9 <= self.end:
                lost = f"{d.messages:,} messages" if d.messages is not None else "messages"
                out.append(Marker(d.start_ns / 1e9, "damaged", f"damaged file: {lost} lost ({d.what})",
                                  d.end_ns / 1e9))
        return out

    @property
    def start(self) -> float:
        return self.info.start if self.info else 0.0

    @property
    def end(self) -> float:
        """The first tick at or after the last message: where playback stops."""
        if not self.info:
            return 0.0
        last = self.tick_at_or_before(self.info.end)
        return last if last >= self.info.end - EPS_S else self._after(last)

    # --- playing --------------------------------------------------------------------------------------
    def tick_at_or_before(self, t: float) -> float:
        """The last tick at or before ``t`` (ticks count from the first message)."""
        n = math.floor((t - self.start + EPS_S) / self.tick)
        return self.start + max(n, 0) * self.tick

    def _after(self, tick: float) -> float:
        """The tick after ``tick``, computed from its index: adding the step over and over drifts (float
        seconds since the epoch are only good to 0.2 µs, a 10-hour replay has a million ticks)."""
        return self.start + (round((tick - self.start) / self.tick) + 1) * self.tick

    def tick_at_or_after(self, t: float) -> float:
        """The first tick at or after ``t``: where an event at ``t`` has been taken into account."""
        before = self.tick_at_or_before(t)
        return before if before >= t - EPS_S else self._after(before)

    def advance_to(self, t: float) -> StepResult:
        """Play forward to recording time ``t``; what changed, merged over the ticks passed."""
        merged = StepResult()
        if self._pending is None:
            # from the first state, every message (the first one is stamped at the start exactly, and the
            # index pass routes it too); from a keyframe, those after its tick
            start = None if self._from_initial else self.position + EPS_S
            self._from_initial = False
            self._pending = _without_keyframes(read_messages(self.path, start=start))
            self._next = next(self._pending, None)
        self._play(t, None, markers=False, merged=merged)
        return merged

    def _play(self, t: float, on_tick: Callable[[float], None] | None, markers: bool,
              merged: StepResult | None) -> None:
        """Tick by tick up to ``t``: route the tick's messages, then step the pipeline at the tick."""
        assert self.pipeline is not None and self._pending is not None
        pipeline = self.pipeline
        target = self.tick_at_or_before(min(t, self.end))
        pending = self._pending
        while self._after(self.position) <= target + EPS_S:
            tick = self._after(self.position)
            batch = []
            nxt = self._next
            if (nxt is None or nxt.time > tick) and tick - self._last_routed > QUIET_STEP_S:
                # a long quiet stretch (a stopped plant, a wrong clock): jump to the tick before the next message
                before_next = target if nxt is None else self.tick_at_or_after(nxt.time) - self.tick
                tick = max(tick, min(target, self.tick_at_or_before(before_next)))
            while nxt is not None and nxt.time < tick + EPS_S:  # read_messages(start=tick + EPS_S) goes on after
                batch.append(nxt)
                nxt = next(pending, None)
            self._next = nxt
            if batch:
                self._route_batch(batch, markers)
                self._last_routed = batch[-1].time
                if markers:
                    self.played += len(batch)
            step = pipeline.step(tick)
            self.position = tick
            if merged is not None:
                _merge(merged, step)
            if markers and step.alarms_moved:
                self._alarm_markers(tick)
            if markers and self.keep_alarm_log:  # the index pass keeps the whole alarm log once
                alarms = pipeline.alarms
                new = alarms.logged - len(self._alarm_log)
                if new > 0:
                    self._alarm_log.extend(alarms.history[-new:])
            if on_tick is not None:
                on_tick(tick)

    def _route_batch(self, batch: list[RecordedMessage], markers: bool) -> None:
        """One tick's messages. Like the live store, the frame only sees each signal's newest value, so only
        the newest message per topic is decoded (the others are counted); Sparkplug B (stateful: sequence
        numbers, aliases) and session events go through one by one, in order."""
        newest: dict[str, int] = {}
        for i, message in enumerate(batch):
            newest[message.topic] = i
        store = self.pipeline.store  # type: ignore[union-attr]
        router = self.pipeline.router  # type: ignore[union-attr]
        for i, message in enumerate(batch):
            topic = message.topic
            if topic == EVENTS_TOPIC:
                if markers:
                    self._event_marker(message)
                self._apply_event(message)
            elif newest[topic] == i or topic.startswith("spBv1.0/"):
                router.handle(topic, message.payload, message.time)
            else:
                store.count_message(message.time)

    def seek(self, t: float) -> StepResult:
        """Show the state at recording time ``t``: restore the keyframe before it and play up to it."""
        t = min(max(t, self.start), self.end)
        self._restore_before(t)
        self._pending = None
        self._next = None
        result = self.advance_to(t)
        result.changed_values |= {component for component, _ in self.pipeline.store.latest_all()}
        result.alarms_moved = True
        return result

    def _restore_before(self, t: float) -> None:
        """The newest usable keyframe at or before ``t``: recorded ones first (a refused one is reported and
        dropped, the one before is tried), then those the index pass kept, at worst the first message."""
        self._from_initial = False
        memory = self._keyframes
        key = memory[max(bisect.bisect_right([k.time for k in memory], t + EPS_S) - 1, 0)]
        recorded = self._file_keyframes
        i = bisect.bisect_right([k.time for k in recorded], t + EPS_S) - 1
        while i >= 0 and recorded[i].time > key.time + EPS_S:
            try:
                self._restore_recorded(recorded[i])
                return
            except (state_codec.StateCodecError, mcap_file.MalformedError) as exc:
                problem = f"keyframe at {recorded[i].time:.3f} refused: {exc}"
                log.warning("%s: %s", self.path.name, problem)
                self.problems.append(problem)
                self._file_keyframes = recorded = [k for k in recorded if k is not recorded[i]]
                i -= 1
        try:
            _header, state = state_codec.decode(key.state)
            state_codec.restore(self.pipeline, state)
        except state_codec.StateCodecError as exc:  # our own bytes: only a bug gets here; play from the start
            log.error("%s: in-memory keyframe refused (%s)", self.path.name, exc)
            key = self._initial  # type: ignore[assignment]
            state_codec.restore(self.pipeline, state_codec.decode(key.state)[1])
        alarms = self.pipeline.alarms  # type: ignore[union-attr]
        if self.keep_alarm_log and len(self._alarm_log) >= alarms.logged:  # the index pass's whole log
            alarms.history = self._alarm_log[max(0, alarms.logged - alarms.max_history):alarms.logged]
        self.position = key.time
        self._last_routed = key.last_routed
        self._from_initial = key is self._initial

    def _restore_recorded(self, key: _FileKeyframe) -> None:
        data = self._keyframe_cache.get(key.time)
        if data is None:
            buf = mcap_file.open_mapped(self.path)
            try:
                data = mcap_file.read_chunk_message(buf, key.chunk, key.offset).data
            finally:
                if hasattr(buf, "close"):
                    buf.close()
            self._keyframe_cache[key.time] = data
            while len(self._keyframe_cache) > KEYFRAME_CACHE:
                self._keyframe_cache.popitem(last=False)
        else:
            self._keyframe_cache.move_to_end(key.time)
        header, state = state_codec.decode(data)
        n, origin, frame_s, last_routed = (header.get(k) for k in ("tick", "origin_ns", "frame_s", "last_routed"))
        if type(n) is not int or n < 0 or type(origin) is not int or not isinstance(last_routed, int | float):
            raise state_codec.StateCodecError("a keyframe header without its tick, origin and last message")
        if header.get("layout_sha256") not in (None, self._layout_sha256):
            raise state_codec.StateCodecError("a keyframe of another layout")
        if frame_s != self.tick or origin / NS != self.start:
            raise state_codec.StateCodecError(f"a keyframe on another tick grid ({frame_s} s from {origin} ns)")
        tick = self.start + n * self.tick
        if abs(tick - key.time) > 1e-3:
            raise state_codec.StateCodecError(f"a keyframe stamped {key.time:.3f} for tick {tick:.3f}")
        state_codec.restore(self.pipeline, state)  # checks everything before it changes anything
        self.position = tick
        self._last_routed = float(last_routed)

    def _find_file_keyframes(self) -> list[_FileKeyframe]:
        """The recorded keyframes' times and places, from the summary's message indexes (no chunk is read)."""
        buf = mcap_file.open_mapped(self.path)
        try:
            summary = mcap_file.read_summary(buf)
            if summary is None:
                return []
            cids = [c.id for c in summary.channels.values() if c.topic == KEYFRAME_TOPIC]
            if not cids:
                return []
            out = []
            for chunk in summary.chunk_indexes:
                offset = chunk.message_index_offsets.get(cids[0])
                if offset is None:
                    continue
                try:
                    entries = mcap_file.read_message_index(buf, offset, cids[0])
                except mcap_file.MalformedError as exc:
                    self.problems.append(f"a keyframe index is damaged ({exc})")
                    continue
                out += [_FileKeyframe(log_time / NS, chunk, at) for log_time, at in entries]
            out.sort(key=lambda k: k.time)
            return [k for k in out if self.start <= k.time <= self.end]
        finally:
            if hasattr(buf, "close"):
                buf.close()

    def _read_timeline(self) -> list[Marker] | None:
        """The markers the recorder wrote when it finished the file, or None (none, or unreadable)."""
        data = self.info.timeline if self.info is not None else None
        if not data:
            return None
        try:
            document = json.loads(data)
            if document.get("format") != TIMELINE_FORMAT or document.get("version") != TIMELINE_VERSION:
                raise ValueError(f"timeline {document.get('format')!r} version {document.get('version')!r}")
            markers = []
            for t, kind, text, end in document["markers"][:MAX_MARKERS]:
                markers.append(Marker(float(t), str(kind), str(text), None if end is None else float(end)))
            return markers
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            self.problems.append(f"the recorded timeline is refused ({exc}); it is rebuilt")
            return None

    def next_marker(self, after: float, kinds: tuple[str, ...] = ("alarm",)) -> Marker | None:
        """The first marker of these kinds after ``after`` (jump to next alarm)."""
        for marker in self.markers:
            if marker.time > after + 1e-6 and marker.kind in kinds:
                return marker
        return None

    # --- internals ------------------------------------------------------------------------------------
    def _apply_event(self, message: RecordedMessage) -> None:
        """Operator actions recorded live are replayed at their times (by alarm key: ids may differ)."""
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        kind = event.get("kind")
        if kind == "accepted" and isinstance(event.get("component"), str):
            self.pipeline.accept_anomaly(event["component"], message.time)  # type: ignore[union-attr]
            return
        if kind not in ("acknowledged", "shelved", "unshelved"):
            return
        alarms = self.pipeline.alarms  # type: ignore[union-attr]
        key = (event.get("component"), event.get("signal"), event.get("rule"))
        for alarm in alarms.alarms.values():
            if alarm.key == key:
                if kind == "acknowledged":
                    alarms.acknowledge(alarm.id, message.time)
                elif kind == "shelved":
                    alarms.shelve(alarm.id, message.time, float(event.get("duration_s", 3600)))
                else:
                    alarms.unshelve(alarm.id, message.time)

    def _alarm_markers(self, tick: float) -> None:
        alarms = self.pipeline.alarms  # type: ignore[union-attr]
        known = getattr(self, "_marked", None)
        if known is None:
            known = self._marked = set()
        for event in alarms.history[-20:]:
            ident = (event.time, event.alarm_id, event.kind)
            if event.kind == "raised" and ident not in known:
                known.add(ident)
                self.markers.append(Marker(event.time, "alarm", f"{event.component}: {event.message}"))

    def _event_marker(self, message: RecordedMessage) -> None:
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("kind", "")
        if kind == "gap":
            quiet = event.get("quiet_since")
            start = float(quiet) if isinstance(quiet, int | float) and quiet <= message.time else message.time
            self.markers.append(Marker(start, "gap", f"connection lost: {event.get('reason', '')}"))
        elif kind == "gap_end":
            self._end_gap(message.time, event)
        elif kind == "dropped":
            self.markers.append(Marker(message.time, "dropped", f"{event.get('count')} messages not recorded "
                                                                "(disk too slow)"))
        elif kind == "broker_dropped":
            self.markers.append(Marker(message.time, "dropped", f"the broker dropped {event.get('count')} messages "
                                                                "(its queues were full; all its clients)"))
        elif kind == "planned_maintenance":
            self.markers.append(Marker(message.time, "mark", f"planned maintenance: {event.get('text', '')}"))
        elif kind == "mark":
            self.markers.append(Marker(message.time, "mark", str(event.get("text", "mark"))))

    def _end_gap(self, end: float, event: dict[str, Any]) -> None:
        """Close the span of the gap this event ends (or add it whole, when its start is before the file)."""
        for marker in reversed(self.markers):
            if marker.kind == "gap" and marker.end is None and marker.time <= end:
                marker.end = end
                return
        start = event.get("quiet_since") or event.get("start")
        start = float(start) if isinstance(start, int | float) and start <= end else end
        self.markers.append(Marker(start, "gap", f"connection lost: {event.get('reason', '')}", end))


def _merge(into: StepResult, step: StepResult) -> None:
    into.changed_values |= step.changed_values
    into.alarms_moved |= step.alarms_moved
    into.joint_samples += step.joint_samples


class _SliceDoneError(Exception):
    """The index pass has done its slice of ticks."""


def layout_sha256(layout: Layout) -> str:
    """The layout's fingerprint as the recorder writes it (metadata ``layout_sha256``)."""
    return hashlib.sha256(json.dumps(layout.to_dict(), indent=1).encode()).hexdigest()


def _without_keyframes(messages: Iterable[RecordedMessage]) -> Iterator[RecordedMessage]:
    """The recording as the pipeline saw it: keyframes are about the replay, not part of what it replays."""
    return (m for m in messages if m.topic != KEYFRAME_TOPIC)


class _Feed:
    """The messages released to the recorder's replay so far: an iterator that may run dry and fill again."""

    def __init__(self) -> None:
        self.items: deque[RecordedMessage] = deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> RecordedMessage:
        if not self.items:
            raise StopIteration
        return self.items.popleft()


class _FollowingReplayer(Replayer):
    """A replayer fed as a file is written: no end until it is finished."""

    following = True

    @property
    def end(self) -> float:  # type: ignore[override]
        return 1e12 if self.following else Replayer.end.fget(self)  # type: ignore[attr-defined]


class KeyframeWriter:
    """Keyframes written into a recording as it is recorded (the :class:`Recorder`'s ``keyframes``).

    Spacing: every ``every_s`` of recording time, further apart when a keyframe would be more than
    ``KEYFRAME_SHARE`` of the bytes of the messages since the one before (at most
    ``MAX_RECORDED_KEYFRAME_EVERY_S``): the demo plant's 6 KB keyframes come every 1.5 s, a 1,000-component
    plant's ~200 KB ones every few seconds, depending on its message rate.

    Semantics: a recorded keyframe is the state a replay *of this file from its first message* reaches at a
    tick (``FRAME_S`` steps from the first message): the pipeline has stepped at that tick and not beyond, every
    message stamped before the tick (+1 µs) routed. The live pipeline steps at wall-clock frames, so its state
    is near that one but not the same; this writer therefore runs the replay itself, on the recorder's writer
    thread, fed every message as it is written (in time order, after a ``REORDER_S`` wait for a message stamped
    earlier than one already written: what :func:`read_messages` gives the replay). A seek that restores one
    then reaches exactly what a replay from the start reaches. Cost: the replay's (~1 % of a core at
    2,000 msg/s) plus one encode per keyframe on the writer thread, never on the thread that draws.

    It also keeps the timeline (alarms raised, gaps, drops, marks) and writes it when the file is finished.
    """

    def __init__(self, layout: Layout, anomaly_state: dict[str, Any] | None = None,
                 every_s: float = RECORDED_KEYFRAME_EVERY_S, tick: float = FRAME_S,
                 share: float = KEYFRAME_SHARE) -> None:
        self.every_s = every_s
        self.share = share
        self._replay = _FollowingReplayer(Path(""), layout, tick, keep_alarm_log=False)
        self._layout_sha256 = layout_sha256(layout)
        self._replay.info = RecordingInfo(Path(""), anomaly_state=anomaly_state)
        self._replay.pipeline = self._replay._fresh_pipeline()  # here: the layout is read on the caller's thread
        self._feed = _Feed()
        self._waiting: list[tuple[int, int, RecordedMessage]] = []  # heap: (ns, arrival, message)
        self._arrivals = 0
        self._newest_ns = 0
        self._origin_ns: int | None = None
        self._next_key = 0.0
        self._out: list[tuple[bytes, int]] = []
        self._bytes_since = 0  # message bytes released since the last keyframe
        self._last_size = 0
        self._last_key = 0.0
        self.encode_s: list[float] = []  # seconds per keyframe encode (the benchmark reads them)
        self.written_bytes = 0

    def written(self, topic: str, payload: bytes, ns: int) -> list[tuple[bytes, int]]:
        """One message as written; returns the keyframes (bytes, log_time ns) to write now."""
        if topic == KEYFRAME_TOPIC:
            return []
        self._arrivals += 1
        heapq.heappush(self._waiting, (ns, self._arrivals, RecordedMessage(topic, payload, ns / NS)))
        self._newest_ns = max(self._newest_ns, ns)
        horizon = self._newest_ns - int(REORDER_S * NS)
        while self._waiting and self._waiting[0][0] < horizon:
            self._release(heapq.heappop(self._waiting))
        out, self._out = self._out, []
        return out

    def finish(self) -> tuple[list[tuple[bytes, int]], bytes]:
        """The file is finishing: the last keyframes, and the timeline attachment's bytes."""
        while self._waiting:
            self._release(heapq.heappop(self._waiting))
        r = self._replay
        if self._origin_ns is not None:  # the last messages' ticks too: an event at the very end is on the timeline
            r.info.end = self._newest_ns / NS  # type: ignore[union-attr]
            r.following = False  # type: ignore[attr-defined]
            if r._next is None:
                r._next = next(self._feed, None)
            r._play(r.end, self._at_tick, markers=True, merged=None)
        markers = [[m.time, m.kind, m.text, m.end] for m in sorted(r.markers, key=lambda m: m.time)[:MAX_MARKERS]]
        timeline = json.dumps({"format": TIMELINE_FORMAT, "version": TIMELINE_VERSION, "markers": markers}).encode()
        out, self._out = self._out, []
        return out, timeline

    def _release(self, item: tuple[int, int, RecordedMessage]) -> None:
        ns, _, message = item
        r = self._replay
        if self._origin_ns is None:  # the first message: where the replay's ticks count from
            self._origin_ns = ns
            r.info.start = r.info.end = ns / NS  # type: ignore[union-attr]
            r.position = r._last_routed = r.start
            r._pending = self._feed
            self._next_key = r.start + self.every_s
        self._feed.items.append(message)
        self._bytes_since += len(message.payload)
        if r._next is None:
            r._next = next(self._feed, None)
        before = r.tick_at_or_after(message.time) - r.tick  # the ticks this message is not part of
        if before > r.position + EPS_S:
            r._play(before, self._at_tick, markers=True, merged=None)

    def _at_tick(self, t: float) -> None:
        if t < self._next_key - EPS_S:
            return
        outweighs = self.share > 0 and self._bytes_since * self.share < self._last_size
        if outweighs and t < self._last_key + MAX_RECORDED_KEYFRAME_EVERY_S:
            return  # a big state and few messages: the file would be mostly keyframes
        r = self._replay
        began = time.perf_counter()
        header = {"tick": round((t - r.start) / r.tick), "origin_ns": self._origin_ns, "frame_s": r.tick,
                  "last_routed": r._last_routed, "played": r.played, "layout_sha256": self._layout_sha256}
        try:
            data = state_codec.encode_pipeline(r.pipeline, header)
        except state_codec.StateCodecError as exc:
            log.warning("no keyframe at %.3f (%s)", t, exc)
        else:
            self._out.append((data, int(t * NS)))
            self._last_size, self._last_key, self._bytes_since = len(data), t, 0
            self.written_bytes += len(data)
        self.encode_s.append(time.perf_counter() - began)
        self._next_key = t + self.every_s
