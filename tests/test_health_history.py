"""A plant's run-to-failure history: the CSV loader's errors, resampling, and the learned model live in the pipeline."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from viewer.analytics.history import (
    HistoryError,
    LiveHealth,
    fit_history,
    learn_health,
    read_history,
)
from viewer.model.layout import Layout
from viewer.model.layout_io import check_document
from viewer.telemetry.pipeline import TelemetryPipeline

STEP_S = 600.0  # the history's sampling: every 10 minutes
T0 = 1_750_000_000.0
LIMIT = 8.0  # the vibration at which a spindle fails in the synthetic histories


def spindle_life(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vibration rising linearly from 2 mm/s at a random rate until it reaches LIMIT (the failure), temperature
    noise beside it; one row every STEP_S. Returns (times s, rows [vibration, temperature])."""
    rate = rng.uniform(0.04, 0.08)  # mm/s per step
    steps = int((LIMIT - 2.0) / rate)
    k = np.arange(steps + 1, dtype=float)
    vibration = 2.0 + rate * k + rng.normal(0, 0.05, len(k))
    return k * STEP_S, np.column_stack([vibration, 40.0 + rng.normal(0, 0.5, len(k))])


def write_history(path: Path, units: int, seed: int = 0, censored: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = ["unit,time,vibration,temperature,failed"]
    for u in range(units + censored):
        times, rows = spindle_life(rng)
        if u >= units:  # still running: stopped half-way, never failed
            times, rows = times[: len(times) // 2], rows[: len(rows) // 2]
        for i, (t, (v, temp)) in enumerate(zip(times, rows, strict=True)):
            failed = int(u < units and i == len(times) - 1)
            lines.append(f"S{u},{t:.0f},{v:.4f},{temp:.3f},{failed}")
    path.write_text("\n".join(lines) + "\n")


def expect_error(tmp_path: Path, text: str, line: int | None, column: str | None, why: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(text)
    with pytest.raises(HistoryError) as caught:
        read_history(path, ["vibration"])
    assert (caught.value.line, caught.value.column) == (line, column)
    assert why in str(caught.value) and str(path) in str(caught.value)


def test_loader_errors_name_the_file_line_column_and_why(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="file not found"):
        read_history(tmp_path / "absent.csv", ["vibration"])
    expect_error(tmp_path, "", 1, None, "the file is empty")
    expect_error(tmp_path, "unit,time,temperature\nU1,0,3\n", 1, None, "no column 'vibration'")
    expect_error(tmp_path, "unit,time,vibration\nU1,0,1.5\nU1,10,abc\n", 3, "vibration", "'abc' is not a number")
    expect_error(tmp_path, "unit,time,vibration\nU1,0,1.5\nU1,10,\n", 3, "vibration", "empty value")
    expect_error(tmp_path, "unit,time,vibration\nU1,0,1.5\nU1,0,1.6\n", 3, "time", "not after the unit's previous row")
    expect_error(tmp_path, "unit,time,vibration\nU1,0,nan\n", 2, "vibration", "not a finite number")
    expect_error(tmp_path, "unit,time,vibration,failed\nX,0,1,1\nX,10,2,0\n", 2, "failed",
                 "failed = 1 before its last row")
    expect_error(tmp_path, "unit,time,vibration,failed\nU1,0,1,2\n", 2, "failed", "'failed' is 0 or 1")
    expect_error(tmp_path, "unit,time,vibration\nU1,0,1\nU1,10,2\n", None, None, "1 unit(s) ran to failure")
    expect_error(tmp_path, "unit,time,vibration\nU1,0\n", 2, None, "2 fields where the header has 3")


def test_units_that_never_failed_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    write_history(path, units=6, censored=2)
    history = read_history(path, ["vibration", "temperature"])
    assert len(history.units) == 6 and history.censored == ["S6", "S7"]


def test_resampling_takes_the_latest_value_at_each_step_back_from_the_failure(tmp_path: Path) -> None:
    # Each unit: values at 0, 4, 10, 20 s (median spacing of 4, 6, 10 s: 6 s). Back from the failure at 20 s the
    # steps are 20, 14, 8, 2 s, where the latest values are those of 20, 10, 4 and 0 s.
    text = "unit,time,vibration\n" + "".join(f"U{u},0,1\nU{u},4,2\nU{u},10,3\nU{u},20,4\n" for u in range(5))
    path = tmp_path / "h.csv"
    path.write_text(text)
    history = read_history(path, ["vibration"])
    assert history.step == 6.0 and history.step_s == 6.0
    assert history.units[0][:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    minutes = read_history(path, ["vibration"], time_unit="min")
    assert minutes.step_s == 360.0


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plant")
    (folder / "histories").mkdir()
    write_history(folder / "histories" / "st10_spindle.csv", units=30, censored=1)
    return folder


@pytest.fixture(scope="module")
def learned(history_dir: Path):
    history = read_history(history_dir / "histories" / "st10_spindle.csv", ["vibration", "temperature"])
    return fit_history(history, ensemble=2, epochs=20, hidden=16)


def test_the_model_learns_the_remaining_life_of_the_known_process(learned) -> None:
    """Vibration rises at rate r from 2 mm/s to 8 mm/s: at v, (8 - v) / r steps are left. Unseen units, half-way."""
    assert learned.histories == 30 and learned.model.based_on[0] == "vibration"
    rng = np.random.default_rng(99)
    errors, hits = [], []
    for _ in range(40):
        _times, rows = spindle_life(rng)
        cut = int(rng.integers(len(rows) // 3, len(rows)))
        true = len(rows) - cut  # rows after the cut's last one, to the failure row
        estimate = learned.model.predict(rows[:cut])
        errors.append(estimate.point - min(true, learned.model.cap))
        hits.append(estimate.low <= true <= estimate.high)
    assert float(np.sqrt(np.mean(np.square(errors)))) < 0.15 * learned.model.cap
    assert float(np.mean(hits)) >= 0.8


def test_live_resampling_matches_the_history_and_updates_cost_under_a_millisecond(learned) -> None:
    """Samples every 60 s fed live give the rows the history's resampling gives (one per 600 s), so the same
    estimate as predicting the resampled unit in one go; each update is timed."""
    rng = np.random.default_rng(5)
    times, rows = spindle_life(rng)
    fine_t = np.arange(0, times[-1] + 1, 60.0)
    fine = np.column_stack([np.interp(fine_t, times, rows[:, j]) for j in range(2)])
    live = LiveHealth(learned)
    costs = []
    for t, (v, temp) in zip(fine_t, fine, strict=True):
        t0 = time.perf_counter()
        live.catch_up({"vibration": [(T0 + t, v)], "temperature": [(T0 + t, temp)]})
        costs.append(time.perf_counter() - t0)
    expected_rows = fine[np.searchsorted(fine_t, np.arange(0, fine_t[-1] + 1, STEP_S))]
    batch = learned.model.predict(expected_rows)
    assert live.tracker.age == len(expected_rows)
    assert live.estimate is not None and live.estimate.point == pytest.approx(batch.point)
    current = live.current()
    assert current is not None and current.point == pytest.approx(batch.point * STEP_S)
    assert statistics.median(costs) < 1e-3


def spindle_layout(health: dict | None) -> Layout:
    component = {"id": "ST10", "kind": "station", "name": "ST10 Spindle", "position": [0, 0, 0]}
    if health is not None:
        component["health"] = health
    return Layout.from_dict({"name": "plant", "components": [component],
                             "mqtt": {"host": "127.0.0.1", "port": 1883},
                             "bindings": [
                                 {"topic": "st10/vibration", "component": "ST10", "signal": "vibration",
                                  "encoding": "number", "unit": "mm/s", "rules": [{"above": LIMIT, "state": "fault"}]},
                                 {"topic": "st10/temperature", "component": "ST10", "signal": "temperature",
                                  "encoding": "number", "unit": "C"}]})


def feed(pipeline: TelemetryPipeline, minutes: int, rate_per_step: float) -> None:
    """One vibration and one temperature value a minute, the vibration rising rate_per_step every 600 s."""
    for i in range(minutes):
        t = T0 + 60.0 * i
        pipeline.router.handle("st10/vibration", f"{2.0 + rate_per_step * i / 10:.4f}".encode(), t)
        pipeline.router.handle("st10/temperature", b"40.0", t)
        pipeline.step(t + 0.001)
        if i % 30 == 0:
            pipeline.failure_rows("ST10")  # the details panel asks as it goes


HEALTH = {"history": "histories/st10_spindle.csv", "signals": ["vibration", "temperature"], "time_unit": "s"}


def test_the_pipeline_gives_the_learned_estimate_for_a_component_with_a_history(history_dir: Path,
                                                                               learned) -> None:
    """Fitted at construction from the layout's health section (relative to the layout's folder); fed live,
    the sentence says it is learned, from how many histories, on which signals. At 6.2 mm/s rising 0.06 mm/s a
    step, (8 - 6.2) / 0.06 = 30 steps (5 h) are left: the interval holds it and failure within 14 days is sure."""
    t0 = time.perf_counter()
    pipeline = TelemetryPipeline(spindle_layout(HEALTH), layout_dir=history_dir)
    fit_s = time.perf_counter() - t0
    assert "ST10" in pipeline.health and not pipeline.health_problems
    assert fit_s < 60
    feed(pipeline, minutes=700, rate_per_step=0.06)  # 2 + 0.06 * 70 = 6.2 mm/s at the end
    risks = pipeline.failure_risks("ST10")
    assert [r.estimate.source for r in risks] == ["history"]
    risk = risks[0]
    assert risk.estimate.low <= 30 * STEP_S <= risk.estimate.high
    assert risk.probability > 0.95
    text = dict(pipeline.failure_rows("ST10"))["remaining life"]
    assert text.startswith("ST10 Spindle: 100 % probability of failure within 14 days; 90 % interval ")
    assert "learned from 30 run-to-failure histories, based on vibration" in text
    # a model fitted in the background and passed in: the same estimate, no fitting at construction
    again = TelemetryPipeline(spindle_layout(HEALTH), health={"ST10": learned})
    assert again.health["ST10"].learned is learned


def test_without_a_history_or_with_a_broken_one_the_trend_is_used(history_dir: Path) -> None:
    plain = TelemetryPipeline(spindle_layout(None), layout_dir=history_dir)
    feed(plain, minutes=300, rate_per_step=0.06)
    assert [r.estimate.source for r in plain.failure_risks("ST10")] == ["trend"]
    assert dict(plain.failure_rows("ST10"))["vibration failure"].endswith("no run-to-failure history")
    (history_dir / "broken.csv").write_text("unit,time,vibration,temperature\nA,0,1.0,x\n")
    broken = TelemetryPipeline(spindle_layout({**HEALTH, "history": "broken.csv"}), layout_dir=history_dir)
    assert "line 2, column 'temperature': 'x' is not a number" in broken.health_problems["ST10"]
    feed(broken, minutes=300, rate_per_step=0.06)
    rows = dict(broken.failure_rows("ST10"))
    assert rows["vibration failure"].endswith("no run-to-failure history")
    assert "not learned from its run-to-failure history" in rows["health history"]


def test_learn_health_reports_a_missing_file_instead_of_raising(tmp_path: Path) -> None:
    models, problems = learn_health(spindle_layout({**HEALTH, "history": "nowhere.csv"}).components, tmp_path)
    assert not models and "nowhere.csv: file not found" in problems["ST10"]


def layout_doc(health: object) -> dict:
    return {"format": "twin-viewer-layout", "version": 1, "name": "plant",
            "components": [{"id": "ST10", "kind": "station", "position": [0, 0, 0], "health": health}]}


def test_the_layout_validates_the_health_section_with_json_paths() -> None:
    assert check_document(layout_doc(HEALTH)) == []
    paths = {p.path for p in check_document(layout_doc({**HEALTH, "time_unit": "weeks"}))}
    assert "$.components[0].health.time_unit" in paths
    assert check_document(layout_doc({"history": "h.csv"}))  # signals are required
    escaped = check_document(layout_doc({**HEALTH, "history": "../other/h.csv"}))
    assert [p.path for p in escaped] == ["$.components[0].health.history"]
    assert "relative to the layout file" in escaped[0].message
