"""Keyframes in recordings: the safe state codec, keyframes written while recording, instant opening and
seeking from them, refused tampered keyframes, and background indexing of files without any."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import math
import random
from collections import Counter, deque
from pathlib import Path

import numpy as np
import orjson
import pytest
import zstandard

from viewer.model.layout_io import load_layout
from viewer.telemetry import state_codec
from viewer.telemetry.recording import EVENTS_TOPIC, KEYFRAME_ENCODING, KEYFRAME_TOPIC, Recorder
from viewer.telemetry.replay import KEYFRAME_CACHE, KeyframeWriter, Replayer
from viewer.telemetry.virtual_plant import VirtualPlant

T0 = 1_750_000_000.0


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Thing:
    name: str
    colour: Colour = Colour.RED
    tags: set[str] = dataclasses.field(default_factory=set)


state_codec.register_dataclass(Thing, "TestThing")
state_codec.register_enum(Colour, "TestColour")


def roundtrip(value):
    return state_codec.decode(state_codec.encode(value))[1]


# --- the codec ----------------------------------------------------------------------------------------------
def test_the_codec_round_trips_what_the_pipeline_state_holds():
    value = {
        "tuple keys": {("ST10", "temp"): 1.5, ("ST20", None): "x"},
        "none key": {None: {("a", "b")}, "n": 1},
        "floats": [math.inf, -math.inf, 0.1, -0.0],
        "big": 1 << 70,
        "deque": deque([1, 2, 3], maxlen=5),
        "frozen": frozenset({1, 2}),
        "counter": Counter({"t": 3}),
        "bytes": b"\x00\x80\xff",
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bools": np.array([True, False]),
        "object": Thing("a", Colour.BLUE, {"x"}),
        "tuple": (1, "two", (3.0,)),
    }
    back = roundtrip(value)
    nan = roundtrip(math.nan)
    assert math.isnan(nan)
    array = back.pop("array")
    assert array.dtype == np.float32 and array.shape == (2, 3) and array.tolist() == value.pop("array").tolist()
    assert back.pop("bools").tolist() == value.pop("bools").tolist()
    assert back == value
    assert type(back["tuple"]) is tuple and type(back["deque"]) is deque and back["deque"].maxlen == 5
    assert type(back["counter"]) is Counter and type(back["frozen"]) is frozenset
    assert back["object"].colour is Colour.BLUE


def test_a_field_added_later_decodes_from_an_older_keyframe_with_its_default():
    older = ["o", "TestThing", {"name": "old"}]  # written before colour and tags existed
    thing = state_codec.from_tree(older)
    assert thing == Thing("old", Colour.RED, set())


def tampered(tree) -> bytes:
    """A keyframe payload as an attacker would write it: valid framing, chosen content."""
    text = orjson.dumps({"header": {}, "state": tree})
    return state_codec.MAGIC + zstandard.ZstdCompressor().compress(text)


@pytest.mark.parametrize(("payload", "reason"), [
    (tampered(["o", "os.system", {"data": "rm -rf /"}]), "unknown class 'os.system'"),
    (tampered(["o", "TestThing", {"name": "a", "evil": 1}]), "has no field 'evil'"),
    (tampered(["e", "TestColour", "green"]), "has no member"),
    (tampered(["a", "object", [1], ""]), "allowed dtype"),
    (tampered(["a", "float64", [1000], "AAAA"]), "with 3 bytes"),
    (tampered(["x", 1]), "unknown tag 'x'"),
    (tampered(["q", -1]), "maxlen"),
    (tampered(["m", 1]), "odd number"),
    (tampered(["f", "NaNa"]), "neither nan"),
    (tampered(["i", "12e5"]), "not digits"),
    (tampered(["s", ["l"]]), "cannot be hashed"),
    (tampered(["l"] * 1 + [["l", ["l", ["l"]]]]), None),  # fine: shallow
    (b"twin-keyframe/2\n" + b"\x00" * 20, "this viewer reads twin-keyframe/1"),
    (b"\x80\x05\x95pickle", "not a twin-keyframe payload"),
    (state_codec.encode({"a": 1})[:-7], "does not decompress"),
    (state_codec.MAGIC + zstandard.ZstdCompressor().compress(b"{not json"), "not valid JSON"),
])
def test_tampered_payloads_are_refused_with_the_reason(payload, reason):
    if reason is None:
        state_codec.decode(payload)
        return
    with pytest.raises(state_codec.StateCodecError, match=reason.replace("(", r"\(")):
        state_codec.decode(payload)


def test_deep_and_huge_payloads_are_refused():
    deep: list = ["l"]
    for _ in range(state_codec.MAX_DEPTH + 5):
        deep = ["l", deep]
    with pytest.raises(state_codec.StateCodecError, match="levels deep"):
        state_codec.decode(tampered(deep))
    bomb = state_codec.MAGIC + zstandard.ZstdCompressor().compress(b" " * (2 << 20))  # 2 MB of nothing
    with pytest.raises(state_codec.StateCodecError, match="unpacks to over"):
        state_codec.decode(bomb, max_bytes=1 << 20)
    with pytest.raises(state_codec.StateCodecError, match="not registered"):
        state_codec.encode(object())


def test_keyframes_are_spaced_out_when_they_would_outweigh_the_messages(tmp_path, layout):
    path = tmp_path / "sparse.mcap"
    writer = KeyframeWriter(layout, None, every_s=2.0, share=0.05)  # at most 5 % of the messages' bytes
    plant_recording(path, layout, seconds=30.0, writer=writer)
    replayer = Replayer(path, layout)
    replayer.open()
    times = [k.time for k in replayer._file_keyframes]
    assert 2 <= len(times) < 10  # a 2 s spacing would give 14
    assert all(b - a >= 2.0 - 1e-3 for a, b in itertools.pairwise(times))


def test_the_keyframe_encoding_names_the_codec_version():
    assert f"{KEYFRAME_ENCODING}\n".encode() == state_codec.MAGIC


# --- recordings -----------------------------------------------------------------------------------------------
def plant_recording(path: Path, layout, seconds: float = 50.0, keyframes=True, every_s: float = 2.0,
                    writer=None) -> int:
    """The virtual plant (faults, anomalies, robots) at ~300 msg/s, with an acknowledgement and a mark, its
    operator events stamped a little before messages already written (as the GUI thread's are)."""
    plant = VirtualPlant(layout, seed=5, fault_every_s=15.0)
    if keyframes and writer is None:
        writer = KeyframeWriter(layout, None, every_s=every_s, share=0.0)
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="test", encodings=lambda topic: "json",
                        queue_limit=10_000_000, chunk_bytes=64 * 1024, keyframes=writer).start()
    n, t, dt = 0, 0.0, 0.1
    acked = False
    while t < seconds:
        plant.step_states(t)
        now = T0 + t
        batch = plant.state_messages(t, now) + plant.joint_messages(t, now) + plant.sensor_messages(t)
        for i, (topic, payload) in enumerate(batch):
            recorder.message(topic, payload, now + i * dt / len(batch))
            n += 1
        if not acked and t > seconds / 2:
            recorder.event("acknowledged", now - 0.05, component="ST20", signal="state", rule=0)
            recorder.event("mark", now - 0.02, text="halfway")
            acked = True
        t += dt
    recorder.event("mark", T0 + t + 0.5, text="the end")  # the last message: its tick is on the timeline too
    recorder.stop()
    return n


@pytest.fixture(scope="module")
def layout():
    from viewer.telemetry.virtual_plant import default_layout

    return load_layout(default_layout())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, layout) -> Path:
    path = tmp_path_factory.mktemp("kf") / "with-keyframes.mcap"
    plant_recording(path, layout)
    return path


def full(replayer: Replayer) -> dict:
    """What a test can compare: states, alarms, values, anomaly levels and each scorer's result."""
    p = replayer.pipeline
    snap = p.snapshot()
    snap["scores"] = {c: (e.result.level, round(e.result.raw, 9), e.scorer.level)
                      for c, e in sorted(p.anomaly.components.items())}
    snap["position"] = replayer.position
    return snap


def test_keyframes_are_in_the_file_for_an_independent_reader_and_hold_no_pickle(recorded):
    from mcap.reader import make_reader

    with open(recorded, "rb") as f:
        reader = make_reader(f)
        found = list(reader.iter_messages(topics=[KEYFRAME_TOPIC]))
    assert len(found) >= 20  # 50 s every 2 s
    for schema, channel, message in found:
        assert channel.message_encoding == KEYFRAME_ENCODING and schema.name == KEYFRAME_ENCODING
        assert message.data.startswith(state_codec.MAGIC)
        text = zstandard.ZstdDecompressor().decompress(message.data[len(state_codec.MAGIC):])
        assert not text.startswith(b"\x80") and b"pickle" not in text
        orjson.loads(text)  # plain JSON: nothing in it can run
    times = [m.log_time / 1e9 for _, _, m in found]
    assert all(b - a >= 2.0 - 1e-3 for a, b in itertools.pairwise(times))


def test_opening_with_keyframes_needs_no_pass_and_seeks_reach_what_playback_from_the_start_reaches(recorded,
                                                                                                   layout):
    replayer = Replayer(recorded, layout)
    replayer.open()
    assert not replayer.needs_index and replayer.indexed_until == replayer.end
    assert len(replayer._file_keyframes) >= 20 and not replayer.problems
    rng = random.Random(7)
    targets = sorted(replayer.start + rng.uniform(0, replayer.end - replayer.start) for _ in range(10))
    targets.append(replayer._file_keyframes[5].time)  # exactly at a keyframe
    targets.sort()
    reference = Replayer(recorded, layout)  # played from the first message, never restored
    reference.open()
    reference._file_keyframes = []
    reference.seek(reference.start)
    played = {}
    for t in targets:
        reference.advance_to(t)
        played[t] = full(reference)
    for t in reversed(targets):
        replayer.seek(t)
        assert full(replayer) == played[t], t
    assert len({json.dumps(s["states"], sort_keys=True) for s in played.values()}) > 1
    assert any(s["alarms"] for s in played.values()) and any(s["scores"] for s in played.values())
    assert len(replayer._keyframe_cache) <= KEYFRAME_CACHE  # bounded, however many seeks


def test_the_recorded_timeline_is_the_one_the_index_pass_builds(recorded, layout):
    fast = Replayer(recorded, layout)
    fast.open()
    indexed = Replayer(recorded, layout)
    indexed.open()
    indexed._file_keyframes, indexed._needs_index = [], True
    for _ in indexed.index_steps():
        pass
    assert [(m.time, m.kind, m.text) for m in fast.markers] == [(m.time, m.kind, m.text) for m in indexed.markers]
    assert any(m.kind == "alarm" for m in fast.markers) and any(m.kind == "mark" for m in fast.markers)
    assert fast.markers[-1].text == "the end"
    assert fast.played == indexed.played


class Tampering(KeyframeWriter):
    """Writes some keyframes damaged, as someone editing the file would."""

    def __init__(self, layout, damage):
        super().__init__(layout, None, every_s=2.0, share=0.0)
        self.damage = damage
        self.count = 0

    def written(self, topic, payload, ns):
        out = super().written(topic, payload, ns)
        result = []
        for data, when in out:
            self.count += 1
            result.append((self.damage(data, self.count), when))
        return result


def unknown_class(data: bytes, n: int) -> bytes:
    if n % 3:
        return data
    header, _ = state_codec.decode(data)
    return state_codec.MAGIC + zstandard.ZstdCompressor().compress(
        orjson.dumps({"header": header, "state": ["o", "subprocess.Popen", {"data": ["l", "sh"]}]}))


@pytest.mark.parametrize(("damage", "reason"), [
    (unknown_class, "unknown class 'subprocess.Popen'"),
    (lambda d, n: d if n % 3 else b"twin-keyframe/9\n" + d[16:], "this viewer reads"),
    (lambda d, n: d if n % 3 else d[: len(d) // 2], "does not decompress"),
    (lambda d, n: d if n % 3 else state_codec.MAGIC + zstandard.ZstdCompressor().compress(b" " * (300 << 20)),
     "unpacks to over"),
])
def test_a_tampered_keyframe_is_refused_reported_and_the_replay_still_reaches_the_right_state(tmp_path, layout,
                                                                                             damage, reason):
    path = tmp_path / "tampered.mcap"
    plant_recording(path, layout, seconds=30.0, writer=Tampering(layout, damage))
    replayer = Replayer(path, layout)
    replayer.open()
    reference = Replayer(path, layout)
    reference.open()
    reference._file_keyframes = []
    reference.seek(reference.start)
    bad = [k.time for k in replayer._file_keyframes[2::3]]
    assert bad
    for t in bad:  # just after each damaged keyframe: the one before serves
        reference.advance_to(t + 0.5)
        replayer.seek(t + 0.5)
        assert full(replayer) == full(reference), t
    assert replayer.problems and all(reason in p for p in replayer.problems), replayer.problems


def test_a_recording_without_keyframes_opens_at_once_and_indexes_in_the_background(tmp_path, layout):
    path = tmp_path / "plain.mcap"
    plant_recording(path, layout, seconds=30.0, keyframes=False)
    replayer = Replayer(path, layout)
    replayer.open()
    assert replayer.needs_index and replayer.indexed_until == replayer.start
    assert replayer.position == replayer.start  # the first frame is there, play is possible
    steps = replayer.index_steps(ticks_per_step=100)
    progress = [next(steps) for _ in range(3)]
    assert progress == sorted(progress) and 0 < progress[-1] < 1
    middle = replayer.indexed_until
    assert replayer.start < middle < replayer.end
    reference = Replayer(path, layout)
    reference.open()
    reference.seek(reference.start)
    reference.advance_to(middle - 1.0)
    replayer.seek(middle - 1.0)  # within what is indexed
    assert full(replayer) == full(reference)
    progress += list(steps)
    assert progress[-1] == pytest.approx(1.0, abs=0.01)
    assert not replayer.needs_index and replayer.indexed_until == replayer.end
    assert any(m.kind == "alarm" for m in replayer.markers)
    for k in replayer._keyframes:  # in memory: the same safe codec, compressed
        assert k.state.startswith(state_codec.MAGIC)
    reference.advance_to(replayer.end - 0.3)
    replayer.seek(replayer.end - 0.3)
    assert full(replayer) == full(reference)


def test_the_window_s_index_call_still_works_with_and_without_keyframes(recorded, tmp_path, layout):
    seen = []
    replayer = Replayer(recorded, layout)
    replayer.index(progress=seen.append, cancelled=lambda: False)
    assert seen[-1] == 1.0 and replayer.position == replayer.start and replayer.markers
    path = tmp_path / "plain.mcap"
    plant_recording(path, layout, seconds=10.0, keyframes=False)
    plain = Replayer(path, layout)
    with pytest.raises(InterruptedError):
        plain.index(cancelled=lambda: True)
    plain.index()
    assert not plain.needs_index and any(m.kind == "mark" for m in plain.markers)
    assert EVENTS_TOPIC not in {m.kind for m in plain.markers}
