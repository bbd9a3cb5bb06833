"""Sparkplug B payload decoding: the hand-written codec against Google protobuf (upb), fields read out.

A typical NDATA (5 metrics by alias with timestamps: a double, an int32, a boolean, a string, an int64) and
a typical NBIRTH (30 metrics with names, aliases and datatypes) are decoded 20,000 times each, alternately,
in one process, by

- ``ours``: ``viewer.telemetry.sparkplug.codec._decode_raw``, what the tracker calls (tuples per metric);
- ``upb``: ``Payload.FromString`` on a message class built at run time from the official schema (the
  descriptor the tests transcribe), then every field the tracker needs read out into the same tuples
  (``WhichOneof`` for the value): parsing alone is not the cost that counts; once as is ("lax") and once
  refusing what the hand codec refuses ("strict": unknown or mistyped fields, strings that are not UTF-8).

    python benchmarks/sparkplug_codec.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_common import emit

from viewer.telemetry.sparkplug.codec import DataType, Metric, Payload, _decode_raw, encode_payload


def payloads() -> dict[str, bytes]:
    t = 1_760_000_000_000
    ndata = Payload(timestamp=t, seq=7, metrics=[
        Metric(alias=1, timestamp=t, datatype=DataType.DOUBLE, value=21.5),
        Metric(alias=2, timestamp=t, datatype=DataType.INT32, value=-3),
        Metric(alias=3, timestamp=t, datatype=DataType.BOOLEAN, value=True),
        Metric(alias=4, timestamp=t, datatype=DataType.STRING, value="running"),
        Metric(alias=5, timestamp=t, datatype=DataType.INT64, value=123_456_789)])
    kinds = [(DataType.DOUBLE, 1.5), (DataType.INT32, 7), (DataType.BOOLEAN, False), (DataType.STRING, "idle"),
             (DataType.FLOAT, 0.25)]
    nbirth = Payload(timestamp=t, seq=0, metrics=[
        Metric(name=f"Line 1/Station {i // 5}/Signal {i}", alias=i + 1, timestamp=t, datatype=kinds[i % 5][0],
               value=kinds[i % 5][1]) for i in range(30)])
    return {"ndata_5": encode_payload(ndata), "nbirth_30": encode_payload(nbirth)}


def upb_readers():
    """Two decode functions with Google's protobuf returning what ``_decode_raw`` returns: ``lax`` reads the
    fields out; ``strict`` also refuses what the hand codec refuses and upb lets through (a known field with
    the wrong wire type becomes an "unknown field", an invalid UTF-8 string comes back as bytes)."""
    from google.protobuf.internal import api_implementation
    from google.protobuf.unknown_fields import UnknownFieldSet
    from test_sparkplug import REFERENCE

    fields = {"int_value": 10, "long_value": 11, "float_value": 12, "double_value": 13, "boolean_value": 14,
              "string_value": 15, "bytes_value": 16, "dataset_value": 17, "template_value": 18,
              "extension_value": 19}
    from_string = REFERENCE.FromString

    def lax(data: bytes) -> tuple:
        p = from_string(data)
        metrics = []
        for m in p.metrics:
            which = m.WhichOneof("value")
            has = m.HasField
            metrics.append((m.name if has("name") else None, m.alias if has("alias") else None,
                            m.timestamp if has("timestamp") else None, m.datatype if has("datatype") else None,
                            getattr(m, which) if which else None, m.is_null, m.is_historical, m.is_transient,
                            fields[which] if which else 0))
        return (p.timestamp if p.HasField("timestamp") else None, metrics, p.seq if p.HasField("seq") else None,
                None, None)

    def strict(data: bytes) -> tuple:
        p = from_string(data)
        if len(UnknownFieldSet(p)):
            raise ValueError("unknown or mistyped field")
        metrics = []
        for m in p.metrics:
            if len(UnknownFieldSet(m)):
                raise ValueError("unknown or mistyped field")
            which = m.WhichOneof("value")
            has = m.HasField
            name = m.name if has("name") else None
            value = getattr(m, which) if which else None
            if (name is not None and type(name) is not str) or (which == "string_value" and type(value) is not str):
                raise ValueError("not UTF-8")
            metrics.append((name, m.alias if has("alias") else None, m.timestamp if has("timestamp") else None,
                            m.datatype if has("datatype") else None, value, m.is_null, m.is_historical,
                            m.is_transient, fields[which] if which else 0))
        return (p.timestamp if p.HasField("timestamp") else None, metrics, p.seq if p.HasField("seq") else None,
                None, None)

    return lax, strict, api_implementation.Type()


def per_call_us(fn, data: bytes, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(data)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 decodes per round instead of 20,000")
    args = parser.parse_args()
    n = 2_000 if args.quick else 20_000
    lax, strict, backend = upb_readers()
    figures = []
    for name, data in payloads().items():
        ours_raw = _decode_raw(data)
        # the same fields out (values still unconverted on the protobuf side: signed ints arrive as uint32)
        assert [m[:4] for m in ours_raw[1]] == [m[:4] for m in strict(data)[1]]
        rounds: dict[str, list[float]] = {"ours": [], "lax": [], "strict": []}
        for _ in range(7):  # alternate, so all three see the same machine noise
            rounds["ours"].append(per_call_us(_decode_raw, data, n))
            rounds["lax"].append(per_call_us(lax, data, n))
            rounds["strict"].append(per_call_us(strict, data, n))
        o, u, s = (statistics.median(rounds[k]) for k in ("ours", "lax", "strict"))
        print(f"{name} ({len(data)} bytes): ours {o:.2f} µs; protobuf ({backend}) fields read out {u:.2f} µs "
              f"(ratio {u / o:.2f}), and as strict as ours {s:.2f} µs (ratio {s / o:.2f})", file=sys.stderr)
        figures.append({"figure": f"sparkplug_decode_{name}_us", "value": round(o, 2), "unit": "µs",
                        "higher_is_better": False, "peer": f"protobuf {backend}, as strict as ours",
                        "peer_value": round(s, 2),
                        "note": f"protobuf {backend} with the fields read out but lax: {u:.2f} µs; median of 7 "
                                f"rounds of {n:,}; {len(data)} bytes"})
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
