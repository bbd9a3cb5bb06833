"""Sparkplug B codec and tracker: real bytes, no mocks.

The codec in ``viewer.telemetry.sparkplug`` is a hand-written protobuf reader/writer, so it is not
only tested against itself: ``REFERENCE`` below is Google's ``protobuf`` implementation (the upb C
parser) driven by a descriptor transcribed field by field from Eclipse Tahu's official
``sparkplug_b.proto`` (proto2, package ``org.eclipse.tahu.protobuf``). Payloads encoded by one side
are decoded by the other, and for the same message both must produce the same bytes.
"""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from viewer.telemetry.sparkplug import (
    DataType,
    MessageType,
    Metric,
    MetricUpdate,
    NodeStatus,
    Payload,
    ProblemKind,
    SparkplugDecodeError,
    SparkplugEncodeError,
    SparkplugProblem,
    SparkplugTopic,
    SparkplugTopicError,
    SparkplugTracker,
    decode_payload,
    encode_payload,
    format_topic,
    parse_topic,
    rebirth_command,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_760_000_000_000  # ms since the epoch: a realistic 6-byte varint

# ------------------------------------------------------------------------------------------------
# The independent reference: Google protobuf with the official schema
# ------------------------------------------------------------------------------------------------

# message path -> fields (name, number, type, label, oneof). Types are proto scalar names or message
# paths. Transcribed from sparkplug_b.proto (Eclipse Tahu, EPL-2.0); only names and numbers are used.
_OPT, _REP = "optional", "repeated"
_SCHEMA: dict[str, list[tuple[str, int, str, str, str | None]]] = {
    "Payload": [
        ("timestamp", 1, "uint64", _OPT, None),
        ("metrics", 2, "Payload.Metric", _REP, None),
        ("seq", 3, "uint64", _OPT, None),
        ("uuid", 4, "string", _OPT, None),
        ("body", 5, "bytes", _OPT, None),
    ],
    "Payload.Template": [
        ("version", 1, "string", _OPT, None),
        ("metrics", 2, "Payload.Metric", _REP, None),
        ("parameters", 3, "Payload.Template.Parameter", _REP, None),
        ("template_ref", 4, "string", _OPT, None),
        ("is_definition", 5, "bool", _OPT, None),
    ],
    "Payload.Template.Parameter": [
        ("name", 1, "string", _OPT, None),
        ("type", 2, "uint32", _OPT, None),
        ("int_value", 3, "uint32", _OPT, "value"),
        ("long_value", 4, "uint64", _OPT, "value"),
        ("float_value", 5, "float", _OPT, "value"),
        ("double_value", 6, "double", _OPT, "value"),
        ("boolean_value", 7, "bool", _OPT, "value"),
        ("string_value", 8, "string", _OPT, "value"),
        ("extension_value", 9, "Payload.Template.Parameter.ParameterValueExtension", _OPT, "value"),
    ],
    "Payload.Template.Parameter.ParameterValueExtension": [],
    "Payload.DataSet": [
        ("num_of_columns", 1, "uint64", _OPT, None),
        ("columns", 2, "string", _REP, None),
        ("types", 3, "uint32", _REP, None),
        ("rows", 4, "Payload.DataSet.Row", _REP, None),
    ],
    "Payload.DataSet.DataSetValue": [
        ("int_value", 1, "uint32", _OPT, "value"),
        ("long_value", 2, "uint64", _OPT, "value"),
        ("float_value", 3, "float", _OPT, "value"),
        ("double_value", 4, "double", _OPT, "value"),
        ("boolean_value", 5, "bool", _OPT, "value"),
        ("string_value", 6, "string", _OPT, "value"),
        ("extension_value", 7, "Payload.DataSet.DataSetValue.DataSetValueExtension", _OPT, "value"),
    ],
    "Payload.DataSet.DataSetValue.DataSetValueExtension": [],
    "Payload.DataSet.Row": [("elements", 1, "Payload.DataSet.DataSetValue", _REP, None)],
    "Payload.PropertyValue": [
        ("type", 1, "uint32", _OPT, None),
        ("is_null", 2, "bool", _OPT, None),
        ("int_value", 3, "uint32", _OPT, "value"),
        ("long_value", 4, "uint64", _OPT, "value"),
        ("float_value", 5, "float", _OPT, "value"),
        ("double_value", 6, "double", _OPT, "value"),
        ("boolean_value", 7, "bool", _OPT, "value"),
        ("string_value", 8, "string", _OPT, "value"),
        ("propertyset_value", 9, "Payload.PropertySet", _OPT, "value"),
        ("propertysets_value", 10, "Payload.PropertySetList", _OPT, "value"),
        ("extension_value", 11, "Payload.PropertyValue.PropertyValueExtension", _OPT, "value"),
    ],
    "Payload.PropertyValue.PropertyValueExtension": [],
    "Payload.PropertySet": [
        ("keys", 1, "string", _REP, None),
        ("values", 2, "Payload.PropertyValue", _REP, None),
    ],
    "Payload.PropertySetList": [("propertyset", 1, "Payload.PropertySet", _REP, None)],
    "Payload.MetaData": [
        ("is_multi_part", 1, "bool", _OPT, None),
        ("content_type", 2, "string", _OPT, None),
        ("size", 3, "uint64", _OPT, None),
        ("seq", 4, "uint64", _OPT, None),
        ("file_name", 5, "string", _OPT, None),
        ("file_type", 6, "string", _OPT, None),
        ("md5", 7, "string", _OPT, None),
        ("description", 8, "string", _OPT, None),
    ],
    "Payload.Metric": [
        ("name", 1, "string", _OPT, None),
        ("alias", 2, "uint64", _OPT, None),
        ("timestamp", 3, "uint64", _OPT, None),
        ("datatype", 4, "uint32", _OPT, None),
        ("is_historical", 5, "bool", _OPT, None),
        ("is_transient", 6, "bool", _OPT, None),
        ("is_null", 7, "bool", _OPT, None),
        ("metadata", 8, "Payload.MetaData", _OPT, None),
        ("properties", 9, "Payload.PropertySet", _OPT, None),
        ("int_value", 10, "uint32", _OPT, "value"),
        ("long_value", 11, "uint64", _OPT, "value"),
        ("float_value", 12, "float", _OPT, "value"),
        ("double_value", 13, "double", _OPT, "value"),
        ("boolean_value", 14, "bool", _OPT, "value"),
        ("string_value", 15, "string", _OPT, "value"),
        ("bytes_value", 16, "bytes", _OPT, "value"),
        ("dataset_value", 17, "Payload.DataSet", _OPT, "value"),
        ("template_value", 18, "Payload.Template", _OPT, "value"),
        ("extension_value", 19, "Payload.Metric.MetricValueExtension", _OPT, "value"),
    ],
    "Payload.Metric.MetricValueExtension": [],
}
# `extensions N to max;` of the official file (message path -> N), kept so the descriptor matches it.
_EXTENSIONS = {
    "Payload": 6, "Payload.Template": 6, "Payload.Template.Parameter.ParameterValueExtension": 1,
    "Payload.DataSet": 5, "Payload.DataSet.DataSetValue.DataSetValueExtension": 1, "Payload.DataSet.Row": 2,
    "Payload.PropertyValue.PropertyValueExtension": 1, "Payload.PropertySet": 3, "Payload.PropertySetList": 2,
    "Payload.MetaData": 9, "Payload.Metric.MetricValueExtension": 1,
}  # fmt: skip
_PACKAGE = "org.eclipse.tahu.protobuf"
_SCALARS = {
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def reference_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The official sparkplug_b.proto as a FileDescriptorProto, the form protoc would hand over."""
    fdp = descriptor_pb2.FileDescriptorProto(name="sparkplug_b.proto", package=_PACKAGE, syntax="proto2")
    enum_type = fdp.enum_type.add(name="DataType")
    for datatype in DataType:
        # The official enum names (Int8, UInt64, DateTime, Int8Array, ...) from our constant names.
        words = datatype.name.split("_")
        name = "".join(w.capitalize() for w in words).replace("Uint", "UInt").replace("Datetime", "DateTime")
        name = {"Dataset": "DataSet", "Propertyset": "PropertySet", "Propertysetlist": "PropertySetList",
                "Uuid": "UUID"}.get(name, name)  # fmt: skip
        enum_type.value.add(name=name, number=int(datatype))
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path in _SCHEMA:  # parents are listed before their nested types
        parent, _, leaf = path.rpartition(".")
        messages[path] = (messages[parent].nested_type if parent else fdp.message_type).add(name=leaf)
    for path, fields in _SCHEMA.items():
        message = messages[path]
        oneofs: list[str] = []
        for name, number, type_name, label, oneof in fields:
            f = message.field.add(name=name, number=number)
            f.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if label == _REP
                       else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if type_name in _SCALARS:
                f.type = _SCALARS[type_name]
            else:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                f.type_name = f".{_PACKAGE}.{type_name}"
            if oneof is not None:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    message.oneof_decl.add(name=oneof)
                f.oneof_index = oneofs.index(oneof)
        if path in _EXTENSIONS:
            message.extension_range.add(start=_EXTENSIONS[path], end=536_870_912)
    return fdp


def _reference_payload_class() -> type:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(reference_file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))


REFERENCE = _reference_payload_class()  # Google's Payload message class


def ref_parse(data: bytes):
    message = REFERENCE()
    message.ParseFromString(data)
    return message


# ------------------------------------------------------------------------------------------------
# Topics
# ------------------------------------------------------------------------------------------------


def test_parse_node_device_and_state_topics():
    assert parse_topic("spBv1.0/Plant1/NDATA/Line2") == SparkplugTopic("Plant1", MessageType.NDATA, "Line2")
    assert parse_topic("spBv1.0/Plant1/DBIRTH/Line2/Robot 3") == SparkplugTopic(
        "Plant1", MessageType.DBIRTH, "Line2", "Robot 3"
    )
    assert parse_topic("spBv1.0/STATE/scada-1") == SparkplugTopic("", MessageType.STATE, "", None, "scada-1")
    for kind in ("NBIRTH", "NDEATH", "NDATA", "NCMD"):
        assert parse_topic(f"spBv1.0/G/{kind}/E").message_type == kind
    for kind in ("DBIRTH", "DDEATH", "DDATA", "DCMD"):
        assert parse_topic(f"spBv1.0/G/{kind}/E/D").device_id == "D"
    assert format_topic("G", MessageType.DDATA, "E", "D") == "spBv1.0/G/DDATA/E/D"
    assert format_topic("G", "NBIRTH", "E") == "spBv1.0/G/NBIRTH/E"


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("", "namespace"),
        ("spBv1.0", "levels"),
        ("spAv1.0/G/NDATA/E", "namespace"),
        ("spbv1.0/G/NDATA/E", "namespace"),
        ("plant/line2/temperature", "namespace"),
        ("spBv1.0/G/NDATA", "levels"),
        ("spBv1.0/G/NDATA/E/D/extra", "levels"),
        ("spBv1.0/G/NFOO/E", "unknown message type 'NFOO'"),
        ("spBv1.0/G/ndata/E", "unknown message type"),
        ("spBv1.0/G/STATE/E", "unknown message type 'STATE'"),
        ("spBv1.0/G/DDATA/E", "needs a device id"),
        ("spBv1.0/G/NDATA/E/D", "takes no device id"),
        ("spBv1.0//NDATA/E", "empty group id"),
        ("spBv1.0/G/NDATA/", "empty edge node id"),
        ("spBv1.0/G/DDATA/E/", "empty device id"),
        ("spBv1.0/G/NDATA/+", "wildcard"),
        ("spBv1.0/#/NDATA/E", "wildcard"),
        ("spBv1.0/STATE/", "empty host id"),
    ],
)
def test_bad_topics_are_refused_with_the_reason(topic, says):
    with pytest.raises(SparkplugTopicError, match=None) as caught:
        parse_topic(topic)
    assert says in str(caught.value)
    events = SparkplugTracker().handle(topic, encode_payload(Payload(seq=0)), 1.0)
    assert [(type(e), e.kind) for e in events] == [(SparkplugProblem, ProblemKind.BAD_TOPIC)]
    assert says in events[0].reason


def test_format_topic_refuses_slashes_and_wrong_levels():
    with pytest.raises(SparkplugTopicError):
        format_topic("G/H", MessageType.NDATA, "E")
    with pytest.raises(SparkplugTopicError):
        format_topic("G", MessageType.DDATA, "E")


# ------------------------------------------------------------------------------------------------
# Codec: round trips and the independent reference
# ------------------------------------------------------------------------------------------------



def f32(x: float) -> float:
    """``x`` rounded to the nearest 32-bit float, as a Float metric carries it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# (datatype, value, protobuf field the spec puts it in, the raw value Google must read there)
SCALARS = [
    (DataType.INT8, -128, "int_value", 0x80),
    (DataType.INT8, -1, "int_value", 0xFF),
    (DataType.INT8, 127, "int_value", 127),
    (DataType.INT16, -32768, "int_value", 0x8000),
    (DataType.INT16, -2, "int_value", 0xFFFE),
    (DataType.INT16, 32767, "int_value", 32767),
    (DataType.INT32, -(2**31), "int_value", 2**31),
    (DataType.INT32, -1, "int_value", 2**32 - 1),
    (DataType.INT32, 2**31 - 1, "int_value", 2**31 - 1),
    (DataType.INT64, -(2**63), "long_value", 2**63),
    (DataType.INT64, -1, "long_value", 2**64 - 1),
    (DataType.INT64, 2**63 - 1, "long_value", 2**63 - 1),
    (DataType.UINT8, 255, "int_value", 255),
    (DataType.UINT16, 65535, "int_value", 65535),
    (DataType.UINT32, 2**32 - 1, "int_value", 2**32 - 1),
    (DataType.UINT64, 2**64 - 1, "long_value", 2**64 - 1),
    (DataType.UINT64, 0, "long_value", 0),
    (DataType.FLOAT, 1.5, "float_value", 1.5),
    (DataType.FLOAT, f32(-3.3e-5), "float_value", f32(-3.3e-5)),
    (DataType.FLOAT, math.inf, "float_value", math.inf),
    (DataType.FLOAT, math.nan, "float_value", math.nan),
    (DataType.DOUBLE, 71.25, "double_value", 71.25),
    (DataType.DOUBLE, -1e300, "double_value", -1e300),
    (DataType.DOUBLE, math.nan, "double_value", math.nan),
    (DataType.DOUBLE, -math.inf, "double_value", -math.inf),
    (DataType.BOOLEAN, True, "boolean_value", True),
    (DataType.BOOLEAN, False, "boolean_value", False),
    (DataType.STRING, "Füllstand 温度 ✓ 🏭", "string_value", "Füllstand 温度 ✓ 🏭"),
    (DataType.STRING, "", "string_value", ""),
    (DataType.TEXT, "Störung: Schutztür offen\nline 2", "string_value", "Störung: Schutztür offen\nline 2"),
    (DataType.UUID, "123e4567-e89b-12d3-a456-426614174000", "string_value", "123e4567-e89b-12d3-a456-426614174000"),
    (DataType.DATETIME, T0 + 123, "long_value", T0 + 123),
    (DataType.BYTES, bytes(range(256)), "bytes_value", bytes(range(256))),
    (DataType.FILE, b"", "bytes_value", b""),
]


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (and compares float32 NaN payloads loosely)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def _one_metric_payload(datatype: DataType, value) -> Payload:
    metric = Metric(name="Motor/Current Ø", alias=7, timestamp=T0 + 5, datatype=datatype, value=value)
    return Payload(timestamp=T0, metrics=[metric], seq=42)


@pytest.mark.parametrize(("datatype", "value", "wire_field", "wire_value"), SCALARS,
                         ids=[f"{d.name}-{v!r}"[:40] for d, v, _, _ in SCALARS])
def test_scalar_round_trip_and_google_agrees(datatype, value, wire_field, wire_value):
    payload = _one_metric_payload(datatype, value)
    data = encode_payload(payload)

    back = decode_payload(data)
    (metric,) = back.metrics
    assert same(metric.value, value)
    assert (metric.name, metric.alias, metric.timestamp, metric.datatype) == ("Motor/Current Ø", 7, T0 + 5, datatype)
    assert (back.timestamp, back.seq, back.uuid, back.body) == (T0, 42, None, None)

    # Google reads our bytes: the value sits in the field the spec names, as the spec encodes it.
    ref = ref_parse(data)
    (ref_metric,) = ref.metrics
    assert ref_metric.WhichOneof("value") == wire_field
    assert same(getattr(ref_metric, wire_field), wire_value)
    assert (ref.timestamp, ref.seq, ref_metric.name, ref_metric.alias, ref_metric.datatype) == (
        T0, 42, "Motor/Current Ø", 7, int(datatype))

    # Google writes the same message byte for byte, and we read Google's bytes.
    built = REFERENCE(timestamp=T0, seq=42)
    m = built.metrics.add(name="Motor/Current Ø", alias=7, timestamp=T0 + 5, datatype=int(datatype))
    setattr(m, wire_field, wire_value)
    assert built.SerializeToString() == data
    assert same(decode_payload(built.SerializeToString()).metrics[0].value, value)


@pytest.mark.parametrize("datatype", [d for d in DataType if d <= DataType.FILE and d not in
                                      (DataType.UNKNOWN, DataType.DATASET)])
def test_null_metrics_carry_no_value(datatype):
    data = encode_payload(Payload(metrics=[Metric(name="x", datatype=datatype, is_null=True)]))
    (metric,) = decode_payload(data).metrics
    assert (metric.is_null, metric.value, metric.datatype) == (True, None, datatype)
    (ref_metric,) = ref_parse(data).metrics
    assert ref_metric.is_null and ref_metric.WhichOneof("value") is None


def test_signed_ints_sign_extended_to_32_bits_are_read_too():
    # Tahu's Java client writes Int8 -1 as the 32-bit 0xFFFFFFFF; its Python client as 0xFF.
    built = REFERENCE()
    for alias, (datatype, raw) in enumerate([(DataType.INT8, 0xFFFFFFFF), (DataType.INT8, 0xFFFFFF80),
                                             (DataType.INT16, 0xFFFF8000), (DataType.INT32, 0x80000000),
                                             (DataType.INT8, 0x7F)]):
        built.metrics.add(alias=alias, datatype=int(datatype), int_value=raw)
    # And an Int32 written as a negative int64 varint (10 bytes), which protobuf truncates to 32 bits.
    data = built.SerializeToString() + b"\x12\x0d" + b"\x20\x03" + b"\x50" + b"\xff" * 9 + b"\x01"
    assert ref_parse(data).metrics[5].int_value == 2**32 - 1
    assert [m.value for m in decode_payload(data).metrics] == [-1, -128, -32768, -(2**31), 127, -1]


ARRAYS = [
    (DataType.INT8_ARRAY, (-128, -1, 0, 127)),
    (DataType.INT16_ARRAY, (-32768, 5, 32767)),
    (DataType.INT32_ARRAY, (-(2**31), 2**31 - 1)),
    (DataType.INT64_ARRAY, (-(2**63), 0, 2**63 - 1)),
    (DataType.UINT8_ARRAY, (0, 255)),
    (DataType.UINT16_ARRAY, (65535,)),
    (DataType.UINT32_ARRAY, (2**32 - 1, 1)),
    (DataType.UINT64_ARRAY, (2**64 - 1,)),
    (DataType.FLOAT_ARRAY, (1.5, -0.25, math.inf)),
    (DataType.DOUBLE_ARRAY, (0.1, -2.5e-300, 1e300, 0.0, 12.0, -90.5)),  # six robot joints
    (DataType.DATETIME_ARRAY, (T0, T0 + 1)),
    (DataType.BOOLEAN_ARRAY, (True, False, True, True, False, False, False, False, True)),
    (DataType.BOOLEAN_ARRAY, ()),
    (DataType.STRING_ARRAY, ("ABC", "", "Ölstand ✓")),
    (DataType.STRING_ARRAY, ()),
]


@pytest.mark.parametrize(("datatype", "value"), ARRAYS, ids=[d.name for d, _ in ARRAYS])
def test_array_round_trip_packed_into_bytes_value(datatype, value):
    data = encode_payload(Payload(metrics=[Metric(alias=1, datatype=datatype, value=value)]))
    assert decode_payload(data).metrics[0].value == value
    (ref_metric,) = ref_parse(data).metrics
    assert ref_metric.WhichOneof("value") == "bytes_value"


def test_array_bytes_match_the_spec_examples():
    # Packed forms per Sparkplug 3.0, 6.4.17 (little-endian items; BooleanArray: uint32 LE count, then the
    # bits most significant first), with the expected bytes written out by hand.
    def packed(datatype, value):
        data = encode_payload(Payload(metrics=[Metric(datatype=datatype, value=value)]))
        return ref_parse(data).metrics[0].bytes_value

    assert packed(DataType.INT8_ARRAY, (-23, 123)) == bytes([0xE9, 0x7B])
    assert packed(DataType.INT16_ARRAY, (-30000, 30000)) == bytes([0xD0, 0x8A, 0x30, 0x75])
    assert packed(DataType.UINT32_ARRAY, (52, 3293969225)) == bytes([0x34, 0, 0, 0, 0x49, 0xFB, 0x55, 0xC4])
    assert packed(DataType.FLOAT_ARRAY, (1.23, 89.341)) == bytes([0xA4, 0x70, 0x9D, 0x3F, 0x98, 0xAE, 0xB2, 0x42])
    assert packed(DataType.BOOLEAN_ARRAY, (False, False, True, True, False, True, False, False,
                                           True, True, False, True)) == bytes([0x0C, 0, 0, 0, 0x34, 0xD0])
    assert packed(DataType.STRING_ARRAY, ("ABC", "hello")) == b"ABC\0hello\0"


def test_skipped_parts_do_not_break_decoding():
    # Metadata, properties (nested property sets), a DataSet, a Template, transient/historical flags,
    # uuid, body, and an unknown extension field: all built and encoded by Google.
    built = REFERENCE(timestamp=T0, seq=9, uuid="schema-7", body=b"\x00raw\xff")
    m = built.metrics.add(name="Robot/Program", alias=1, datatype=int(DataType.STRING), string_value="P-12",
                          is_historical=True, is_transient=True)
    m.metadata.content_type = "text/plain"
    m.metadata.size = 4
    m.metadata.md5 = "d41d8cd98f00b204e9800998ecf8427e"
    m.properties.keys.extend(["Engineering Units", "Limits"])
    m.properties.values.add(type=int(DataType.STRING), string_value="A")
    limits = m.properties.values.add(type=int(DataType.PROPERTYSET))
    limits.propertyset_value.keys.append("high")
    limits.propertyset_value.values.add(type=int(DataType.DOUBLE), double_value=12.5)
    d = built.metrics.add(name="Recipe", alias=2, datatype=int(DataType.DATASET))
    d.dataset_value.num_of_columns = 2
    d.dataset_value.columns.extend(["step", "temp"])
    d.dataset_value.types.extend([int(DataType.INT32), int(DataType.DOUBLE)])
    row = d.dataset_value.rows.add()
    row.elements.add(int_value=1)
    row.elements.add(double_value=180.0)
    t = built.metrics.add(name="Motor", alias=3, datatype=int(DataType.TEMPLATE))
    t.template_value.template_ref = "MotorType"
    t.template_value.metrics.add(name="rpm", datatype=int(DataType.FLOAT), float_value=1450.0)
    t.template_value.parameters.add(name="poles", type=int(DataType.UINT32), int_value=4)
    built.metrics.add(name="after", alias=4, datatype=int(DataType.DOUBLE), double_value=-4.5)
    data = built.SerializeToString() + b"\xb0\x06\x05"  # field 102 (varint 5): an extension we don't know

    payload = decode_payload(data)
    assert (payload.timestamp, payload.seq, payload.uuid, payload.body) == (T0, 9, "schema-7", b"\x00raw\xff")
    program, recipe, motor, after = payload.metrics
    assert (program.value, program.is_historical, program.is_transient) == ("P-12", True, True)
    assert recipe.value == d.dataset_value.SerializeToString()  # kept raw, not decoded
    assert motor.value == t.template_value.SerializeToString()
    assert (after.name, after.value) == ("after", -4.5)
    # And back: the DataSet/Template bytes pass through our encoder unchanged.
    again = ref_parse(encode_payload(Payload(metrics=[recipe, motor])))
    assert again.metrics[0].dataset_value == d.dataset_value
    assert again.metrics[1].template_value == t.template_value


def _random_value(rng: random.Random, datatype: DataType):
    if datatype in (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64):
        bits = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}[datatype]
        return rng.randrange(-(2 ** (bits - 1)), 2 ** (bits - 1))
    if datatype in (DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64):
        bits = {DataType.UINT8: 8, DataType.UINT16: 16, DataType.UINT32: 32, DataType.UINT64: 64}[datatype]
        return rng.randrange(2**bits)
    if datatype is DataType.FLOAT:
        return f32(rng.uniform(-1e6, 1e6))
    if datatype is DataType.DOUBLE:
        return rng.choice([rng.uniform(-1e9, 1e9), rng.random(), math.nan, 0.0])
    if datatype is DataType.BOOLEAN:
        return rng.random() < 0.5
    if datatype in (DataType.STRING, DataType.TEXT, DataType.UUID):
        return "".join(rng.choice("aZ09 _/ÄßЖ字🙂") for _ in range(rng.randrange(12)))
    if datatype is DataType.DATETIME:
        return T0 + rng.randrange(10**9)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(20)))


_WIRE_FIELD = {DataType.INT64: "long_value", DataType.UINT64: "long_value", DataType.DATETIME: "long_value",
               DataType.FLOAT: "float_value", DataType.DOUBLE: "double_value", DataType.BOOLEAN: "boolean_value",
               DataType.STRING: "string_value", DataType.TEXT: "string_value", DataType.UUID: "string_value",
               DataType.BYTES: "bytes_value", DataType.FILE: "bytes_value"}  # fmt: skip
_SCALAR_TYPES = [d for d in DataType if DataType.UNKNOWN < d <= DataType.FILE and d is not DataType.DATASET]


def _wire(datatype: DataType, value):
    """The raw field value the spec prescribes, computed here independently of the codec."""
    if datatype in (DataType.INT8, DataType.INT16, DataType.INT32):
        bits = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32}[datatype]
        return value % 2**bits
    if datatype is DataType.INT64:
        return value % 2**64
    return value


def test_random_payloads_agree_with_google_both_ways():
    rng = random.Random(20240611)
    for _ in range(300):
        ours = Payload(timestamp=rng.choice([None, T0 + rng.randrange(10**6)]),
                       seq=rng.choice([None, rng.randrange(256)]),
                       uuid=rng.choice([None, "", "u-Ω"]), body=rng.choice([None, b"", b"\x01\x02"]))
        google = REFERENCE()
        for name, value in (("timestamp", ours.timestamp), ("seq", ours.seq), ("uuid", ours.uuid), ("body", ours.body)):
            if value is not None:
                setattr(google, name, value)
        for _ in range(rng.randrange(8)):
            datatype = rng.choice(_SCALAR_TYPES)
            value = _random_value(rng, datatype)
            metric = Metric(name=rng.choice([None, f"m{rng.randrange(99)}/ü"]),
                            alias=rng.choice([None, rng.randrange(2**40)]),
                            timestamp=rng.choice([None, T0 + rng.randrange(10**6)]), datatype=datatype, value=value)
            ours.metrics.append(metric)
            g = google.metrics.add(datatype=int(datatype))
            for name in ("name", "alias", "timestamp"):
                if getattr(metric, name) is not None:
                    setattr(g, name, getattr(metric, name))
            setattr(g, _WIRE_FIELD.get(datatype, "int_value"), _wire(datatype, value))
        data = encode_payload(ours)
        assert data == google.SerializeToString()
        back = decode_payload(google.SerializeToString())
        assert (back.timestamp, back.seq, back.uuid, back.body) == (ours.timestamp, ours.seq, ours.uuid, ours.body)
        assert len(back.metrics) == len(ours.metrics)
        for got, sent in zip(back.metrics, ours.metrics, strict=True):
            assert (got.name, got.alias, got.timestamp, got.datatype) == (sent.name, sent.alias, sent.timestamp,
                                                                          sent.datatype)
            assert same(got.value, sent.value), (sent.datatype, sent.value, got.value)


@pytest.mark.parametrize(
    ("metric", "says"),
    [
        (Metric(datatype=DataType.INT8, value=128), "out of range"),
        (Metric(datatype=DataType.UINT16, value=-1), "out of range"),
        (Metric(datatype=DataType.INT32, value=1.5), "needs an int"),
        (Metric(datatype=DataType.FLOAT, value=1e39), "32-bit Float"),
        (Metric(datatype=DataType.STRING, value=b"x"), "needs a str"),
        (Metric(datatype=None, value=1.0), "needs a known datatype"),
        (Metric(datatype=DataType.STRING_ARRAY, value=("a\0b",)), "NUL"),
        (Metric(datatype=DataType.PROPERTYSET, value=b""), "cannot encode"),
        (Metric(datatype=DataType.DOUBLE, value=1.0, alias=-1), "alias"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(metric, says):
    with pytest.raises(SparkplugEncodeError, match=says):
        encode_payload(Payload(metrics=[metric]))


# ------------------------------------------------------------------------------------------------
# Malformed input: problems, never exceptions
# ------------------------------------------------------------------------------------------------


def _typical_ndata(seq: int = 1) -> bytes:
    metrics = [Metric(alias=1, timestamp=T0, datatype=DataType.DOUBLE, value=71.25),
               Metric(alias=2, timestamp=T0, datatype=DataType.FLOAT, value=0.5),
               Metric(alias=3, timestamp=T0, datatype=DataType.INT32, value=-7),
               Metric(alias=4, timestamp=T0, datatype=DataType.BOOLEAN, value=True),
               Metric(alias=5, timestamp=T0, datatype=DataType.STRING, value="RUN")]
    return encode_payload(Payload(timestamp=T0, metrics=metrics, seq=seq))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x10\x01", "field 2 has wire type 0, expected 2"),  # metrics as a varint
        (b"\x0a\x01x", "field 1 has wire type 2, expected 0"),  # timestamp as bytes
        (b"\x12\x05\x15\x01\x02\x03\x04", "field 2 has wire type 5, expected 0"),  # alias as fixed32
        (b"\x12\x02\x60\x01", "field 12 has wire type 0, expected 5"),  # float_value as varint
        (b"\x1b\x00", "wire type 3"),  # a group start
        (b"\x00\x00", "field number 0"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x12\x03\x0a\x01\xff", "UTF-8"),
        (b"\x22\x02\xc3\x28", "UTF-8"),
        (b"\x12\x10\x10\x01", "runs past the end"),
        (b"\x12\x01\x69", "truncated"),
        (b"\x12\x05\x69" + b"\x00" * 8, "last field runs past the end of the metric"),
        (b"\x12\x05\x69\x00\x00\x00\x00", "truncated inside a fixed-width value"),
        (b"\x08", "truncated"),
        (b"\x2a\x05ab", "runs past the end"),
    ],
)
def test_malformed_payloads_say_why(data, says):
    with pytest.raises(SparkplugDecodeError, match=None) as caught:
        decode_payload(data)
    assert says in str(caught.value)


def test_bad_arrays_are_malformed():
    bad = [(DataType.INT32_ARRAY, b"\x01\x02\x03"), (DataType.BOOLEAN_ARRAY, b"\x09\x00\x00\x00\xff"),
           (DataType.BOOLEAN_ARRAY, b"\x01"), (DataType.STRING_ARRAY, b"abc")]
    for datatype, raw in bad:
        built = REFERENCE()
        built.metrics.add(datatype=int(datatype), bytes_value=raw)
        with pytest.raises(SparkplugDecodeError):
            decode_payload(built.SerializeToString())


def test_random_bytes_never_raise_anything_else():
    rng = random.Random(7)
    tracker = SparkplugTracker()
    tracker.handle("spBv1.0/G/NBIRTH/E", _birth(seq=0), 0.0)
    typical = _typical_ndata()
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120))) for _ in range(300)]
    # Valid payloads with a few bytes flipped are nastier than noise: they get deep into the parser.
    for _ in range(300):
        flipped = bytearray(typical)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        samples.append(bytes(flipped))
    malformed = 0
    for data in samples:
        try:
            decode_payload(data)
        except SparkplugDecodeError:
            malformed += 1
        events = tracker.handle("spBv1.0/G/NDATA/E", data, 1.0)
        assert all(isinstance(e, MetricUpdate | NodeStatus | SparkplugProblem) for e in events)
        assert not any(isinstance(e, SparkplugProblem) and e.kind is ProblemKind.INTERNAL_ERROR for e in events)
    assert malformed > 300  # nearly all noise, and many flipped payloads, are caught as malformed
    assert tracker.problem_counts["spBv1.0/G/NDATA/E"] >= malformed


def test_every_truncation_of_a_valid_payload_is_caught():
    data = _typical_ndata()
    # Where the top-level fields end: a cut exactly there is a shorter valid payload (protobuf has no
    # end marker), every other cut must be reported.
    boundaries, pos = set(), 0
    ours = decode_payload(data)
    pieces = [encode_payload(Payload(timestamp=ours.timestamp))]
    pieces += [encode_payload(Payload(metrics=[m])) for m in ours.metrics]
    pieces += [encode_payload(Payload(seq=ours.seq))]
    assert b"".join(pieces) == data
    for piece in pieces:
        pos += len(piece)
        boundaries.add(pos)
    tracker = SparkplugTracker()
    for cut in range(1, len(data)):
        if cut in boundaries:
            assert len(decode_payload(data[:cut]).metrics) <= len(ours.metrics)
            continue
        with pytest.raises(SparkplugDecodeError):
            decode_payload(data[:cut])
        (problem,) = tracker.handle("spBv1.0/G/NDATA/E", data[:cut], 1.0)
        assert problem.kind is ProblemKind.MALFORMED_PAYLOAD
        assert (problem.group_id, problem.edge_node_id, problem.device_id) == ("G", "E", None)
    assert len(boundaries) == 7 and len(data) - 7 > 90  # nearly every cut was a malformed one


def test_handle_accepts_bytearray_and_memoryview():
    tracker = SparkplugTracker()
    events = tracker.handle("spBv1.0/G/NBIRTH/E", bytearray(_birth(seq=0)), 1.0)
    assert any(isinstance(e, MetricUpdate) for e in events)
    events = tracker.handle("spBv1.0/G/NDATA/E", memoryview(_typical_ndata(seq=1)), 1.0)
    assert [e.name for e in events] == ["Temperature", "Vibration", "State", "Running", "Mode"]


# ------------------------------------------------------------------------------------------------
# Tracker
# ------------------------------------------------------------------------------------------------

BIRTH_METRICS = [  # name, alias, datatype, value
    ("Temperature", 1, DataType.DOUBLE, 20.0),
    ("Vibration", 2, DataType.FLOAT, 0.25),
    ("State", 3, DataType.INT32, 0),
    ("Running", 4, DataType.BOOLEAN, False),
    ("Mode", 5, DataType.STRING, "IDLE"),
]


def _birth(seq: int = 0, bd_seq: int = 0, metrics=BIRTH_METRICS, node: bool = True) -> bytes:
    ms = [Metric(name=n, alias=a, timestamp=T0, datatype=d, value=v) for n, a, d, v in metrics]
    if node:
        ms.insert(0, Metric(name="bdSeq", datatype=DataType.UINT64, value=bd_seq))
        ms.append(Metric(name="Node Control/Rebirth", datatype=DataType.BOOLEAN, value=False))
    return encode_payload(Payload(timestamp=T0, metrics=ms, seq=seq))


def _data(seq: int, *metrics: Metric, timestamp: int | None = T0 + 1000) -> bytes:
    return encode_payload(Payload(timestamp=timestamp, metrics=list(metrics), seq=seq))


def _death(bd_seq: int | None) -> bytes:
    ms = [] if bd_seq is None else [Metric(name="bdSeq", datatype=DataType.UINT64, value=bd_seq)]
    return encode_payload(Payload(timestamp=T0, metrics=ms))


def updates(events):
    return [(e.device_id, e.name, e.value) for e in events if isinstance(e, MetricUpdate)]


def problems(events):
    return [e for e in events if isinstance(e, SparkplugProblem)]


def statuses(events):
    return [(e.device_id, e.online) for e in events if isinstance(e, NodeStatus)]


NB, ND, NX = "spBv1.0/Plant1/NBIRTH/Line2", "spBv1.0/Plant1/NDATA/Line2", "spBv1.0/Plant1/NDEATH/Line2"
DB, DD, DX = ("spBv1.0/Plant1/DBIRTH/Line2/Robot1", "spBv1.0/Plant1/DDATA/Line2/Robot1",
              "spBv1.0/Plant1/DDEATH/Line2/Robot1")


def test_birth_then_data_resolves_aliases_and_converts_by_the_birth_datatype():
    tracker = SparkplugTracker()
    events = tracker.handle(NB, _birth(seq=0, bd_seq=3), 100.0)
    assert statuses(events) == [(None, True)]
    assert updates(events)[:3] == [(None, "bdSeq", 3), (None, "Temperature", 20.0), (None, "Vibration", 0.25)]
    assert problems(events) == []

    # DATA without datatypes (allowed by the spec), built by Google: the Int32 -5 arrives as the raw
    # uint32 0xFFFFFFFB and only the BIRTH says it is signed.
    built = REFERENCE(timestamp=T0 + 1000, seq=1)
    built.metrics.add(alias=1, double_value=81.5)
    built.metrics.add(alias=3, timestamp=T0 + 1500, int_value=2**32 - 5)
    built.metrics.add(alias=5, string_value="RUN")
    events = tracker.handle(ND, built.SerializeToString(), 101.0)
    assert problems(events) == []
    temp, state, mode = events
    assert (temp.name, temp.value, temp.datatype, temp.alias, temp.timestamp) == (
        "Temperature", 81.5, DataType.DOUBLE, 1, (T0 + 1000) / 1000)
    assert (state.name, state.value, state.datatype, state.timestamp) == (
        "State", -5, DataType.INT32, (T0 + 1500) / 1000)
    assert (mode.group_id, mode.edge_node_id, mode.device_id, mode.value, mode.received_at) == (
        "Plant1", "Line2", None, "RUN", 101.0)


def test_data_by_name_and_timestamp_fallbacks():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(), 1.0)
    (update,) = tracker.handle(ND, _data(1, Metric(name="Mode", datatype=DataType.STRING, value="AUTO"),
                                         timestamp=None), 55.5)
    assert (update.name, update.value, update.alias, update.timestamp) == ("Mode", "AUTO", 5, 55.5)


def test_device_birth_and_data():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(seq=0), 1.0)
    joints = [("Joint/A1", 10, DataType.DOUBLE, 0.0), ("Joints", 11, DataType.DOUBLE_ARRAY, (0.0,) * 6),
              ("Fault", 12, DataType.INT8, -1)]
    events = tracker.handle(DB, _birth(seq=1, metrics=joints, node=False), 2.0)
    assert statuses(events) == [("Robot1", True)]
    assert updates(events) == [("Robot1", "Joint/A1", 0.0), ("Robot1", "Joints", (0.0,) * 6),
                               ("Robot1", "Fault", -1)]
    built = REFERENCE(timestamp=T0, seq=2)
    built.metrics.add(alias=11, bytes_value=struct.pack("<6d", 10, 20, 30, -40, 50, 60.5))
    built.metrics.add(alias=12, int_value=0xFE)  # Int8 -2 without a datatype on the wire
    events = tracker.handle(DD, built.SerializeToString(), 3.0)
    assert updates(events) == [("Robot1", "Joints", (10.0, 20.0, 30.0, -40.0, 50.0, 60.5)), ("Robot1", "Fault", -2)]
    info = tracker.node_info("Plant1", "Line2")
    assert info is not None and info.devices == {"Robot1": True} and info.last_seq == 2 and info.online
    assert "Temperature" in info.metric_names and tracker.nodes() == [info]


def test_sequence_gap_reports_expected_and_got_and_asks_for_rebirth_once():
    asked: list[tuple[str, str]] = []
    tracker = SparkplugTracker(on_rebirth_needed=lambda g, e: asked.append((g, e)))
    tracker.handle(NB, _birth(seq=0), 1.0)
    assert problems(tracker.handle(ND, _data(1, Metric(alias=1, datatype=DataType.DOUBLE, value=1.0)), 2.0)) == []
    events = tracker.handle(ND, _data(4, Metric(alias=1, datatype=DataType.DOUBLE, value=2.0)), 3.0)
    (gap,) = problems(events)
    assert (gap.kind, gap.expected_seq, gap.got_seq, gap.rebirth_needed) == (ProblemKind.SEQ_GAP, 2, 4, True)
    assert "expected 2, got 4" in gap.reason
    assert updates(events) == [(None, "Temperature", 2.0)]  # the data itself is still good
    assert asked == [("Plant1", "Line2")]
    assert tracker.node_info("Plant1", "Line2").rebirth_needed

    (gap2,) = problems(tracker.handle(ND, _data(4, Metric(alias=1, datatype=DataType.DOUBLE, value=3.0)), 4.0))
    assert (gap2.expected_seq, gap2.got_seq) == (5, 4)  # a duplicate/out-of-order message
    assert asked == [("Plant1", "Line2")]  # not asked again until the node is reborn

    tracker.handle(NB, _birth(seq=0, bd_seq=1), 5.0)
    assert not tracker.node_info("Plant1", "Line2").rebirth_needed
    tracker.handle(ND, _data(2, Metric(alias=1, datatype=DataType.DOUBLE, value=4.0)), 6.0)
    assert asked == [("Plant1", "Line2")] * 2


def test_sequence_wraps_from_255_to_0_without_a_gap():
    tracker = SparkplugTracker()
    assert problems(tracker.handle(NB, _birth(seq=0), 0.0)) == []
    assert problems(tracker.handle(DB, _birth(seq=1, node=False), 0.0)) == []
    for i in range(2, 600):  # NDATA and DDATA share the node's counter
        topic = ND if i % 3 else DD
        events = tracker.handle(topic, _data(i % 256, Metric(alias=1, datatype=DataType.DOUBLE, value=float(i))), i)
        assert problems(events) == [], (i, events)
    assert tracker.node_info("Plant1", "Line2").last_seq == 599 % 256


def test_missing_seq_is_reported():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(), 0.0)
    data = encode_payload(Payload(metrics=[Metric(alias=1, datatype=DataType.DOUBLE, value=1.0)]))
    (problem,) = problems(tracker.handle(ND, data, 1.0))
    assert problem.kind is ProblemKind.MISSING_SEQ
    (problem,) = problems(tracker.handle(ND, _data(300), 1.0))
    assert problem.kind is ProblemKind.MISSING_SEQ and "300" in problem.reason


def test_ndeath_marks_node_and_devices_offline_when_bdseq_matches():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(seq=0, bd_seq=5), 0.0)
    tracker.handle(DB, _birth(seq=1, node=False), 0.0)

    (mismatch,) = problems(events := tracker.handle(NX, _death(bd_seq=4), 1.0))
    assert mismatch.kind is ProblemKind.BDSEQ_MISMATCH
    assert "bdSeq 4 does not match NBIRTH bdSeq 5" in mismatch.reason
    assert statuses(events) == [] and tracker.node_info("Plant1", "Line2").online

    events = tracker.handle(NX, _death(bd_seq=5), 2.0)
    assert problems(events) == []
    assert statuses(events) == [(None, False), ("Robot1", False)]
    info = tracker.node_info("Plant1", "Line2")
    assert not info.online and info.devices == {"Robot1": False}

    (late,) = problems(tracker.handle(ND, _data(2, Metric(alias=1, datatype=DataType.DOUBLE, value=1.0)), 3.0))
    assert late.kind is ProblemKind.DATA_BEFORE_BIRTH and "after its NDEATH" in late.reason and late.rebirth_needed


def test_ndeath_without_bdseq_still_goes_offline_but_is_reported():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(bd_seq=2), 0.0)
    events = tracker.handle(NX, _death(bd_seq=None), 1.0)
    assert [p.kind for p in problems(events)] == [ProblemKind.BDSEQ_MISMATCH]
    assert statuses(events) == [(None, False)]


def test_ddeath_marks_only_that_device_offline():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(seq=0), 0.0)
    tracker.handle(DB, _birth(seq=1, node=False), 0.0)
    events = tracker.handle(DX, encode_payload(Payload(timestamp=T0, seq=2)), 1.0)
    assert statuses(events) == [("Robot1", False)] and problems(events) == []
    assert tracker.node_info("Plant1", "Line2").online
    (problem,) = problems(tracker.handle(DD, _data(3, Metric(alias=1, datatype=DataType.DOUBLE, value=1.0)), 2.0))
    assert problem.kind is ProblemKind.DATA_BEFORE_BIRTH and "Robot1" in problem.reason


def test_data_before_birth_is_a_problem_not_an_exception():
    tracker = SparkplugTracker()
    for topic in (ND, DD, DB, DX):
        (problem,) = tracker.handle(topic, _data(0, Metric(alias=1, datatype=DataType.DOUBLE, value=1.0)), 1.0)
        assert problem.kind is ProblemKind.DATA_BEFORE_BIRTH and problem.rebirth_needed
        assert "before any NBIRTH" in problem.reason
    # An NDEATH from a node never seen alive changes nothing.
    assert tracker.handle(NX, _death(0), 1.0) == []


def test_unknown_alias_and_unknown_name_are_reported_and_the_rest_delivered():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(), 0.0)
    events = tracker.handle(ND, _data(1, Metric(alias=99, datatype=DataType.DOUBLE, value=1.0),
                                      Metric(alias=1, datatype=DataType.DOUBLE, value=2.0)), 1.0)
    assert updates(events) == [(None, "Temperature", 2.0)]
    (problem,) = problems(events)
    assert problem.kind is ProblemKind.UNKNOWN_ALIAS and "alias 99" in problem.reason and problem.rebirth_needed
    (problem,) = problems(tracker.handle(ND, _data(2, Metric(name="Pressure", datatype=DataType.DOUBLE, value=1.0)),
                                         2.0))
    assert problem.kind is ProblemKind.UNKNOWN_METRIC and "'Pressure'" in problem.reason


def test_datatype_mismatch_and_bad_birth_are_reported():
    tracker = SparkplugTracker()
    bad = [("A", 1, DataType.DOUBLE, 1.0), ("B", 1, DataType.DOUBLE, 2.0)]
    events = tracker.handle(NB, _birth(metrics=bad), 0.0)
    (problem,) = problems(events)
    assert problem.kind is ProblemKind.BAD_BIRTH and "alias 1 used by both 'A' and 'B'" in problem.reason
    events = tracker.handle(ND, _data(1, Metric(alias=1, datatype=DataType.FLOAT, value=1.0)), 1.0)
    (problem,) = problems(events)
    assert problem.kind is ProblemKind.DATATYPE_MISMATCH and "sent as FLOAT, born as DOUBLE" in problem.reason
    assert updates(events) == [(None, "B", 1.0)]


def test_a_bad_array_in_data_without_datatype_is_reported_and_the_rest_delivered():
    tracker = SparkplugTracker()
    tracker.handle(NB, _birth(metrics=[("Joints", 1, DataType.INT32_ARRAY, (1, 2)), ("T", 2, DataType.DOUBLE, 0.0)]),
                   0.0)
    built = REFERENCE(seq=1)
    built.metrics.add(alias=1, bytes_value=b"\x01\x02\x03")  # 3 bytes cannot be Int32 items
    built.metrics.add(alias=2, double_value=4.0)
    events = tracker.handle(ND, built.SerializeToString(), 1.0)
    (problem,) = problems(events)
    assert problem.kind is ProblemKind.MALFORMED_PAYLOAD and "'Joints'" in problem.reason
    assert updates(events) == [(None, "T", 4.0)]


def test_rebirth_is_a_command_the_client_may_publish():
    topic, data = rebirth_command("Plant1", "Line2", T0)
    assert topic == "spBv1.0/Plant1/NCMD/Line2"
    (metric,) = ref_parse(data).metrics
    assert (metric.name, metric.datatype, metric.boolean_value) == ("Node Control/Rebirth", 11, True)
    # Commands and host STATE are not telemetry.
    tracker = SparkplugTracker()
    assert tracker.handle(topic, data, 0.0) == []
    assert tracker.handle("spBv1.0/STATE/host", json.dumps({"online": True}).encode(), 0.0) == []


def test_a_failing_rebirth_callback_is_reported_not_raised():
    def explode(group, edge):
        raise RuntimeError("publisher gone")

    tracker = SparkplugTracker(on_rebirth_needed=explode)
    events = tracker.handle(ND, _data(0), 0.0)
    assert [p.kind for p in problems(events)] == [ProblemKind.DATA_BEFORE_BIRTH, ProblemKind.INTERNAL_ERROR]
    assert "publisher gone" in events[1].reason


def test_problems_are_counted_per_topic():
    tracker = SparkplugTracker()
    tracker.handle(ND, b"\xff", 0.0)
    tracker.handle(ND, b"\xff", 0.0)
    tracker.handle("spBv1.0/x", b"", 0.0)
    tracker.handle(NB, _birth(), 0.0)
    assert tracker.problem_counts == {ND: 2, "spBv1.0/x": 1}


def test_the_codec_needs_neither_protobuf_nor_qt_at_run_time():
    code = (
        "import sys, viewer.telemetry.sparkplug as s\n"
        "s.SparkplugTracker().handle('spBv1.0/G/NDATA/E', b'\\x08\\x01', 0.0)\n"
        "bad = ('google', 'PySide6', 'shiboken6', 'vtk', 'vtkmodules', 'pyvista', 'pyvistaqt', 'qtpy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
