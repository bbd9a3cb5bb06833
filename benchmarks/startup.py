"""Start-up time: from starting the program to the window showing the demo plant (``startup_s``).

The program is started fresh each time (a new process, as an operator double-clicking it would), with a
private settings location; the window writes the moment its first frame with the plant is drawn
(``TWIN_VIEWER_STARTUP_PROBE``) and quits. The first start warms the disk cache and is not counted ("from a
warm disk"); the figure is the median of the rest. ``--bundle`` times the built PyInstaller bundle
(``make package``) instead of the source tree; both are timed when the bundle exists and ``--both`` is given.

    python benchmarks/startup.py [--quick] [--bundle | --both] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ROOT, emit, ensure_display

DEMO = ROOT / "layouts" / "demo_plant" / "demo_plant.json"
BUNDLE = ROOT / "build" / "dist" / "twin-viewer" / "twin-viewer"
GOAL_S = 3.0


def time_start(command: list[str], timeout: float = 60.0) -> float:
    """Seconds from starting ``command`` to the plant on screen."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "shown"
        env = dict(os.environ, TWIN_VIEWER_STARTUP_PROBE=str(probe), TWIN_VIEWER_SETTINGS=str(Path(tmp) / "s.ini"),
                   TWIN_VIEWER_LOG_DIR=tmp)
        env.pop("TWIN_VIEWER_POLICY", None)
        started = time.time()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if not probe.exists():
            raise SystemExit(f"startup: {command[0]} exited {result.returncode} without showing the plant:\n"
                             f"{result.stderr[-2000:]}")
        return float(probe.read_text()) - started


def measure(name: str, command: list[str], runs: int) -> list[float]:
    time_start(command)  # warm the disk cache (and Python's bytecode cache)
    times = [time_start(command) for _ in range(runs)]
    print(f"{name}: median {statistics.median(times):.2f} s, runs {', '.join(f'{t:.2f}' for t in times)}",
          file=sys.stderr)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed starts instead of 7")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--bundle", action="store_true", help="time the built bundle only")
    which.add_argument("--both", action="store_true", help="time the source tree and the bundle")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    ensure_display(__file__)
    runs = args.runs or (3 if args.quick else 7)
    if (args.bundle or args.both) and not BUNDLE.exists():
        parser.error(f"no bundle at {BUNDLE}: run `make package` first")
    figures = []
    source = [sys.executable, "-m", "viewer", str(DEMO)]
    bundle = [str(BUNDLE), str(DEMO)]
    if not args.bundle:
        times = measure("source tree", source, runs)
        figures.append({"figure": "startup_s" if not args.both else "startup_s_source",
                        "value": round(statistics.median(times), 2), "unit": "s", "goal": GOAL_S,
                        "higher_is_better": False})
    if args.bundle or args.both:
        times = measure("bundle", bundle, runs)
        figures.append({"figure": "startup_s", "value": round(statistics.median(times), 2), "unit": "s",
                        "goal": GOAL_S, "higher_is_better": False})
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
