"""Anomaly alarms in the pipeline (ISA-18.2): one cause, one alarm; first-out; the new normal, logged and replayed."""

from __future__ import annotations

import numpy as np

from viewer.model.layout import Layout
from viewer.telemetry.alarms import AlarmState
from viewer.telemetry.pipeline import ANOMALY_SIGNAL, FRAME_S, TelemetryPipeline
from viewer.telemetry.replay import Replayer
from viewer.telemetry.session import SessionRecording

T0 = 1_750_000_000.0


def spindle_layout(rules: list[dict] | None = None, accept_after: float | None = None) -> Layout:
    anomaly = {"learn_samples": 200}
    if accept_after is not None:
        anomaly["accept_after"] = accept_after
    return Layout.from_dict({"name": "spindle", "components": [
        {"id": "ST10", "kind": "station", "position": [0, 0, 0], "anomaly": anomaly}],
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "bindings": [
            {"topic": "st10/vibration", "component": "ST10", "signal": "vibration", "encoding": "number",
             "unit": "mm/s", "rules": rules or []},
            {"topic": "st10/current", "component": "ST10", "signal": "current", "encoding": "number", "unit": "A"}]})


class Feeder:
    """Sends one vibration and one current value a frame through the router, then steps the pipeline."""

    def __init__(self, pipeline: TelemetryPipeline, seed: int = 3) -> None:
        self.pipeline = pipeline
        self.rng = np.random.default_rng(seed)
        self.t = T0

    def frames(self, n: int, vibration: float = 2.0, current: float = 10.0, dt: float = FRAME_S) -> None:
        for _ in range(n):
            self.t += dt
            self.pipeline.router.handle("st10/vibration", f"{vibration + 0.1 * self.rng.normal():.4f}".encode(),
                                        self.t)
            self.pipeline.router.handle("st10/current", f"{current + 0.2 * self.rng.normal():.4f}".encode(), self.t)
            self.pipeline.step(self.t + 0.001)


def anomaly_events(pipeline: TelemetryPipeline) -> list[str]:
    return [e.kind for e in pipeline.alarms.history if e.message.startswith("Anomaly") or e.kind.endswith("accepted")]


def test_one_episode_raises_one_alarm_however_the_level_flickers():
    pipeline = TelemetryPipeline(spindle_layout())
    feed = Feeder(pipeline)
    feed.frames(400)  # settle (3 s) and learn (200 samples)
    scorer = pipeline.anomaly.components["ST10"].scorer
    assert not scorer.learning
    levels = []
    for _ in range(6):  # unusual for a while, then normal for a while (shorter than the 5-min rearm)
        feed.frames(12, vibration=2.22)
        levels.append(scorer.level)
        feed.frames(60, vibration=2.0)
        levels.append(scorer.level)
    assert levels.count("normal") >= 6 and len(set(levels)) >= 2  # it really flickered
    assert anomaly_events(pipeline).count("raised") == 1  # one episode, one alarm
    assert len([a for a in pipeline.alarms.listed() if a.signal == ANOMALY_SIGNAL]) == 1


def test_an_episode_that_grows_stronger_escalates_its_alarm_in_place():
    pipeline = TelemetryPipeline(spindle_layout())
    feed = Feeder(pipeline)
    feed.frames(400)
    scorer = pipeline.anomaly.components["ST10"].scorer
    for _ in range(200):  # mildly unusual until the warning comes
        feed.frames(1, vibration=2.18)
        if scorer.level != "normal":
            break
    assert scorer.level == "warning"
    alarm = pipeline.alarms.alarms[("ST10", ANOMALY_SIGNAL, 0)]
    assert alarm.severity == "medium"
    pipeline.alarms.acknowledge(alarm.id, feed.t)
    feed.frames(30, vibration=3.0)  # much stronger: the same alarm goes up to high, unacknowledged again
    assert alarm.severity == "high" and alarm.needs_attention
    kinds = anomaly_events(pipeline)
    assert kinds.count("raised") == 1 and kinds.count("escalated") == 1


def test_first_out_leaves_shelved_alarms_shelved_and_a_folded_alarm_keeps_its_own_life_cycle():
    rules = [{"above": 4.0, "state": "warning", "message": "Vibration high"},
             {"above": 6.0, "state": "fault", "message": "Vibration very high"}]
    pipeline = TelemetryPipeline(spindle_layout(rules))
    feed = Feeder(pipeline)
    feed.frames(400)
    feed.frames(20, vibration=3.0)  # an anomaly alarm, which the operator shelves for an hour
    anomaly = pipeline.alarms.alarms[("ST10", ANOMALY_SIGNAL, 0)]
    assert pipeline.alarms.shelve(anomaly.id, feed.t, 3600)
    feed.frames(10, vibration=7.0)  # the rule alarms come: the shelved anomaly stays shelved
    assert anomaly.state is AlarmState.SHELVED and anomaly.shelved_until is not None
    warning = pipeline.alarms.alarms[("ST10", "vibration", 0)]
    assert warning.state is AlarmState.SUPPRESSED  # folded into the fault
    feed.frames(5, vibration=5.0)  # below the fault, still above the warning
    feed.frames(10, vibration=2.0)  # and back: the folded warning clears, logged though folded
    cleared = [e for e in pipeline.alarms.history if e.alarm_id == warning.id and e.kind == "cleared"]
    assert len(cleared) == 1 and warning.cleared_at is not None
    fault = pipeline.alarms.alarms[("ST10", "vibration", 1)]
    pipeline.alarms.acknowledge(fault.id, feed.t)  # the row is seen: what it carried is seen with it
    feed.frames(1, vibration=2.0)
    assert warning.state is AlarmState.NORMAL and not any(a.needs_attention for a in pipeline.alarms.alarms.values())


def test_a_rule_alarm_on_the_same_signal_folds_the_anomaly_and_the_warning_into_one_row():
    rules = [{"above": 4.0, "state": "warning", "message": "Vibration high"},
             {"above": 6.0, "state": "fault", "message": "Vibration very high"}]
    pipeline = TelemetryPipeline(spindle_layout(rules))
    feed = Feeder(pipeline)
    feed.frames(400)
    feed.frames(20, vibration=3.0)  # the scorer sees it first: an anomaly alarm, no rule yet
    assert [a.signal for a in pipeline.alarms.listed()] == [ANOMALY_SIGNAL]
    feed.frames(10, vibration=7.0)  # one knock: past both rule limits
    listed = pipeline.alarms.listed()
    assert len(listed) == 1, [(a.signal, a.message) for a in listed]
    row = listed[0]
    assert row.signal == "vibration" and row.severity == "high" and row.message == "Vibration very high"
    assert "Vibration high" in row.display_message and "anomaly first seen" in row.display_message
    states = {a.key: a.state for a in pipeline.alarms.alarms.values()}
    assert states[("ST10", ANOMALY_SIGNAL, 0)] is AlarmState.SUPPRESSED
    assert states[("ST10", "vibration", 0)] is AlarmState.SUPPRESSED
    feed.frames(400, vibration=2.0)  # back to normal: the fault clears; its row stays until acknowledged
    listed = pipeline.alarms.listed()
    assert len(listed) == 1 and listed[0].state is AlarmState.UNACK_RTN and listed[0].related
    pipeline.alarms.acknowledge(listed[0].id, feed.t)  # seen once, with everything folded into it
    feed.frames(1, vibration=2.0)
    assert not any(a.needs_attention for a in pipeline.alarms.alarms.values())
    assert all(a.state is not AlarmState.SUPPRESSED for a in pipeline.alarms.alarms.values())


def test_accept_as_new_normal_clears_the_alarm_logs_who_and_is_replayed(tmp_path):
    layout = spindle_layout()
    pipeline = TelemetryPipeline(layout)
    feed = Feeder(pipeline)
    feed.frames(400)
    out = tmp_path / "spindle.mcap"
    session = SessionRecording(pipeline, out).start()
    feed.frames(20, current=14.0)  # a new tool: the current stays higher
    session.poll(feed.t)
    assert any(a.signal == ANOMALY_SIGNAL and a.condition_active for a in pipeline.alarms.alarms.values())
    accepted_at = feed.t
    assert pipeline.accept_anomaly("ST10", accepted_at)
    assert not pipeline.accept_anomaly("ST10", accepted_at)  # nothing left to accept
    feed.frames(100, current=14.0)
    session.poll(feed.t)
    session.stop()
    alarm = pipeline.alarms.alarms[("ST10", ANOMALY_SIGNAL, 0)]
    assert not alarm.condition_active and pipeline.anomaly.components["ST10"].scorer.level == "normal"
    accepted = [e for e in pipeline.alarms.history if e.kind == "accepted"]
    assert len(accepted) == 1 and "by the operator" in accepted[0].message
    replayer = Replayer(out, layout)
    replayer.index()
    replayer.advance_to(replayer.end)
    replayed = replayer.pipeline
    assert [e.kind for e in replayed.alarms.history].count("accepted") == 1
    assert replayed.anomaly.components["ST10"].scorer.level == "normal"


def test_a_lasting_change_becomes_normal_by_itself_after_accept_after():
    pipeline = TelemetryPipeline(spindle_layout(accept_after=60.0))
    feed = Feeder(pipeline)
    feed.frames(400)
    feed.frames(30 * 70, current=14.0)  # 70 s of frames at the new level
    assert pipeline.anomaly.components["ST10"].scorer.level == "normal"
    auto = [e for e in pipeline.alarms.history if e.kind == "auto-accepted"]
    assert len(auto) == 1 and "automatically after 60 s" in auto[0].message
    assert not pipeline.alarms.alarms[("ST10", ANOMALY_SIGNAL, 0)].condition_active


def test_the_details_explain_score_signal_band_and_horizon_in_readable_units():
    rules = [{"above": 8.0, "state": "fault", "message": "Vibration very high"}]
    pipeline = TelemetryPipeline(spindle_layout(rules))
    feed = Feeder(pipeline)
    feed.frames(400)
    for i in range(200):  # vibration climbs toward its 8 mm/s fault limit
        feed.frames(1, vibration=2.0 + 0.02 * i)
    rows = dict(pipeline.anomaly_rows("ST10"))
    assert rows["anomaly"].startswith(("unusual (warning)", "highly unusual (alarm)"))
    assert "1 in" in rows["anomaly"] or "far beyond" in rows["anomaly"]
    assert rows["why"].startswith("vibration")
    low, high = (float(x) for x in rows["vibration normal"].split(" mm/s")[0].split(" to "))
    assert 0.0 <= low < 2.0 < high < 3.0
    horizon = rows["vibration horizon"]
    assert "reaches its 8 mm/s fault limit in about" in horizon
    assert horizon.split("about ")[1].split(" ")[1] in ("s", "min", "h", "days")
    assert pipeline.anomaly_summary("ST10").startswith("anomaly:")


def test_failure_probability_from_a_signal_trend_toward_its_fault_limit():
    """A vibration rising 0.01 mm/s a second from 2 mm/s reaches its 10 mm/s fault limit 800 s after it
    started: from the last sample (at 300 s, 5 mm/s) that is 500 s away, so the probability of failure within
    two weeks is all but certain, within 100 s small, and the sentence says it is the trend's."""
    from viewer.telemetry.pipeline import TelemetryPipeline

    pipeline = TelemetryPipeline(spindle_layout([{"above": 10.0, "state": "fault"}]))
    for i in range(301):
        t = T0 + i
        pipeline.router.handle("st10/vibration", f"{2.0 + 0.01 * i:.4f}".encode(), t)
        pipeline.step(t + 0.001)
    rows = dict(pipeline.failure_rows("ST10"))
    text = rows["vibration failure"]
    assert text.startswith("ST10: 100 % probability of reaching its fault limit (10 mm/s) within 14 days")
    assert text.endswith("from the trend of vibration, no run-to-failure history")
    soon = dict(pipeline.failure_rows("ST10", horizon_s=100.0))["vibration failure"]
    assert soon.startswith("ST10: 0 % probability")  # 500 s away on an exact line: not within 100 s
    assert pipeline.failure_rows("ST10", horizon_s=100.0) and not dict(pipeline.failure_rows("ST10")).get("current")
