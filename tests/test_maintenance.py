"""Repair windows: the expected-loss ranking on a line where every figure follows from hand arithmetic."""

from __future__ import annotations

import pytest

from viewer.sim.maintenance import candidate_windows, plan_repair, stop_loss
from viewer.sim.model import Calendar, Node, SimModel
from viewer.sim.model import Distribution as D  # noqa: N817

CYCLE = 60.0  # s per part, deterministic
PERIOD = 8 * 3600.0  # one 8-hour shift, repeating
BREAK = (4 * 3600.0, 4.5 * 3600.0)  # a 30-minute break in the middle
REPAIR = 45 * 60.0  # planned repair
MTTR = 3600.0  # an unplanned failure, deterministic repair


def one_station_line() -> SimModel:
    """Raw material always there -> ST (60 s, deterministic) -> sink; the shift has one break."""
    station = Node("ST", "station", cycle=D.fixed(CYCLE), mtbf=1e9, mttr=MTTR, repair_dist="deterministic")
    model = SimModel([Node("IN", "source"), station, Node("OUT", "sink")],
                     calendar=Calendar(PERIOD, [(0.0, BREAK[0]), (BREAK[1], PERIOD)]))
    return model.link("IN", "ST").link("ST", "OUT")


def test_the_candidates_are_now_the_break_and_the_shift_change() -> None:
    windows = candidate_windows(one_station_line().calendar, horizon=PERIOD)
    assert [(w.start, w.kind) for w in windows] == [(0.0, "now"), (BREAK[0], "break"), (PERIOD, "shift change")]
    later = candidate_windows(one_station_line().calendar, horizon=PERIOD, now=BREAK[1])  # from 4.5 h
    assert [(w.start, w.kind) for w in later] == [(0.0, "now"), (PERIOD - BREAK[1], "shift change"),
                                                  (PERIOD - BREAK[1] + BREAK[0], "break")]


def test_a_stop_costs_the_working_time_it_takes() -> None:
    model = one_station_line()
    # 45 min at work: 2700 s / 60 s = 45 parts
    assert stop_loss(model, 1, 0.0, ("deterministic", REPAIR)) == pytest.approx(45.0)
    # from the break's start: 30 of the 45 min fall in the break; 15 min = 900 s / 60 = 15 parts
    assert stop_loss(model, 1, BREAK[0], ("deterministic", REPAIR)) == pytest.approx(15.0)
    # starting 10 min before the break: 10 min at work, 30 in the break, 5 at work: 900 s = 15 parts
    assert stop_loss(model, 1, BREAK[0] - 600, ("deterministic", REPAIR)) == pytest.approx(15.0)


def test_the_ranking_by_hand() -> None:
    model = one_station_line()

    def p_fail_within(t: float) -> float:  # failure certain within the shift, equally likely at any time
        return min(t / PERIOD, 1.0)

    plan = plan_repair(model, "ST", repair_s=REPAIR, horizon_s=PERIOD, p_fail_within=p_fail_within)
    # Unplanned: 1 h down at a time uniform over the 8 h period. The expected overlap of a 1 h stop with the
    # 30 min break is 3600 * 1800 / 28800 = 225 s, so (3600 - 225) / 60 = 56.25 parts are lost.
    assert plan.unplanned_loss == pytest.approx(56.25)
    # break: 15 + 0.5 * 56.25 = 43.125; now: 45 + 0 = 45; shift change: 45 + 1.0 * 56.25 = 101.25
    got = [(w.kind, round(w.planned_loss, 3), round(w.p_fail_before, 3), round(w.expected_loss, 3))
           for w in plan.best()]
    assert got == [("break", 15.0, 0.5, 43.125), ("now", 45.0, 0.0, 45.0), ("shift change", 45.0, 1.0, 101.25)]
    # doing nothing: P(failure within 8 h) = 1 times 56.25
    assert plan.do_nothing == pytest.approx(56.25)
    text = plan.format()
    assert "break in 4.0 h" in text and "do nothing" in text
    assert plan.to_dict()["windows"][0]["kind"] == "break"


def test_a_stop_on_a_line_without_a_calendar_costs_the_same_at_any_time() -> None:
    model = one_station_line()
    model.calendar = None
    assert [w.kind for w in candidate_windows(None, horizon=PERIOD)] == ["now"]
    assert stop_loss(model, 1, 1234.0, ("deterministic", REPAIR)) == pytest.approx(45.0)


def test_the_command_prints_json_plans(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from pathlib import Path

    from viewer.sim.maintenance import main_maintenance

    demo = Path(__file__).resolve().parents[1] / "layouts" / "demo_plant" / "demo_plant.json"
    assert main_maintenance([str(demo), "--horizon", "1h", "--station", "ST90", "--replications", "1", "--now", "0",
                             "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [p["station"] for p in plans] == ["ST90"] and plans[0]["horizon_s"] == 3600.0
    assert plans[0]["windows"][0]["kind"] == "now"


# ----------------------------------------------------------------------------- a production plan
TWO_SHIFTS = 16 * 3600.0  # two 8-hour shifts, worked without a break, repeating
SHIFT = 8 * 3600.0
PLAN = [{"name": "early", "start": 0.0, "end": SHIFT, "volume": 480},  # 8 h / 60 s = 480: no slack
        {"name": "late", "start": SHIFT, "end": TWO_SHIFTS, "volume": 300}]  # 180 parts of slack


def two_shift_line() -> SimModel:
    station = Node("ST", "station", cycle=D.fixed(CYCLE), mtbf=1e9, mttr=MTTR, repair_dist="deterministic")
    model = SimModel([Node("IN", "source"), station, Node("OUT", "sink")],
                     calendar=Calendar(TWO_SHIFTS, [(0.0, TWO_SHIFTS)]))
    return model.link("IN", "ST").link("ST", "OUT")


def test_a_low_volume_shift_absorbs_a_stop_up_to_its_slack() -> None:
    from viewer.sim.maintenance import PlanSlack, shift_capacity
    from viewer.sim.model import plan_shifts

    model = two_shift_line()
    shifts = plan_shifts(PLAN, TWO_SHIFTS)
    assert shift_capacity(model, 1, shifts[0]) == pytest.approx(480.0)  # 28,800 s / 60 s
    slack = PlanSlack(model, 1, shifts, TWO_SHIFTS)
    assert slack.slack == pytest.approx([0.0, 180.0])
    assert slack.lost(45.0, 3600.0) == 45.0 and slack.lost(45.0, SHIFT + 60.0) == 0.0
    assert slack.lost(200.0, SHIFT) == pytest.approx(20.0)


def test_the_ranking_by_hand_with_a_production_plan() -> None:
    model = two_shift_line()

    def p_fail_within(t: float) -> float:
        return min(t / TWO_SHIFTS, 1.0)

    plan = plan_repair(model, "ST", repair_s=REPAIR, horizon_s=TWO_SHIFTS, p_fail_within=p_fail_within, plan=PLAN)
    # An unplanned failure costs 60 parts (1 h at 60 s a part) in the early shift, nothing against the plan
    # in the late one (180 parts of slack): half the failure phases fall in each, so 30 parts.
    assert plan.unplanned_loss == pytest.approx(30.0)
    # low-volume shift at 8 h: 45 parts lost, all made up: 0 + 0.5 * 30 = 15; now (early shift): 45 + 0 = 45;
    # the shift change at 16 h (early again): 45 + 1.0 * 30 = 75
    got = [(w.kind, round(w.planned_loss, 3), round(w.p_fail_before, 3), round(w.expected_loss, 3))
           for w in plan.best()]
    assert got == [("low-volume shift", 0.0, 0.5, 15.0), ("now", 45.0, 0.0, 45.0), ("shift change", 45.0, 1.0, 75.0)]
    assert plan.do_nothing == pytest.approx(30.0)


@pytest.mark.parametrize(("plan", "words"), [
    ([{"start": 0, "end": SHIFT}], "production_plan[0]: needs numbers"),
    ([{"start": SHIFT, "end": 100, "volume": 1}], "production_plan[0]: start"),
    ([{"start": 0, "end": 2 * TWO_SHIFTS, "volume": 1}], "the period"),
    ([{"name": "a", "start": 0, "end": SHIFT + 1, "volume": 1}, {"name": "b", "start": SHIFT, "end": TWO_SHIFTS,
                                                                  "volume": 1}], "a and b overlap"),
])
def test_a_plan_that_does_not_fit_the_calendar_is_refused_naming_the_entry(plan: list, words: str) -> None:
    from viewer.sim.model import plan_shifts

    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        plan_shifts(plan, TWO_SHIFTS)


def test_a_layout_with_a_plan_that_does_not_fit_is_refused_with_its_path(tmp_path, capsys) -> None:
    import json
    from pathlib import Path

    from viewer.cli import main

    demo = Path(__file__).resolve().parents[1] / "layouts" / "demo_plant" / "demo_plant.json"
    doc = json.loads(demo.read_text())
    doc["simulation"]["production_plan"] = [{"name": "late", "start": 72000, "end": 90000, "volume": 10}]
    bad = tmp_path / "bad_plan.json"
    bad.write_text(json.dumps(doc))
    assert main(["simulate", str(bad), "--hours", "1"]) != 0
    assert "simulation.production_plan[0]" in capsys.readouterr().err  # 90,000 s is past the 1-day period
    assert main(["maintenance", str(bad), "--horizon", "1h", "--replications", "1"]) == 1
    assert "simulation.production_plan[0]" in capsys.readouterr().err


def test_the_calendar_phase_of_a_moment_counts_from_local_monday_midnight() -> None:
    import time

    from viewer.sim.maintenance import calendar_phase

    monday_6am = time.mktime((2026, 11, 30, 6, 0, 0, 0, 0, -1))  # 30 November 2026 was a Monday
    assert calendar_phase(monday_6am, 86400.0) == pytest.approx(6 * 3600.0)
    assert calendar_phase(monday_6am + 86400.0 + 1800.0, 7 * 86400.0) == pytest.approx(86400.0 + 6.5 * 3600.0)
    assert calendar_phase(monday_6am + 4 * 3600.0, SHIFT) == pytest.approx(2 * 3600.0)  # 10:00: 2 h into 08-16
