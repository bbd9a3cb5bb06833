"""Session recordings in MCAP: what the viewer received, byte for byte, plus what happened in the session.

File layout (MCAP, so other robotics tools open it too):

- one channel per MQTT topic (channel topic = the MQTT topic), payloads unchanged, ``log_time`` = the time
  the viewer received the message (ns since the Unix epoch); ``message_encoding`` is ``json`` for JSON
  bindings, ``sparkplug-b`` for Sparkplug B and ``text`` for numbers and plain text;
- the channel ``/twin-viewer/events`` (JSON): alarm life-cycle events, connection gaps, layout changes,
  operator marks and, when the disk could not keep up, how many messages were dropped and when;
- the channel ``/twin-viewer/keyframe`` (message encoding and schema ``twin-keyframe/1``, see
  :mod:`viewer.telemetry.state_codec`): every ``KEYFRAME_EVERY_S`` of recording time, the pipeline's state as a
  replay of this file reaches it (``log_time`` = the tick; see :class:`viewer.telemetry.replay.KeyframeWriter`),
  and at the end an attachment ``timeline.json`` with the timeline's markers, so a replay opens at once;
- a metadata record ``twin-viewer`` (viewer version, broker address, layout name, path and SHA-256, start
  time) and the layout itself as an attachment ``layout.json`` (layouts never hold secrets; recordings do
  not either: no passwords, no certificates).

Recording never blocks the network thread: :meth:`Recorder.message` puts the message on a bounded queue and
returns; a writer thread compresses and writes chunks, and closes a chunk at least once a second, so a
killed process loses at most about a second. A full queue drops the message, counts it, and the writer
marks the drop in the file. :func:`read_recording` reads a cut-off file up to its last complete chunk;
:func:`recover` rewrites one with a proper summary and index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import queue
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.telemetry import mcap_file

log = logging.getLogger(__name__)

EVENTS_TOPIC = "/twin-viewer/events"
METADATA_NAME = "twin-viewer"
LAYOUT_ATTACHMENT = "layout.json"
ANOMALY_ATTACHMENT = "anomaly-state.json"  # what the scorers had learned when recording began
KEYFRAME_TOPIC = "/twin-viewer/keyframe"
KEYFRAME_ENCODING = "twin-keyframe/1"  # = state_codec.FORMAT/VERSION (a test keeps them equal)
TIMELINE_ATTACHMENT = "timeline.json"  # the markers, written when the recording is finished
# MCAP channel ids are 16 bits: past this many topics, messages go on one overflow channel whose payload is
# ``u16 topic length, topic (UTF-8), payload`` (message encoding ENVELOPE_ENCODING); the readers here unwrap it.
MAX_TOPIC_CHANNELS = 65_533  # + the events channel + the overflow channel = 65,535
OVERFLOW_TOPIC = "/twin-viewer/overflow"
ENVELOPE_ENCODING = "twin-viewer-envelope"
CHUNK_BYTES = 512 * 1024
FLUSH_EVERY_S = 1.0
QUEUE_LIMIT = 200_000
NS = 1_000_000_000


class RecordingError(Exception):
    """A recording that cannot be read or written, with the reason."""


def encoding_for(binding_encoding: str | None) -> str:
    """MCAP message encoding of a channel from the binding that decodes it."""
    return {"json": "json", "sparkplug": "sparkplug-b"}.get(binding_encoding or "", "text")


@dataclass
class RecorderStats:
    messages: int = 0
    events: int = 0
    dropped: int = 0
    bytes: int = 0
    wrapped: int = 0  # messages of topics past the 65,534th, written on the overflow channel
    keyframes: int = 0  # keyframes written (the messages above do not count them)
    keyframe_bytes: int = 0
    error: str | None = None  # why the writer stopped early (the file is finished with what it had)


class Recorder:
    """Writes one MCAP recording on its own thread (see the module docstring)."""

    def __init__(self, path: Path | str, *, layout_doc: dict[str, Any] | None = None,
                 layout_path: Path | str | None = None, broker: str = "",
                 encodings: Callable[[str], str] | None = None, queue_limit: int = QUEUE_LIMIT,
                 chunk_bytes: int = CHUNK_BYTES, compression: str = "zstd",
                 attachments: dict[str, bytes] | None = None, keyframes: Any = None) -> None:
        self.path = Path(path)
        # sees every message written (writer thread) and returns keyframes to write (replay.KeyframeWriter)
        self._keyframes = keyframes
        self._attachments = attachments or {}
        self._layout_doc = layout_doc
        self._layout_path = str(layout_path) if layout_path else ""
        self._broker = broker
        self._encodings = encodings or (lambda _topic: "text")
        self._queue: queue.Queue = queue.Queue(maxsize=queue_limit)
        self._chunk_bytes = chunk_bytes
        self._compression = compression
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._dropped = 0  # written by producers (GIL-atomic increments), read by the writer
        self._drop_first = 0.0
        self._drop_last = 0.0
        self.stats = RecorderStats()
        self.error: str | None = None
        self.started_at = 0.0

    # --- producers (any thread) -----------------------------------------------------------------------
    def message(self, topic: str, payload: bytes, received: float) -> None:
        """Queue one received MQTT message; never blocks (a full queue counts a drop)."""
        try:
            self._queue.put_nowait((topic, bytes(payload), received))
        except queue.Full:
            if not self._dropped:
                self._drop_first = received
            self._dropped += 1
            self._drop_last = received

    def event(self, kind: str, when: float, **data: Any) -> None:
        """Queue one session event (alarm, gap, layout change, mark)."""
        record = {"kind": kind, "time": when, **data}
        try:
            self._queue.put_nowait((EVENTS_TOPIC, json.dumps(record, default=str).encode(), when))
        except queue.Full:
            self._dropped += 1

    # --- life cycle -----------------------------------------------------------------------------------
    def start(self) -> Recorder:
        """Open the file (RecordingError if it cannot be created) and start the writer thread."""
        from mcap.writer import CompressionType, Writer

        try:
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed by the writer thread
        except OSError as exc:
            raise RecordingError(f"cannot create {self.path}: {exc.strerror}") from None
        compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}.get(self._compression,
                                                                                     CompressionType.NONE)
        # the data-section CRC covers what has no CRC of its own (header, metadata, indexes): readers check it
        self._writer = Writer(self._file, chunk_size=self._chunk_bytes, compression=compression,
                              enable_data_crcs=True)
        self._writer.start(profile="", library=f"twin-viewer {_version()}")
        self.started_at = time.time()
        meta = {"viewer_version": _version(), "broker": self._broker, "started": f"{self.started_at:.6f}",
                "layout_path": self._layout_path}
        if self._layout_doc is not None:
            text = json.dumps(self._layout_doc, indent=1).encode()
            meta["layout_name"] = str(self._layout_doc.get("name", ""))
            meta["layout_sha256"] = hashlib.sha256(text).hexdigest()
            self._writer.add_attachment(int(self.started_at * NS), int(self.started_at * NS), LAYOUT_ATTACHMENT,
                                        "application/json", text)
        for name, data in self._attachments.items():
            self._writer.add_attachment(int(self.started_at * NS), int(self.started_at * NS), name,
                                        "application/json", data)
        self._writer.add_metadata(METADATA_NAME, meta)
        self._channels: dict[str, int] = {}
        self._channel(EVENTS_TOPIC)  # first: it always has an id, however many topics follow
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> RecorderStats:
        """Write what is queued, the summary and the index; close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.stats

    @property
    def recording(self) -> bool:
        return self._thread is not None

    # --- writer thread --------------------------------------------------------------------------------
    def _channel(self, topic: str) -> int:
        cid = self._channels.get(topic)
        if cid is None:
            if topic == EVENTS_TOPIC:
                cid = self._writer.register_channel(topic, "json", 0, {"source": "twin-viewer"})
            elif topic == OVERFLOW_TOPIC:
                cid = self._writer.register_channel(topic, ENVELOPE_ENCODING, 0, {"source": "mqtt"})
            elif len(self._channels) >= MAX_TOPIC_CHANNELS + (EVENTS_TOPIC in self._channels):
                return -1  # out of channel ids: the caller wraps the message onto the overflow channel
            else:
                cid = self._writer.register_channel(topic, self._encodings(topic), 0, {"source": "mqtt"})
            self._channels[topic] = cid
        return cid

    def _add(self, topic: str, payload: bytes, ns: int) -> None:
        cid = self._channel(topic)
        data = payload
        if cid < 0:
            data = wrap_envelope(topic, payload)
            cid = self._channel(OVERFLOW_TOPIC)
            self.stats.wrapped += 1
        self._writer.add_message(cid, ns, data, ns)
        if self._keyframes is not None:
            self._keep_keyframes(lambda: self._keyframes.written(topic, payload, ns))

    def _keep_keyframes(self, work: Callable[[], list[tuple[bytes, int]]]) -> None:
        """Write the keyframes the observer returns; one that fails is switched off (the recording goes on)."""
        try:
            keyframes = work()
        except Exception:  # keyframes make seeking fast; they must never cost the recording itself
            log.exception("%s: keyframes switched off", self.path)
            self._keyframes = None
            return
        for data, ns in keyframes:
            if not 0 <= ns < 1 << 64:  # a stamp MCAP cannot hold would stop the writer: never write one
                log.error("%s: a keyframe stamped %s ns is skipped", self.path, ns)
                continue
            cid = self._channels.get(KEYFRAME_TOPIC)
            if cid is None:
                schema = self._writer.register_schema(KEYFRAME_ENCODING, KEYFRAME_ENCODING, b"")
                cid = self._channels[KEYFRAME_TOPIC] = self._writer.register_channel(
                    KEYFRAME_TOPIC, KEYFRAME_ENCODING, schema, {"source": "twin-viewer"})
            self._writer.add_message(cid, ns, data, ns)
            self.stats.keyframes += 1
            self.stats.keyframe_bytes += len(data)

    def _finish_keyframes(self) -> None:
        """The last keyframes and the timeline attachment, before the summary."""
        if self._keyframes is None:
            return
        timeline: list[bytes] = []

        def last() -> list[tuple[bytes, int]]:
            keyframes, data = self._keyframes.finish()
            timeline.append(data)
            return keyframes

        self._keep_keyframes(last)
        if timeline and timeline[0]:
            ns = int(time.time() * NS)
            self._writer.add_attachment(ns, ns, TIMELINE_ATTACHMENT, "application/json", timeline[0])

    def _run(self) -> None:
        writer = self._writer
        last_flush = time.monotonic()
        reported_drops = 0
        try:
            while True:
                try:
                    topic, payload, received = self._queue.get(timeout=0.2)
                except queue.Empty:
                    topic = None
                if topic is not None:
                    self._add(topic, payload, int(received * NS))
                    if topic == EVENTS_TOPIC:
                        self.stats.events += 1
                    else:
                        self.stats.messages += 1
                    self.stats.bytes += len(payload)
                if self._dropped != reported_drops:  # say so in the file: a gap is never silent
                    count = self._dropped - reported_drops
                    reported_drops = self._dropped
                    record = {"kind": "dropped", "time": self._drop_last, "count": count,
                              "since": self._drop_first, "until": self._drop_last}
                    self._add(EVENTS_TOPIC, json.dumps(record).encode(), int(self._drop_last * NS))
                    self.stats.dropped = self._dropped
                now = time.monotonic()
                if now - last_flush >= FLUSH_EVERY_S:
                    writer.flush()  # closes the chunk: a killed process loses at most this second
                    last_flush = now
                if self._stop.is_set() and self._queue.empty():
                    break
            self._finish_keyframes()
            writer.finish()
        except OSError as exc:  # a full disk: keep what is written, say why
            self.error = self.stats.error = f"recording stopped: {exc.strerror or exc}"
            log.error("%s: %s", self.path, self.error)
        except Exception as exc:  # any other failure still finishes the file with what it holds, and says so
            self.error = self.stats.error = f"recording stopped: {type(exc).__name__}: {exc}"
            log.exception("%s: %s", self.path, self.error)
            with contextlib.suppress(Exception):
                writer.finish()
        finally:
            with contextlib.suppress(OSError):
                self._file.close()


def wrap_envelope(topic: str, payload: bytes) -> bytes:
    name = topic.encode("utf-8")
    return struct.pack("<H", len(name)) + name + payload


def unwrap_envelope(data: bytes) -> tuple[str, bytes] | None:
    """(topic, payload) of an overflow-channel message, or None when it is not a well-formed envelope."""
    if len(data) < 2:
        return None
    (n,) = struct.unpack_from("<H", data)
    if 2 + n > len(data):
        return None
    try:
        return data[2:2 + n].decode("utf-8"), data[2 + n:]
    except UnicodeDecodeError:
        return None


def _unwrapped(topic: str, data: bytes) -> tuple[str, bytes]:
    """(topic, payload) of a message as recorded: an overflow-channel envelope opened, anything else as is."""
    if topic != OVERFLOW_TOPIC:
        return topic, data
    return unwrap_envelope(data) or (topic, data)


def _version() -> str:
    from viewer import __version__

    return __version__


# ------------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RecordedMessage:
    topic: str
    payload: bytes
    time: float  # receive time, s since the epoch


@dataclass
class RecordingInfo:
    """What a recording says about itself."""

    path: Path
    metadata: dict[str, str] = field(default_factory=dict)
    layout_doc: dict[str, Any] | None = None
    anomaly_state: dict[str, Any] | None = None
    start: float = 0.0
    end: float = 0.0
    messages: int = 0
    channels: dict[str, str] = field(default_factory=dict)  # topic -> encoding
    complete: bool = True  # False: cut off (no summary) or damaged; what is readable was read
    problem: str = ""  # why it is not complete
    damage: list[Any] = field(default_factory=list)  # mcap_file.Damage: the stretches skipped
    orphans: int = 0  # messages whose channel record was lost
    notes: list[str] = field(default_factory=list)  # worth saying, not damage (a wrong clock, a bad summary)
    timeline: bytes | None = None  # the TIMELINE_ATTACHMENT, when the recorder finished the file


def describe_damage(damage: list[Any], orphans: int) -> str:
    lost = sum(d.messages or 0 for d in damage)
    unknown = any(d.messages is None for d in damage)
    text = f"damaged: {len(damage)} stretch{'es' if len(damage) != 1 else ''} skipped"
    if lost or not unknown:
        text += f", {lost:,}{'+' if unknown else ''} messages lost"
    if orphans:
        text += f", {orphans:,} messages on channels the file no longer defines"
    return text + " (" + "; ".join(d.describe() for d in damage[:3]) + ("; ..." if len(damage) > 3 else "") + ")"


def scan(path: Path | str, on_message: Callable[[str, bytes, float], None] | None = None,
         progress: Callable[[float], None] | None = None,
         cancelled: Callable[[], bool] | None = None) -> RecordingInfo:
    """Read a whole recording in file order, past any damage: its info, and each message to ``on_message``."""
    path = Path(path)
    info = RecordingInfo(path)
    try:
        buf = mcap_file.open_mapped(path)
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None
    walk = mcap_file.Walk()
    channels: dict[int, str] = {}
    first = last = None
    count = 0
    size = max(len(buf), 1)
    try:
        for record in mcap_file.walk(buf, walk):
            if isinstance(record, mcap_file.Message):
                topic = channels.get(record.channel_id)
                if topic is None:
                    walk.orphans += 1
                    continue
                ns = record.log_time
                first = ns if first is None or ns < first else first
                last = ns if last is None or ns > last else last
                count += 1
                if on_message is not None:
                    on_message(*_unwrapped(topic, record.data), ns / NS)
                if count % 20_000 == 0:
                    if progress is not None:
                        progress(min(count * 60 / size, 0.99))
                    if cancelled is not None and cancelled():
                        raise InterruptedError("cancelled")
            elif isinstance(record, mcap_file.Channel):
                channels[record.id] = record.topic
                info.channels[record.topic] = record.message_encoding
            else:
                _take_record(info, record)
    except mcap_file.MalformedError:
        raise RecordingError(f"{path.name} is not an MCAP recording") from None
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    _take_walk(info, walk)
    if info.problem == "cut off: no summary":
        info.problem = f"cut off: no summary (read {count:,} messages up to the last complete chunk)"
    if count == 0 and not info.problem:
        info.problem = "no messages"
    info.messages = count
    _set_span(info, first, last)
    if progress is not None:
        progress(1.0)
    return info


UNPROTECTED_DAMAGE = ("a record without a CRC of its own (the header, metadata or an index) is damaged: "
                      "the data section's CRC fails")


def _take_walk(info: RecordingInfo, walk: Any) -> None:
    """Damage, completeness and the problem text from a tolerant walk."""
    info.damage, info.orphans = walk.damage, walk.orphans
    unprotected = walk.data_crc_failed and not walk.damage
    info.complete = walk.data_end and not walk.damage and not walk.orphans and not unprotected
    if walk.damage or walk.orphans:
        info.problem = describe_damage(walk.damage, walk.orphans)
    elif unprotected:
        info.problem = UNPROTECTED_DAMAGE
    if not walk.data_end:
        info.problem = "; ".join(filter(None, [info.problem, "cut off: no summary"]))
    if walk.summary_problem and info.complete:
        info.notes.append(walk.summary_problem)


def data_section_problem(path: Path | str) -> str | None:
    """Why the file's data-section CRC fails, or None (it holds, or the file has none): a full read."""
    buf = mcap_file.open_mapped(Path(path))
    try:
        intact = mcap_file.data_section_intact(buf, mcap_file.read_summary(buf))
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    return UNPROTECTED_DAMAGE if intact is False else None


def _take_record(info: RecordingInfo, record: Any) -> None:
    """Metadata and the attachments the viewer knows into ``info``."""
    if isinstance(record, mcap_file.Metadata) and record.name == METADATA_NAME:
        info.metadata = dict(record.metadata)
    elif isinstance(record, mcap_file.Attachment) and record.name == LAYOUT_ATTACHMENT:
        try:
            info.layout_doc = json.loads(record.data)
        except (ValueError, RecursionError):
            info.problem = "the embedded layout is not valid JSON"
    elif isinstance(record, mcap_file.Attachment) and record.name == TIMELINE_ATTACHMENT:
        info.timeline = bytes(record.data)
    elif isinstance(record, mcap_file.Attachment) and record.name == ANOMALY_ATTACHMENT:
        with contextlib.suppress(ValueError, RecursionError):
            info.anomaly_state = json.loads(record.data)


SPAN_NOTE_S = 7 * 86_400  # a recording longer than a week is worth a word: a clock or a stamp may be wrong


def _set_span(info: RecordingInfo, first: int | None, last: int | None) -> None:
    info.start = first / NS if first is not None else float(info.metadata.get("started", 0.0) or 0.0)
    info.end = last / NS if last is not None else info.start
    if info.end - info.start > SPAN_NOTE_S:
        info.notes.append(f"its messages span {(info.end - info.start) / 86_400:,.0f} days: a publisher's clock "
                          "or a stamp may be wrong (replay skips the empty stretches)")


def head_info(path: Path | str) -> RecordingInfo:
    """Metadata and layout from the records before the first message (where the recorder writes them), without
    reading the rest: for the window, which must not read a whole file on its own thread to learn which
    layout to open. ``complete`` is False and the time span unknown: the replay's index pass learns them."""
    path = Path(path)
    info = RecordingInfo(path, complete=False, problem="not read yet")
    buf = mcap_file.open_mapped(path)
    try:
        for record in mcap_file.walk(buf):
            if isinstance(record, mcap_file.Message):
                break
            if isinstance(record, mcap_file.Channel):
                info.channels[record.topic] = record.message_encoding
            else:
                _take_record(info, record)
    except mcap_file.MalformedError:
        raise RecordingError(f"{path.name} is not an MCAP recording") from None
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    return info


def quick_info(path: Path | str, read_through: bool = True) -> RecordingInfo:
    """Metadata, layout and time span from the summary, CRC-checked (fast); a file without a usable one is
    scanned whole, or with ``read_through=False`` only read up to its first message (:func:`head_info`)."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path} does not exist")
    if not _has_magic(path):
        raise RecordingError(f"{path.name} is not an MCAP recording")
    buf = mcap_file.open_mapped(path)
    try:
        summary = mcap_file.read_summary(buf)
        if summary is None or not summary.chunk_indexes:
            return scan(path) if read_through else head_info(path)
        info = RecordingInfo(path)
        for offset, length, name in summary.metadata:
            if name == METADATA_NAME:
                _take_record(info, mcap_file.read_indexed(buf, offset, length, mcap_file.OP_METADATA))
        for offset, length, name in summary.attachments:
            if name in (LAYOUT_ATTACHMENT, ANOMALY_ATTACHMENT, TIMELINE_ATTACHMENT):
                _take_record(info, mcap_file.read_indexed(buf, offset, length, mcap_file.OP_ATTACHMENT))
        # the span from the chunk indexes (what the chunks hold), not the statistics record
        _set_span(info, min(c.message_start_time for c in summary.chunk_indexes),
                  max(c.message_end_time for c in summary.chunk_indexes))
        info.messages = summary.message_count or 0
        info.channels = {c.topic: c.message_encoding for c in summary.channels.values()}
        if not info.channels:  # channels only inside the chunks (a writer with repeat_channels off)
            return scan(path) if read_through else head_info(path)
        return info
    except (mcap_file.MalformedError, struct.error):  # an index that points at nothing: read it through
        return scan(path) if read_through else head_info(path)
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()


def default_recordings_dir() -> Path:
    """Where the Record button saves (``$TWIN_VIEWER_RECORDINGS`` or ~/twin-viewer-recordings)."""
    return Path(os.environ.get("TWIN_VIEWER_RECORDINGS") or Path.home() / "twin-viewer-recordings")


def _has_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == mcap_file.MAGIC


def read_messages(path: Path | str, start: float | None = None, end: float | None = None,
                  damage: list[Any] | None = None) -> Iterator[RecordedMessage]:
    """Messages (events included) with start <= time <= end, in time order, past any damage (appended to
    ``damage`` as :class:`~viewer.telemetry.mcap_file.Damage`): by the CRC-checked index when there is one,
    else by reading the file through."""
    path = Path(path)
    damage = damage if damage is not None else []
    lo = -1 if start is None else int(start * NS)
    hi = 1 << 64 if end is None else int(end * NS)
    buf = mcap_file.open_mapped(path)
    try:
        summary = mcap_file.read_summary(buf)
        if summary is not None and summary.chunk_indexes:
            yield from _read_indexed(buf, summary, lo, hi, damage)
        else:
            yield from _read_through(buf, lo, hi, damage)
    finally:
        if isinstance(buf, mmap.mmap):
            with contextlib.suppress(BufferError):  # a caller still holding a slice view
                buf.close()


def _read_through(buf: Any, lo: int, hi: int, damage: list[Any]) -> Iterator[RecordedMessage]:
    """A file without a usable index: every readable message, sorted by time (the whole range in memory)."""
    walk = mcap_file.Walk()
    topics: dict[int, str] = {}
    out: list[RecordedMessage] = []
    for record in mcap_file.walk(buf, walk):
        if isinstance(record, mcap_file.Message):
            topic = topics.get(record.channel_id)
            if topic is not None and lo <= record.log_time <= hi:
                out.append(RecordedMessage(*_unwrapped(topic, record.data), record.log_time / NS))
        elif isinstance(record, mcap_file.Channel):
            topics[record.id] = record.topic
    damage.extend(walk.damage)
    out.sort(key=lambda m: m.time)  # stable: equal stamps keep file order
    yield from out


def _read_indexed(buf: Any, summary: Any, lo: int, hi: int, damage: list[Any]) -> Iterator[RecordedMessage]:
    """The chunks the index names, merged in time order, one chunk at a time: what is older than the next
    chunk's first message goes out, the rest waits to be merged with that chunk. Chunks overlap in time a
    little (keyframes are written up to a second behind the newest message); merging two sorted runs with
    the list's own sort is done in C, where a heap cost a Python step per message."""
    import bisect
    import operator

    import zstandard

    zstd = zstandard.ZstdDecompressor()
    topics = {cid: ch.topic for cid, ch in summary.channels.items()}
    chunks = sorted((c for c in summary.chunk_indexes if c.message_end_time >= lo and c.message_start_time <= hi),
                    key=lambda c: (c.message_start_time, c.chunk_start_offset))
    by_time = operator.attrgetter("time")
    carry: list[RecordedMessage] = []
    for k, chunk in enumerate(chunks):
        messages = _decode_chunk(buf, chunk, topics, lo, hi, zstd, damage)  # sorted by time
        if carry:
            messages = carry + messages
            messages.sort(key=by_time)  # stable: at equal times the earlier chunk's first, as written
        if k + 1 == len(chunks):
            yield from messages
            return
        cut = bisect.bisect_left(messages, chunks[k + 1].message_start_time / NS, key=by_time)
        yield from messages[:cut]
        carry = messages[cut:]
    yield from carry


def _decode_chunk(buf: Any, index: Any, topics: dict[int, str], lo: int, hi: int, zstd: Any,
                  damage: list[Any]) -> list[RecordedMessage]:
    """One chunk's messages in [lo, hi], sorted by time, CRC-checked: the replay's hot loop (struct on the raw
    records, ~1 µs a message; the mcap library's general reader spends ~6 µs). A damaged chunk is skipped."""
    unpack_from = struct.unpack_from
    pos, end = index.chunk_start_offset, index.chunk_start_offset + index.chunk_length
    try:
        if end > len(buf) or buf[pos] != mcap_file.OP_CHUNK or unpack_from("<Q", buf, pos + 1)[0] != end - pos - 9:
            raise mcap_file.MalformedError("the index points at no chunk")
        head = mcap_file.parse_chunk_head(buf, pos + 9, end)
        body = mcap_file.chunk_records(buf, head, zstd)
    except (mcap_file.MalformedError, struct.error) as exc:
        lost = mcap_file.Damage(pos, index.chunk_length, str(exc), index.message_start_time, index.message_end_time)
        mcap_file.what_was_lost(buf, lost, pos, {pos: index})
        damage.append(lost)
        return []
    out: list[RecordedMessage] = []
    i, n = 0, len(body)
    ordered = True
    last = -1
    try:
        while i < n:
            op = body[i]
            (length,) = unpack_from("<Q", body, i + 1)
            content = i + 9
            if op == 0x05:  # Message: channel u16, sequence u32, log_time u64, publish_time u64, data
                channel, log_time = unpack_from("<H4xQ", body, content)
                if lo <= log_time <= hi:
                    topic = topics.get(channel)
                    if topic is not None:
                        data = body[content + 22:content + length]
                        if topic == OVERFLOW_TOPIC:  # tested inline: this loop runs for every message
                            out.append(RecordedMessage(*_unwrapped(topic, data), log_time / NS))
                        else:
                            out.append(RecordedMessage(topic, data, log_time / NS))
                        ordered = ordered and log_time >= last
                        last = log_time
            elif op == 0x04:  # a channel defined inside the chunk (writers with repeat_channels off)
                channel_record = mcap_file.parse_channel(body, content, content + length)
                topics.setdefault(channel_record.id, channel_record.topic)
            i = content + length
        if i != n:
            raise mcap_file.MalformedError("a record runs past the end of its chunk")
    except (mcap_file.MalformedError, struct.error) as exc:  # only when the chunk has no CRC to check
        lost = mcap_file.Damage(pos, index.chunk_length, f"chunk records damaged ({exc})",
                                index.message_start_time, index.message_end_time)
        mcap_file.what_was_lost(buf, lost, pos, {pos: index})
        damage.append(lost)
        return []
    if not ordered:
        out.sort(key=lambda m: m.time)
    return out


RECOVERY_METADATA = "twin-viewer-recovery"


def recover(broken: Path | str, fixed: Path | str) -> RecordingInfo:
    """Rewrite a cut-off or damaged recording with everything readable, a summary and an index.

    Every schema, channel (with its metadata), message (sequence, log and publish time to the nanosecond),
    attachment and metadata record that can be read is written unchanged; what was skipped is named in a
    metadata record ``twin-viewer-recovery`` and in the returned info."""
    from mcap.writer import CompressionType, Writer

    broken, fixed = Path(broken), Path(fixed)
    if broken.resolve() == fixed.resolve():
        raise RecordingError("write the recovered recording to a new file")
    try:
        buf = mcap_file.open_mapped(broken)
    except OSError as exc:
        raise RecordingError(f"cannot read {broken}: {exc.strerror}") from None
    if buf[:8] != mcap_file.MAGIC:
        raise RecordingError(f"{broken.name} is not an MCAP recording")
    info = RecordingInfo(broken)
    walk = mcap_file.Walk()
    profile, library = mcap_file.read_header(buf)
    try:
        with open(fixed, "wb") as f:
            writer = Writer(f, chunk_size=CHUNK_BYTES, compression=CompressionType.ZSTD, enable_data_crcs=True)
            writer.start(profile=profile, library=library)
            first, last, count = _copy_records(buf, walk, writer, info)
            _take_walk(info, walk)
            writer.add_metadata(RECOVERY_METADATA, {
                "recovered_from": broken.name, "note": info.problem or "complete",
                "skipped": "\n".join(d.describe() for d in walk.damage)})
            writer.finish()
    except OSError as exc:
        raise RecordingError(f"cannot write {fixed}: {exc.strerror}") from None
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    info.messages = count
    _set_span(info, first, last)
    return info


def _copy_records(buf: Any, walk: Any, writer: Any, info: RecordingInfo) -> tuple[int | None, int | None, int]:
    """Every readable record of ``buf`` into ``writer`` (ids renumbered, everything else unchanged)."""
    schemas: dict[int, Any] = {}
    schema_ids: dict[int, int] = {0: 0}
    channel_ids: dict[int, int] = {}
    first = last = None
    count = 0
    for record in mcap_file.walk(buf, walk):
        if isinstance(record, mcap_file.Message):
            cid = channel_ids.get(record.channel_id)
            if cid is None:
                walk.orphans += 1
                continue
            writer.add_message(cid, record.log_time, record.data, record.publish_time, record.sequence)
            first = record.log_time if first is None or record.log_time < first else first
            last = record.log_time if last is None or record.log_time > last else last
            count += 1
        elif isinstance(record, mcap_file.Schema):
            schemas.setdefault(record.id, record)
        elif isinstance(record, mcap_file.Channel):
            if record.id in channel_ids:
                continue
            if record.schema_id not in schema_ids:
                schema = schemas.get(record.schema_id)
                if schema is None:  # its schema record was lost: keep the channel, say it has none
                    info.notes.append(f"channel {record.topic!r}: its schema was lost")
                    schema_ids[record.schema_id] = 0
                else:
                    schema_ids[record.schema_id] = writer.register_schema(schema.name, schema.encoding, schema.data)
            channel_ids[record.id] = writer.register_channel(record.topic, record.message_encoding,
                                                             schema_ids[record.schema_id], record.metadata)
            info.channels[record.topic] = record.message_encoding
        elif isinstance(record, mcap_file.Attachment):
            writer.add_attachment(record.create_time, record.log_time, record.name, record.media_type, record.data)
            _take_record(info, record)
        elif isinstance(record, mcap_file.Metadata):
            writer.add_metadata(record.name, record.metadata)
            _take_record(info, record)
    return first, last, count


def import_log(source: Path | str, out: Path | str, *, layout_doc: dict[str, Any] | None = None) -> int:
    """Turn a plain log into a recording: CSV with ``timestamp,topic,payload`` or JSON lines with the same keys.

    Timestamps are seconds since the epoch or ISO 8601; payloads are text (JSON stays JSON). Returns the
    number of messages; a malformed line raises RecordingError naming the line.
    """
    import csv
    from datetime import datetime

    source = Path(source)

    def when(text: Any, line: int) -> float:
        try:
            return float(text)
        except (TypeError, ValueError):
            pass
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise RecordingError(f"{source.name}, line {line}: timestamp {text!r} is neither seconds nor "
                                 "ISO 8601") from None

    rows: list[tuple[float, str, bytes]] = []
    with open(source, encoding="utf-8", newline="") as f:
        if source.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                    payload = item["payload"]
                    topic = str(item["topic"])
                except (ValueError, KeyError, TypeError):
                    raise RecordingError(f"{source.name}, line {line}: expected an object with timestamp, topic "
                                         "and payload") from None
                data = payload if isinstance(payload, str) else json.dumps(payload)
                rows.append((when(item.get("timestamp"), line), topic, data.encode()))
        else:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"timestamp", "topic", "payload"} <= set(reader.fieldnames):
                raise RecordingError(f"{source.name}: the header must name timestamp, topic and payload")
            for line, row in enumerate(reader, 2):
                rows.append((when(row["timestamp"], line), row["topic"], (row["payload"] or "").encode()))
    rows.sort(key=lambda r: r[0])
    recorder = Recorder(out, layout_doc=layout_doc, broker=f"imported from {source.name}",
                        queue_limit=len(rows) + 10, encodings=lambda topic: "json" if _looks_json(rows, topic)
                        else "text")
    recorder.start()
    for t, topic, payload in rows:
        recorder.message(topic, payload, t)
    recorder.stop()
    return len(rows)


def _looks_json(rows: list[tuple[float, str, bytes]], topic: str) -> bool:
    for _t, tp, payload in rows:
        if tp == topic:
            return payload[:1] in (b"{", b"[")
    return False


def layout_matches(info: RecordingInfo, layout_doc: dict[str, Any] | None) -> str | None:
    """None when the layout is the one recorded; otherwise what differs, for the status bar."""
    recorded = info.metadata.get("layout_sha256")
    if not recorded:
        return "the recording does not name its layout"
    if layout_doc is None:
        return "the recorded layout is missing"
    mine = hashlib.sha256(json.dumps(layout_doc, indent=1).encode()).hexdigest()
    if mine != recorded:
        return f"the layout differs from the recorded one ({info.metadata.get('layout_name', '?')})"
    return None


def file_size(path: Path | str) -> int:
    return os.path.getsize(path)
