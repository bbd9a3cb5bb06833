"""A safe, versioned codec for the pipeline's state: replay keyframes, in a file and in memory.

A recording may come from anyone, so a keyframe is *data*, never code: no pickle, nothing that names a
function or imports a module. The encoded form is tagged JSON (orjson), zstd-compressed, behind a
format line ``twin-keyframe/<version>``:

- ``None``, ``bool``, ``str``, 64-bit ``int`` and finite ``float`` are JSON scalars; a ``dict`` with ``str``
  keys is a JSON object;
- every other value is a JSON list whose first item is a tag: ``["l", ...]`` list, ``["t", ...]`` tuple,
  ``["s", ...]`` set, ``["S", ...]`` frozenset, ``["q", maxlen, ...]`` deque, ``["m", k, v, k, v, ...]``
  dict with other keys, ``["C", k, n, ...]`` Counter, ``["f", "nan"|"inf"|"-inf"]``, ``["i", "digits"]``
  big int, ``["b", base64]`` bytes, ``["a", dtype, [shape], base64]`` numpy array (dtype allow-list),
  ``["e", name, value]`` enum member, ``["o", name, {field: value}]`` registered object.

Classes are decoded only by an explicit allow-list (:func:`register_dataclass`, :func:`register_plain`,
:func:`register_enum`, :func:`register_custom`), by their registered *name*. A dataclass is encoded by its
fields, generically: a field added later decodes from an older keyframe with its default. An unknown class,
an unknown field, a wrong type, a wrong version, a payload over :data:`MAX_DECODED_BYTES` or deeper than
:data:`MAX_DEPTH` raises :class:`StateCodecError` with the reason: the caller reports it and skips the
keyframe, it never mis-reads one.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import gc
import math
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import zstandard

FORMAT = "twin-keyframe"
VERSION = 1
MAGIC = f"{FORMAT}/{VERSION}\n".encode()
MAX_ENCODED_BYTES = 64 << 20  # a keyframe of our pipelines is tens of KB to a few MB
MAX_DECODED_BYTES = 256 << 20
MAX_DEPTH = 48
MAX_ARRAY_ELEMENTS = 1 << 24
_INT64 = (-(1 << 63), (1 << 63) - 1)
ARRAY_DTYPES = frozenset({"float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
                          "uint8", "bool"})
_COMPRESSOR = zstandard.ZstdCompressor(level=3)  # write_content_size: decompress can check the size first


class StateCodecError(ValueError):
    """A state that cannot be encoded, or a payload that is not a keyframe this viewer reads (says why)."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    cls: type
    kind: str  # "dataclass", "plain", "enum", "custom"
    skip: tuple[str, ...] = ()
    to_data: Callable[[Any], Any] | None = None
    from_data: Callable[[Any], Any] | None = None
    after: Callable[[Any], None] | None = None  # plain objects: rebuild what was skipped (a lock)
    field_names: tuple[str, ...] = ()  # a dataclass's fields (looked up once: encoding runs per keyframe)
    json_ready: bool = False  # custom: to_data gives plain JSON, written as is (from_data checks every item)


_BY_NAME: dict[str, _Entry] = {}
_BY_CLASS: dict[type, _Entry] = {}


def _add(entry: _Entry) -> None:
    known = _BY_NAME.get(entry.name)
    if known is not None and known.cls is not entry.cls:
        raise ValueError(f"state codec: the name {entry.name!r} is taken by {known.cls.__qualname__}")
    _BY_NAME[entry.name] = entry
    _BY_CLASS[entry.cls] = entry


def register_dataclass(cls: type, name: str | None = None) -> type:
    """Allow a dataclass: encoded by its fields (all of them, present and future)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__qualname__} is not a dataclass")
    _add(_Entry(name or cls.__name__, cls, "dataclass", field_names=tuple(f.name for f in dataclasses.fields(cls))))
    return cls


def register_plain(cls: type, name: str | None = None, skip: tuple[str, ...] = (),
                   after: Callable[[Any], None] | None = None) -> type:
    """Allow a plain class: encoded by its attributes (``__dict__`` and ``__slots__``) but ``skip``; on
    decoding the instance is made without calling ``__init__``, then ``after(obj)`` rebuilds the rest."""
    _add(_Entry(name or cls.__name__, cls, "plain", skip=skip, after=after))
    return cls


def register_enum(cls: type[enum.Enum], name: str | None = None) -> type:
    """Allow an enum: encoded by its member's value."""
    _add(_Entry(name or cls.__name__, cls, "enum"))
    return cls


def register_custom(cls: type, to_data: Callable[[Any], Any], from_data: Callable[[Any], Any],
                    name: str | None = None, json_ready: bool = False) -> None:
    """Allow a class with explicit functions: ``to_data(obj)`` gives encodable data, ``from_data`` rebuilds
    the object from the decoded data (raising KeyError, TypeError or ValueError when it does not fit).
    ``json_ready``: ``to_data`` gives plain JSON (str keys, lists, finite numbers), written untagged (much
    faster for a scorer's numbers); a non-finite float in it becomes null, which ``from_data`` must refuse."""
    _add(_Entry(name or cls.__name__, cls, "custom", to_data=to_data, from_data=from_data, json_ready=json_ready))


def _attributes(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    names: list[str] = []
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    out = {n: getattr(obj, n) for n in names if n not in skip and n != "__dict__" and hasattr(obj, n)}
    out.update({k: v for k, v in getattr(obj, "__dict__", {}).items() if k not in skip})
    return out


# --- encoding ---------------------------------------------------------------------------------------------
def to_tree(value: Any, depth: int = 0) -> Any:
    """``value`` as the tagged JSON tree (StateCodecError for a type that is not allowed)."""
    t = type(value)
    if value is None or t is str or t is bool:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return ["f", "nan" if value != value else ("inf" if value > 0 else "-inf")]
    if t is int:
        return value if _INT64[0] <= value <= _INT64[1] else ["i", str(value)]
    if depth > MAX_DEPTH:
        raise StateCodecError(f"the state is nested more than {MAX_DEPTH} levels deep")
    d = depth + 1
    if t is dict:
        if all(type(k) is str for k in value):
            out: dict[str, Any] = {}
            for k, v in value.items():  # scalars inline: most of a state's values are
                tv = type(v)
                if tv is str or v is None or tv is bool or (tv is float and v - v == 0.0):
                    out[k] = v
                else:
                    out[k] = to_tree(v, d)
            return out
        flat: list[Any] = ["m"]
        for k, v in value.items():
            flat.append(to_tree(k, d))
            flat.append(to_tree(v, d))
        return flat
    if t is list or t is tuple:
        tag = "l" if t is list else "t"
        if _plain(value):  # the common case (a scorer's numbers): no call per item
            return [tag, *value]
        return [tag, *[to_tree(v, d) for v in value]]
    if t is set:
        return ["s", *[to_tree(v, d) for v in value]]
    if t is frozenset:
        return ["S", *[to_tree(v, d) for v in value]]
    if t is deque:
        return ["q", value.maxlen, *[to_tree(v, d) for v in value]]
    if t is Counter:
        counted: list[Any] = ["C"]
        for k, v in value.items():
            counted.append(to_tree(k, d))
            counted.append(to_tree(v, d))
        return counted
    if t is bytes:
        return ["b", base64.b64encode(value).decode()]
    if t is np.ndarray:
        if value.dtype.name not in ARRAY_DTYPES:
            raise StateCodecError(f"numpy dtype {value.dtype.name} is not allowed in a keyframe")
        return ["a", value.dtype.name, list(value.shape), base64.b64encode(np.ascontiguousarray(value)).decode()]
    if isinstance(value, np.generic):  # a numpy scalar: as the Python number it stands for
        return to_tree(value.item(), depth)
    entry = _BY_CLASS.get(t)
    if entry is None:
        raise StateCodecError(f"{t.__module__}.{t.__qualname__} is not registered with the state codec")
    if entry.kind == "enum":
        return ["e", entry.name, to_tree(value.value, d)]
    if entry.kind == "dataclass":
        fields = to_tree({name: getattr(value, name) for name in entry.field_names}, depth)
    elif entry.kind == "plain":
        fields = to_tree(_attributes(value, entry.skip), depth)
    elif entry.json_ready:
        fields = {"json": entry.to_data(value)}  # type: ignore[misc]
    else:
        fields = {"data": to_tree(entry.to_data(value), d)}  # type: ignore[misc]
    return ["o", entry.name, fields]


_PLAIN_TYPES = frozenset({str, bool, type(None)})


def _plain(items: Any) -> bool:
    """Whether every item is written as itself: text, bool, None, a finite float or a 64-bit int."""
    for v in items:
        t = type(v)
        if t is float:
            if v - v != 0.0:  # nan and ±inf (nan - nan and inf - inf are nan)
                return False
        elif t is int:
            if not _INT64[0] <= v <= _INT64[1]:
                return False
        elif t not in _PLAIN_TYPES:
            return False
    return True


def encode(value: Any, header: dict[str, Any] | None = None) -> bytes:
    """The keyframe bytes of ``value`` (and a small ``header`` of plain JSON values)."""
    document = {"header": header or {}, "state": to_tree(value)}
    try:
        text = orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise StateCodecError(f"the state cannot be written: {exc}") from None
    return MAGIC + _COMPRESSOR.compress(text)


# --- decoding ---------------------------------------------------------------------------------------------
def _fail(what: str, path: str) -> StateCodecError:
    return StateCodecError(f"bad keyframe at {path or 'the top'}: {what}")


def from_tree(node: Any, path: str = "", depth: int = 0) -> Any:
    """The value a tagged JSON tree stands for (StateCodecError with where and why when it is not one)."""
    t = type(node)
    if node is None or t is str or t is bool or t is int or t is float:
        return node
    if depth > MAX_DEPTH:
        raise _fail(f"nested more than {MAX_DEPTH} levels deep", path)
    d = depth + 1
    if t is dict:
        return {k: from_tree(v, f"{path}.{k}", d) for k, v in node.items()}
    if t is not list or not node or type(node[0]) is not str:
        raise _fail(f"expected a tagged list, got {type(node).__name__}", path)
    tag, items = node[0], node[1:]
    if tag == "l":
        return [from_tree(v, f"{path}[{i}]", d) for i, v in enumerate(items)]
    if tag == "t":
        return tuple(from_tree(v, f"{path}[{i}]", d) for i, v in enumerate(items))
    if tag in ("s", "S"):
        members = [from_tree(v, f"{path}[{i}]", d) for i, v in enumerate(items)]
        try:
            return set(members) if tag == "s" else frozenset(members)
        except TypeError:
            raise _fail("a set member that cannot be hashed", path) from None
    if tag == "q":
        if not items or not (items[0] is None or (type(items[0]) is int and items[0] >= 0)):
            raise _fail("a deque without a valid maxlen", path)
        return deque((from_tree(v, f"{path}[{i}]", d) for i, v in enumerate(items[1:])), maxlen=items[0])
    if tag in ("m", "C"):
        if len(items) % 2:
            raise _fail("a mapping with an odd number of items", path)
        out: dict[Any, Any] = {} if tag == "m" else Counter()
        for i in range(0, len(items), 2):
            key = from_tree(items[i], f"{path}<key {i // 2}>", d)
            try:
                out[key] = from_tree(items[i + 1], f"{path}[{key!r}]", d)
            except TypeError:
                raise _fail("a mapping key that cannot be hashed", path) from None
        return out
    if tag == "f":
        special = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        if len(items) != 1 or items[0] not in special:
            raise _fail("a float that is neither nan nor ±inf", path)
        return special[items[0]]
    if tag == "i":
        if len(items) != 1 or type(items[0]) is not str or not items[0].lstrip("-").isdigit() or len(items[0]) > 400:
            raise _fail("a big integer that is not digits", path)
        return int(items[0])
    if tag == "b":
        return _b64(items, path)
    if tag == "a":
        return _array(items, path)
    if tag == "e":
        return _enum(items, path, d)
    if tag == "o":
        return _object(items, path, d)
    raise _fail(f"unknown tag {tag!r}", path)


def _b64(items: list[Any], path: str) -> bytes:
    if len(items) != 1 or type(items[0]) is not str:
        raise _fail("bytes that are not base64 text", path)
    try:
        return base64.b64decode(items[0], validate=True)
    except ValueError:
        raise _fail("bytes that are not base64 text", path) from None


def _array(items: list[Any], path: str) -> np.ndarray:
    if len(items) != 3 or items[0] not in ARRAY_DTYPES or type(items[1]) is not list \
            or not all(type(n) is int and n >= 0 for n in items[1]):
        raise _fail("an array without an allowed dtype and shape", path)
    shape = tuple(items[1])
    count = math.prod(shape)
    if count > MAX_ARRAY_ELEMENTS:
        raise _fail(f"an array of {count:,} elements (limit {MAX_ARRAY_ELEMENTS:,})", path)
    raw = _b64([items[2]], path)
    dtype = np.dtype(items[0])
    if len(raw) != count * dtype.itemsize:
        raise _fail(f"an array of shape {shape} with {len(raw):,} bytes", path)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _enum(items: list[Any], path: str, depth: int) -> enum.Enum:
    entry = _BY_NAME.get(items[0]) if items and type(items[0]) is str else None
    if entry is None or entry.kind != "enum" or len(items) != 2:
        raise _fail(f"unknown enum {items[0] if items else ''!r}", path)
    try:
        return entry.cls(from_tree(items[1], path, depth))
    except ValueError:
        raise _fail(f"{entry.name} has no member {items[1]!r}", path) from None


def _object(items: list[Any], path: str, depth: int) -> Any:
    name = items[0] if items and type(items[0]) is str else None
    entry = _BY_NAME.get(name) if name is not None else None
    if entry is None or entry.kind == "enum":
        raise _fail(f"unknown class {name!r} (not on the keyframe allow-list)", path)
    if len(items) != 2 or type(items[1]) is not dict:
        raise _fail(f"{name} without its fields", path)
    where = f"{path}<{name}>"
    if entry.kind == "custom":
        try:
            # plain JSON is read by from_data, which checks what it takes
            data = items[1]["json"] if entry.json_ready else from_tree(items[1]["data"], f"{where}.data", depth)
            return entry.from_data(data)  # type: ignore[misc]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise _fail(f"{name} data does not fit ({type(exc).__name__}: {exc})", where) from None
    values = {k: from_tree(v, f"{where}.{k}", depth) for k, v in items[1].items()}
    obj = object.__new__(entry.cls)
    if entry.kind == "dataclass":
        fields = {f.name: f for f in dataclasses.fields(entry.cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise _fail(f"{name} has no field {sorted(unknown)[0]!r} (a keyframe of another version?)", where)
        for field_name, f in fields.items():
            if field_name in values:
                value = values[field_name]
            elif f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                raise _fail(f"{name} lacks its field {field_name!r}", where)
            object.__setattr__(obj, field_name, value)
        return obj
    for key, value in values.items():
        if key in entry.skip or key.startswith("__"):
            raise _fail(f"{name} may not carry {key!r}", where)
        try:
            object.__setattr__(obj, key, value)
        except AttributeError:
            raise _fail(f"{name} has no attribute {key!r}", where) from None
    if entry.after is not None:
        entry.after(obj)
    return obj


def decode(data: bytes, max_bytes: int = MAX_DECODED_BYTES) -> tuple[dict[str, Any], Any]:
    """(header, state) of keyframe bytes; StateCodecError says why they are not a keyframe this viewer reads."""
    data = bytes(data)
    if not data.startswith(MAGIC):
        line = data[:40].split(b"\n", 1)[0]
        if line.startswith(FORMAT.encode() + b"/"):
            raise StateCodecError(f"keyframe format {line.decode(errors='replace')!r}: this viewer reads "
                                  f"{FORMAT}/{VERSION}")
        raise StateCodecError("not a twin-keyframe payload")
    if len(data) > MAX_ENCODED_BYTES:
        raise StateCodecError(f"a keyframe of {len(data):,} bytes is over the {MAX_ENCODED_BYTES:,} limit")
    body = data[len(MAGIC):]
    try:
        params = zstandard.get_frame_parameters(body)
        if params.content_size > max_bytes:  # ZSTD_CONTENTSIZE_UNKNOWN is a huge number too: refused
            raise StateCodecError(f"a keyframe that unpacks to over {max_bytes:,} bytes")
        text = zstandard.ZstdDecompressor().decompress(body, max_output_size=max_bytes)
    except zstandard.ZstdError as exc:
        raise StateCodecError(f"a keyframe that does not decompress ({exc})") from None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StateCodecError(f"a keyframe that is not valid JSON ({exc})") from None
    if type(document) is not dict or type(document.get("header")) is not dict or "state" not in document:
        raise StateCodecError("a keyframe without its header and state")
    return document["header"], from_tree(document["state"], "state")


# --- the pipeline's state ---------------------------------------------------------------------------------
# What a keyframe holds: everything a step reads and writes, but not what the layout gives (bindings, limits,
# the scorers' configuration), the plot history (it restarts at the keyframe) or caches (topic plans).
HISTORY_IN_KEYFRAME = 500  # alarm-history events a keyframe carries (the log itself is bounded at 10,000)


def _register_pipeline_classes() -> None:
    import itertools
    import threading

    from viewer.analytics.scorer import ComponentScorer, ScoreResult
    from viewer.telemetry import alarms, states, store
    from viewer.telemetry.sparkplug import codec as sparkplug_codec
    from viewer.telemetry.sparkplug import tracker

    for cls in (alarms.Alarm, alarms.AlarmEvent, alarms.AlarmManager, states._SignalState, store.Sample,
                store.TopicErrors, ScoreResult, tracker.StructuredValue):
        register_dataclass(cls)
    register_enum(alarms.AlarmState)
    register_enum(sparkplug_codec.DataType)
    register_plain(tracker._MetricDef, "SparkplugMetricDef")
    register_plain(tracker._Scope, "SparkplugScope")
    register_plain(tracker._NodeState, "SparkplugNodeState")

    def new_lock(obj: Any) -> None:
        obj._lock = threading.Lock()
        for name in ("_uncertain", "_alive"):  # a keyframe written before the store had them
            obj.__dict__.setdefault(name, {})

    register_plain(store.LatestValueStore, skip=("_lock",), after=new_lock)

    def count_to(counter: itertools.count) -> int:
        text = repr(counter)  # "count(7)": the next id, without taking it
        return int(text[text.index("(") + 1:-1])

    def count_from(n: Any) -> itertools.count:
        if type(n) is not int:
            raise TypeError("an id counter is a whole number")
        return itertools.count(n)

    register_custom(itertools.count, count_to, count_from, "IdCounter")
    register_custom(ComponentScorer, lambda s: s.state_dict(), ComponentScorer.from_state, json_ready=True)


_register_pipeline_classes()


def capture(pipeline: Any) -> dict[str, Any]:
    """The pipeline's state as encodable data (read it on the thread that steps the pipeline)."""
    p = pipeline
    monitor = p.anomaly
    return {
            "store": p.store,
            "engine": {"by_signal": p.engine._by_signal, "component_states": p.engine.component_states},
            "alarms": p.alarms,
            "anomaly": {"components": {c: {"signals": e.signals, "scorer": e.scorer, "result": e.result}
                                       for c, e in monitor.components.items()},
                        "pending": monitor._pending, "fresh": monitor._fresh, "latest": monitor._latest},
            "anomaly_alarms": {"episodes": p.anomaly_alarms._episodes, "signals": p.anomaly_alarms._signals},
            "anomaly_state": p.anomaly_state,
            "units": p.units,
            "first_out_seen": p._first_out_seen,
            "sparkplug": {"nodes": p.router.sparkplug._nodes, "problems": p.router.sparkplug.problem_counts,
                          "templates": p.router.sparkplug.template_definitions},
            "sparkplug_keys": p.router._sparkplug_keys,
    }


def encode_pipeline(pipeline: Any, header: dict[str, Any] | None = None) -> bytes:
    """The pipeline's state as keyframe bytes (StateCodecError when something in it cannot be written)."""
    alarms = pipeline.alarms
    history, alarms.history = alarms.history, alarms.history[-HISTORY_IN_KEYFRAME:]  # the log has its own limit
    collecting = gc.isenabled()
    gc.disable()  # the tree is many small new objects, none cyclic: collections would scan the heap 2-3x over
    try:
        return encode(capture(pipeline), header)
    finally:
        if collecting:
            gc.enable()
        alarms.history = history


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind):
        raise StateCodecError(f"bad keyframe: {what} is a {type(value).__name__}")
    return value


def restore(pipeline: Any, state: Any) -> None:
    """Put a decoded keyframe state into ``pipeline`` (a fresh one or the one replaying); everything is checked
    before anything is changed, so a bad keyframe leaves the pipeline as it was."""
    from viewer.analytics.monitor import ComponentAnomaly
    from viewer.analytics.scorer import ComponentScorer, ScoreResult
    from viewer.telemetry.alarms import AlarmManager
    from viewer.telemetry.store import LatestValueStore

    s = _expect(state, dict, "the state")
    try:
        store = _expect(s["store"], LatestValueStore, "the store")
        engine = _expect(s["engine"], dict, "the state engine")
        by_signal = _expect(engine["by_signal"], dict, "the signal states")
        component_states = _expect(engine["component_states"], dict, "the component states")
        alarms = _expect(s["alarms"], AlarmManager, "the alarm manager")
        anomaly = _expect(s["anomaly"], dict, "the anomaly monitor")
        components = {}
        for c, entry in _expect(anomaly["components"], dict, "the scorers").items():
            scorer = _expect(entry["scorer"], ComponentScorer, f"the scorer of {c}")
            result = _expect(entry["result"], ScoreResult, f"the score of {c}")
            components[c] = ComponentAnomaly([str(x) for x in entry["signals"]], scorer, result)
        pending = _expect(anomaly["pending"], dict, "the scorers' new signals")
        fresh = _expect(anomaly["fresh"], dict, "the scorers' fresh values")
        latest = _expect(anomaly["latest"], dict, "the scorers' latest values")
        aa = _expect(s["anomaly_alarms"], dict, "the anomaly alarms")
        episodes = _expect(aa["episodes"], dict, "the anomaly episodes")
        signals = _expect(aa["signals"], dict, "the anomaly signals")
        anomaly_state = _expect(s["anomaly_state"], dict, "the anomaly states")
        units = _expect(s["units"], dict, "the units")
        first_out_seen = _expect(s["first_out_seen"], int, "the first-out mark")
        sp = _expect(s["sparkplug"], dict, "the Sparkplug state")
        nodes = _expect(sp["nodes"], dict, "the Sparkplug nodes")
        problems = _expect(sp["problems"], dict, "the Sparkplug problem counts")
        templates = _expect(sp["templates"], int, "the Sparkplug template count")
        sparkplug_keys = _expect(s["sparkplug_keys"], dict, "the Sparkplug signal map")
    except KeyError as exc:
        raise StateCodecError(f"bad keyframe: {exc.args[0]!r} is missing") from None
    p = pipeline
    p.store = store
    p.router.store = store
    p.engine._by_signal = by_signal
    p.engine.component_states = component_states
    p.alarms = alarms
    p.anomaly_alarms.alarms = alarms
    monitor = p.anomaly
    monitor.components, monitor._pending, monitor._fresh, monitor._latest = components, pending, fresh, latest
    p.anomaly_alarms.monitor = monitor
    p.anomaly_alarms._episodes, p.anomaly_alarms._signals = episodes, signals
    p.anomaly_state = anomaly_state
    p.units = units
    p._first_out_seen = first_out_seen
    tracker = p.router.sparkplug
    tracker._nodes, tracker.problem_counts, tracker.template_definitions = nodes, Counter(problems), templates
    p.router._sparkplug_keys = sparkplug_keys
    p.history.clear()  # plot data, not state: it restarts at the keyframe (it would show the future otherwise)
    trends = getattr(p, "trends", None)
    if trends is not None:
        trends.clear()
