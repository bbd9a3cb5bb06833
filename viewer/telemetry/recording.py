"""Session recordings in MCAP: what the viewer received, byte for byte, plus what happened in the session.

File layout (MCAP, so other robotics tools open it too):

- one channel per MQTT topic (channel topic = the MQTT topic), payloads unchanged, ``log_time`` = the time
  the viewer received the message (ns since the Unix epoch); ``message_encoding`` is ``json`` for JSON
  bindings, ``sparkplug-b`` for Sparkplug B and ``text`` for numbers and plain text;
- the channel ``/twin-viewer/events`` (JSON): alarm life-cycle events, connection gaps, layout changes,
  operator marks and, when the disk could not keep up, how many messages were dropped and when;
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
import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EVENTS_TOPIC = "/twin-viewer/events"
METADATA_NAME = "twin-viewer"
LAYOUT_ATTACHMENT = "layout.json"
ANOMALY_ATTACHMENT = "anomaly-state.json"  # what the scorers had learned when recording began
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


class Recorder:
    """Writes one MCAP recording on its own thread (see the module docstring)."""

    def __init__(self, path: Path | str, *, layout_doc: dict[str, Any] | None = None,
                 layout_path: Path | str | None = None, broker: str = "",
                 encodings: Callable[[str], str] | None = None, queue_limit: int = QUEUE_LIMIT,
                 chunk_bytes: int = CHUNK_BYTES, compression: str = "zstd",
                 attachments: dict[str, bytes] | None = None) -> None:
        self.path = Path(path)
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
        self._writer = Writer(self._file, chunk_size=self._chunk_bytes, compression=compression)
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
            else:
                cid = self._writer.register_channel(topic, self._encodings(topic), 0, {"source": "mqtt"})
            self._channels[topic] = cid
        return cid

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
                    ns = int(received * NS)
                    writer.add_message(self._channel(topic), ns, payload, ns)
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
                    ns = int(self._drop_last * NS)
                    writer.add_message(self._channel(EVENTS_TOPIC), ns, json.dumps(record).encode(), ns)
                    self.stats.dropped = self._dropped
                now = time.monotonic()
                if now - last_flush >= FLUSH_EVERY_S:
                    writer.flush()  # closes the chunk: a killed process loses at most this second
                    last_flush = now
                if self._stop.is_set() and self._queue.empty():
                    break
            writer.finish()
        except OSError as exc:  # a full disk: keep what is written, say why
            self.error = f"recording stopped: {exc.strerror or exc}"
            log.error("%s: %s", self.path, self.error)
        finally:
            with contextlib.suppress(OSError):
                self._file.close()


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
    complete: bool = True  # False: cut off (no summary); read up to the last complete chunk
    problem: str = ""


def _records(path: Path) -> Iterator[Any]:
    """Every record of the file in order, stopping quietly at a cut-off (the caller learns it by ``complete``)."""
    from mcap.stream_reader import StreamReader

    with open(path, "rb") as f:
        reader = StreamReader(f, emit_chunks=False, validate_crcs=True)
        yield from reader.records


def scan(path: Path | str, on_message: Callable[[str, bytes, float], None] | None = None,
         progress: Callable[[float], None] | None = None,
         cancelled: Callable[[], bool] | None = None) -> RecordingInfo:
    """Read a whole recording in file order (also a cut-off one): its info, and each message to ``on_message``."""
    from mcap.records import Attachment, Channel, DataEnd, Footer, Message, Metadata

    path = Path(path)
    info = RecordingInfo(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None
    channels: dict[int, str] = {}
    first = last = None
    seen_end = False
    count = 0
    try:
        for record in _records(path):
            if isinstance(record, Message):
                topic = channels.get(record.channel_id)
                if topic is None:
                    continue
                t = record.log_time / NS
                first = t if first is None else min(first, t)
                last = t if last is None else max(last, t)
                count += 1
                if on_message is not None:
                    on_message(topic, record.data, t)
                if count % 20_000 == 0:
                    if progress is not None:
                        progress(min(count * 60 / max(size, 1), 0.99))
                    if cancelled is not None and cancelled():
                        raise InterruptedError("cancelled")
            elif isinstance(record, Channel):
                channels[record.id] = record.topic
                info.channels[record.topic] = record.message_encoding
            elif isinstance(record, Metadata) and record.name == METADATA_NAME:
                info.metadata = dict(record.metadata)
            elif isinstance(record, Attachment) and record.name == LAYOUT_ATTACHMENT:
                try:
                    info.layout_doc = json.loads(record.data)
                except ValueError:
                    info.problem = "the embedded layout is not valid JSON"
            elif isinstance(record, Attachment) and record.name == ANOMALY_ATTACHMENT:
                with contextlib.suppress(ValueError):
                    info.anomaly_state = json.loads(record.data)
            elif isinstance(record, (DataEnd, Footer)):
                seen_end = True
    except InterruptedError:
        raise
    except Exception as exc:
        info.problem = f"cut off or damaged after {count:,} messages ({type(exc).__name__}: {exc})"
        seen_end = False
    if count == 0 and not info.channels and not info.metadata:
        if not info.problem:
            info.problem = "no messages"
        if not _has_magic(path):
            raise RecordingError(f"{path} is not an MCAP recording")
    info.complete = seen_end
    if not seen_end and not info.problem:
        info.problem = f"cut off: no summary (read {count:,} messages up to the last complete chunk)"
    info.messages = count
    info.start = first or float(info.metadata.get("started", 0.0) or 0.0)
    info.end = last or info.start
    if progress is not None:
        progress(1.0)
    return info


def quick_info(path: Path | str) -> RecordingInfo:
    """Metadata, layout and time span from the summary (fast); a file without one is scanned."""
    from mcap.reader import make_reader

    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path} does not exist")
    if not _has_magic(path):
        raise RecordingError(f"{path.name} is not an MCAP recording")
    try:
        with open(path, "rb") as f:
            reader = make_reader(f)
            summary = reader.get_summary()
            if summary is None or summary.statistics is None:
                raise ValueError("no summary")
            info = RecordingInfo(path)
            for meta in reader.iter_metadata():
                if meta.name == METADATA_NAME:
                    info.metadata = dict(meta.metadata)
            for attachment in reader.iter_attachments():
                if attachment.name == LAYOUT_ATTACHMENT:
                    with contextlib.suppress(ValueError):
                        info.layout_doc = json.loads(attachment.data)
                elif attachment.name == ANOMALY_ATTACHMENT:
                    with contextlib.suppress(ValueError):
                        info.anomaly_state = json.loads(attachment.data)
            stats = summary.statistics
            info.messages = stats.message_count
            info.start, info.end = stats.message_start_time / NS, stats.message_end_time / NS
            info.channels = {c.topic: c.message_encoding for c in summary.channels.values()}
            return info
    except Exception:  # no usable summary: read it through
        return scan(path)


def default_recordings_dir() -> Path:
    """Where the Record button saves (``$TWIN_VIEWER_RECORDINGS`` or ~/twin-viewer-recordings)."""
    return Path(os.environ.get("TWIN_VIEWER_RECORDINGS") or Path.home() / "twin-viewer-recordings")


def _has_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89MCAP0\r\n"


def read_messages(path: Path | str, start: float | None = None, end: float | None = None) -> Iterator[RecordedMessage]:
    """Messages (events included) with start <= time <= end, in time order, using the index when there is one."""
    path = Path(path)
    fast = _chunk_plan(path, start, end)
    if fast is not None:
        yield from _read_chunks(path, *fast, start, end)
        return
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        reader = make_reader(f)
        kwargs = {}
        if start is not None:
            kwargs["starting_at"] = int(start * NS)
        if end is not None:
            kwargs["ending_at"] = int(end * NS)
        for _schema, channel, message in reader.iter_messages(**kwargs):
            yield RecordedMessage(channel.topic, message.data, message.log_time / NS)


def _chunk_plan(path: Path, start: float | None, end: float | None) -> tuple[list[Any], dict[int, str]] | None:
    """The chunks to read, in order, when the file's chunks follow each other in time (ours always do);
    None sends the caller to the mcap library's general reader (overlapping chunks, no summary)."""
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
    except Exception:  # no summary (cut off): the general reader reports it
        return None
    if summary is None or not summary.chunk_indexes:
        return None
    chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
    for a, b in itertools.pairwise(chunks):
        if b.message_start_time < a.message_end_time:
            return None
    lo = None if start is None else int(start * NS)
    hi = None if end is None else int(end * NS)
    chunks = [c for c in chunks
              if (lo is None or c.message_end_time >= lo) and (hi is None or c.message_start_time <= hi)]
    return chunks, {cid: ch.topic for cid, ch in summary.channels.items()}


def _read_chunks(path: Path, chunks: list[Any], topics: dict[int, str], start: float | None,
                 end: float | None) -> Iterator[RecordedMessage]:
    """Decompress each chunk and walk its records with struct: the replay's hot loop (the mcap library's
    general reader spends ~6 µs a message ordering and copying; this ~1 µs)."""
    import struct

    import zstandard

    unpack_from = struct.unpack_from
    zstd = zstandard.ZstdDecompressor()
    lo = -1 if start is None else int(start * NS)
    hi = 1 << 63 if end is None else int(end * NS)
    with open(path, "rb") as f:
        for chunk in chunks:
            f.seek(chunk.chunk_start_offset)
            raw = f.read(chunk.chunk_length)
            # opcode u8, record length u64, then: start u64, end u64, uncompressed size u64, crc u32,
            # compression string (u32 length + bytes), records (u64 length + bytes)
            pos = 9 + 28
            (clen,) = unpack_from("<I", raw, pos)
            compression = raw[pos + 4:pos + 4 + clen].decode()
            pos += 4 + clen
            (rlen,) = unpack_from("<Q", raw, pos)
            body = raw[pos + 8:pos + 8 + rlen]
            (usize,) = unpack_from("<Q", raw, 9 + 16)
            if compression == "zstd":
                body = zstd.decompress(body, max_output_size=usize)
            elif compression == "lz4":
                import lz4.frame

                body = lz4.frame.decompress(body)
            elif compression:
                raise RecordingError(f"unknown chunk compression {compression!r}")
            out: list[RecordedMessage] = []
            i, n = 0, len(body)
            ordered = True
            last = -1
            while i < n:
                op = body[i]
                (length,) = unpack_from("<Q", body, i + 1)
                content = i + 9
                if op == 0x05:  # Message: channel u16, sequence u32, log_time u64, publish_time u64, data
                    channel, log_time = unpack_from("<H4xQ", body, content)
                    if lo <= log_time <= hi:
                        topic = topics.get(channel)
                        if topic is not None:
                            out.append(RecordedMessage(topic, body[content + 22:content + length], log_time / NS))
                            ordered = ordered and log_time >= last
                            last = log_time
                i = content + length
            if not ordered:
                out.sort(key=lambda m: m.time)
            yield from out


def recover(broken: Path | str, fixed: Path | str) -> RecordingInfo:
    """Rewrite a cut-off recording with everything readable, a summary and an index."""
    from mcap.writer import CompressionType, Writer

    broken, fixed = Path(broken), Path(fixed)
    if broken.resolve() == fixed.resolve():
        raise RecordingError("write the recovered recording to a new file")
    messages: list[tuple[str, bytes, float]] = []
    info = scan(broken, lambda topic, payload, t: messages.append((topic, payload, t)))
    with open(fixed, "wb") as f:
        writer = Writer(f, chunk_size=CHUNK_BYTES, compression=CompressionType.ZSTD)
        writer.start(profile="", library=f"twin-viewer {_version()} (recovered)")
        if info.layout_doc is not None:
            stamp = int(info.start * NS)
            writer.add_attachment(stamp, stamp, LAYOUT_ATTACHMENT, "application/json",
                                  json.dumps(info.layout_doc, indent=1).encode())
        writer.add_metadata(METADATA_NAME, info.metadata | {"recovered_from": broken.name,
                                                            "recovered_note": info.problem or "complete"})
        ids: dict[str, int] = {}
        for topic, payload, t in messages:
            cid = ids.get(topic)
            if cid is None:
                cid = ids[topic] = writer.register_channel(topic, info.channels.get(topic, "text"), 0, {})
            writer.add_message(cid, int(t * NS), payload, int(t * NS))
        writer.finish()
    return info


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
