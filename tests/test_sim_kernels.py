"""The compiled kernel against the pure-Python reference, part for part, on every feature of the model.

Both read the same prepared model and the same random streams, so every figure of a replication must be
equal: not close, equal (the same floating-point operations in the same order)."""

from __future__ import annotations

import shutil
from dataclasses import asdict

import pytest
from sim_models import feature_models

from viewer.sim import kernel
from viewer.sim.engine import Replication, prepare

MODELS = feature_models()
COMPILED = kernel._compiled


def require_compiled():
    if COMPILED is None:
        if shutil.which("c++") or shutil.which("g++"):
            pytest.fail("a C++ compiler is here but viewer/sim/_kernel is not built: run packaging/build_kernel.py")
        pytest.skip("no C++ compiler on this machine: only the reference kernel runs")
    return COMPILED


@pytest.mark.parametrize("name", list(MODELS))
def test_the_compiled_kernel_gives_the_references_figures_part_for_part(name):
    compiled = require_compiled()
    model = MODELS[name]
    hours = 1.0 if name == "large_plant" else 6.0
    for seed in (3, 4):
        duration = model.warmup + hours * 3600
        reference = asdict(Replication(prepare(model, duration, seed)).run())
        fast = asdict(compiled.simulate(prepare(model, duration, seed)))
        assert reference["events"] > 100
        differing = [key for key in reference if reference[key] != fast[key]]
        assert differing == [], f"{name}, seed {seed}: {differing}"


def test_the_feature_models_reach_what_they_are_named_for():
    """The catalogue must exercise what the comparison above claims (scrap, rework, setups, failures,
    shifts, AGVs waiting to unload, stopped belts): each shows up in the reference's own figures."""
    def run(name, hours=6.0):
        model = MODELS[name]
        return Replication(prepare(model, model.warmup + hours * 3600, 3)).run()

    r = run("arrivals, unbounded buffer, parallel servers, scrap and rework")
    station = next(iter(r.stations.values()))
    assert station.scrapped > 0 and station.reworked > 0 and station.failures > 0
    r = run("setups per batch, triangular and uniform cycles")
    assert min(s.setup for s in r.stations.values() if s.setup) > 0
    r = run("accumulating and stopping conveyors")
    assert sum(s.blocked for s in r.stations.values()) > 0
    r = run("whichever has room past a zero buffer, shift calendar")
    assert all(s.off_shift > 0 for s in r.stations.values())
    r = run("AGV transport into a small buffer")
    assert r.agv_busy > 0 and r.produced > 0
    model = MODELS["AGV transport into a small buffer"]
    rep = Replication(prepare(model, model.warmup + 6 * 3600, 3))
    answers, waited = [], []
    original_servable, original_drop = rep.first_servable, rep.on_drop

    def first_servable():
        answers.append(original_servable())
        return answers[-1]

    def on_drop(t, vehicle, part):
        b = rep.p.transport_dest[t]
        waited.append(not rep.kept[vehicle] and rep.held[b] + rep.reserved[b] >= rep.p.cap[b])
        original_drop(t, vehicle, part)

    rep.first_servable = first_servable
    rep.handlers = lambda: [rep.on_complete, rep.on_conveyor, rep.on_fail, rep.on_repair, rep.on_shift_off,
                            rep.on_shift_on, rep.on_warmup, rep.on_arrival, rep.on_pickup, on_drop]
    rep.run()
    assert -1 in answers and any(k >= 0 for k in answers)  # requests held back for a full buffer, and served
    assert any(waited) and not all(waited)  # vehicles waiting at the busy M3 (it empties without AGVs)


def test_agvs_never_load_for_a_full_buffer_so_a_small_fleet_cannot_deadlock():
    """Reproduction: with the vehicles loading for a full buffer B, all three ended up waiting loaded at B
    while M2's finished parts waited for a vehicle: 8 parts in 6 hours (seed 4; 40-72 for seeds 6, 7 and 9),
    the line dead. Now a vehicle loads for a full destination only where that destination empties without
    AGVs (M3 does, B does not: M2's parts leave by AGV); for B it waits until a place is free and keeps it.
    Every seed keeps producing: M1 (30 s) holds each part until a vehicle collects it, so about 65 parts/h."""
    model = MODELS["AGV transport into a small buffer"]
    for seed in range(3, 13):
        result = Replication(prepare(model, model.warmup + 6 * 3600, seed)).run()
        assert result.produced / 6 > 50, seed


def test_a_cancelled_compiled_run_stops_with_interrupted_error():
    compiled = require_compiled()
    model = MODELS["general network"]
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(InterruptedError):
        compiled.simulate(prepare(model, model.warmup + 400 * 3600, 1), cancelled)
    assert len(calls) == 2


def test_the_forced_reference_kernel_is_what_runs(monkeypatch):
    require_compiled()
    assert kernel.kernel_name() == "compiled"
    monkeypatch.setenv("TWIN_VIEWER_SIM_KERNEL", "python")
    assert kernel.kernel_name() == "python"
    model = MODELS["demo_plant"]
    a = kernel.simulate(model, model.warmup + 3600, 2)
    monkeypatch.delenv("TWIN_VIEWER_SIM_KERNEL")
    b = kernel.simulate(model, model.warmup + 3600, 2)
    assert asdict(a) == asdict(b)
