"""The alarm list: ISA-18.2 order, occurrences (first raise, count), the alarm journal across reloads,
message rates after a reload, and (in the window) names, units, values, visibility of new alarms, the
acknowledge shortcut and the optional sound."""

from __future__ import annotations

import json

import pytest

from viewer.telemetry.alarm_journal import (
    MAX_TEXT,
    AlarmJournal,
    journal_path,
    read_journal,
    write_journal,
)
from viewer.telemetry.alarms import AlarmManager, AlarmState
from viewer.telemetry.states import RuleChange
from viewer.telemetry.store import MessageRate


def rule(component, active, t, state="fault", signal="state", value="fault", index=2):
    return RuleChange(component, signal, index, active, state, f"{component} {state}", value, t)


# --------------------------------------------------------------------------- order and occurrences
def test_list_order_is_isa_18_2_active_unacked_by_priority_then_acked_then_cleared_then_shelved():
    alarms = AlarmManager()
    cleared_high = alarms.apply(rule("A", True, 1.0))
    alarms.apply(rule("A", False, 2.0))  # cleared, not acknowledged
    acked_high = alarms.apply(rule("B", True, 3.0))
    alarms.acknowledge(acked_high.id, 3.5)
    old_medium = alarms.apply(rule("C", True, 4.0, state="warning"))
    new_medium = alarms.apply(rule("D", True, 5.0, state="warning"))
    high = alarms.apply(rule("E", True, 0.5))  # older than every medium, still first: priority first
    shelved = alarms.apply(rule("F", True, 6.0))
    alarms.shelve(shelved.id, 6.5, 60.0)
    # Hand order: active unacknowledged high (E), then the active unacknowledged mediums newest first (D, C),
    # then the acknowledged active one (B), then the cleared unacknowledged one (A), then the shelved one (F).
    assert alarms.listed() == [high, new_medium, old_medium, acked_high, cleared_high, shelved]


def test_a_re_raise_keeps_the_first_time_counts_and_comes_back_to_the_top_of_its_priority():
    alarms = AlarmManager()
    chattering = alarms.apply(rule("A", True, 10.0, value=81.0, signal="temp"))
    other = alarms.apply(rule("B", True, 11.0))
    alarms.apply(rule("A", False, 12.0, value=79.0, signal="temp"))
    assert alarms.listed() == [other, chattering]  # cleared unacknowledged goes below active
    alarms.apply(rule("A", True, 20.0, value=83.0, signal="temp"))  # back before anyone acknowledged
    assert (chattering.first_raised_at, chattering.raised_at, chattering.raise_count) == (10.0, 20.0, 2)
    assert chattering.raised_value == 83.0 and chattering.state is AlarmState.UNACK_ACTIVE
    assert alarms.listed() == [chattering, other]  # both high, A's raise is the newer
    # Acknowledged and cleared, the occurrence is over: the next raise starts a new one.
    alarms.acknowledge(chattering.id, 21.0)
    alarms.apply(rule("A", False, 22.0, value=70.0, signal="temp"))
    assert chattering.state is AlarmState.NORMAL and chattering.value == 70.0
    alarms.apply(rule("A", True, 30.0, value=90.0, signal="temp"))
    assert (chattering.first_raised_at, chattering.raise_count, chattering.raised_value) == (30.0, 1, 90.0)
    assert [e.kind for e in alarms.history if e.alarm_id == chattering.id] == [
        "raised", "cleared", "raised", "acknowledged", "cleared", "raised"]


def test_an_escalation_keeps_the_occurrence_and_notes_the_value_that_escalated():
    alarms = AlarmManager()
    warning = RuleChange("P", "pressure", 0, True, "warning", "high pressure", 5.2, 1.0)
    alarm = alarms.apply(warning)
    alarms.acknowledge(alarm.id, 2.0)
    alarms.apply(RuleChange("P", "pressure", 0, True, "fault", "very high pressure", 6.4, 3.0))
    assert alarm.severity == "high" and alarm.state is AlarmState.UNACK_ACTIVE
    assert (alarm.first_raised_at, alarm.raise_count, alarm.raised_value) == (1.0, 1, 6.4)


# --------------------------------------------------------------------------- message rate
def test_message_rate_is_never_negative_when_the_counted_store_is_replaced():
    rate = MessageRate(window=40)
    for i in range(10):
        rate.add(100.0 + i * 0.1, 2_000 * (i + 1))  # 20,000 msg/s
    assert rate.rate() == pytest.approx(20_000)
    rate.add(101.0, 3)  # a reload: a new store counts from 0
    assert rate.rate() == 0.0
    rate.add(101.5, 503)
    assert rate.rate() == pytest.approx(1_000)


# --------------------------------------------------------------------------- the journal
def a_session():
    """A manager with one alarm of each kind that matters after a reload."""
    alarms = AlarmManager()
    cleared_unacked = alarms.apply(rule("CV02", True, 10.0))
    alarms.apply(rule("CV02", False, 11.0))
    acked_active = alarms.apply(rule("ST10", True, 12.0, signal="temp", value=91.5, index=0))
    alarms.acknowledge(acked_active.id, 13.0)
    unacked_active = alarms.apply(rule("ST20", True, 14.0, state="warning"))
    return alarms, cleared_unacked, acked_active, unacked_active


def test_the_journal_round_trips_alarms_and_history_and_new_ids_follow_the_restored(tmp_path):
    alarms, *_ = a_session()
    layout = tmp_path / "plant.json"
    journal = AlarmJournal(tmp_path / "journal", layout, "Demo plant")
    assert journal.save(alarms)
    assert journal.path.parent == tmp_path / "journal" and journal.path.name.startswith("Demo-plant-")
    lines = journal.path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "twin-viewer-alarm-journal"
    assert len(lines) == 1 + 3 + 5  # header, three alarms, five events (3 raised, 1 cleared, 1 acknowledged)

    fresh = AlarmManager()
    assert AlarmJournal(tmp_path / "journal", layout, "Demo plant").restore(fresh) == 3
    by_component = {a.component: a for a in fresh.alarms.values()}
    assert by_component["CV02"].state is AlarmState.UNACK_RTN and by_component["CV02"].needs_attention
    assert by_component["ST10"].state is AlarmState.ACK_ACTIVE and by_component["ST10"].unconfirmed
    assert by_component["ST10"].raised_value == 91.5 and by_component["ST10"].first_raised_at == 12.0
    assert by_component["ST20"].state is AlarmState.UNACK_ACTIVE and by_component["ST20"].unconfirmed
    assert [(e.kind, e.component) for e in fresh.history] == [(e.kind, e.component) for e in alarms.history]
    assert fresh.unacknowledged_count() == 2
    new = fresh.apply(rule("ST30", True, 20.0))
    assert new.id == 4  # after the restored ids 1-3


def test_restored_active_alarms_are_settled_by_live_data(tmp_path):
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json")
    fresh = AlarmManager()
    contents = read_journal(path)
    from viewer.telemetry.alarm_journal import restored

    fresh.restore(restored(contents.alarms), contents.history, contents.logged)
    by_component = {a.component: a for a in fresh.alarms.values()}
    # ST20's condition still holds: its first live value raises it again -> same occurrence, no new raise.
    fresh.apply(rule("ST20", True, 30.0, state="warning"))
    assert by_component["ST20"].raise_count == 1 and not by_component["ST20"].unconfirmed
    seen = {("ST10", "temp"), ("ST20", "state")}  # live data has evaluated these signals
    assert fresh.settle_unconfirmed(lambda c, s: (c, s) in seen, 31.0)
    # ST10 (acknowledged) was evaluated and did not come back: cleared and gone from the list.
    assert by_component["ST10"].state is AlarmState.NORMAL and by_component["ST10"] not in fresh.listed()
    assert by_component["ST20"].state is AlarmState.UNACK_ACTIVE
    assert [a.component for a in fresh.listed()] == ["ST20", "CV02"]
    assert not fresh.settle_unconfirmed(lambda c, s: True, 32.0)  # nothing left to settle


def test_a_damaged_journal_line_is_reported_with_its_line_and_skipped(tmp_path):
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json")
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:25]  # cut in the middle of the second alarm
    lines.insert(4, json.dumps({"alarm": {"id": 9, "component": "X"}}))  # an alarm without its fields
    path.write_text("\n".join(lines) + "\n")
    contents = read_journal(path)
    assert sorted(p.line for p in contents.problems) == [3, 5]
    assert "the alarm has no 'signal'" in str(next(p for p in contents.problems if p.line == 5))
    assert str(path) in str(contents.problems[0])
    assert len(contents.alarms) == 2 and len(contents.history) == len(alarms.history)


def test_a_file_that_is_not_a_journal_is_skipped_moved_aside_and_the_next_save_starts_afresh(tmp_path):
    layout = tmp_path / "plant.json"
    journal = AlarmJournal(tmp_path, layout, "p")
    journal.path.write_bytes(b"\x80\x04\x95 pickled? never read\n")
    fresh = AlarmManager()
    assert journal.restore(fresh) == 0 and fresh.alarms == {}
    assert journal.problems and journal.problems[0].line is None and "cannot be read" in journal.problems[0].reason
    assert journal.path.with_name(journal.path.name + ".damaged").exists() and not journal.path.exists()
    newer = AlarmJournal(tmp_path, layout, "p")
    newer.path.write_text(json.dumps({"format": "twin-viewer-alarm-journal", "version": 99}) + "\n")
    assert newer.restore(AlarmManager()) == 0
    assert "version 99 is newer" in newer.problems[0].reason and newer.problems[0].line == 1
    alarms, *_ = a_session()
    assert newer.save(alarms) and len(read_journal(newer.path).alarms) == 3


def test_the_journal_is_bounded_in_events_and_bytes_and_keeps_the_newest(tmp_path):
    alarms = AlarmManager(max_history=100_000)
    for i in range(3_000):
        alarms.apply(rule(f"C{i % 7}", i % 2 == 0, float(i)))
    path = tmp_path / "j.jsonl"
    written = write_journal(path, alarms, layout_path=tmp_path / "p.json", max_events=1_000, max_bytes=10**9)
    assert len(read_journal(path).history) == 1_000 and written == path.stat().st_size
    write_journal(path, alarms, layout_path=tmp_path / "p.json", max_bytes=50_000)
    contents = read_journal(path)
    assert path.stat().st_size <= 50_000
    assert contents.history[-1] == alarms.history[-1]  # the newest kept, the oldest dropped
    assert len(contents.alarms) == 7 and 100 < len(contents.history) < 3_000
    long = AlarmManager()
    long.apply(RuleChange("C", "s", 0, True, "fault", "x" * 50_000, "v" * 50_000, 1.0))
    write_journal(path, long, layout_path=tmp_path / "p.json")
    assert len(read_journal(path).alarms[0].value) == MAX_TEXT


def test_the_journal_is_keyed_by_the_layout_file_and_holds_no_broker_or_secret(tmp_path):
    first = journal_path(tmp_path, tmp_path / "a" / "plant.json", "Plant")
    assert first == journal_path(tmp_path, tmp_path / "a" / ".." / "a" / "plant.json", "Plant")  # resolved
    assert first != journal_path(tmp_path, tmp_path / "b" / "plant.json", "Plant")
    alarms, *_ = a_session()
    path = tmp_path / "j.jsonl"
    write_journal(path, alarms, layout_path=tmp_path / "plant.json", layout_name="Plant")
    header = json.loads(path.read_text().splitlines()[0])
    assert set(header) == {"format", "version", "layout_path", "layout_name", "saved_at", "logged"}
