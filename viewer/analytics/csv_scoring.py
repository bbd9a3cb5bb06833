"""Score a CSV file row by row, in order, exactly as the live viewer would (``twin-viewer score``).

The scorer uses the viewer's default configuration (only the learning period can be set); the
time column, when there is one, gives the times (for the rhythm and the automatic acceptance of a
lasting change), else each row counts as one second.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from viewer.analytics.scorer import ComponentScorer, ScorerConfig

TIME_NAMES = ("datetime", "timestamp", "time", "date", "ts")
LABEL_NAMES = ("anomaly", "changepoint", "label", "is_anomaly")


class CsvScoringError(ValueError):
    """A CSV that cannot be scored, with the reason."""


@dataclass
class ScoredRow:
    """One output row."""

    time: str
    score: float
    level: str
    top_signal: str
    evidence: float = 0.0
    kind: str = ""


def format_score(score: float) -> str:
    """A score with the digits that keep strong anomalies apart (0.9999999987, not 1.000000)."""
    return format(min(max(score, 0.0), 1.0), ".15g")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _timestamp(text: str, index: int) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return float(index)


def score_csv(handle: TextIO, columns: list[str] | None = None, time_column: str | None = None,
              config: ScorerConfig | None = None) -> tuple[list[str], Iterator[ScoredRow]]:
    """The scored signals and an iterator of results, one per data row (streaming, in order)."""
    sample = handle.read(4096)
    handle.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(handle, dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvScoringError("the file is empty") from None
    if time_column is None:
        time_column = next((h for h in header if h.lower() in TIME_NAMES), None)
    elif time_column not in header:
        raise CsvScoringError(f"no column {time_column!r}; the columns are {', '.join(header)}")
    if columns is None:
        columns = [h for h in header if h != time_column and h.lower() not in LABEL_NAMES]
    missing = [c for c in columns if c not in header]
    if missing:
        raise CsvScoringError(f"no column {', '.join(map(repr, missing))}; the columns are {', '.join(header)}")
    if not columns:
        raise CsvScoringError("no columns to score")
    picks = [header.index(c) for c in columns]
    time_index = header.index(time_column) if time_column else None
    scorer = ComponentScorer(columns, config)

    def rows() -> Iterator[ScoredRow]:
        for i, row in enumerate(reader):
            if not row:
                continue
            stamp_text = row[time_index] if time_index is not None and time_index < len(row) else str(i)
            values = [_number(row[j]) if j < len(row) else math.nan for j in picks]
            result = scorer.update(_timestamp(stamp_text, i), values)
            top = next(iter(result.contributions), "")
            yield ScoredRow(stamp_text, result.score, result.level, top, result.raw, result.kind if top else "")

    return columns, rows()


def score_csv_file(path: Path, out: Path, columns: list[str] | None = None, time_column: str | None = None,
                   config: ScorerConfig | None = None) -> int:
    """Score ``path`` into ``out``; returns the number of rows written.

    Columns: time, score (see :func:`format_score`), level, top signal, evidence (decades: how many
    powers of ten rarer than normal; unbounded, so it orders every anomaly) and what the top signal
    shows (value, level, flat, rhythm, relation).
    """
    count = 0
    with path.open(newline="", encoding="utf-8") as source, out.open("w", newline="", encoding="utf-8") as sink:
        _columns, results = score_csv(source, columns, time_column, config)
        writer = csv.writer(sink)
        writer.writerow(["time", "score", "level", "top_signal", "evidence", "kind"])
        for result in results:
            writer.writerow([result.time, format_score(result.score), result.level, result.top_signal,
                             f"{result.evidence:.4f}", result.kind])
            count += 1
    return count
