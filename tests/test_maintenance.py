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
    assert main_maintenance([str(demo), "--horizon", "1h", "--station", "ST90", "--replications", "1", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [p["station"] for p in plans] == ["ST90"] and plans[0]["horizon_s"] == 3600.0
    assert plans[0]["windows"][0]["kind"] == "now"
