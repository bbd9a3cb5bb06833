"""Benchmark: load the 1,000-component plant, then orbit the camera through the real Qt frame path.

Figures (names, units and goals from shared/BENCHMARKS.md), one JSON line each on stdout:

- ``scene_load_s``: from starting to read the layout file (``load_layout`` + ``build_plant_geometry``
  with a fresh ``MeshLibrary`` + ``PlantScene.show``) until the first frame is drawn in a shown
  1280x800 ``PlantView``. Median of several loads. Import of PySide6/pyvista and creating the window
  are excluded (done before the clock starts).
- ``scene_load_peak_mb``: peak RSS during the first load minus the RSS just before it.
- ``orbit_fps``: ``camera.Azimuth(2)`` per frame, each frame drawn by ``view.update()`` and the Qt
  event loop (``paintGL``), never by calling ``Render()`` here. Median of 3 runs.
- ``orbit_fps_ratio``: that fps divided by the fps of the same orbit of an empty scene (one sphere),
  same window, same run; runs alternate empty/plant so both see the same machine noise.

Runs under a display: with no ``DISPLAY`` it re-executes itself under ``xvfb-run``.

    python benchmarks/scene_load.py [--quick] [--layout PATH] [--size 1280x800] [--profile]

``--profile`` also times the orbit with parts of the scene hidden or shown (labels, grid, floor,
plant) and prints the table to stderr (no JSON lines for it).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from bench_common import emit, ensure_display, parse_size

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAYOUT = ROOT / "layouts" / "large_plant" / "large_plant.json"
ORBIT_STEP_DEG = 2.0
FRAME_TIMEOUT_S = 30.0


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: fewer loads, fewer orbit frames")
    parser.add_argument("--layout", type=Path, default=DEFAULT_LAYOUT, help="layout file (default: large plant)")
    parser.add_argument("--size", default="1280x800", help="size of the 3D view in pixels, WxH")
    parser.add_argument("--profile", action="store_true", help="also time the orbit with parts of the scene hidden")
    args = parser.parse_args(argv)
    w, h = parse_size(parser, args.size)
    args.width, args.height = w, h
    return args


def _rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_times() -> list[int]:
    """Aggregate CPU times from /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    try:
        with open("/proc/stat") as handle:
            return [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return []


def _steal_percent(before: list[int], after: list[int]) -> float:
    """Share of CPU time taken by the hypervisor from this VM between two samples (noise indicator)."""
    if len(before) < 8 or len(after) < 8:
        return float("nan")
    total = sum(after[:8]) - sum(before[:8])
    return 100.0 * (after[7] - before[7]) / total if total > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ensure_display(__file__)
    args = _parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    # ---- imports and window: excluded from every figure -------------------------------------
    t_import = time.perf_counter()
    import pyvista as pv
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from viewer.geometry.mesh_library import MeshLibrary
    from viewer.geometry.plant import build_plant_geometry
    from viewer.model import geometry as geometry_module
    from viewer.model.layout_io import load_layout
    from viewer.scene.plant_scene import PlantScene
    from viewer.ui.app import create_application
    from viewer.ui.plant_view import PlantView

    import_s = time.perf_counter() - t_import

    app = create_application()
    window = QWidget()
    window.setWindowTitle("scene_load benchmark")
    box = QVBoxLayout(window)
    box.setContentsMargins(0, 0, 0, 0)
    view = PlantView(window)
    box.addWidget(view)
    window.resize(args.width, args.height)
    window.show()
    scene = PlantScene(view)

    # A slow repeating timer guarantees the event loop wakes up even if no event is due.
    waker = QTimer()
    waker.setInterval(100)
    waker.timeout.connect(lambda: None)
    waker.start()
    wait_flags = QEventLoop.ProcessEventsFlag.AllEvents | QEventLoop.ProcessEventsFlag.WaitForMoreEvents

    def next_frame() -> None:
        """Ask for a repaint and run the event loop until paintGL has drawn one more frame."""
        before = view.renders
        view.update()
        deadline = time.perf_counter() + FRAME_TIMEOUT_S
        while view.renders == before:
            app.processEvents(wait_flags, 50)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no frame drawn within {FRAME_TIMEOUT_S:.0f} s")

    def settle(seconds: float = 0.2) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    settle(0.5)
    next_frame()  # window exposed, GL context up, empty frame drawn
    view_w, view_h = view.width(), view.height()
    dpr = view.devicePixelRatioF()

    caps = view.ren_win.ReportCapabilities() or ""
    gl_renderer = next((line.split(":", 1)[1].strip() for line in caps.splitlines()
                        if line.lower().startswith("opengl renderer string")), "unknown")
    gl_version = next((line.split(":", 1)[1].strip() for line in caps.splitlines()
                       if line.lower().startswith("opengl version string")), "")

    quick = args.quick
    n_loads = 3 if quick else 5
    n_runs = 3
    plant_frames = 40 if quick else 120
    empty_frames = 90 if quick else 240
    warmup_frames = 5

    layout_path = args.layout.resolve()

    def clear_caches() -> None:
        for name in ("_box", "_cylinder", "_sphere", "_cone"):
            fn = getattr(geometry_module, name, None)
            if fn is not None and hasattr(fn, "cache_clear"):
                fn.cache_clear()

    # ---- scene_load_s -----------------------------------------------------------------------
    load_times: list[float] = []
    phases: list[tuple[float, float, float, float]] = []
    peak_delta_mb = peak_abs_mb = float("nan")
    layout = geometry = None
    for i in range(n_loads):
        scene.clear()
        view.clear_actors()
        layout = geometry = None
        clear_caches()
        gc.collect()
        next_frame()
        rss_before = _rss_mib()
        t0 = time.perf_counter()
        layout = load_layout(layout_path)
        t1 = time.perf_counter()
        geometry = build_plant_geometry(layout, layout_path.parent, MeshLibrary())
        t2 = time.perf_counter()
        scene.show(layout, geometry)
        t3 = time.perf_counter()
        next_frame()
        t4 = time.perf_counter()
        elapsed = t4 - t0
        load_times.append(elapsed)
        phases.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
        if i == 0:
            peak_abs_mb = _peak_rss_mib()
            peak_delta_mb = peak_abs_mb - rss_before
        print(f"load {i + 1}/{n_loads}: {elapsed:.2f} s (load_layout {t1 - t0:.2f}, build_plant_geometry "
              f"{t2 - t1:.2f}, PlantScene.show {t3 - t2:.2f}, first frame {t4 - t3:.2f})", file=sys.stderr)
    assert layout is not None and geometry is not None
    n_components = len(layout.components)
    n_triangles = geometry.n_triangles
    labels_default = scene.labels_visible
    actors_default = sorted(view.renderer.actors)

    # ---- orbit ------------------------------------------------------------------------------
    camera = view.renderer.GetActiveCamera()
    renderer = view.renderer

    # Time spent inside VTK's render (paintGL minus Qt's composition and event handling).
    vtk_render = {"t0": 0.0, "total": 0.0, "count": 0}

    def on_start(*_args) -> None:
        vtk_render["t0"] = time.perf_counter()

    def on_end(*_args) -> None:
        vtk_render["total"] += time.perf_counter() - vtk_render["t0"]
        vtk_render["count"] += 1

    view.ren_win.AddObserver("StartEvent", on_start)
    view.ren_win.AddObserver("EndEvent", on_end)
    home: dict[str, tuple] = {}
    fault_counts: list[float] = []  # minor page faults per frame, per orbit run

    def save_home() -> None:
        home.update(pos=camera.GetPosition(), focal=camera.GetFocalPoint(), up=camera.GetViewUp())

    def orbit(frames: int) -> tuple[float, float, float]:
        """Orbit ``frames`` frames from the scene's home view.

        Returns (fps, ms per frame inside VTK's render, VTK renders per frame).
        """
        camera.SetPosition(*home["pos"])
        camera.SetFocalPoint(*home["focal"])
        camera.SetViewUp(*home["up"])
        for _ in range(warmup_frames):
            camera.Azimuth(ORBIT_STEP_DEG)
            renderer.ResetCameraClippingRange()
            next_frame()
        vtk_render["total"], vtk_render["count"] = 0.0, 0
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        for _ in range(frames):
            camera.Azimuth(ORBIT_STEP_DEG)
            renderer.ResetCameraClippingRange()
            next_frame()
        fps = frames / (time.perf_counter() - t)
        fault_counts.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / frames)
        return fps, 1000.0 * vtk_render["total"] / frames, vtk_render["count"] / frames

    def show_plant() -> None:
        view.clear_actors()
        scene.show(layout, geometry)
        save_home()

    def show_empty() -> None:
        scene.clear()
        view.clear_actors()
        view.add_mesh(pv.Sphere(), color="#8a9299", name="sphere", reset_camera=False, render=False)
        view.reset_camera(render=False)
        save_home()

    plant_fps: list[float] = []
    empty_fps: list[float] = []
    plant_vtk_ms: list[float] = []
    empty_vtk_ms: list[float] = []
    renders_per_frame: list[float] = []
    plant_faults: list[float] = []
    cpu_before = _cpu_times()
    for run in range(n_runs):
        show_empty()
        f, ms, rpf = orbit(empty_frames)
        empty_fps.append(f)
        empty_vtk_ms.append(ms)
        renders_per_frame.append(rpf)
        show_plant()
        f, ms, rpf = orbit(plant_frames)
        plant_fps.append(f)
        plant_vtk_ms.append(ms)
        renders_per_frame.append(rpf)
        plant_faults.append(fault_counts[-1])
        print(f"orbit run {run + 1}/{n_runs}: plant {plant_fps[-1]:.1f} fps ({plant_vtk_ms[-1]:.1f} ms in VTK "
              f"render), empty {empty_fps[-1]:.1f} fps ({empty_vtk_ms[-1]:.1f} ms in VTK render)", file=sys.stderr)

    steal = _steal_percent(cpu_before, _cpu_times())

    # ---- optional profile ---------------------------------------------------------------------
    profile_rows: list[tuple[str, float, float, float, float]] = []
    if args.profile:
        profile_rows = _profile(view, scene, show_plant, show_empty, orbit, plant_frames)

    # ---- report -------------------------------------------------------------------------------
    load_s = statistics.median(load_times)
    fps = statistics.median(plant_fps)
    fps_empty = statistics.median(empty_fps)
    ratio = fps / fps_empty if fps_empty else float("nan")
    pair_ratios = ", ".join(f"{p / e:.2f}" for p, e in zip(plant_fps, empty_fps, strict=True))

    where = (f"{n_components:,} components, {n_triangles:,} triangles ({layout_path.name}); "
             f"view {view_w}x{view_h} px (dpr {dpr:g}); GL renderer: {gl_renderer}"
             f"{' (' + gl_version + ')' if gl_version else ''}")
    quick_note = "; --quick: fewer loads and orbit frames" if quick else ""
    excluded = f"import of PySide6/pyvista/viewer ({import_s:.1f} s here, ~2 s typical) and window creation excluded"
    orbit_how = (f"camera.Azimuth({ORBIT_STEP_DEG:g}) per frame, drawn via view.update() + Qt event loop (paintGL), "
                 f"median of {n_runs} runs")
    labels_note = f"labels {'shown' if labels_default else 'hidden (auto, too many)'}; actors {actors_default}"

    summary = [
        "scene_load benchmark",
        f"  layout          {layout_path} ({n_components:,} components, {n_triangles:,} triangles)",
        f"  view            {view_w}x{view_h} px, GL renderer {gl_renderer} {gl_version}",
        f"  imports         {import_s:.2f} s (excluded)",
        f"  scene load      median {load_s:.2f} s over {n_loads} loads: "
        + ", ".join(f"{t:.2f}" for t in load_times),
        "  load phases     median s: load_layout {:.2f}, build_plant_geometry {:.2f}, PlantScene.show {:.2f}, "
        "first frame {:.2f}".format(*(statistics.median(p[k] for p in phases) for k in range(4))),
        f"  peak RSS        {peak_abs_mb:.0f} MiB absolute, +{peak_delta_mb:.0f} MiB during the first load",
        f"  orbit plant     median {fps:.1f} fps ({plant_frames} frames x {n_runs}): "
        + ", ".join(f"{v:.1f}" for v in plant_fps),
        f"  orbit empty     median {fps_empty:.1f} fps ({empty_frames} frames x {n_runs}): "
        + ", ".join(f"{v:.1f}" for v in empty_fps),
        f"  ratio           {ratio:.2f} (per alternating pair: {pair_ratios})",
        f"  CPU steal       {steal:.1f} % during the orbit runs (noise indicator)",
        f"  VTK render      plant {statistics.median(plant_vtk_ms):.1f} ms/frame, empty "
        f"{statistics.median(empty_vtk_ms):.1f} ms/frame (the rest of a frame is Qt composition and events); "
        f"{statistics.median(renders_per_frame):.2f} VTK renders per frame",
        f"  page faults     plant {statistics.median(plant_faults):,.0f} minor faults per frame "
        f"(~{statistics.median(plant_faults) * 4 / 1024:.0f} MiB of fresh pages per frame; see MALLOC_TRIM_THRESHOLD_ "
        f"= {os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset')})",
        f"  {labels_note}",
    ]
    if profile_rows:
        summary.append("  profile (orbit; each variant paired with a default run just before it, median of 2):")
        summary.append(f"    {'variant':<34} {'ms/frame':>9} {'(VTK)':>7}   {'default':>8} {'(VTK)':>7}   {'fps':>5}")
        for name, v_ms, b_ms, v_vtk, b_vtk in profile_rows:
            summary.append(f"    {name:<34} {v_ms:9.1f} {v_vtk:7.1f}   {b_ms:8.1f} {b_vtk:7.1f}   {1000 / v_ms:5.1f}")
    print("\n".join(summary), file=sys.stderr)
    sys.stderr.flush()

    figures = [
        {"figure": "scene_load_s", "value": round(load_s, 3), "unit": "s", "goal": 5, "higher_is_better": False,
         "note": (f"median of {n_loads} loads (first, cold: {load_times[0]:.2f} s): load_layout + "
                  f"build_plant_geometry (fresh MeshLibrary, primitive caches cleared) + PlantScene.show until "
                  f"the first frame is drawn; {excluded}; {where}{quick_note}")},
        {"figure": "scene_load_peak_mb", "value": round(peak_delta_mb, 1), "unit": "MB", "goal": None,
         "higher_is_better": False,
         "note": (f"delta: peak RSS (ru_maxrss) after the first load minus RSS just before it, MiB; "
                  f"absolute peak RSS {peak_abs_mb:.0f} MiB; {where}{quick_note}")},
        {"figure": "orbit_fps", "value": round(fps, 2), "unit": "frames/s", "goal": 20, "higher_is_better": True,
         "note": (f"{orbit_how}, {plant_frames} frames each (runs: {', '.join(f'{v:.1f}' for v in plant_fps)}); "
                  f"{statistics.median(plant_vtk_ms):.0f} ms/frame inside VTK render, rest Qt composition; "
                  f"{labels_note}; {where}{quick_note}")},
        {"figure": "orbit_fps_ratio", "value": round(ratio, 3), "unit": "ratio", "goal": 0.6,
         "higher_is_better": True, "peer": "empty scene (one sphere)", "peer_value": round(fps_empty, 2),
         "note": (f"median plant fps / median empty-scene fps ({empty_frames} frames per empty run), same window, "
                  f"same run, runs alternating (per-pair ratios {pair_ratios}; CPU steal {steal:.1f} %); "
                  f"{where}{quick_note}")},
    ]
    emit(figures)

    waker.stop()
    scene.clear()
    view.close()
    window.close()
    return 0


def _profile(view, scene, show_plant, show_empty, orbit, plant_frames: int):
    """Where does the frame time go? Orbit with one thing changed, each run paired with a default run.

    The machine's speed drifts by up to 1.8x, so every variant is compared with a default-scene run
    taken just before it (same start view, same frame count), twice. Returns rows of
    (label, variant ms/frame, paired default ms/frame, variant ms in VTK render, default ms in VTK render).
    """
    renderer = view.renderer
    rows = []

    def set_visible(names: tuple[str, ...], visible: bool) -> None:
        for name in names:
            a = renderer.actors.get(name)
            if a is not None:
                a.SetVisibility(visible)

    def labels(on: bool):
        return lambda: scene.set_labels_visible(on)

    variants = [
        ("labels shown", labels(True), labels(False)),
        ("grid hidden", lambda: set_visible(("grid",), False), lambda: set_visible(("grid",), True)),
        ("floor + grid hidden", lambda: set_visible(("grid", "floor"), False),
         lambda: set_visible(("grid", "floor"), True)),
        ("plant hidden (floor + grid only)", lambda: set_visible(("plant",), False),
         lambda: set_visible(("plant",), True)),
        ("no gradient background", lambda: renderer.SetGradientBackground(False),
         lambda: renderer.SetGradientBackground(True)),
    ]
    show_empty()
    empty = [orbit(plant_frames) for _ in range(2)]
    show_plant()
    base_all = []
    for label, on, off in variants:
        pairs = []
        for _ in range(2):
            base = orbit(plant_frames)
            on()
            var = orbit(plant_frames)
            off()
            pairs.append((base, var))
            base_all.append(base)
        b_ms = statistics.median(1000.0 / p[0][0] for p in pairs)
        v_ms = statistics.median(1000.0 / p[1][0] for p in pairs)
        b_vtk = statistics.median(p[0][1] for p in pairs)
        v_vtk = statistics.median(p[1][1] for p in pairs)
        rows.append((label, v_ms, b_ms, v_vtk, b_vtk))
        print(f"profile: {label}: {v_ms:.1f} ms/frame ({v_vtk:.1f} in VTK) vs default {b_ms:.1f} ({b_vtk:.1f})",
              file=sys.stderr)
    rows.insert(0, ("empty scene (one sphere)", statistics.median(1000.0 / e[0] for e in empty), float("nan"),
                    statistics.median(e[1] for e in empty), float("nan")))
    rows.insert(1, ("default plant (all paired runs)", statistics.median(1000.0 / b[0] for b in base_all),
                    float("nan"), statistics.median(b[1] for b in base_all), float("nan")))
    return rows


if __name__ == "__main__":
    sys.exit(main())
