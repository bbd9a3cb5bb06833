"""A tolerant MCAP reader: every record the file still holds, every damaged stretch named.

The mcap library reads well-formed files; a recording from a control room may be cut off by a power
failure or damaged on a disk. This reader walks the file record by record and checks what MCAP lets it
check: record lengths against the file, chunk sizes and CRCs, attachment CRCs and the summary CRC. A
damaged chunk is skipped by its own length field when that is plausible, otherwise by the next chunk
the (CRC-checked) summary indexes, otherwise by the next place where two records in a row parse; each
skip becomes a :class:`Damage` with its offsets and, where the file still says, its time range and how
many messages it held. Nothing is decoded beyond MCAP's own framing: payloads stay bytes.

The format is the one of https://mcap.dev/spec (version 0): magic, records of ``opcode u8, length u64,
content``; strings are ``u32 length + UTF-8``, maps ``u32 byte length + key/value strings``.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_MESSAGE_INDEX, OP_CHUNK_INDEX, OP_ATTACHMENT, OP_ATTACHMENT_INDEX = 0x07, 0x08, 0x09, 0x0A
OP_STATISTICS, OP_METADATA, OP_METADATA_INDEX, OP_SUMMARY_OFFSET, OP_DATA_END = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
COMPRESSIONS = ("", "zstd", "lz4")
MAX_CHUNK_BYTES = 1 << 31  # an uncompressed chunk claiming more is damage, not data (ours are 512 KiB)
FOOTER_BYTES = 1 + 8 + 20  # opcode, length, summary_start u64, summary_offset_start u64, summary_crc u32

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_RECORD = struct.Struct("<BQ")
_MESSAGE = struct.Struct("<HIQQ")
_CHUNK_HEAD = struct.Struct("<QQQI")


class MalformedError(ValueError):
    """A record whose fields do not fit in it."""


@dataclass(slots=True)
class Schema:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(slots=True)
class Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass(slots=True)
class Message:
    channel_id: int
    sequence: int
    log_time: int  # ns, exactly as written
    publish_time: int
    data: bytes


@dataclass(slots=True)
class Attachment:
    log_time: int
    create_time: int
    name: str
    media_type: str
    data: bytes


@dataclass(slots=True)
class Metadata:
    name: str
    metadata: dict[str, str]


@dataclass(slots=True)
class ChunkIndex:
    message_start_time: int
    message_end_time: int
    chunk_start_offset: int
    chunk_length: int
    compression: str
    message_index_offsets: dict[int, int] = field(default_factory=dict)  # channel id -> its message index


@dataclass(slots=True)
class Damage:
    """A stretch of the file that could not be read, and what the file still says it held."""

    offset: int
    length: int
    what: str  # why it was skipped, e.g. "chunk CRC mismatch"
    start_ns: int | None = None  # time range of the skipped messages, when known
    end_ns: int | None = None
    messages: int | None = None  # how many messages it held, when the message indexes say

    def describe(self) -> str:
        text = f"bytes {self.offset:,}-{self.offset + self.length:,}: {self.what}"
        if self.messages is not None:
            text += f", {self.messages:,} messages lost"
        if self.start_ns is not None and self.end_ns is not None:
            text += f" ({_utc(self.start_ns)} to {_utc(self.end_ns)} UTC)"
        return text


def _utc(ns: int) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"


@dataclass
class Summary:
    """The summary section, when the footer points at one and its CRC holds."""

    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    chunk_indexes: list[ChunkIndex] = field(default_factory=list)
    attachments: list[tuple[int, int, str]] = field(default_factory=list)  # offset, length, name
    metadata: list[tuple[int, int, str]] = field(default_factory=list)  # offset, length, name
    message_count: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None


# --- field readers ----------------------------------------------------------------------------------------
def _string(buf: bytes | mmap.mmap, pos: int, end: int) -> tuple[str, int]:
    if pos + 4 > end:
        raise MalformedError("string length past the record")
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    if pos + n > end:
        raise MalformedError("string past the record")
    try:
        return bytes(buf[pos:pos + n]).decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise MalformedError("a string is not UTF-8") from None


def _map(buf: bytes | mmap.mmap, pos: int, end: int) -> tuple[dict[str, str], int]:
    if pos + 4 > end:
        raise MalformedError("map length past the record")
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    stop = pos + n
    if stop > end:
        raise MalformedError("map past the record")
    out: dict[str, str] = {}
    while pos < stop:
        key, pos = _string(buf, pos, stop)
        value, pos = _string(buf, pos, stop)
        out[key] = value
    return out, stop


def parse_schema(buf: bytes | mmap.mmap, pos: int, end: int) -> Schema:
    if pos + 2 > end:
        raise MalformedError("schema too short")
    (sid,) = _U16.unpack_from(buf, pos)
    name, pos = _string(buf, pos + 2, end)
    encoding, pos = _string(buf, pos, end)
    if pos + 4 > end:
        raise MalformedError("schema data length past the record")
    (n,) = _U32.unpack_from(buf, pos)
    if pos + 4 + n > end:
        raise MalformedError("schema data past the record")
    return Schema(sid, name, encoding, bytes(buf[pos + 4:pos + 4 + n]))


def parse_channel(buf: bytes | mmap.mmap, pos: int, end: int) -> Channel:
    if pos + 4 > end:
        raise MalformedError("channel too short")
    cid, schema_id = struct.unpack_from("<HH", buf, pos)
    topic, pos = _string(buf, pos + 4, end)
    encoding, pos = _string(buf, pos, end)
    metadata, pos = _map(buf, pos, end)
    return Channel(cid, schema_id, topic, encoding, metadata)


def parse_message(buf: bytes | mmap.mmap, pos: int, end: int) -> Message:
    if pos + _MESSAGE.size > end:
        raise MalformedError("message too short")
    channel, sequence, log_time, publish_time = _MESSAGE.unpack_from(buf, pos)
    return Message(channel, sequence, log_time, publish_time, bytes(buf[pos + _MESSAGE.size:end]))


def parse_attachment(buf: bytes | mmap.mmap, pos: int, end: int) -> Attachment:
    start = pos
    if pos + 16 > end:
        raise MalformedError("attachment too short")
    log_time, create_time = struct.unpack_from("<QQ", buf, pos)
    name, pos = _string(buf, pos + 16, end)
    media_type, pos = _string(buf, pos, end)
    if pos + 8 > end:
        raise MalformedError("attachment data length past the record")
    (n,) = _U64.unpack_from(buf, pos)
    pos += 8
    if pos + n + 4 > end:
        raise MalformedError("attachment data past the record")
    data = bytes(buf[pos:pos + n])
    (crc,) = _U32.unpack_from(buf, pos + n)
    if crc and zlib.crc32(buf[start:pos + n]) != crc:
        raise MalformedError(f"attachment {name!r}: CRC mismatch")
    return Attachment(log_time, create_time, name, media_type, data)


def parse_metadata(buf: bytes | mmap.mmap, pos: int, end: int) -> Metadata:
    name, pos = _string(buf, pos, end)
    metadata, _ = _map(buf, pos, end)
    return Metadata(name, metadata)


def parse_header(buf: bytes | mmap.mmap, pos: int, end: int) -> tuple[str, str]:
    profile, pos = _string(buf, pos, end)
    library, _ = _string(buf, pos, end)
    return profile, library


@dataclass(slots=True)
class ChunkHead:
    start_ns: int
    end_ns: int
    uncompressed_size: int
    crc: int
    compression: str
    body: int  # offset of the compressed records
    body_length: int


def parse_chunk_head(buf: bytes | mmap.mmap, pos: int, end: int) -> ChunkHead:
    """The chunk's fixed fields; MalformedError when they cannot describe a real chunk."""
    if pos + _CHUNK_HEAD.size + 4 > end:
        raise MalformedError("chunk too short")
    start_ns, end_ns, usize, crc = _CHUNK_HEAD.unpack_from(buf, pos)
    compression, p = _string(buf, pos + _CHUNK_HEAD.size, end)
    if compression not in COMPRESSIONS:
        raise MalformedError(f"unknown chunk compression {compression[:20]!r}")
    if p + 8 > end:
        raise MalformedError("chunk records length past the record")
    (n,) = _U64.unpack_from(buf, p)
    if p + 8 + n != end:
        raise MalformedError("chunk records do not fill the chunk")
    if usize > MAX_CHUNK_BYTES or (not compression and usize != n):
        raise MalformedError(f"chunk claims {usize:,} uncompressed bytes")
    return ChunkHead(start_ns, end_ns, usize, crc, compression, p + 8, n)


def chunk_records(buf: bytes | mmap.mmap, head: ChunkHead, zstd: object | None = None) -> bytes:
    """The chunk's uncompressed records, size and CRC checked (MalformedError says which check failed)."""
    raw = buf[head.body:head.body + head.body_length]
    try:
        if head.compression == "zstd":
            if zstd is None:
                import zstandard

                zstd = zstandard.ZstdDecompressor()
            body = zstd.decompress(raw, max_output_size=head.uncompressed_size)  # type: ignore[attr-defined]
        elif head.compression == "lz4":
            import lz4.frame

            body = lz4.frame.decompress(raw)
        else:
            body = bytes(raw)
    except Exception as exc:  # zstd and lz4 raise their own error types for damaged frames
        raise MalformedError(f"chunk does not decompress ({type(exc).__name__}: {str(exc)[:80]})") from None
    if len(body) != head.uncompressed_size:
        raise MalformedError(f"chunk decompresses to {len(body):,} bytes, not {head.uncompressed_size:,}")
    if head.crc and zlib.crc32(body) != head.crc:
        raise MalformedError("chunk CRC mismatch")
    return body


# --- the summary ------------------------------------------------------------------------------------------
def read_summary(buf: bytes | mmap.mmap) -> Summary | None:
    """The summary section, or None: no footer, no summary, or a summary whose CRC fails."""
    size = len(buf)
    if size < 8 + 8 + FOOTER_BYTES or buf[size - 8:] != MAGIC or buf[:8] != MAGIC:
        return None
    fpos = size - 8 - FOOTER_BYTES
    op, length = _RECORD.unpack_from(buf, fpos)
    if op != OP_FOOTER or length != 20:
        return None
    summary_start, _offsets, crc = struct.unpack_from("<QQI", buf, fpos + 9)
    if summary_start == 0 or not 8 <= summary_start <= fpos:
        return None
    if crc and zlib.crc32(buf[summary_start:fpos + 9 + 16]) != crc:
        return None
    out = Summary()
    pos = summary_start
    try:
        while pos < fpos:
            op, length = _RECORD.unpack_from(buf, pos)
            content, end = pos + 9, pos + 9 + length
            if end > fpos:
                return None
            if op == OP_SCHEMA:
                schema = parse_schema(buf, content, end)
                out.schemas[schema.id] = schema
            elif op == OP_CHANNEL:
                channel = parse_channel(buf, content, end)
                out.channels[channel.id] = channel
            elif op == OP_CHUNK_INDEX:
                start_ns, end_ns, offset, clen = struct.unpack_from("<QQQQ", buf, content)
                (n,) = _U32.unpack_from(buf, content + 32)
                if content + 36 + n > end or n % 10:
                    return None
                index_offsets = dict(struct.iter_unpack("<HQ", buf[content + 36:content + 36 + n]))
                p = content + 36 + n + 8  # past the message index offsets map and its length
                compression, _ = _string(buf, p, end)
                out.chunk_indexes.append(ChunkIndex(start_ns, end_ns, offset, clen, compression, index_offsets))
            elif op == OP_ATTACHMENT_INDEX:
                offset, alen = struct.unpack_from("<QQ", buf, content)
                name, _ = _string(buf, content + 8 * 5, end)
                out.attachments.append((offset, alen, name))
            elif op == OP_METADATA_INDEX:
                offset, mlen = struct.unpack_from("<QQ", buf, content)
                name, _ = _string(buf, content + 16, end)
                out.metadata.append((offset, mlen, name))
            elif op == OP_STATISTICS:
                (count,) = _U64.unpack_from(buf, content)
                start_ns, end_ns = struct.unpack_from("<QQ", buf, content + 8 + 2 + 4 * 4)
                out.message_count, out.start_ns, out.end_ns = count, start_ns, end_ns
            pos = end
    except (MalformedError, struct.error):
        return None
    return out


def read_indexed(buf: bytes | mmap.mmap, offset: int, length: int, op: int) -> Attachment | Metadata:
    """The attachment or metadata record an index points at (MalformedError when it is not one)."""
    if offset + length > len(buf) or length < 9 or buf[offset] != op:
        raise MalformedError("the index points at no such record")
    (n,) = _U64.unpack_from(buf, offset + 1)
    if 9 + n != length:
        raise MalformedError("the record's length differs from its index")
    parse = parse_attachment if op == OP_ATTACHMENT else parse_metadata
    return parse(buf, offset + 9, offset + length)


def read_message_index(buf: bytes | mmap.mmap, offset: int, channel_id: int) -> list[tuple[int, int]]:
    """(log_time, offset in the chunk's records) of one channel's messages in one chunk, from the message index
    record at ``offset`` (MalformedError when there is none, or it is another channel's)."""
    if offset + 9 + 2 + 4 > len(buf) or buf[offset] != OP_MESSAGE_INDEX:
        raise MalformedError("the chunk index points at no message index")
    (length,) = _U64.unpack_from(buf, offset + 1)
    (channel,) = _U16.unpack_from(buf, offset + 9)
    (n,) = _U32.unpack_from(buf, offset + 11)
    if channel != channel_id or 2 + 4 + n != length or offset + 9 + length > len(buf) or n % 16:
        raise MalformedError("a message index that does not fit its record")
    start = offset + 15
    return list(struct.iter_unpack("<QQ", buf[start:start + n]))


def read_chunk_message(buf: bytes | mmap.mmap, index: ChunkIndex, offset: int, zstd: object | None = None) -> Message:
    """The message at ``offset`` in the records of the chunk ``index`` names, CRC-checked with its chunk."""
    pos, end = index.chunk_start_offset, index.chunk_start_offset + index.chunk_length
    if end > len(buf) or buf[pos] != OP_CHUNK or _U64.unpack_from(buf, pos + 1)[0] != end - pos - 9:
        raise MalformedError("the index points at no chunk")
    body = chunk_records(buf, parse_chunk_head(buf, pos + 9, end), zstd)
    if offset + 9 > len(body) or body[offset] != OP_MESSAGE:
        raise MalformedError("the message index points at no message")
    (length,) = _U64.unpack_from(body, offset + 1)
    if offset + 9 + length > len(body):
        raise MalformedError("a message runs past the end of its chunk")
    return parse_message(body, offset + 9, offset + 9 + length)


def data_section_intact(buf: bytes | mmap.mmap, summary: Summary | None) -> bool | None:
    """Whether the data section's CRC holds (it covers records that have no CRC of their own: the header,
    metadata, message indexes); None when the file does not carry one."""
    if summary is None:
        return None
    size = len(buf)
    (summary_start,) = _U64.unpack_from(buf, size - 8 - FOOTER_BYTES + 9)
    pos = summary_start - 13
    if pos < 8 or buf[pos] != OP_DATA_END or _U64.unpack_from(buf, pos + 1)[0] != 4:
        return None
    (crc,) = _U32.unpack_from(buf, pos + 9)
    if not crc:
        return None
    return zlib.crc32(buf[:pos]) == crc


def read_header(buf: bytes | mmap.mmap) -> tuple[str, str]:
    """The header's profile and library ("" for both when the header is damaged)."""
    try:
        op, length = _RECORD.unpack_from(buf, 8)
        if op == OP_HEADER and 17 + length <= len(buf):
            return parse_header(buf, 17, 17 + length)
    except (MalformedError, struct.error):
        pass
    return "", ""


def open_mapped(path: Path) -> mmap.mmap | bytes:
    """The file mapped read-only (an empty file as empty bytes: mmap refuses those)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


# --- the tolerant walk ------------------------------------------------------------------------------------
@dataclass
class Walk:
    """What :func:`walk` found besides the records it yields."""

    profile: str = ""
    library: str = ""
    summary: Summary | None = None
    damage: list[Damage] = field(default_factory=list)
    data_end: bool = False  # the data section's end was reached (the file was finished)
    summary_problem: str = ""  # the file has a summary that cannot be used (the data was read without it)
    data_crc_failed: bool = False  # the data section's CRC fails: some record, maybe one without a CRC, is damaged
    orphans: int = 0  # messages on a channel no readable record defines


def walk(buf: bytes | mmap.mmap, state: Walk | None = None) -> Iterator[Schema | Channel | Message | Attachment
                                                                         | Metadata]:
    """Every readable schema, channel, message, attachment and metadata record in file order; damage and the
    rest go to ``state``. Channels and schemas of the summary are yielded first (when it holds them), so a
    message whose channel record was in a damaged chunk still has its topic."""
    state = state if state is not None else Walk()
    size = len(buf)
    if buf[:8] != MAGIC:
        raise MalformedError("not an MCAP file (no magic at the start)")
    state.summary = summary = read_summary(buf)
    if summary is None and size >= 16 and buf[size - 8:] == MAGIC:
        state.summary_problem = "the summary is damaged (its CRC or framing fails): read without it"
    data_end = size
    if summary is not None:
        yield from summary.schemas.values()
        yield from summary.channels.values()
    known = {c.id for c in summary.channels.values()} if summary else set()
    resume = sorted(c.chunk_start_offset for c in summary.chunk_indexes) if summary else []
    chunks_at = {c.chunk_start_offset: c for c in summary.chunk_indexes} if summary else {}
    pos = 8
    while pos < data_end:
        if pos + 9 > data_end:
            state.damage.append(Damage(pos, data_end - pos, "cut off inside a record"))
            break
        op, length = _RECORD.unpack_from(buf, pos)
        content, end = pos + 9, pos + 9 + length
        problem = ""
        if end > data_end:
            problem = "a record's length runs past the end of the file"
        else:
            try:
                if op == OP_CHUNK:
                    yield from _chunk(buf, pos, content, end, state, known)
                elif op in (OP_DATA_END, OP_FOOTER):  # the footer: a writer without a data-end record
                    state.data_end = True
                    if op == OP_DATA_END and length >= 4:
                        (crc,) = _U32.unpack_from(buf, content)
                        state.data_crc_failed = bool(crc) and zlib.crc32(buf[:pos]) != crc
                    break
                else:
                    yield from _record(buf, op, content, end, state, known)
            except MalformedError as exc:
                problem = str(exc)
            except struct.error:
                problem = "a record's fields do not fit in it"
        if not problem:
            pos = end
            continue
        # damaged: skip to the next place the file can be read from again
        nxt = _resume_at(buf, pos, end, data_end, resume, op)
        if nxt == data_end and end > data_end:
            problem = "cut off: the file ends inside this record"
        damage = Damage(pos, nxt - pos, problem)
        what_was_lost(buf, damage, pos, chunks_at)
        state.damage.append(damage)
        pos = nxt


def _record(buf: bytes | mmap.mmap, op: int, content: int, end: int, state: Walk,
            known: set[int]) -> Iterator[Schema | Channel | Message | Attachment | Metadata]:
    if op == OP_MESSAGE:
        message = parse_message(buf, content, end)
        if message.channel_id in known:
            yield message
        else:
            state.orphans += 1
    elif op == OP_CHANNEL:
        channel = parse_channel(buf, content, end)
        known.add(channel.id)
        yield channel
    elif op == OP_SCHEMA:
        yield parse_schema(buf, content, end)
    elif op == OP_ATTACHMENT:
        yield parse_attachment(buf, content, end)
    elif op == OP_METADATA:
        yield parse_metadata(buf, content, end)
    elif op == OP_HEADER:
        state.profile, state.library = parse_header(buf, content, end)
    elif op in (OP_MESSAGE_INDEX, OP_CHUNK_INDEX, OP_ATTACHMENT_INDEX, OP_STATISTICS, OP_METADATA_INDEX,
                OP_SUMMARY_OFFSET) or op >= 0x80:
        pass  # indexes are rebuilt from what is read; 0x80 and up are private records, skipped by length
    else:
        raise MalformedError(f"unknown record opcode 0x{op:02x}")


def _chunk(buf: bytes | mmap.mmap, pos: int, content: int, end: int, state: Walk,
           known: set[int]) -> Iterator[Schema | Channel | Message]:
    head = parse_chunk_head(buf, content, end)
    body = chunk_records(buf, head)
    # check the whole chunk before yielding from it: a chunk is lost or kept whole
    out: list[Schema | Channel | Message] = []
    i, n = 0, len(body)
    while i < n:
        if i + 9 > n:
            raise MalformedError("chunk records cut off")
        op, length = _RECORD.unpack_from(body, i)
        content_i, end_i = i + 9, i + 9 + length
        if end_i > n:
            raise MalformedError("a record runs past the end of its chunk")
        if op == OP_MESSAGE:
            message = parse_message(body, content_i, end_i)
            if message.channel_id in known:
                out.append(message)
            else:
                state.orphans += 1
        elif op == OP_CHANNEL:
            channel = parse_channel(body, content_i, end_i)
            known.add(channel.id)
            out.append(channel)
        elif op == OP_SCHEMA:
            out.append(parse_schema(body, content_i, end_i))
        i = end_i
    yield from out


def _plausible_chunk_start(buf: bytes | mmap.mmap, pos: int, data_end: int | None = None,
                           ignore_length: bool = False) -> bool:
    """Does a chunk record start at ``pos``? (opcode, a length that fits, a known compression, records that
    fill the record exactly: a random byte run passes this about once in 10^15.)"""
    size = len(buf) if data_end is None else data_end
    if pos + 9 + _CHUNK_HEAD.size + 4 > size or buf[pos] != OP_CHUNK:
        return False
    (length,) = _U64.unpack_from(buf, pos + 1)
    end = pos + 9 + length
    if ignore_length:
        try:
            compression, _ = _string(buf, pos + 9 + _CHUNK_HEAD.size, size)
        except MalformedError:
            return False
        return compression in COMPRESSIONS
    if end > size:
        return False
    try:
        parse_chunk_head(buf, pos + 9, end)
    except (MalformedError, struct.error):
        return False
    return True


def _plausible_record(buf: bytes | mmap.mmap, pos: int, data_end: int) -> bool:
    """A record starts at ``pos`` and another right after it (or the file ends there)."""
    for _ in range(2):
        if pos + 9 > data_end:
            return False
        op, length = _RECORD.unpack_from(buf, pos)
        if not (OP_HEADER <= op <= OP_DATA_END) or pos + 9 + length > data_end:
            return False
        if op == OP_CHUNK:
            return _plausible_chunk_start(buf, pos, data_end)
        if op == OP_FOOTER:
            return length == 20
        pos += 9 + length
        if pos == data_end:
            return True
    return True


def _resume_at(buf: bytes | mmap.mmap, pos: int, end: int, data_end: int, resume: list[int], op: int) -> int:
    """Where reading goes on after damage at ``pos``: the record's own end when records parse there, else the
    first offset before the next indexed chunk where a chunk, attachment or metadata record parses, else that
    chunk, else the end of the file."""
    import bisect

    if pos < end < data_end and OP_HEADER <= op <= OP_DATA_END and _plausible_record(buf, end, data_end):
        return end
    i = bisect.bisect_right(resume, pos)
    limit = resume[i] if i < len(resume) else data_end
    p = pos + 1
    while p < limit:
        hits = [h for h in (buf.find(bytes([o]), p, limit) for o in (OP_CHUNK, OP_ATTACHMENT, OP_METADATA,
                                                                       OP_DATA_END)) if h >= 0]
        if not hits:
            break
        p = min(hits)
        if _strong_record(buf, p, data_end):
            return p
        p += 1
    return limit


def _strong_record(buf: bytes | mmap.mmap, p: int, data_end: int) -> bool:
    """A record that checks out beyond its framing: a chunk's fields fill it exactly, an attachment's CRC holds,
    a metadata record parses and another record follows, a data-end record has its fixed length."""
    op = buf[p]
    if op == OP_CHUNK:
        return _plausible_chunk_start(buf, p, data_end)
    if p + 9 > data_end:
        return False
    (length,) = _U64.unpack_from(buf, p + 1)
    end = p + 9 + length
    if end > data_end:
        return False
    try:
        if op == OP_ATTACHMENT:
            (crc,) = _U32.unpack_from(buf, end - 4)
            parse_attachment(buf, p + 9, end)
            return crc != 0
        if op == OP_METADATA:
            parse_metadata(buf, p + 9, end)
            return _plausible_record(buf, end, data_end)
        if op == OP_DATA_END:
            return length == 4
    except (MalformedError, struct.error):
        return False
    return False


def what_was_lost(buf: bytes | mmap.mmap, damage: Damage, pos: int, chunks_at: dict[int, ChunkIndex]) -> None:
    """Fill in the time range and message count of a damaged stretch from what the file still says: the
    summary's chunk index, else the chunk's own header, and the message indexes that follow the chunk."""
    index = chunks_at.get(pos)
    end = pos + damage.length
    if index is not None:
        damage.start_ns, damage.end_ns = index.message_start_time, index.message_end_time
        end = pos + index.chunk_length
    elif len(buf) >= pos + 9 + 16 and buf[pos] == OP_CHUNK:
        start_ns, end_ns = struct.unpack_from("<QQ", buf, pos + 9)
        if start_ns <= end_ns:
            damage.start_ns, damage.end_ns = start_ns, end_ns
    # message indexes right after the chunk: channel u16, then (log_time u64, offset u64) pairs
    count, p, seen = 0, end, False
    while p + 9 <= len(buf) and buf[p] == OP_MESSAGE_INDEX:
        (length,) = _U64.unpack_from(buf, p + 1)
        if length < 6 or p + 9 + length > len(buf):
            break
        (n,) = _U32.unpack_from(buf, p + 9 + 2)
        if n % 16 or n + 6 != length:
            break
        count += n // 16
        seen = True
        p += 9 + length
    if seen:
        damage.messages = count
