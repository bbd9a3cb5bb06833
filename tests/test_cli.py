"""The ``twin-viewer`` command, run the way a user runs it: ``python -m viewer`` in a fresh process.

No display here: ``DISPLAY`` is removed from the child's environment, so ``render``
must draw off screen (VTK falls back to EGL / OSMesa).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "layouts" / "demo_plant" / "demo_plant.json"


def headless_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def twin_viewer(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "viewer", *map(str, args)],
        cwd=ROOT, env=headless_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


def write_layout(path: Path, components: list[dict], **extra: object) -> Path:
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "cli test", "components": components, **extra}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def declared_version() -> str:
    text = (ROOT / "viewer" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    assert match, "viewer/__init__.py declares __version__"
    return match.group(1)


# --------------------------------------------------------------------------- validate


def test_validate_the_demo_layout() -> None:
    result = twin_viewer("validate", DEMO)
    assert result.returncode == 0, result.stderr
    raw = json.loads(DEMO.read_text(encoding="utf-8"))
    assert "OK" in result.stdout
    assert f"{len(raw['components'])} components" in result.stdout
    assert f"{len(raw['flow'])} flow links" in result.stdout
    assert result.stderr == ""


def test_validate_a_bad_layout_lists_every_json_path(tmp_path: Path) -> None:
    bad = write_layout(tmp_path / "bad.json", [
        {"id": "A", "kind": "crane", "position": [0, 0, 0]},
        {"id": "B", "kind": "station", "position": [1, 2]},
        {"id": "C", "kind": "station", "position": [0, 0, 0], "color": "green"},
    ])
    result = twin_viewer("validate", bad)
    assert result.returncode == 1
    assert "OK" not in result.stdout
    assert "3 problem(s)" in result.stderr
    for path in ("$.components[0].kind", "$.components[1].position", "$.components[2].color"):
        assert path in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_semantic_and_mesh_problems(tmp_path: Path) -> None:
    (tmp_path / "broken.stl").write_bytes(b"\x00garbage\xff" * 40)
    bad = write_layout(
        tmp_path / "bad.json",
        [{"id": "A", "kind": "source", "position": [0, 0, 0]},
         {"id": "B", "kind": "station", "position": [3, 0, 0], "mesh": "broken.stl"}],
        flow=[{"from": "A", "to": "B"}, {"from": "B", "to": "NOWHERE"}],
    )
    result = twin_viewer("validate", bad)
    assert result.returncode == 1
    assert "$.flow[1].to" in result.stderr and "NOWHERE" in result.stderr

    # Fix the flow: now the mesh is opened and its fault reported where it is referenced.
    fixed = write_layout(
        tmp_path / "mesh.json",
        [{"id": "A", "kind": "source", "position": [0, 0, 0]},
         {"id": "B", "kind": "station", "position": [3, 0, 0], "mesh": "broken.stl"}],
    )
    result = twin_viewer("validate", fixed)
    assert result.returncode == 1
    assert "$.components[1].mesh" in result.stderr and "broken.stl" in result.stderr
    assert twin_viewer("validate", "--no-meshes", fixed).returncode == 0


def test_validate_malformed_json_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    # Line 2 is ' "version": 1,,': the second comma, where a key should start, is column 15.
    broken.write_text('{"format": "twin-viewer-layout",\n "version": 1,,\n}', encoding="utf-8")
    result = twin_viewer("validate", broken)
    assert result.returncode == 1
    assert "malformed JSON at line 2, column 15" in result.stderr

    result = twin_viewer("validate", tmp_path / "missing.json")
    assert result.returncode == 1
    assert "file not found" in result.stderr


def test_version() -> None:
    result = twin_viewer("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"twin-viewer {declared_version()}"


def test_a_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "never.png"
    result = twin_viewer("render", DEMO, "--out", out, "--size", "wide")
    assert result.returncode == 2
    assert "WIDTHxHEIGHT" in result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- render


def test_render_the_demo_layout_without_a_display(tmp_path: Path) -> None:
    out = tmp_path / "shots" / "demo.png"
    result = twin_viewer("render", DEMO, "--out", out, "--size", "640x400")
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (640, 400)
        pixels = np.asarray(image.convert("RGB")).astype(float)
    # The background is a vertical gradient: per row, interpolate between the top and bottom corner pixels.
    t = np.linspace(0.0, 1.0, pixels.shape[0])[:, None]
    background = (1 - t) * pixels[0, 0] + t * pixels[-1, 0]
    differs = np.abs(pixels - background[:, None, :]).max(axis=2) > 12
    assert differs.mean() > 0.05, f"only {differs.mean():.1%} of the picture differs from the background"
    # And there is something lighter than the background: the grey equipment, not just floor tint.
    assert (pixels.max(axis=2) > pixels[0, 0].max() + 40).mean() > 0.005


@pytest.mark.parametrize("fault", ["schema", "mesh"])
def test_render_a_bad_layout_fails_cleanly_and_writes_nothing(tmp_path: Path, fault: str) -> None:
    if fault == "schema":
        bad = write_layout(tmp_path / "bad.json", [
            {"id": "A", "kind": "station", "position": [0, 0, 0]},
            {"id": "A", "kind": "station", "position": [3, 0, 0]},
        ])
        expected = ["$.components[1].id", "duplicate id 'A'"]
    else:
        (tmp_path / "empty.ply").write_bytes(b"")
        bad = write_layout(tmp_path / "bad.json", [
            {"id": "A", "kind": "station", "position": [0, 0, 0], "mesh": "empty.ply"},
        ])
        expected = ["component 'A'", "empty.ply"]
    out = tmp_path / "out.png"
    result = twin_viewer("render", bad, "--out", out, "--size", "320x200")
    assert result.returncode == 1
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.glob("*.png")) == []


def test_render_refuses_a_bad_out_or_select_before_rendering(tmp_path: Path) -> None:
    result = twin_viewer("render", DEMO, "--out", tmp_path / "x.txt")
    assert result.returncode == 2 and "must name a .png file" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = twin_viewer("render", DEMO, "--out", blocker / "x.png")
    assert result.returncode == 2 and "cannot write" in result.stderr
    result = twin_viewer("render", DEMO, "--out", tmp_path / "x.png", "--select", "NOPE")
    assert result.returncode == 1 and "no component with id 'NOPE'" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_window_without_a_display_says_so(tmp_path: Path) -> None:
    result = twin_viewer(DEMO)
    assert result.returncode == 2
    assert "no display" in result.stderr and "render" in result.stderr


@pytest.mark.gui
def test_the_demo_stops_cleanly_on_sigterm_with_its_broker_and_plant() -> None:
    import os
    import signal
    import time

    env = dict(os.environ)  # with the harness's Xvfb display
    proc = subprocess.Popen([sys.executable, "-m", "viewer", "demo"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # "demo: embedded broker on 127.0.0.1:PORT, virtual plant pid PID"
        assert line.startswith("demo: embedded broker"), line
        plant_pid = int(line.rsplit(" ", 1)[1])
        time.sleep(4)  # the window is up and live
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(plant_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the virtual plant outlived the demo")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_score_a_csv_streaming_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 800
    a = rng.normal(size=n)
    b = 0.9 * a + 0.3 * rng.normal(size=n)
    a[600:] += 8.0  # a step after row 600
    path = tmp_path / "plant.csv"
    lines = ["datetime;a;b;anomaly"] + [f"2026-01-01 00:{i // 60:02d}:{i % 60:02d};{a[i]:.5f};{b[i]:.5f};0"
                                        for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    result = twin_viewer("score", path, "--learn", "300")
    assert result.returncode == 0, result.stderr
    out = path.with_suffix(".scores.csv")
    rows = out.read_text().splitlines()
    assert rows[0] == "time,score,level,top_signal,evidence,kind" and len(rows) == n + 1
    levels = [r.split(",")[2] for r in rows[1:]]
    assert levels[:300] == ["learning"] * 300
    assert all(level == "normal" for level in levels[300:600])
    first = next(i for i, level in enumerate(levels) if level in ("warning", "alarm"))
    assert 600 <= first <= 610
    assert rows[1 + first + 5].split(",")[3] == "a"  # the signal that stepped explains it
    # An 8-sigma step is far out, yet its scores stay below 1 and its evidence keeps them ordered.
    step = [r.split(",") for r in rows[601:611]]
    assert all(float(r[1]) < 1.0 and float(r[4]) > 9 for r in step)


def test_score_reports_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,a\n0,1\n")
    result = twin_viewer("score", path, "--columns", "a,zz")
    assert result.returncode == 1 and "no column 'zz'" in result.stderr


# --------------------------------------------------------------------------- logging
@pytest.mark.parametrize("where", ["before", "after", "equals"])
def test_log_level_is_accepted_before_or_after_a_subcommand(where):
    args = {"before": ["--log-level", "DEBUG", "validate", DEMO, "--no-meshes"],
            "after": ["validate", DEMO, "--no-meshes", "--log-level", "DEBUG"],
            "equals": ["validate", "--log-level=debug", DEMO, "--no-meshes"]}[where]
    quiet = twin_viewer("validate", DEMO, "--no-meshes")
    loud = twin_viewer(*args)
    assert loud.returncode == quiet.returncode == 0, loud.stderr
    assert " DEBUG " not in quiet.stderr
    assert " DEBUG " in loud.stderr  # the layout loader logs what it read at DEBUG


def test_a_wrong_log_level_is_a_usage_error():
    result = twin_viewer("validate", DEMO, "--log-level", "LOUD")
    assert result.returncode == 2
    assert "choose one of DEBUG, INFO, WARNING, ERROR" in result.stderr
    assert "Traceback" not in result.stderr


def test_kiosk_before_or_after_a_subcommand_means_the_same() -> None:
    from viewer.cli import _sub_parser, _subcommand_first

    assert _subcommand_first(["--kiosk", "demo"]) == ["demo", "--kiosk"]
    assert _subcommand_first(["--broker", "h:1883", "--kiosk", "replay", "s.mcap"]) == \
        ["replay", "s.mcap", "--broker", "h:1883", "--kiosk"]
    assert _subcommand_first(["--kiosk", "plant.json"]) == ["--kiosk", "plant.json"]  # a file stays a file
    assert _sub_parser().parse_args(["demo", "--kiosk"]).kiosk
    assert _sub_parser().parse_args(["replay", "s.mcap", "--kiosk"]).kiosk


@pytest.mark.gui
def test_the_demo_runs_in_kiosk_mode(tmp_path: Path) -> None:
    """``twin-viewer --kiosk demo``: the demo plant on screen in operator mode (it was taken for a file)."""
    import os

    probe = tmp_path / "shown"
    env = dict(os.environ, TWIN_VIEWER_STARTUP_PROBE=str(probe), XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "viewer", "--kiosk", "demo"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert probe.is_file()  # the plant was drawn: the layout opened, not "demo" as a file


def test_maintenance_from_a_recording_names_the_trend_it_read(tmp_path: Path, capsys) -> None:
    """A recording whose ST10 vibration climbs toward its 11.2 mm/s fault limit: the station is at risk by
    that trend (not by its MTBF), nearly certainly within a day."""
    import json as _json

    from viewer.cli import main
    from viewer.model.layout_io import load_layout
    from viewer.telemetry.recording import Recorder

    rec = tmp_path / "drift.mcap"
    recorder = Recorder(rec, layout_doc=load_layout(DEMO).to_dict(), broker="test",
                        encodings=lambda topic: "text").start()
    t0 = 1_750_000_000.0
    for i in range(900):  # 15 minutes, one value a second: 4 mm/s rising 0.005 mm/s a second
        recorder.message("demo/line1/ST10/vibration", f"{4.0 + 0.005 * i:.4f}".encode(), t0 + i)
    recorder.stop()
    code = main(["maintenance", str(DEMO), "--recording", str(rec), "--station", "ST10", "--horizon", "1d",
                 "--replications", "1", "--json"])
    assert code == 0
    plans = _json.loads(capsys.readouterr().out)
    assert [p["station"] for p in plans] == ["ST10"]
    assert plans[0]["basis"] == "trend of S-ST10-VIB vibration in drift.mcap"
    # 11.2 mm/s is (11.2 - 8.5) / 0.005 = 540 s after the last value: certain within a day
    assert plans[0]["p_fail_horizon"] > 0.99


@pytest.mark.gui
def test_the_demo_runs_over_opcua(tmp_path: Path) -> None:
    """``twin-viewer demo --opcua``: the virtual plant served by asyncua, the window on the OPC UA twin; the
    plant is drawn (the startup probe quits the window once it is)."""
    import os

    probe = tmp_path / "shown"
    env = dict(os.environ, TWIN_VIEWER_STARTUP_PROBE=str(probe), XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "viewer", "demo", "--opcua"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "serving OPC UA on opc.tcp://127.0.0.1:" in result.stdout and probe.is_file()
