"""Damaged, odd and huge recordings: flipped bytes, cut files, other writers' options, 65,535+ topics.

Expected values come from the mcap library reading the undamaged original (an independent reader) and from
the file's own chunk index: the messages a damaged chunk held are the ones in its time range.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from viewer.cli import main
from viewer.model.layout_io import load_layout
from viewer.telemetry.recording import (
    ANOMALY_ATTACHMENT,
    EVENTS_TOPIC,
    LAYOUT_ATTACHMENT,
    OVERFLOW_TOPIC,
    Recorder,
    RecordingError,
    quick_info,
    read_messages,
    recover,
    scan,
)
from viewer.telemetry.replay import Replayer

NS = 1_000_000_000


def library_messages(path: Path) -> list[tuple[str, bytes, int, int, int]]:
    """(topic, data, log_time, publish_time, sequence) by the mcap library, in log-time order."""
    with open(path, "rb") as f:
        return [(c.topic, m.data, m.log_time, m.publish_time, m.sequence)
                for _s, c, m in make_reader(f).iter_messages(log_time_order=True)]


def chunk_indexes(path: Path) -> list:
    with open(path, "rb") as f:
        return sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1:]


@pytest.fixture
def recorded(tmp_path, demo_layout_path):
    """A demo-layout recording of 4,000 messages in ~40 small chunks, with the anomaly-state attachment."""
    layout = load_layout(demo_layout_path)
    path = tmp_path / "whole.mcap"
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="test", chunk_bytes=2048,
                        encodings=lambda topic: "json" if topic.endswith("state") else "text", queue_limit=100_000,
                        attachments={ANOMALY_ATTACHMENT: json.dumps({"version": 1, "components": {}}).encode()})
    recorder.start()
    t0 = 1_750_000_000.0
    for i in range(4000):
        t = t0 + i / 100
        if i % 2:
            recorder.message("demo/line1/ST20/state", json.dumps({"state": "running", "count": i}).encode(), t)
        else:
            recorder.message("demo/line1/ST10/vibration", f"{2.0 + (i % 400) / 80:.3f}".encode(), t)
    recorder.stop()
    return path, layout


def test_a_flipped_byte_inside_a_chunk_loses_that_chunk_only_says_so_and_recover_keeps_everything_else(
        recorded, tmp_path, capsys):
    path, layout = recorded
    original = library_messages(path)
    chunks = chunk_indexes(path)
    assert len(chunks) > 20
    target = chunks[len(chunks) // 2]
    lost = [m for m in original if target.message_start_time <= m[2] <= target.message_end_time]
    assert lost
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(flipped(path.read_bytes(), target.chunk_start_offset + target.chunk_length - 40))
    expected = [m for m in original if m not in lost]

    # the fast (indexed) reader: the CRC catches it, the chunk is skipped and named with its time range
    damage: list = []
    got = [(m.topic, m.payload, m.time) for m in read_messages(damaged, damage=damage)]
    assert got == [(t, d, lt / NS) for t, d, lt, _p, _s in expected]
    assert len(damage) == 1 and damage[0].offset == target.chunk_start_offset
    assert (damage[0].start_ns, damage[0].end_ns) == (target.message_start_time, target.message_end_time)

    # the whole-file reader agrees and counts the lost messages from the message indexes
    info = scan(damaged)
    assert not info.complete and info.messages == len(expected)
    assert info.damage[0].messages == len(lost) and f"{len(lost):,} messages lost" in info.problem

    # replay plays the rest, never calls the file whole, counts what it played, marks the stretch
    assert main(["replay", str(damaged), "--headless"]) == 4
    captured = capsys.readouterr()
    assert f"{len(expected):,} messages over" in captured.out
    assert "damaged" in captured.err and f"{len(lost):,} messages lost" in captured.err
    replayer = Replayer(damaged, layout)
    replayer.index()
    assert replayer.played == len(expected)
    spans = [m for m in replayer.markers if m.kind == "damaged"]
    assert len(spans) == 1 and spans[0].time == target.message_start_time / NS

    # recover: every other message exactly (log and publish time in integer ns, sequence), every attachment,
    # every metadata record, and a note of what was skipped
    fixed = tmp_path / "fixed.mcap"
    assert main(["recover", str(damaged), "--out", str(fixed)]) == 4
    assert library_messages(fixed) == expected
    with open(path, "rb") as f:
        reader = make_reader(f)
        attachments = [(a.name, a.media_type, a.log_time, a.create_time, a.data) for a in reader.iter_attachments()]
        metadata = [(m.name, m.metadata) for m in reader.iter_metadata()]
    with open(fixed, "rb") as f:
        reader = make_reader(f)
        assert [(a.name, a.media_type, a.log_time, a.create_time, a.data)
                for a in reader.iter_attachments()] == attachments
        fixed_meta = [(m.name, m.metadata) for m in reader.iter_metadata()]
        summary = reader.get_summary()
    assert {a[0] for a in attachments} == {LAYOUT_ATTACHMENT, ANOMALY_ATTACHMENT}
    assert fixed_meta[:-1] == metadata and fixed_meta[-1][0] == "twin-viewer-recovery"
    assert str(target.chunk_start_offset) in fixed_meta[-1][1]["skipped"].replace(",", "")
    channels = {c.topic: (c.message_encoding, c.metadata) for c in summary.channels.values()}
    assert channels["demo/line1/ST20/state"] == ("json", {"source": "mqtt"})
    assert quick_info(fixed).anomaly_state == {"version": 1, "components": {}}
    assert main(["replay", str(fixed), "--headless"]) == 0


def test_publish_time_sequence_schemas_and_exact_nanoseconds_survive_recover(tmp_path):
    """A file from another writer (schemas, sequences, publish times, odd nanoseconds), cut off mid-chunk."""
    path = tmp_path / "other.mcap"
    rng = random.Random(5)
    written = []
    with open(path, "wb") as f:
        writer = Writer(f, chunk_size=1500, compression=CompressionType.LZ4)
        writer.start(profile="ros2", library="another writer 1.0")
        schema = writer.register_schema("pkg/msg/Thing", "ros2msg", b"float64 x\nstring name\n")
        channel = writer.register_channel("/thing", "cdr", schema, {"offered_qos_profiles": "- history: 3"})
        t = 1_750_000_000_123_456_789
        for i in range(600):
            t += rng.randrange(1, 10_000_000)
            data = rng.randbytes(rng.randrange(5, 60))
            writer.add_message(channel, t, data, t - 17, sequence=i * 3 + 1)
            written.append(("/thing", data, t, t - 17, i * 3 + 1))
        writer.add_attachment(5, 6, "calibration.yaml", "application/yaml", b"k: 1\n")
        writer.add_metadata("robot", {"serial": "X-1"})
        writer.finish()
    cut = tmp_path / "cut.mcap"
    data = path.read_bytes()
    first_chunk_end = chunk_indexes(path)[3]
    cut.write_bytes(data[:first_chunk_end.chunk_start_offset + first_chunk_end.chunk_length + 10])
    fixed = tmp_path / "fixed.mcap"
    info = recover(cut, fixed)
    assert not info.complete and "cut off" in info.problem
    kept = library_messages(fixed)
    assert kept == written[:len(kept)] and len(kept) > 50
    assert kept[-1][2] == first_chunk_end.message_end_time  # integer ns, not rounded through a float
    with open(fixed, "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
    assert (header.profile, header.library) == ("ros2", "another writer 1.0")
    (only,) = summary.schemas.values()
    assert (only.name, only.encoding, only.data) == ("pkg/msg/Thing", "ros2msg", b"float64 x\nstring name\n")
    (ch,) = summary.channels.values()
    assert ch.metadata == {"offered_qos_profiles": "- history: 3"} and ch.schema_id == only.id
    # the whole file: attachments and metadata after the chunks come across too
    whole_fixed = tmp_path / "whole-fixed.mcap"
    assert recover(path, whole_fixed).complete
    assert library_messages(whole_fixed) == written
    with open(whole_fixed, "rb") as f:
        reader = make_reader(f)
        assert [(a.name, a.log_time, a.create_time, a.data) for a in reader.iter_attachments()] == [
            ("calibration.yaml", 6, 5, b"k: 1\n")]
        assert ("robot", {"serial": "X-1"}) in [(m.name, m.metadata) for m in reader.iter_metadata()]


def test_damage_in_the_header_or_the_first_chunk_loses_only_what_it_hit(recorded, tmp_path):
    path, _layout = recorded
    data = path.read_bytes()
    original = library_messages(path)
    chunks = chunk_indexes(path)
    # the header's library string length: the record is skipped by its own length field
    head = tmp_path / "head.mcap"
    head.write_bytes(data[:17] + b"\xff\xff\xff\x7f" + data[21:])
    info = scan(head)
    assert info.messages == len(original) and not info.complete and info.layout_doc is not None
    fixed = tmp_path / "head-fixed.mcap"
    recover(head, fixed)
    assert library_messages(fixed) == original
    # the first chunk's length field: the next chunk is found by the index / by its signature
    first = chunks[0]
    bad = bytearray(data)
    bad[first.chunk_start_offset + 1:first.chunk_start_offset + 9] = (10**12).to_bytes(8, "little")
    broken = tmp_path / "first.mcap"
    broken.write_bytes(bytes(bad))
    held = [m for m in original if first.message_start_time <= m[2] <= first.message_end_time]
    for reader_info in (scan(broken), recover(broken, tmp_path / "first-fixed.mcap")):
        assert reader_info.messages == len(original) - len(held)
    # without a summary (cut off at the end too): the lost chunk held the channel records, so the messages
    # after it have no topic: counted and said, not guessed
    no_summary = tmp_path / "first-cut.mcap"
    no_summary.write_bytes(bytes(bad)[:chunks[-1].chunk_start_offset])
    info = scan(no_summary)
    assert info.messages == 0 and info.orphans > 3000 and "channels the file no longer defines" in info.problem
    # the second chunk's length instead: the chunk signature finds the third, every other message is read
    second = chunks[1]
    bad = bytearray(data[:chunks[-1].chunk_start_offset])
    bad[second.chunk_start_offset + 1:second.chunk_start_offset + 9] = (10**12).to_bytes(8, "little")
    no_summary.write_bytes(bytes(bad))
    last_complete = chunks[-2]
    expected = [m for m in original if m[2] <= last_complete.message_end_time
                and not second.message_start_time <= m[2] <= second.message_end_time]
    info = scan(no_summary)
    assert info.messages == len(expected) and not info.orphans and len(info.damage) == 1


def test_random_flips_and_cuts_never_raise_never_hang_and_never_misread(recorded, tmp_path):
    """Anywhere in the file (chunks, indexes, summary, footer, header, metadata): what is read is exactly what
    was written, and a file that lost anything is never reported whole."""
    path, layout = recorded
    data = path.read_bytes()
    original = {(t, d, lt) for t, d, lt, _p, _s in library_messages(path)}
    with open(path, "rb") as f:
        reader = make_reader(f)
        attachments = {a.name: a.data for a in reader.iter_attachments()}
    rng = random.Random(11)
    offsets = [rng.randrange(8, len(data)) for _ in range(60)] + [len(data) - 30, len(data) - 3, 20, 60]
    began = time.monotonic()
    for k, offset in enumerate(offsets):
        damaged = tmp_path / f"flip{k}.mcap"
        if k % 4 == 3:
            damaged.write_bytes(data[:offset])  # cut off instead
        else:
            damaged.write_bytes(flipped(data, offset))
        try:
            info = scan(damaged)
        except RecordingError:
            continue  # a clear refusal ("not an MCAP recording") is an answer too
        got: list = []
        scan(damaged, lambda topic, payload, t, got=got: got.append((topic, payload)))
        assert {(t, d) for t, d in got} <= {(t, d) for t, d, _lt in original}, offset
        damage: list = []
        fast = {(m.topic, m.payload, round(m.time * 1e6)) for m in read_messages(damaged, damage=damage)}
        assert fast <= {(t, d, round(lt / 1000)) for t, d, lt in original}, offset
        if info.layout_doc is not None:
            assert info.layout_doc == json.loads(attachments[LAYOUT_ATTACHMENT])
        if len(fast) < len(original) or len(got) < len(original):
            assert not info.complete or damage, offset  # something was lost: it is said
        replayer = Replayer(damaged, layout)
        try:
            replayer.index()
        except RecordingError:
            continue
        lost_something = replayer.played < len(original) + 0  # events are part of played; none here
        if lost_something:
            assert replayer.damage or not replayer.info.complete, offset
        if not replayer.damage and replayer.info.complete:  # called whole: then it must be whole
            assert replayer.played == len(original), offset
        fixed = tmp_path / f"fixed{k}.mcap"
        recovered = recover(damaged, fixed)
        assert {(t, d, lt) for t, d, lt, _p, _s in library_messages(fixed)} <= original
        assert recovered.complete == (recovered.messages == len(original) and not recovered.damage
                                      and recovered.problem == "") or not recovered.complete
        for p in (damaged, fixed):
            p.unlink(missing_ok=True)
    assert time.monotonic() - began < 120


def test_a_huge_time_span_replays_without_ticking_through_it(tmp_path, demo_layout_path, capsys):
    layout = load_layout(demo_layout_path)
    path = tmp_path / "epoch.mcap"
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="test").start()
    recorder.message("demo/line1/ST10/vibration", b"2.0", 1e-9)  # a publisher whose clock says 1970
    for i in range(300):
        recorder.message("demo/line1/ST10/vibration", f"{2 + i / 100}".encode(), 1_750_000_000 + i / 10)
    recorder.stop()
    began = time.monotonic()
    assert main(["replay", str(path), "--headless"]) == 0
    assert time.monotonic() - began < 30
    captured = capsys.readouterr()
    assert "301 messages" in captured.out and "span" in captured.err and "days" in captured.err
    replayer = Replayer(path, layout)
    replayer.index()
    replayer.seek(1_000_000_000.0)  # in the middle of the empty stretch: one step, not 10^10
    assert replayer.position <= 1_000_000_000.0
    replayer.seek(1_750_000_010.0)
    assert replayer.pipeline.store.latest(("S-ST10-VIB", "vibration")).value == pytest.approx(2.99)


@pytest.mark.parametrize("options", [
    {"repeat_channels": False},
    {"repeat_channels": False, "repeat_schemas": False, "use_summary_offsets": False},
    {"use_chunking": False},
    {"compression": CompressionType.NONE, "enable_crcs": False},
    {"compression": CompressionType.LZ4, "use_statistics": False},
])
def test_files_from_the_mcap_writer_with_other_options_read_whole(tmp_path, demo_layout_path, options):
    layout = load_layout(demo_layout_path)
    path = tmp_path / "opts.mcap"
    written = []
    with open(path, "wb") as f:
        writer = Writer(f, chunk_size=800, **options)
        writer.start()
        channels = {topic: writer.register_channel(topic, "json", 0) for topic in (
            "demo/line1/ST20/state", "demo/line1/ST10/vibration")}
        rng = random.Random(2)
        t = 1_750_000_000 * NS
        for i in range(500):
            # out of order now and then, so chunks overlap in time: the merge must still give time order
            stamp = t + i * 10_000_000 + (rng.randrange(-3, 1) * 25_000_000 if i % 7 == 0 else 0)
            topic = "demo/line1/ST20/state" if i % 2 else "demo/line1/ST10/vibration"
            payload = json.dumps({"state": "running"} if i % 2 else 2.5).encode()
            writer.add_message(channels[topic], stamp, payload, stamp)
            written.append((topic, payload, stamp))
        writer.finish()
    expected = sorted(written, key=lambda m: m[2])
    got = [(m.topic, m.payload, round(m.time * 1e6)) for m in read_messages(path)]
    assert [g[2] for g in got] == sorted(g[2] for g in got)
    assert sorted(got) == sorted((t, p, round(s / 1000)) for t, p, s in expected)
    info = quick_info(path)
    assert set(info.channels) == {"demo/line1/ST20/state", "demo/line1/ST10/vibration"}
    replayer = Replayer(path, layout)
    replayer.index()
    assert replayer.played == 500 and not replayer.damage


def test_the_recorder_keeps_working_past_65535_topics(tmp_path):
    path = tmp_path / "topics.mcap"
    recorder = Recorder(path, broker="test", queue_limit=200_000).start()
    n = 70_000
    for i in range(n):
        recorder.message(f"plant/sensor/{i}", str(i).encode(), 1_750_000_000 + i / 1000)
    recorder.event("mark", 1_750_000_100.0, text="after the flood")
    stats = recorder.stop()
    assert stats.error is None and stats.messages == n and stats.wrapped == n - 65_533
    got = {m.topic: m.payload for m in read_messages(path)}
    assert len(got) == n + 1 and got["plant/sensor/69999"] == b"69999" and EVENTS_TOPIC in got
    assert OVERFLOW_TOPIC not in got  # unwrapped by the reader
    with open(path, "rb") as f:  # and the file is valid MCAP to the mcap library
        summary = make_reader(f).get_summary()
    assert len(summary.channels) == 65_535 and summary.statistics.message_count == n + 1


def test_a_deeply_nested_payload_never_breaks_replay(tmp_path, demo_layout_path, capsys):
    layout = load_layout(demo_layout_path)
    path = tmp_path / "deep.mcap"
    recorder = Recorder(path, layout_doc=layout.to_dict(), broker="test").start()
    deep = "{\"state\": " * 500 + "\"running\"" + "}" * 500
    deeper = "[" * 100_000 + "]" * 100_000  # past json's own recursion limit
    for i in range(200):
        payload = deep if i == 50 else deeper if i == 60 else json.dumps({"state": "running"})
        recorder.message("demo/line1/ST20/state", payload.encode(), 1_750_000_000 + i / 10)
    recorder.stop()
    assert main(["replay", str(path), "--headless"]) == 0
    assert "200 messages" in capsys.readouterr().out
    replayer = Replayer(path, layout, keyframe_every=0.5)
    replayer.index()
    replayer.seek(1_750_000_005.5)
    assert replayer.pipeline.store.latest(("ST20", "state")).value == "running"
    assert replayer.pipeline.store.stats().decode_errors >= 2


def test_the_window_learns_a_cut_off_files_layout_without_reading_it_through(recorded, tmp_path):
    from viewer.telemetry.recording import head_info

    path, layout = recorded
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:len(data) * 2 // 3])  # no summary: quick_info would scan every chunk
    info = quick_info(cut, read_through=False)
    assert info.layout_doc == layout.to_dict() and info.metadata["broker"] == "test"
    assert not info.complete and info.messages == 0  # nothing counted: the index pass does that, off the GUI
    assert head_info(path).layout_doc == info.layout_doc
