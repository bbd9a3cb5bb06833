"""The Sparkplug B ``Payload`` protobuf codec (Eclipse Tahu ``sparkplug_b.proto``, proto2), by hand.

Wire-format reminders used below: a tag is ``field_number << 3 | wire_type``; wire types are
0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, never occur in Sparkplug).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from viewer.telemetry.sparkplug.topic import REBIRTH_METRIC, MessageType, format_topic

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


# --------------------------------------------------------------------------------------------------
# Datatypes and message types
# --------------------------------------------------------------------------------------------------


class DataType(enum.IntEnum):
    """Sparkplug B metric datatypes (the ``DataType`` enum of ``sparkplug_b.proto``)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


# Indexing a tuple is several times cheaper than calling DataType(code) on the hot path.
_DATATYPES: tuple[DataType, ...] = tuple(DataType)


def _as_datatype(code: int | None) -> DataType:
    if code is not None and 0 <= code < len(_DATATYPES):
        return _DATATYPES[code]
    return DataType.UNKNOWN




# Metric value as the viewer sees it. DataSet/Template values are not decoded: they stay the raw
# bytes of the nested protobuf message. Array datatypes decode to tuples; DateTime is epoch ms.
MetricValue = int | float | bool | str | bytes | tuple[int | float | bool | str, ...] | None



# --------------------------------------------------------------------------------------------------
# Payload data
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Metric:
    """One ``Payload.Metric``.

    ``datatype`` is the wire code (compare with :class:`DataType`), ``None`` when the message left
    it out, as DATA messages may. ``value`` is converted by ``datatype`` when it is known; without
    one it is the wire value (unsigned ints as sent), which the tracker converts with the datatype
    from the BIRTH. ``value_field`` is the protobuf field number that carried the value (10..19; 0
    for none) and is what makes that later conversion possible.
    """

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    value: MetricValue = None
    is_null: bool = False
    is_historical: bool = False
    is_transient: bool = False
    value_field: int = 0


@dataclass(slots=True)
class Payload:
    """One Sparkplug B ``Payload``: timestamps in ms since the Unix epoch (UTC), ``seq`` 0..255."""

    timestamp: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None


class SparkplugDecodeError(ValueError):
    """Bytes that are not a valid Sparkplug B payload (truncated, wrong wire type, bad UTF-8...)."""


class SparkplugEncodeError(ValueError):
    """A :class:`Payload` that cannot be encoded (value out of range for its datatype, ...)."""


# --------------------------------------------------------------------------------------------------
# Value conversion by datatype
# --------------------------------------------------------------------------------------------------

# Metric.value oneof field numbers.
_F_INT, _F_LONG, _F_FLOAT, _F_DOUBLE, _F_BOOL, _F_STRING, _F_BYTES = 10, 11, 12, 13, 14, 15, 16
_F_DATASET, _F_TEMPLATE, _F_EXTENSION = 17, 18, 19

_INT_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_UINT_BITS = {DataType.UINT8: 8, DataType.UINT16: 16, DataType.UINT32: 32, DataType.UINT64: 64}
# Little-endian struct codes of the packed array datatypes (Sparkplug 3.0, section 6.4.17).
_ARRAY_CODES = {
    DataType.INT8_ARRAY: "b",
    DataType.INT16_ARRAY: "h",
    DataType.INT32_ARRAY: "i",
    DataType.INT64_ARRAY: "q",
    DataType.UINT8_ARRAY: "B",
    DataType.UINT16_ARRAY: "H",
    DataType.UINT32_ARRAY: "I",
    DataType.UINT64_ARRAY: "Q",
    DataType.FLOAT_ARRAY: "f",
    DataType.DOUBLE_ARRAY: "d",
    DataType.DATETIME_ARRAY: "q",
}


def _signed(bits: int) -> Callable[[int, MetricValue], MetricValue]:
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)

    def convert(value_field: int, raw: MetricValue) -> MetricValue:
        # Senders differ: Tahu's Python client stores Int8 -1 as 0xFF, its Java client as the 32-bit
        # 0xFFFFFFFF. Keeping the low `bits` bits and reading them as two's complement accepts both.
        if value_field in (_F_INT, _F_LONG):
            raw = raw & mask  # type: ignore[operator]
            return raw - (mask + 1) if raw >= sign else raw
        return raw

    return convert


def _packed_array(code: str) -> Callable[[int, MetricValue], MetricValue]:
    size = struct.calcsize(code)

    def convert(value_field: int, raw: MetricValue) -> MetricValue:
        if value_field != _F_BYTES:
            return raw
        if len(raw) % size:  # type: ignore[arg-type]
            raise SparkplugDecodeError(f"array of {size}-byte items has {len(raw)} bytes")  # type: ignore[arg-type]
        return struct.unpack(f"<{len(raw) // size}{code}", raw)  # type: ignore[arg-type,operator]

    return convert


def _boolean_array(value_field: int, raw: MetricValue) -> MetricValue:
    # uint32 LE count, then the booleans packed most significant bit first (spec example:
    # 12 values -> 0C 00 00 00 34 D0).
    if value_field != _F_BYTES:
        return raw
    data: bytes = raw  # type: ignore[assignment]
    if len(data) < 4:
        raise SparkplugDecodeError("BooleanArray shorter than its 4-byte count")
    count = int.from_bytes(data[:4], "little")
    if (count + 7) // 8 != len(data) - 4:
        raise SparkplugDecodeError(f"BooleanArray of {count} values has {len(data) - 4} packed bytes")
    bits = int.from_bytes(data[4:], "big")
    total = 8 * (len(data) - 4)
    return tuple(bool(bits >> (total - 1 - i) & 1) for i in range(count))


def _string_array(value_field: int, raw: MetricValue) -> MetricValue:
    # Each string is UTF-8 followed by a NUL.
    if value_field != _F_BYTES:
        return raw
    data: bytes = raw  # type: ignore[assignment]
    if not data:
        return ()
    if not data.endswith(b"\0"):
        raise SparkplugDecodeError("StringArray does not end with a NUL")
    return tuple(part.decode("utf-8") for part in data[:-1].split(b"\0"))


# Datatypes whose value needs work after reading the wire field; absent ones are used as read.
_CONVERTERS: dict[int, Callable[[int, MetricValue], MetricValue]] = {
    **{dt: _signed(bits) for dt, bits in _INT_BITS.items()},
    **{dt: _packed_array(code) for dt, code in _ARRAY_CODES.items()},
    DataType.BOOLEAN_ARRAY: _boolean_array,
    DataType.STRING_ARRAY: _string_array,
}


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from

# Field numbers each message defines, to tell "unknown field: skip it" from "known field sent with
# the wrong wire type: malformed".
_PAYLOAD_FIELDS = {1: 0, 2: 2, 3: 0, 4: 2, 5: 2}
_METRIC_FIELDS = {
    1: 2, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 2, 9: 2,
    10: 0, 11: 0, 12: 5, 13: 1, 14: 0, 15: 2, 16: 2, 17: 2, 18: 2, 19: 2,
}  # fmt: skip


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a base-128 varint at ``pos``; return ``(value, next_pos)``. IndexError when truncated."""
    # Unrolled for the first six bytes: millisecond timestamps (6 bytes) are in every metric, and
    # this is about 25 % faster than the loop for them.
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    b = data[pos + 1]
    if b < 0x80:
        return result | b << 7, pos + 2
    result |= (b & 0x7F) << 7
    b = data[pos + 2]
    if b < 0x80:
        return result | b << 14, pos + 3
    result |= (b & 0x7F) << 14
    b = data[pos + 3]
    if b < 0x80:
        return result | b << 21, pos + 4
    result |= (b & 0x7F) << 21
    b = data[pos + 4]
    if b < 0x80:
        return result | b << 28, pos + 5
    result |= (b & 0x7F) << 28
    b = data[pos + 5]
    if b < 0x80:
        return result | b << 35, pos + 6
    result |= (b & 0x7F) << 35
    pos += 6
    shift = 42
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            # Protobuf parsers keep the low 64 bits of an over-long (10-byte) varint.
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise SparkplugDecodeError(f"varint longer than 10 bytes at offset {pos}")


def _skip(data: bytes, pos: int, tag: int, end: int, known: dict[int, int], message: str) -> int:
    """Skip an unknown field (the proto allows extensions); reject a known field with a wrong wire type."""
    number, wire_type = tag >> 3, tag & 7
    if number == 0:
        raise SparkplugDecodeError(f"{message}: field number 0 at offset {pos}")
    if number in known:
        raise SparkplugDecodeError(
            f"{message}: field {number} has wire type {wire_type}, expected {known[number]} (offset {pos})"
        )
    if wire_type == 0:
        _, pos = _varint(data, pos)
    elif wire_type == 2:
        length, pos = _varint(data, pos)
        pos += length
    elif wire_type == 1:
        pos += 8
    elif wire_type == 5:
        pos += 4
    else:
        raise SparkplugDecodeError(f"{message}: unsupported wire type {wire_type} for field {number} at offset {pos}")
    if pos > end:
        raise SparkplugDecodeError(f"{message}: field {number} runs past the end of its message")
    return pos


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read the length of a length-delimited field; return ``(stop, start)``."""
    length, pos = _varint(data, pos)
    stop = pos + length
    if stop > end:
        raise SparkplugDecodeError(f"length-delimited field of {length} bytes at offset {pos} runs past the end")
    return stop, pos


# The internal decoder yields tuples, not Metric objects: the tracker reads them once and builds
# MetricUpdates, and a tuple costs a third of a dataclass. Order: the fields of Metric.
_RawMetric = tuple[str | None, int | None, int | None, int | None, MetricValue, bool, bool, bool, int]
_RawPayload = tuple[int | None, list[_RawMetric], int | None, str | None, bytes | None]


def _decode_metric(data: bytes, pos: int, end: int) -> _RawMetric:
    name = alias = timestamp = datatype = None
    value: MetricValue = None
    value_field = 0
    is_null = is_historical = is_transient = False
    # Tags are tested in the order a typical DATA metric carries them (alias, timestamp, datatype,
    # value), and one-byte varints are read inline: a function call costs as much as the read.
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:  # only bytes_value (16) and later have two-byte tags
            tag, pos = _varint(data, pos - 1)
        if tag == 0x10:  # alias
            alias = data[pos]
            if alias < 0x80:
                pos += 1
            else:
                alias, pos = _varint(data, pos)
        elif tag == 0x18:  # timestamp
            timestamp, pos = _varint(data, pos)
        elif tag == 0x20:  # datatype (uint32)
            datatype = data[pos]
            if datatype < 0x80:
                pos += 1
            else:
                datatype, pos = _varint(data, pos)
                datatype &= _U32
        elif tag == 0x69:  # double_value
            value = _F64(data, pos)[0]
            value_field = _F_DOUBLE
            pos += 8
        elif tag == 0x65:  # float_value
            value = _F32(data, pos)[0]
            value_field = _F_FLOAT
            pos += 4
        elif tag == 0x50:  # int_value (uint32: keep the low 32 bits, as protobuf does)
            value, pos = _varint(data, pos)
            value &= _U32
            value_field = _F_INT
        elif tag == 0x58:  # long_value
            value, pos = _varint(data, pos)
            value_field = _F_LONG
        elif tag == 0x70:  # boolean_value
            raw, pos = _varint(data, pos)
            value = raw != 0
            value_field = _F_BOOL
        elif tag == 0x0A:  # name
            stop, pos = _length(data, pos, end)
            name = data[pos:stop].decode("utf-8")
            pos = stop
        elif tag == 0x7A:  # string_value
            stop, pos = _length(data, pos, end)
            value = data[pos:stop].decode("utf-8")
            value_field = _F_STRING
            pos = stop
        elif tag == 0x82 or tag == 0x8A or tag == 0x92 or tag == 0x9A:
            # bytes_value (16), dataset_value (17), template_value (18), extension_value (19): the
            # last three are kept as their raw encoded message, not decoded.
            stop, pos = _length(data, pos, end)
            value = bytes(data[pos:stop])
            value_field = tag >> 3
            pos = stop
        elif tag == 0x38:  # is_null
            raw, pos = _varint(data, pos)
            is_null = raw != 0
        elif tag == 0x28:  # is_historical
            raw, pos = _varint(data, pos)
            is_historical = raw != 0
        elif tag == 0x30:  # is_transient
            raw, pos = _varint(data, pos)
            is_transient = raw != 0
        elif tag == 0x42 or tag == 0x4A:  # metadata, properties: skipped
            pos, _ = _length(data, pos, end)
        else:
            pos = _skip(data, pos, tag, end, _METRIC_FIELDS, "Metric")
    if pos != end:
        raise SparkplugDecodeError("Metric: last field runs past the end of the metric")
    if datatype is not None and value_field:
        convert = _CONVERTERS.get(datatype)
        if convert is not None:
            value = convert(value_field, value)
    return name, alias, timestamp, datatype, value, is_null, is_historical, is_transient, value_field


def _decode(data: bytes) -> _RawPayload:
    end = len(data)
    pos = 0
    timestamp = seq = uuid = body = None
    metrics: list[_RawMetric] = []
    append = metrics.append
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _varint(data, pos - 1)
        if tag == 0x12:  # metrics
            stop, pos = _length(data, pos, end)
            append(_decode_metric(data, pos, stop))
            pos = stop
        elif tag == 0x08:  # timestamp
            timestamp, pos = _varint(data, pos)
        elif tag == 0x18:  # seq
            seq, pos = _varint(data, pos)
        elif tag == 0x22:  # uuid
            stop, pos = _length(data, pos, end)
            uuid = data[pos:stop].decode("utf-8")
            pos = stop
        elif tag == 0x2A:  # body
            stop, pos = _length(data, pos, end)
            body = bytes(data[pos:stop])
            pos = stop
        else:
            pos = _skip(data, pos, tag, end, _PAYLOAD_FIELDS, "Payload")
    if pos != end:
        raise SparkplugDecodeError("Payload: last field runs past the end of the payload")
    return timestamp, metrics, seq, uuid, body


def decode_payload(data: bytes | bytearray | memoryview) -> Payload:
    """Decode the bytes of a Sparkplug B ``Payload``.

    Metadata and properties are skipped; DataSet, Template and extension values are returned as the
    raw bytes of their nested message; unknown fields (extensions) are skipped.

    Parameters
    ----------
    data
        The MQTT message payload.

    Returns
    -------
    Payload
        The decoded payload; values of metrics that carry a datatype are converted by it.

    Raises
    ------
    SparkplugDecodeError
        On truncated input, a known field with the wrong wire type, a varint over 10 bytes,
        invalid UTF-8 in a string, or a packed array of the wrong length. Nothing else.
    """
    timestamp, metrics, seq, uuid, body = _decode_raw(data)
    return Payload(timestamp, [Metric(*m) for m in metrics], seq, uuid, body)


def _decode_raw(data: bytes | bytearray | memoryview) -> _RawPayload:
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        return _decode(data)
    except SparkplugDecodeError:
        raise
    except IndexError:
        raise SparkplugDecodeError(f"payload truncated ({len(data)} bytes)") from None
    except struct.error:
        raise SparkplugDecodeError(f"payload truncated inside a fixed-width value ({len(data)} bytes)") from None
    except UnicodeDecodeError as exc:
        raise SparkplugDecodeError(f"string field is not valid UTF-8: {exc.reason}") from None


# --------------------------------------------------------------------------------------------------
# Encoding (for the virtual plant publisher, rebirth commands and tests)
# --------------------------------------------------------------------------------------------------


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, tag: bytes, data: bytes) -> None:
    out += tag
    _put_varint(out, len(data))
    out += data


def _pack_array(datatype: DataType, value: Sequence[object]) -> bytes:
    if datatype is DataType.BOOLEAN_ARRAY:
        count = len(value)
        bits = 0
        for item in value:
            bits = bits << 1 | bool(item)
        padding = -count % 8
        return count.to_bytes(4, "little") + (bits << padding).to_bytes((count + padding) // 8, "big")
    if datatype is DataType.STRING_ARRAY:
        for item in value:
            if not isinstance(item, str) or "\0" in item:
                raise SparkplugEncodeError(f"StringArray items must be str without NUL, got {item!r}")
        return b"".join(item.encode("utf-8") + b"\0" for item in value)  # type: ignore[union-attr]
    code = _ARRAY_CODES[datatype]
    try:
        return struct.pack(f"<{len(value)}{code}", *value)
    except (struct.error, OverflowError, TypeError) as exc:
        raise SparkplugEncodeError(f"{datatype.name}: {exc}") from None


def _encode_value(out: bytearray, datatype: DataType, value: MetricValue) -> None:
    """Append the ``value`` oneof field of a metric, chosen by the Sparkplug datatype."""
    if datatype in _INT_BITS or datatype in _UINT_BITS or datatype is DataType.DATETIME:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SparkplugEncodeError(f"{datatype.name} needs an int, got {value!r}")
        if datatype in _INT_BITS:
            bits = _INT_BITS[datatype]
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            bits = _UINT_BITS.get(datatype, 64)
            low, high = 0, (1 << bits) - 1
        if not low <= value <= high:
            raise SparkplugEncodeError(f"{value} out of range for {datatype.name} ({low}..{high})")
        # Spec: signed values are stored as their two's complement at their own width.
        raw = value & ((1 << bits) - 1)
        out.append(0x58 if bits == 64 else 0x50)  # long_value / int_value
        _put_varint(out, raw)
    elif datatype is DataType.DOUBLE:
        out.append(0x69)
        out += struct.pack("<d", value)
    elif datatype is DataType.FLOAT:
        out.append(0x65)
        try:
            out += struct.pack("<f", value)
        except OverflowError:
            raise SparkplugEncodeError(f"{value!r} is out of range for a 32-bit Float") from None
    elif datatype is DataType.BOOLEAN:
        out.append(0x70)
        out.append(1 if value else 0)
    elif datatype in (DataType.STRING, DataType.TEXT, DataType.UUID):
        if not isinstance(value, str):
            raise SparkplugEncodeError(f"{datatype.name} needs a str, got {value!r}")
        _put_bytes(out, b"\x7a", value.encode("utf-8"))
    elif datatype in (DataType.BYTES, DataType.FILE):
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SparkplugEncodeError(f"{datatype.name} needs bytes, got {type(value).__name__}")
        _put_bytes(out, b"\x82\x01", bytes(value))
    elif datatype in _ARRAY_CODES or datatype in (DataType.BOOLEAN_ARRAY, DataType.STRING_ARRAY):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise SparkplugEncodeError(f"{datatype.name} needs a sequence, got {value!r}")
        _put_bytes(out, b"\x82\x01", _pack_array(datatype, value))
    elif datatype in (DataType.DATASET, DataType.TEMPLATE):
        # Passed through as an already-encoded nested message, the same form decoding returns.
        if not isinstance(value, bytes):
            raise SparkplugEncodeError(f"{datatype.name} values are passed as encoded bytes")
        _put_bytes(out, b"\x8a\x01" if datatype is DataType.DATASET else b"\x92\x01", value)
    else:
        raise SparkplugEncodeError(f"cannot encode a metric value of datatype {datatype!r}")


def _encode_metric(metric: Metric) -> bytes:
    # Fields go out in field-number order, as protobuf serialisers write them, so the bytes equal
    # what the official generated code produces for the same message.
    out = bytearray()
    if metric.name is not None:
        _put_bytes(out, b"\x0a", metric.name.encode("utf-8"))
    if metric.alias is not None:
        out.append(0x10)
        _put_varint(out, _check_uint(metric.alias, 64, "alias"))
    if metric.timestamp is not None:
        out.append(0x18)
        _put_varint(out, _check_uint(metric.timestamp, 64, "timestamp"))
    if metric.datatype is not None:
        out.append(0x20)
        _put_varint(out, _check_uint(metric.datatype, 32, "datatype"))
    if metric.is_historical:
        out += b"\x28\x01"
    if metric.is_transient:
        out += b"\x30\x01"
    if metric.is_null:
        out += b"\x38\x01"
    elif metric.value is not None:
        if metric.datatype is None or not 0 <= metric.datatype < len(_DATATYPES):
            raise SparkplugEncodeError(f"metric {metric.name or metric.alias!r}: a value needs a known datatype")
        try:
            _encode_value(out, _DATATYPES[metric.datatype], metric.value)
        except SparkplugEncodeError as exc:
            raise SparkplugEncodeError(f"metric {metric.name or metric.alias!r}: {exc}") from None
    return bytes(out)


def _check_uint(value: int, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise SparkplugEncodeError(f"{what} must be an int in 0..2**{bits}-1, got {value!r}")
    return value


def encode_payload(payload: Payload) -> bytes:
    """Encode a :class:`Payload` to Sparkplug B protobuf bytes.

    Each metric with a value needs a ``datatype``; the value is written to the field the Sparkplug
    spec assigns to it (signed ints as two's complement at their own width in ``int_value`` or
    ``long_value``, arrays packed into ``bytes_value``). ``is_null`` metrics carry no value.

    Parameters
    ----------
    payload
        The payload to encode.

    Returns
    -------
    bytes
        The protobuf encoding, fields in field-number order.

    Raises
    ------
    SparkplugEncodeError
        When a value does not fit its datatype, or a datatype is missing or cannot be encoded.
    """
    out = bytearray()
    if payload.timestamp is not None:
        out.append(0x08)
        _put_varint(out, _check_uint(payload.timestamp, 64, "timestamp"))
    for metric in payload.metrics:
        _put_bytes(out, b"\x12", _encode_metric(metric))
    if payload.seq is not None:
        out.append(0x18)
        _put_varint(out, _check_uint(payload.seq, 64, "seq"))
    if payload.uuid is not None:
        _put_bytes(out, b"\x22", payload.uuid.encode("utf-8"))
    if payload.body is not None:
        _put_bytes(out, b"\x2a", bytes(payload.body))
    return bytes(out)


def rebirth_command(group_id: str, edge_node_id: str, timestamp_ms: int) -> tuple[str, bytes]:
    """The NCMD that asks an edge node to publish its BIRTH messages again.

    The tracker never publishes; a client that is allowed to publish (the viewer is read-only unless
    the layout enables it) sends this when :class:`SparkplugTracker` reports ``rebirth_needed``.

    Parameters
    ----------
    group_id, edge_node_id
        The edge node to ask.
    timestamp_ms
        The payload timestamp, ms since the Unix epoch.

    Returns
    -------
    tuple of (str, bytes)
        The topic and the payload (metric ``Node Control/Rebirth`` = true).
    """
    topic = format_topic(group_id, MessageType.NCMD, edge_node_id)
    metric = Metric(name=REBIRTH_METRIC, timestamp=timestamp_ms, datatype=DataType.BOOLEAN, value=True)
    return topic, encode_payload(Payload(timestamp=timestamp_ms, metrics=[metric]))


