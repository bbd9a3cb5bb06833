"""The ``twin-viewer`` command.

``twin-viewer [FILE]`` opens the main window (on a layout, if given);
subcommands work without a window::

    twin-viewer render LAYOUT --out FILE.png [--view iso|top] [--size 1600x1000]
    twin-viewer validate LAYOUT

Heavy imports (Qt, VTK) happen inside the subcommand that needs them, so
``validate`` starts fast and runs on a machine with no display.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Executor

from viewer import __version__

SUBCOMMANDS = ("render", "validate", "demo", "simulate-plant", "score", "nab", "simulate", "optimise", "maintenance",
               "record", "replay", "recover", "import", "check",
               "compare", "opcua-certificate")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOT_CONNECTED = 3  # record: the broker was never reached (the reason is on stderr)
EXIT_DAMAGED = 4  # replay / recover: the file is damaged; what was readable was used, the rest reported
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _UsageError(ValueError):
    """A command line that cannot be run (said on stderr, exit 2)."""


def _take_log_level(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--log-level LEVEL`` (or ``=LEVEL``) wherever it stands, before or after a subcommand, and the rest.

    Taken out before any parser sees the line, so every subcommand, including those with parsers of
    their own (``simulate-plant``, ``nab``), accepts it in any position.
    """
    level: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--log-level" or arg.startswith("--log-level="):
            if "=" in arg:
                value, i = arg.partition("=")[2], i + 1
            elif i + 1 < len(argv):
                value, i = argv[i + 1], i + 2
            else:
                raise _UsageError("--log-level needs a value: " + ", ".join(LOG_LEVELS))
            if value.upper() not in LOG_LEVELS:
                raise _UsageError(f"--log-level {value!r}: choose one of " + ", ".join(LOG_LEVELS))
            level = value.upper()
            continue
        rest.append(arg)
        i += 1
    return level, rest


def _subcommand_first(argv: list[str]) -> list[str]:
    """``twin-viewer --kiosk demo`` as ``twin-viewer demo --kiosk``: the window's options written before a
    subcommand go after it (the subcommand says whether it takes them), instead of the subcommand's name
    being taken for a file to open."""
    i, moved = 0, []
    while i < len(argv) and (argv[i] in ("--kiosk", "--broker", "--opcua")
                             or argv[i].startswith(("--broker=", "--opcua="))):
        width = 2 if argv[i] in ("--broker", "--opcua") else 1
        moved += argv[i:i + width]
        i += width
    if moved and i < len(argv) and argv[i] in SUBCOMMANDS:
        return [argv[i], *argv[i + 1:], *moved]
    return argv


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1600x1000, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("width and height must be between 16 and 8192 pixels")
    return w, h


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"twin-viewer {__version__}")
    _add_log_level(parser)


def _add_log_level(parser: argparse.ArgumentParser) -> None:
    # Only for --help: main() takes the option out of the line wherever it stands.
    parser.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS,
                        help="how much to log (default WARNING); before or after the subcommand")


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin-viewer",
        description="3D digital-twin viewer for factory control rooms. "
        f"Subcommands: {', '.join(SUBCOMMANDS)} (twin-viewer SUBCOMMAND --help).",
    )
    _add_common(parser)
    parser.add_argument("file", nargs="?", type=Path, help="a layout (.json) or a recording (.mcap) to open")
    parser.add_argument("--kiosk", action="store_true", help="operator mode: full screen, no editing")
    parser.add_argument("--broker", metavar="HOST:PORT", help="connect to this MQTT broker instead of the layout's")
    parser.add_argument("--opcua", metavar="opc.tcp://HOST:PORT", help="this OPC UA server instead of the layout's")
    return parser


def _sub_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin-viewer")
    _add_common(parser)
    subs = parser.add_subparsers(dest="command", required=True)

    render = subs.add_parser("render", help="render a layout to a PNG without opening a window")
    render.add_argument("layout", type=Path)
    render.add_argument("--out", type=Path, required=True, help="PNG file to write")
    render.add_argument("--view", choices=["iso", "top"], default="iso")
    render.add_argument("--size", type=_size, default=(1600, 1000), help="WIDTHxHEIGHT (default 1600x1000)")
    render.add_argument("--labels", dest="labels", action="store_true", default=None, help="always draw labels")
    render.add_argument("--no-labels", dest="labels", action="store_false", help="never draw labels")
    render.add_argument("--select", metavar="ID", help="highlight this component")
    render.add_argument("--theme", choices=["dark", "light"], default="dark")

    demo = subs.add_parser("demo", help="the demo plant, live: embedded broker + virtual plant + viewer")
    demo.add_argument("--layout", type=Path, default=None, help="layout (default: the demo plant)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the virtual plant")
    demo.add_argument("--kiosk", action="store_true", help="operator mode: full screen, no editing")
    demo.add_argument("--opcua", action="store_true", help="the whole demo over OPC UA: the virtual plant as an "
                      "OPC UA server, the window on the demo plant's OPC UA twin")

    subs.add_parser("simulate-plant", help="publish virtual-plant telemetry (see simulate-plant --help)",
                    add_help=False)
    subs.add_parser("maintenance", help="rank repair windows by expected lost output (see maintenance --help)",
                    add_help=False)
    subs.add_parser("nab", help="score a NAB corpus into NAB's results files (see nab --help)", add_help=False)

    score = subs.add_parser("score", help="score a CSV row by row with the anomaly scorer; write the scores")
    score.add_argument("csv", type=Path)
    score.add_argument("--columns", help="comma-separated columns to score (default: every non-time column)")
    score.add_argument("--time-column", help="the timestamp column (default: datetime/timestamp/time if present)")
    score.add_argument("--learn", type=int, default=300, help="rows that teach the scorer what normal is")
    score.add_argument("--out", type=Path, help="output CSV (default: FILE.scores.csv beside the input)")

    simulate = subs.add_parser("simulate", help="simulate the layout's material flow: throughput, OEE, bottleneck")
    simulate.add_argument("layout", type=Path)
    simulate.add_argument("--hours", type=float, default=8.0, help="simulated hours after the warm-up (default 8)")
    simulate.add_argument("--replications", type=int, default=20, help="independent runs (default 20)")
    simulate.add_argument("--seed", type=int, default=1, help="seed; the same seed gives the same figures")
    simulate.add_argument("--warmup", type=float, default=None,
                          help="seconds removed from the statistics (default: the layout's simulation.warmup)")
    simulate.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    simulate.add_argument("--json", action="store_true", help="print the report as JSON")

    optimise = subs.add_parser("optimise", help="spend a budget of buffer places and parallel stations where "
                                                "they raise throughput most (simulated); or, with --placement, "
                                                "move stations into free slots to shorten AGV travel")
    optimise.add_argument("layout", type=Path)
    optimise.add_argument("--budget", type=int,
                          help="buffer places to add; a parallel station costs --server-cost places")
    optimise.add_argument("--placement", action="store_true",
                          help="search placements of stations in free --slot places instead of a budget")
    optimise.add_argument("--slot", type=_slot, action="append", default=[], metavar="X,Y",
                          help="a free place on the floor, metres (repeat; with --placement)")
    optimise.add_argument("--move", metavar="ID,ID", help="components that may move (default: the stations at "
                                                          "the ends of AGV links)")
    optimise.add_argument("--rounds", type=int, default=3, help="placement rounds (default 3)")
    optimise.add_argument("--server-cost", type=int, default=10, help="budget units per extra server (default 10)")
    optimise.add_argument("--buffer-step", type=int, default=1, help="buffer places added per step (default 1)")
    optimise.add_argument("--hours", type=float, default=8.0)
    optimise.add_argument("--replications", type=int, default=10)
    optimise.add_argument("--seed", type=int, default=1)
    optimise.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    optimise.add_argument("--save", type=Path, help="write the best layout found here (beside the original)")
    optimise.add_argument("--json", action="store_true", help="print the result as JSON")

    record = subs.add_parser("record", help="record a live session to an MCAP file without a window")
    record.add_argument("--layout", type=Path, required=True, help="the layout whose bindings to subscribe")
    record.add_argument("--broker", metavar="HOST:PORT", help="broker (default: the layout's mqtt section)")
    record.add_argument("--opcua", metavar="opc.tcp://HOST:PORT", help="OPC UA server (default: the layout's "
                        "opcua section)")
    record.add_argument("--out", type=Path, required=True, help="MCAP file to write")
    record.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl+C)")

    replay = subs.add_parser("replay", help="replay a recording in the viewer (or --headless: as fast as possible)")
    replay.add_argument("recording", type=Path)
    replay.add_argument("--layout", type=Path, help="layout to show it on (default: the one in the recording)")
    replay.add_argument("--headless", action="store_true", help="no window: play it through and print a summary")
    replay.add_argument("--kiosk", action="store_true", help="operator mode: full screen, no editing")
    replay.add_argument("--broker", metavar="HOST:PORT", help="the live plant beside the replay: this broker "
                        "instead of the layout's")

    recover = subs.add_parser("recover", help="rewrite a cut-off recording with everything readable and an index")
    recover.add_argument("broken", type=Path)
    recover.add_argument("--out", type=Path, required=True)

    imp = subs.add_parser("import", help="turn a CSV or JSON-lines log (timestamp, topic, payload) into a recording")
    imp.add_argument("log", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--layout", type=Path, help="layout to embed in the recording")

    subs.add_parser("opcua-certificate", help="show this viewer's OPC UA client certificate (made on first use) "
                    "with its thumbprint, and the folders of trusted and refused server certificates")
    check = subs.add_parser("check", help="check a layout for overlaps, reach, flow and clearance problems; "
                                          "exit 1 on an error")
    check.add_argument("layout", type=Path)
    check.add_argument("--json", action="store_true", help="print the problems as JSON")

    compare = subs.add_parser("compare", help="simulate two layouts with the same seeds and compare their KPIs")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    compare.add_argument("--hours", type=float, default=8.0)
    compare.add_argument("--replications", type=int, default=20)
    compare.add_argument("--seed", type=int, default=1)
    compare.add_argument("--json", action="store_true")

    validate = subs.add_parser("validate", help="check a layout file and its meshes; exit 1 if it has problems")
    validate.add_argument("layout", type=Path)
    validate.add_argument("--no-meshes", action="store_true", help="do not open the mesh files")
    for sub in subs.choices.values():
        if sub.add_help:
            _add_log_level(sub)
    return parser


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout
    from viewer.sim.model import SimModelError, model_from_layout
    from viewer.sim.runner import run

    if args.hours <= 0 or args.replications < 1 or (args.warmup is not None and args.warmup < 0):
        print("--hours must be > 0, --replications >= 1 and --warmup >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        model = model_from_layout(load_layout(args.layout))
    except LayoutError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    except SimModelError as exc:
        print(f"{args.layout}: cannot simulate: {len(exc.problems)} problem(s)", file=sys.stderr)
        for where, why in exc.problems:
            print(f"  {where}: {why}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.warmup is not None:
        model.warmup = args.warmup
    try:
        def progress(done: int, total: int) -> None:
            print(f"\rsimulating: {done}/{total} replications", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

        report = run(model, args.hours, args.replications, args.seed, workers=args.workers,
                     progress=progress if sys.stderr.isatty() else None)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        print(json.dumps(_finite_or_none(report.to_dict()), allow_nan=False))
    else:
        print(f"{args.layout.name}: {model_description(model)}")
        print(report.format(), end="")
    return EXIT_OK


@contextlib.contextmanager
def _sweep_executor(workers: int | None) -> Iterator[Executor | None]:
    """The process pool a sweep submits its simulations to (None: one process), shut down afterwards."""
    import os

    from viewer.sim.runner import _process_pool

    count = workers or os.cpu_count() or 1
    pool = _process_pool(count) if count > 1 else None
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _say_progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _slot(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a slot is X,Y in metres, not {text!r}") from None
    return x, y


def _cmd_placement(args: argparse.Namespace) -> int:
    """``optimise --placement``: stations into free slots (see viewer.sim.placement)."""
    import json

    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout, save_layout
    from viewer.sim.model import SimModelError
    from viewer.sim.placement import optimise_placement

    if not args.slot or args.hours <= 0 or args.replications < 2 or args.rounds < 1:
        print("--placement needs at least one --slot X,Y; --hours > 0, --replications >= 2, --rounds >= 1",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        layout = load_layout(args.layout)
    except LayoutError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    movable = [m.strip() for m in args.move.split(",") if m.strip()] if args.move else None
    try:
        with _sweep_executor(args.workers) as pool:
            result = optimise_placement(layout, args.layout.parent, args.slot, movable, args.hours,
                                        args.replications, args.seed, args.rounds, executor=pool,
                                        progress=_say_progress)
    except SimModelError as exc:
        for where, why in exc.problems:
            print(f"  {where}: {why}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (ValueError, KeyError) as exc:
        print(f"twin-viewer optimise --placement: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        print(json.dumps(_finite_or_none({
            "base": {"throughput_per_hour": result.base.throughput.to_dict(), "agv_m_per_part": result.base.travel_m},
            "evaluations": result.evaluations, "refused": result.refused,
            "best": [{"moves": {k: list(v) for k, v in p.moves.items()}, "agv_m_per_part": p.travel_m,
                      "throughput_per_hour": p.throughput.to_dict()} for p in result.best]}), allow_nan=False))
    else:
        base = result.base
        print(f"{args.layout.name}: {base.throughput.mean:,.1f} parts/h as laid out, AGV {base.travel_m:,.1f} m "
              f"loaded per part; {result.evaluations} placements simulated, {result.refused} refused by the "
              f"layout checks")
        for rank, p in enumerate(result.best, 1):
            tp = p.throughput
            print(f"{rank}. {tp.mean:,.1f} parts/h (95 % CI {tp.low:,.1f} to {tp.high:,.1f}), "
                  f"AGV {p.travel_m:,.1f} m/part: {p.describe()}")
    if args.save is not None and result.best:
        save_layout(result.best[0].layout, args.save)
        print(f"best layout written to {args.save} (open it in the viewer to inspect it in 3D)", file=sys.stderr)
    return EXIT_OK


def _cmd_optimise(args: argparse.Namespace) -> int:
    import json

    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout, save_layout
    from viewer.sim.model import SimModelError, model_from_layout
    from viewer.sim.optimise import optimise

    if args.save is not None and args.save.resolve().parent != args.layout.resolve().parent:
        print("--save must name a file beside the layout: its mesh paths are relative to that folder",
              file=sys.stderr)
        return EXIT_USAGE
    if args.placement:
        if args.budget is not None:
            print("--budget is for the buffer/server search; --placement searches places: use one", file=sys.stderr)
            return EXIT_USAGE
        return _cmd_placement(args)
    if args.slot or args.move:
        print("--slot and --move go with --placement", file=sys.stderr)
        return EXIT_USAGE
    if args.budget is None:
        print("optimise needs --budget N (or --placement with --slot X,Y)", file=sys.stderr)
        return EXIT_USAGE
    if args.budget < 0 or args.server_cost < 1 or args.buffer_step < 1 or args.hours <= 0 or args.replications < 2:
        print("--budget >= 0, --server-cost and --buffer-step >= 1, --hours > 0, --replications >= 2",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        layout = load_layout(args.layout)
        model = model_from_layout(layout)
    except LayoutError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    except SimModelError as exc:
        for where, why in exc.problems:
            print(f"  {where}: {why}", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        with _sweep_executor(args.workers) as pool:
            result = optimise(model, args.budget, args.hours, args.replications, args.seed, args.server_cost,
                              args.buffer_step, executor=pool, progress=_say_progress)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        print(json.dumps(_finite_or_none({
            "base": {"throughput_per_hour": result.base.throughput.to_dict()},
            "evaluations": result.evaluations,
            "best": [{"changes": c.design.describe(model), "cost": c.cost,
                      "throughput_per_hour": c.throughput.to_dict()} for c in result.best]}), allow_nan=False))
    else:
        base = result.base.throughput
        print(f"{args.layout.name}: {base.mean:,.1f} parts/h as laid out (± {base.half_width:,.1f}); "
              f"{result.evaluations} designs simulated ({args.replications} x {args.hours:g} h each)")
        for rank, cand in enumerate(result.best, 1):
            tp = cand.throughput
            print(f"{rank}. {tp.mean:,.1f} parts/h (95 % CI {tp.low:,.1f} to {tp.high:,.1f}), cost {cand.cost}: "
                  f"{cand.design.describe(model)}")
    if args.save is not None and result.best:
        best = result.best[0].design
        for node_id, capacity in best.buffers:
            layout.component(node_id).sections.setdefault("buffer", {})["capacity"] = capacity
        for node_id, servers in best.servers:
            layout.component(node_id).sections.setdefault("sim", {})["servers"] = servers
        save_layout(layout, args.save)
        print(f"best layout written to {args.save}", file=sys.stderr)
    return EXIT_OK


def _cmd_record(args: argparse.Namespace) -> int:
    import signal
    import threading

    from viewer.model.errors import LayoutError
    from viewer.model.layout_io import load_layout
    from viewer.telemetry.mqtt_client import SettingsError, settings_for
    from viewer.telemetry.opcua_client import settings_for as opcua_settings_for
    from viewer.telemetry.recording import RecordingError
    from viewer.telemetry.session import record_headless

    try:
        layout = load_layout(args.layout)
        settings = settings_for(layout, args.broker, args.layout.parent)
        opcua = opcua_settings_for(layout, args.opcua, args.layout.parent)
    except LayoutError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    except SettingsError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings is None and opcua is None:
        print("the layout names no broker and no OPC UA server: give --broker HOST:PORT or --opcua "
              "opc.tcp://HOST:PORT", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sources = " and ".join(c.describe() for c in (settings, opcua) if c is not None)
    print(f"recording {sources} to {args.out} (Ctrl+C stops)", file=sys.stderr)
    try:
        stats, statuses = record_headless(layout, settings, args.out, opcua=opcua, layout_path=args.layout,
                                          duration=args.duration, stop=stop,
                                          on_status=lambda line: print(line, file=sys.stderr, flush=True))
    except (RecordingError, SettingsError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    line = f"{args.out}: {stats.messages:,} messages, {stats.events:,} events, {stats.dropped:,} dropped"
    if settings is not None:
        dropped = statuses[0].broker_dropped
        line += ("; the broker's drop count not available" if dropped is None
                 else f"; the broker dropped {dropped:,} (all its clients)")
    print(line)
    if stats.error:
        print(stats.error, file=sys.stderr)
        return EXIT_PROBLEMS
    never = [s for s in statuses if s.connects == 0]
    for status in never:
        print(f"never connected: {status.detail}", file=sys.stderr)
    return EXIT_NOT_CONNECTED if never else EXIT_OK


def _recording_layout(recording: Path, layout_arg: Path | None) -> tuple[object, str | None]:
    """The layout to replay on: --layout, else the one embedded in the recording; and a note if they differ."""
    from viewer.model.layout_io import load_layout, parse_layout
    from viewer.telemetry.recording import layout_matches, quick_info

    info = quick_info(recording)
    if layout_arg is not None:
        layout = load_layout(layout_arg)
        return layout, layout_matches(info, layout.to_dict())
    if info.layout_doc is None:
        raise ValueError(f"{recording.name} does not embed its layout: give --layout")
    return parse_layout(info.layout_doc, recording), None


def _cmd_replay(args: argparse.Namespace) -> int:
    import time

    from viewer.model.errors import LayoutError
    from viewer.telemetry.recording import RecordingError
    from viewer.telemetry.replay import Replayer

    try:
        layout, note = _recording_layout(args.recording, args.layout)
    except (RecordingError, LayoutError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    if note:
        print(f"note: {note}; replaying what matches", file=sys.stderr)
    if not args.headless:
        if not _has_display():
            return EXIT_USAGE
        from viewer.ui.app import run_gui

        return run_gui(args.layout, broker=args.broker, recording=args.recording, kiosk=args.kiosk)
    replayer = Replayer(args.recording, layout)
    t0 = time.perf_counter()
    try:
        info = replayer.index()
    except RecordingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    except InterruptedError:
        return EXIT_PROBLEMS
    wall = time.perf_counter() - t0
    span = replayer.end - replayer.start
    alarms = [m for m in replayer.markers if m.kind == "alarm"]
    print(f"{args.recording.name}: {replayer.played:,} messages over {span:,.1f} s, replayed in {wall:.2f} s "
          f"({span / max(wall, 1e-9):,.0f}x real time); {len(alarms)} alarms raised; "
          f"{len(replayer.markers) - len(alarms)} other events")
    for marker in replayer.markers[:50]:
        print(f"  {time.strftime('%H:%M:%S', time.localtime(marker.time))}  {marker.kind:8} {marker.text}")
    for note in info.notes:
        print(f"note: {note}", file=sys.stderr)
    return _report_damage(args.recording.name, info, replayer.damage)


def _report_damage(name: str, info: object, damage: list) -> int:
    """A damaged file is never presented as whole: say what was skipped, and exit EXIT_DAMAGED."""
    from viewer.telemetry.recording import describe_damage

    if not damage and getattr(info, "complete", True) and not getattr(info, "orphans", 0):
        return EXIT_OK
    if damage or getattr(info, "orphans", 0):
        print(f"warning: {name} is {describe_damage(damage, getattr(info, 'orphans', 0))}", file=sys.stderr)
        for d in damage[3:20]:
            print(f"  skipped {d.describe()}", file=sys.stderr)
    else:
        print(f"warning: {name}: {getattr(info, 'problem', 'incomplete')}", file=sys.stderr)
    return EXIT_DAMAGED


def _cmd_recover(args: argparse.Namespace) -> int:
    from viewer.telemetry.recording import RecordingError, recover

    try:
        info = recover(args.broken, args.out)
    except RecordingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    state = "was complete" if info.complete else info.problem
    print(f"{args.out}: {info.messages:,} messages recovered ({state})")
    return _report_damage(args.broken.name, info, info.damage)


def _cmd_import(args: argparse.Namespace) -> int:
    import json

    from viewer.telemetry.recording import RecordingError, import_log

    layout_doc = None
    if args.layout is not None:
        layout_doc = json.loads(args.layout.read_text(encoding="utf-8"))
    try:
        count = import_log(args.log, args.out, layout_doc=layout_doc)
    except (RecordingError, OSError, UnicodeDecodeError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{args.out}: {count:,} messages imported")
    return EXIT_OK


def _cmd_opcua_certificate(_args: argparse.Namespace) -> int:
    from viewer.telemetry.opcua_security import OpcUaSecurityError, certificate_report

    try:
        print(certificate_report())
    except OpcUaSecurityError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    import json

    from viewer.geometry.plant import build_plant_geometry
    from viewer.geometry.reach import robot_reaches
    from viewer.model.checks import check_layout, footprints_from_geometry
    from viewer.model.errors import LayoutError, MeshError
    from viewer.model.layout_io import load_layout
    from viewer.telemetry.layout_checks import check_telemetry

    try:
        layout = load_layout(args.layout)
        geometry = build_plant_geometry(layout, args.layout.parent, strict=False)
    except (LayoutError, MeshError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    problems = check_layout(layout, footprints_from_geometry(geometry), robot_reaches(geometry)) \
        + check_telemetry(layout)
    errors = [p for p in problems if p.severity == "error"]
    if args.json:
        print(json.dumps({"layout": str(args.layout), "errors": len(errors),
                          "problems": [p.to_dict() for p in problems]}))
    else:
        for p in problems:
            print(f"{p.severity:7} {p.code:18} {p.message}")
        print(f"{args.layout.name}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return EXIT_PROBLEMS if errors else EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from viewer.sim.compare import CompareError, compare, simulate_pair

    try:
        _layouts, reports = simulate_pair(args.first, args.second, args.hours, args.replications, args.seed)
    except CompareError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    c = compare(*reports)
    if args.json:
        print(json.dumps(_finite_or_none(dataclasses.asdict(c)), allow_nan=False))
        return EXIT_OK
    diff = c.throughput[1] - c.throughput[0]
    print(f"throughput  {c.throughput[0]:,.1f} ± {c.ci[0]:,.1f} -> {c.throughput[1]:,.1f} ± {c.ci[1]:,.1f} parts/h "
          f"({diff:+,.1f}; {'within noise' if c.overlap else 'a real change'})")
    print(f"line OEE    {c.oee[0]:.0%} -> {c.oee[1]:.0%}; bottleneck {c.bottleneck[0]} -> {c.bottleneck[1]}")
    print(f"{'station':<12} {'working':>13} {'blocked':>13} {'starved':>13} {'down':>13}")
    for s in c.stations:
        cells = " ".join(f"{a:>5.0%} -> {b:<4.0%}" for a, b in (s.working, s.blocked, s.starved, s.down))
        print(f"{s.id:<12} {cells}")
    return EXIT_OK


def _recording_risks(layout: object, path: Path, horizon_s: float) -> dict:
    """Stations whose signals (or their sensors') head for a fault limit at the end of a recording: the last
    hour replayed through the pipeline, each station's worst trend as its failure probability."""
    from viewer.telemetry.recording import RecordingError
    from viewer.telemetry.replay import Replayer

    replayer = Replayer(Path(path), layout)  # type: ignore[arg-type]
    try:
        replayer.open()
        if replayer.needs_index:
            for _fraction in replayer.index_steps():
                pass
        replayer.seek(max(replayer.start, replayer.end - 3600.0))
        replayer.advance_to(replayer.end)
    except RecordingError as exc:
        raise ValueError(str(exc)) from exc
    pipeline = replayer.pipeline
    risks = {}
    for comp in layout.components:  # type: ignore[attr-defined]
        found = pipeline.failure_risks(comp.id, horizon_s) if comp.parent is None else []  # type: ignore[union-attr]
        if found:
            worst = max(found, key=lambda r: r.probability)
            risks[comp.id] = (worst.estimate.p_fail_within, f"trend of {worst.component} {worst.signal} in "
                                                             f"{Path(path).name}")
    return risks


def _finite_or_none(value: object) -> object:
    """NaN and infinities as JSON null (strict JSON has no NaN)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def model_description(model: object) -> str:
    """'12 stations, 2 buffers, 4 conveyors' for a simulation model."""
    from collections import Counter

    counts = Counter(node.kind for node in model.nodes)  # type: ignore[attr-defined]
    return ", ".join(f"{v} {k}{'s' if v != 1 else ''}" for k, v in counts.items())


def _cmd_validate(args: argparse.Namespace) -> int:
    from viewer.geometry.validate import validate_layout_file
    from viewer.model.layout_io import load_layout

    problems = validate_layout_file(args.layout, open_meshes=not args.no_meshes)
    if problems:
        print(f"{args.layout}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  {problem.path}: {problem.message}", file=sys.stderr)
        return EXIT_PROBLEMS
    layout = load_layout(args.layout)
    print(f"{args.layout}: OK ({len(layout.components)} components, {len(layout.flow)} flow links)")
    return EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from viewer.model.errors import LayoutError, MeshError
    from viewer.scene.offscreen import render_layout

    if args.out.suffix.lower() != ".png":
        print(f"--out must name a .png file, got {args.out}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)  # fail before a long render, not after
    except OSError as exc:
        print(f"cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.select is not None:
            from viewer.model.layout_io import load_layout

            if args.select not in load_layout(args.layout).ids():
                print(f"{args.layout}: no component with id {args.select!r} to select", file=sys.stderr)
                return EXIT_PROBLEMS
        render_layout(args.layout, args.out, view=args.view, size=args.size, labels=args.labels,
                      select=args.select, theme=args.theme)
    except LayoutError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEMS
    except MeshError as exc:
        print(f"{args.layout}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as exc:
        print(f"cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"wrote {args.out}")
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    from viewer.analytics.csv_scoring import CsvScoringError, score_csv_file
    from viewer.analytics.scorer import ScorerConfig

    out = args.out or args.csv.with_suffix(".scores.csv")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    try:
        rows = score_csv_file(args.csv, out, columns, args.time_column, ScorerConfig(learn_samples=args.learn))
    except CsvScoringError as exc:
        print(f"{args.csv}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.csv}: cannot read: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"scored {rows} rows -> {out}")
    return EXIT_OK


def _has_display() -> bool:
    """The window needs a display; say so plainly instead of letting Qt abort."""
    import os

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
            and os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal"):
        print("twin-viewer: no display (DISPLAY is not set). Run it on a desktop, under xvfb-run, or use "
              "'twin-viewer render LAYOUT --out FILE.png' for a picture.", file=sys.stderr)
        return False
    return True


def _cmd_demo(args: argparse.Namespace) -> int:
    """Start the embedded broker and the virtual plant (``--opcua``: the virtual plant as an asyncua server
    on a free loopback port, and the demo plant's OPC UA twin), open the viewer on them, clean up on exit."""
    import subprocess

    if not _has_display():
        return EXIT_USAGE

    import signal
    import socket

    from viewer.runtime import own_command
    from viewer.telemetry.embedded_broker import CHILD_OPTIONS, BrokerProcess
    from viewer.telemetry.virtual_plant import default_layout

    broker = None
    if args.opcua:
        layout = args.layout or default_layout().with_name("demo_plant_opcua.json")
        with socket.socket() as probe:  # a free port (the server binds it a moment later)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        serve, source = ("--opcua-port", str(port)), {"opcua": f"opc.tcp://127.0.0.1:{port}"}
        where = f"serving OPC UA on opc.tcp://127.0.0.1:{port}"
    else:
        layout = args.layout or default_layout()
        broker = BrokerProcess().start()
        serve, source = ("--broker", f"127.0.0.1:{broker.port}"), {"broker": f"127.0.0.1:{broker.port}"}
        where = f"embedded broker on 127.0.0.1:{broker.port}"
    plant = subprocess.Popen(own_command("simulate-plant", *serve, "--layout", str(layout), "--seed", str(args.seed)),
                             **CHILD_OPTIONS)
    # Until the window runs (it then quits on SIGTERM itself), a kill still cleans up the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"demo: {where}, virtual plant pid {plant.pid}" if broker else f"demo: virtual plant pid {plant.pid} {where}")
    try:
        from viewer.ui.app import run_gui

        return run_gui(layout, kiosk=args.kiosk, **source)
    finally:
        plant.terminate()
        try:
            plant.wait(5)
        except subprocess.TimeoutExpired:
            plant.kill()
        if broker is not None:
            broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``twin-viewer`` and ``python -m viewer``."""
    try:
        log_level, argv = _take_log_level(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(f"twin-viewer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if log_level is not None and argv and argv[0] in ("simulate-plant", "nab", "_broker", "_sim-worker"):
        logging.basicConfig(level=log_level, format=LOG_FORMAT)  # before their own defaults, which then yield
    log_level = log_level or "WARNING"
    if argv and argv[0] == "simulate-plant":
        from viewer.telemetry.virtual_plant import main as simulate_plant

        return simulate_plant(argv[1:])
    if argv and argv[0] == "_broker":  # the demo's embedded broker process (not for people)
        from viewer.telemetry.embedded_broker import main as broker_main

        return broker_main(argv[1:])
    if argv and argv[0] == "_sim-worker":  # the editor's simulation worker process (not for people)
        from viewer.sim.jobs import worker_main

        return worker_main()
    if argv and argv[0] == "maintenance":
        from viewer.sim.maintenance import main_maintenance

        return main_maintenance(argv[1:], risks_from_recording=_recording_risks)
    if argv and argv[0] == "nab":
        from viewer.analytics.nab import main_nab

        return main_nab(argv[1:])
    argv = _subcommand_first(argv)
    is_sub = bool(argv) and argv[0] in SUBCOMMANDS
    args = (_sub_parser() if is_sub else _gui_parser()).parse_args(argv)
    if is_sub:
        logging.basicConfig(level=log_level, format=LOG_FORMAT)
        commands = {"render": _cmd_render, "validate": _cmd_validate, "demo": _cmd_demo, "score": _cmd_score,
                    "simulate": _cmd_simulate, "optimise": _cmd_optimise,
                    "record": _cmd_record, "replay": _cmd_replay, "recover": _cmd_recover, "import": _cmd_import,
                    "check": _cmd_check, "compare": _cmd_compare, "opcua-certificate": _cmd_opcua_certificate}
        return commands[args.command](args)
    if not _has_display():
        return EXIT_USAGE
    from viewer.runtime import setup_logging
    from viewer.ui.app import run_gui

    setup_logging(log_level)  # the window's log goes to the user's log folder too
    if args.file is not None and args.file.suffix.lower() == ".mcap":  # opened by extension
        return run_gui(None, broker=args.broker, recording=args.file, kiosk=args.kiosk, opcua=args.opcua)
    return run_gui(args.file, broker=args.broker, kiosk=args.kiosk, opcua=args.opcua)


if __name__ == "__main__":
    sys.exit(main())
