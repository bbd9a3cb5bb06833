"""The Numenta Anomaly Benchmark (NAB) corpus: load it, score it, write NAB's results files.

A NAB corpus root holds::

    data/<group>/<name>.csv            header "timestamp,value", e.g. "2014-04-01 00:00:00,21.4"
    labels/combined_windows.json       {"<group>/<name>.csv": [["<start>", "<end>"], ...], ...}

:func:`run_nab` scores every file streaming, row by row in file order, with a single-signal
:class:`~viewer.analytics.scorer.ComponentScorer` (a fresh one per file, as NAB requires), and
writes NAB's results layout, nothing else::

    <out>/<detector>/<group>/<detector>_<name>.csv   header "timestamp,value,anomaly_score,label"

``timestamp`` and ``value`` are copied verbatim from the input row, ``anomaly_score`` is the
scorer's score in [0, 1] with up to 15 significant digits, so strong anomalies keep their order
(0 while it learns), ``label`` is 1 for rows inside a
labelled window (start and end included, as NAB labels them) and 0 elsewhere. NAB's own scorer
reads these files (copy ``<out>/<detector>`` into NAB's ``results/`` folder and run its
``run.py -d <detector> --optimize --score --normalize``); it walks the detector's folder as a
corpus, so no other file may be written there.

Learning period: NAB treats the first 15 % of each file (at most 750 rows) as probationary and does
not score it. Without an explicit configuration each file learns on
``max(50, min(floor(0.15 * rows), 750))`` rows (never more than the file has); a
:class:`ScorerConfig` given by the caller is used as it is, its ``learn_samples`` included.

Timestamps without a zone are read as UTC, in the data and in the labels alike, so rows and windows
compare consistently. The whole corpus is read and checked before the first results file is written,
so a malformed corpus leaves no half-written results behind.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from viewer.analytics.csv_scoring import format_score
from viewer.analytics.scorer import ComponentScorer, ScorerConfig

DATA_DIR = "data"
LABELS_FILE = Path("labels") / "combined_windows.json"
DATA_HEADER = ("timestamp", "value")
RESULTS_HEADER = ("timestamp", "value", "anomaly_score", "label")
DEFAULT_DETECTOR = "twinviewer"
PROBATIONARY_PERCENT = 0.15  # NAB: the first 15 % of a file is probationary (not scored) ...
PROBATIONARY_MAX_ROWS = 750  # ... but never more than 15 % of 5000 rows (nab.util.getProbationPeriod)
MIN_LEARN_ROWS = 50
# NAB's normaliser splits result file names at "_" to find the detector: letters and digits only.
DETECTOR_NAME = re.compile(r"^[A-Za-z0-9]+$")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

Progress = Callable[[int, int, str], None]  # (files done, files in all, "group/name.csv" just written)


class NabFormatError(ValueError):
    """A corpus that does not follow NAB's format; the message names the file (and the row)."""


@dataclass
class NabSeries:
    """One data file of the corpus with its label windows."""

    group: str  # folder under data/, "/"-separated ("" for a file directly in data/)
    name: str  # file name without ".csv"
    timestamps: np.ndarray  # float seconds since the epoch (naive times read as UTC)
    values: np.ndarray  # float
    windows: list[tuple[float, float]]  # labelled anomaly windows, [start, end] in seconds, both included
    timestamp_text: list[str] = field(default_factory=list, repr=False)  # as written in the file
    value_text: list[str] = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        """The file's key in combined_windows.json and its path under data/: "group/name.csv"."""
        return f"{self.group}/{self.name}.csv" if self.group else f"{self.name}.csv"

    @property
    def labels(self) -> np.ndarray:
        """True for each row inside a labelled window."""
        return label_points(self.timestamps, self.windows)


def parse_timestamp(text: str) -> float:
    """NAB's "YYYY-MM-DD HH:MM:SS[.ffffff]" (any ISO 8601 form) -> seconds since the epoch; naive = UTC."""
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def label_points(timestamps: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """True where a timestamp lies in any window (start <= t <= end, as NAB labels rows)."""
    t = np.asarray(timestamps, dtype=float)
    inside = np.zeros(t.shape, dtype=bool)
    for start, end in windows:
        inside |= (t >= start) & (t <= end)
    return inside


def probationary_rows(rows: int) -> int:
    """Rows a file learns on by default: NAB's probationary period, at least 50, at most the file."""
    nab = min(math.floor(PROBATIONARY_PERCENT * rows), int(PROBATIONARY_PERCENT * 5000))
    return max(1, min(rows, max(MIN_LEARN_ROWS, nab)))


# --- loading ----------------------------------------------------------------------------------------------
def _read_windows(labels_path: Path) -> dict[str, list[tuple[float, float]]]:
    if not labels_path.is_file():
        raise NabFormatError(f"{labels_path}: labels file not found (a NAB corpus has labels/combined_windows.json)")
    try:
        raw = json.loads(labels_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NabFormatError(f"{labels_path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise NabFormatError(f"{labels_path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise NabFormatError(f"{labels_path}: expected an object mapping \"group/name.csv\" to a list of windows")
    windows: dict[str, list[tuple[float, float]]] = {}
    for key, entries in raw.items():
        if not isinstance(entries, list):
            raise NabFormatError(f"{labels_path}: {key!r}: expected a list of [start, end] windows")
        parsed = []
        for i, window in enumerate(entries):
            where = f"{labels_path}: {key!r} window {i}"
            if not (isinstance(window, list) and len(window) == 2 and all(isinstance(t, str) for t in window)):
                raise NabFormatError(f"{where}: expected [\"start\", \"end\"] timestamps, got {window!r}")
            try:
                start, end = (parse_timestamp(t) for t in window)
            except ValueError:
                raise NabFormatError(f"{where}: unparsable timestamp in {window!r}") from None
            if end < start:
                raise NabFormatError(f"{where}: ends before it starts: {window!r}")
            parsed.append((start, end))
        windows[key] = parsed
    return windows


def _read_data_file(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Timestamp texts, value texts, timestamps (s) and values of one data file; errors name file and line."""
    stamps_text: list[str] = []
    values_text: list[str] = []
    timestamps: list[float] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != DATA_HEADER:
                got = "an empty file" if header is None else repr(",".join(header))
                raise NabFormatError(f"{path}: line 1: expected the header 'timestamp,value', got {got}")
            for row in reader:
                where = f"{path}: line {reader.line_num}"
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line (e.g. at the end of the file)
                if len(row) != 2:
                    raise NabFormatError(f"{where}: expected 2 fields (timestamp,value), got {len(row)}: {row!r}")
                stamp, text = row
                try:
                    timestamps.append(parse_timestamp(stamp))
                except ValueError:
                    raise NabFormatError(f"{where}: unparsable timestamp {stamp!r}") from None
                try:
                    value = float(text)
                except ValueError:
                    raise NabFormatError(f"{where}: value {text!r} is not a number") from None
                if not math.isfinite(value):
                    raise NabFormatError(f"{where}: value {text!r} is not a finite number")
                values.append(value)
                stamps_text.append(stamp)
                values_text.append(text)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NabFormatError(f"{path}: cannot read: {exc}") from exc
    if not stamps_text:
        raise NabFormatError(f"{path}: no data rows")
    return stamps_text, values_text, np.asarray(timestamps, dtype=float), np.asarray(values, dtype=float)


def load_nab_corpus(root: Path, labels_file: Path | None = None) -> list[NabSeries]:
    """Every ``data/**/*.csv`` under ``root`` with its windows, sorted by "group/name.csv".

    ``labels_file`` defaults to ``root/labels/combined_windows.json``. Every data file needs an entry
    there (an empty list when it has no anomaly), as NAB's scorer does; entries for files that are not
    in ``data/`` are ignored (a partial corpus). Raises :class:`NabFormatError` on anything malformed.
    """
    root = Path(root)
    data_dir = root / DATA_DIR
    if not data_dir.is_dir():
        raise NabFormatError(f"{data_dir}: data folder not found (a NAB corpus has data/<group>/<name>.csv)")
    windows = _read_windows(Path(labels_file) if labels_file is not None else root / LABELS_FILE)
    paths = sorted(p for p in data_dir.rglob("*.csv") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(data_dir).parts))
    if not paths:
        raise NabFormatError(f"{data_dir}: no .csv files")
    corpus = []
    for path in paths:
        relative = path.relative_to(data_dir)
        key = relative.as_posix()
        if key not in windows:
            raise NabFormatError(f"{path}: no entry {key!r} in the labels file")
        stamps_text, values_text, timestamps, values = _read_data_file(path)
        group = relative.parent.as_posix()
        corpus.append(NabSeries(group="" if group == "." else group, name=path.stem, timestamps=timestamps,
                                values=values, windows=windows[key], timestamp_text=stamps_text,
                                value_text=values_text))
    return corpus


# --- scoring ----------------------------------------------------------------------------------------------
def results_path(out_dir: Path, detector: str, series: NabSeries) -> Path:
    """Where NAB expects the results of ``series``: ``out/<detector>/<group>/<detector>_<name>.csv``."""
    folder = Path(out_dir) / detector
    if series.group:
        folder = folder / series.group
    return folder / f"{detector}_{series.name}.csv"


def score_series(series: NabSeries, config: ScorerConfig | None = None) -> np.ndarray:
    """Scores of one series, streaming in row order with a fresh single-signal scorer (0 while it learns)."""
    if config is None:
        config = replace(ScorerConfig(), learn_samples=probationary_rows(len(series.values)))
    scorer = ComponentScorer(["value"], config)
    scores = np.empty(len(series.values))
    for i, (stamp, value) in enumerate(zip(series.timestamps.tolist(), series.values.tolist(), strict=True)):
        score = scorer.update(stamp, (value,)).score
        scores[i] = min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0
    return scores


def write_results(path: Path, series: NabSeries, scores: np.ndarray) -> None:
    """One NAB results file: the input rows verbatim, the score (6 decimals) and the 0/1 label."""
    labels = series.labels
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(RESULTS_HEADER)
        for stamp, value, score, label in zip(series.timestamp_text, series.value_text, scores.tolist(),
                                              labels.tolist(), strict=True):
            writer.writerow((stamp, value, format_score(score), 1 if label else 0))


def run_nab(root: Path, out_dir: Path, detector: str = DEFAULT_DETECTOR, config: ScorerConfig | None = None,
            progress: Progress | None = None) -> list[Path]:
    """Score the NAB corpus at ``root`` into NAB's results layout under ``out_dir``; the files written, in order.

    ``config`` None: default thresholds and NAB's probationary period as the learning period of each file
    (see :func:`probationary_rows`); a given config is used as it is. ``progress(done, total, key)`` is
    called after each file.
    """
    if not DETECTOR_NAME.match(detector):
        raise ValueError(f"detector name {detector!r}: use letters and digits only (NAB splits file names at '_')")
    corpus = load_nab_corpus(root)
    written = []
    for done, series in enumerate(corpus, start=1):
        path = results_path(out_dir, detector, series)
        write_results(path, series, score_series(series, config))
        written.append(path)
        if progress is not None:
            progress(done, len(corpus), series.key)
    return written


# --- command line -----------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin-viewer nab",
        description="Score a NAB corpus (data/<group>/<name>.csv, labels/combined_windows.json) and write NAB's "
                    "results files <out>/<detector>/<group>/<detector>_<name>.csv for NAB's own scorer.")
    parser.add_argument("corpus", type=Path, metavar="CORPUS_DIR", help="NAB root (holds data/ and labels/)")
    parser.add_argument("--out", type=Path, required=True, metavar="RESULTS_DIR",
                        help="results folder (NAB's results/); files go to RESULTS_DIR/DETECTOR/...")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"detector name (default {DEFAULT_DETECTOR})")
    parser.add_argument("--learn", type=int, default=None, metavar="ROWS",
                        help="rows each file learns on (default: NAB's probationary 15%%, at most 750, at least 50)")
    parser.add_argument("--quiet", action="store_true", help="no per-file progress")
    return parser


def main_nab(argv: list[str]) -> int:
    """``twin-viewer nab CORPUS_DIR --out RESULTS_DIR [--detector NAME] [--learn ROWS]``; the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has printed the message
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not DETECTOR_NAME.match(args.detector):
        print(f"twin-viewer nab: detector name {args.detector!r}: use letters and digits only "
              f"(NAB splits result file names at '_')", file=sys.stderr)
        return EXIT_USAGE
    if args.learn is not None and args.learn < 1:
        print("twin-viewer nab: --learn must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    config = ScorerConfig(learn_samples=args.learn) if args.learn is not None else None

    def report(done: int, total: int, key: str) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {key}", file=sys.stderr)

    try:
        written = run_nab(args.corpus, args.out, args.detector, config, report)
    except NabFormatError as exc:
        print(f"twin-viewer nab: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as exc:
        print(f"twin-viewer nab: cannot write results: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"wrote {len(written)} results files -> {Path(args.out) / args.detector}")
    return EXIT_OK


if __name__ == "__main__":  # python -m viewer.analytics.nab works like twin-viewer nab
    sys.exit(main_nab(sys.argv[1:]))
