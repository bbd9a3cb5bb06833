"""NAB corpus loader and runner on a small generated NAB-like corpus; expected rows derived in the test."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta

import numpy as np
import pytest

from viewer.analytics.nab import NabFormatError, label_points, load_nab_corpus, main_nab, run_nab
from viewer.analytics.scorer import ScorerConfig

RNG_SEED = 20260412
T0 = datetime(2014, 4, 1)
STEP = timedelta(minutes=5)
DETECTOR = "twinviewer"

# group, name, rows, anomaly start row, anomaly rows, window (first row, last row); seconds offsets put
# the second window's ends between rows, so which rows fall inside must come from the times.
FILES = [
    ("groupA", "machine_temperature", 3000, 2000, 40, (1900, 2200), (0, 0)),
    ("groupA", "cpu_utilization", 2500, 1700, 1, (1650, 1800), (90, -90)),
    ("groupB", "ambient_flow", 3500, 2600, 30, (2500, 2750), (0, 0)),
]


def stamp(row: int, seconds: int = 0) -> datetime:
    return T0 + row * STEP + timedelta(seconds=seconds)


def nab_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def make_corpus(root):
    """data/<group>/<name>.csv and labels/combined_windows.json; returns what each file should contain."""
    rng = np.random.default_rng(RNG_SEED)
    labels, expected = {}, {}
    for group, name, rows, start, length, (w0, w1), (s0, s1) in FILES:
        values = 10.0 + rng.normal(size=rows)
        values[start:start + length] += 9.0  # a step (or a single spike) of 9 sigma
        values[start] += 6.0  # and a spike on its first row
        times = [nab_text(stamp(i)) for i in range(rows)]
        texts = [f"{v:.4f}" for v in values]
        folder = root / "data" / group
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["timestamp,value", *(f"{t},{v}" for t, v in zip(times, texts, strict=True))]
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        window_start, window_end = stamp(w0, s0), stamp(w1, s1)
        labels[f"{group}/{name}.csv"] = [[window_start.strftime("%Y-%m-%d %H:%M:%S.%f"),
                                          window_end.strftime("%Y-%m-%d %H:%M:%S.%f")]]
        inside = [window_start <= stamp(i) <= window_end for i in range(rows)]
        expected[(group, name)] = {"times": times, "values": texts, "inside": inside, "start": start,
                                   "length": length, "rows": rows}
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels, indent=4), encoding="utf-8")
    return expected


def read_results(path):
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("nab")
    expected = make_corpus(root / "corpus")
    seen = []
    written = run_nab(root / "corpus", root / "results", DETECTOR, progress=lambda *a: seen.append(a))
    return root, expected, written, seen


def test_results_tree_is_exactly_nabs_layout(scored):
    root, expected, written, seen = scored
    want = {f"{DETECTOR}/{group}/{DETECTOR}_{name}.csv" for group, name in expected}
    files = {p.relative_to(root / "results").as_posix() for p in (root / "results").rglob("*") if p.is_file()}
    assert files == want  # nothing else: NAB's scorer reads every file under results/<detector>/
    assert sorted(p.relative_to(root / "results").as_posix() for p in written) == sorted(want)
    assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]


def test_every_row_once_in_order_with_its_value_and_label(scored):
    root, expected, _written, _seen = scored
    for (group, name), want in expected.items():
        header, rows = read_results(root / "results" / DETECTOR / group / f"{DETECTOR}_{name}.csv")
        assert header == ["timestamp", "value", "anomaly_score", "label"]
        assert [r[0] for r in rows] == want["times"]
        assert [r[1] for r in rows] == want["values"]
        assert [r[3] for r in rows] == ["1" if inside else "0" for inside in want["inside"]]
        # A number in [0, 1) with the digits that keep strong anomalies apart (never rounded up to 1).
        assert all(re.fullmatch(r"0|0\.\d{1,18}|\d(\.\d+)?e-\d+", r[2]) for r in rows), rows[:3]


def test_scores_are_high_in_the_anomaly_and_low_elsewhere(scored):
    root, expected, _written, _seen = scored
    for (group, name), want in expected.items():
        _header, rows = read_results(root / "results" / DETECTOR / group / f"{DETECTOR}_{name}.csv")
        scores = np.array([float(r[2]) for r in rows])
        inside = np.array(want["inside"])
        assert ((scores >= 0) & (scores <= 1)).all()
        learn = max(50, int(0.15 * want["rows"]))  # NAB's probationary rows: nothing is scored there
        assert (scores[:learn] == 0).all()
        assert scores[learn:].max() > 0
        outside = scores[learn:][~inside[learn:]]
        assert scores[inside].max() > 0.99, (group, name)
        # Calibrated on normal data: about 1 normal row in 1,000 passes 0.999 (the rows here are normal
        # noise outside the windows), and the anomaly ranks above every normal row.
        assert np.mean(outside >= 0.999) < 0.005, (group, name)
        assert outside.max() < scores[inside].max()
        onset = want["start"]
        assert scores[onset:onset + 5].max() > 0.99  # detected within a few rows of the onset


def test_label_points_includes_both_window_ends():
    t = np.arange(10.0)
    assert label_points(t, [(2.0, 4.0), (8.5, 20.0)]).tolist() == [
        False, False, True, True, True, False, False, False, False, True]
    assert not label_points(t, []).any()


def test_loader_reads_groups_names_times_and_windows(tmp_path):
    expected = make_corpus(tmp_path)
    corpus = load_nab_corpus(tmp_path)
    assert [(s.group, s.name) for s in corpus] == sorted(expected)
    first = corpus[0]
    assert first.key == f"{first.group}/{first.name}.csv"
    assert first.timestamps[1] - first.timestamps[0] == pytest.approx(300.0)
    assert len(first.windows) == 1
    assert first.labels.tolist() == expected[(first.group, first.name)]["inside"]


def test_a_given_config_sets_the_learning_period(tmp_path):
    make_corpus(tmp_path / "corpus")
    written = run_nab(tmp_path / "corpus", tmp_path / "out", "custom", ScorerConfig(learn_samples=100))
    _header, rows = read_results(written[0])
    scores = np.array([float(r[2]) for r in rows])
    assert (scores[:100] == 0).all() and scores[100:120].max() > 0
    assert written[0].name.startswith("custom_")


def _only(tmp_path, text, labels=None):
    """A corpus of one file (data/g/f.csv) with ``text``; labels default to an empty window list."""
    (tmp_path / "data" / "g").mkdir(parents=True)
    (tmp_path / "data" / "g" / "f.csv").write_text(text, encoding="utf-8")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(
        json.dumps({"g/f.csv": []} if labels is None else labels), encoding="utf-8")
    return tmp_path


GOOD = "timestamp,value\n2014-04-01 00:00:00,1.0\n2014-04-01 00:05:00,2.0\n2014-04-01 00:10:00,3.0\n"


@pytest.mark.parametrize(("text", "labels", "message"), [
    ("2014-04-01 00:00:00,1.0\n2014-04-01 00:05:00,2.0\n", None, r"f\.csv: line 1: expected the header"),
    ("time,reading\n2014-04-01 00:00:00,1.0\n", None, r"f\.csv: line 1: expected the header"),
    ("", None, r"f\.csv: line 1: .*empty file"),
    (GOOD.replace("2014-04-01 00:05:00", "yesterday noon"), None, r"f\.csv: line 3: unparsable timestamp"),
    (GOOD.replace("2.0", "n/a"), None, r"f\.csv: line 3: value 'n/a' is not a number"),
    (GOOD.replace(",3.0", ",3.0,7"), None, r"f\.csv: line 4: expected 2 fields"),
    ("timestamp,value\n", None, r"f\.csv: no data rows"),
    (GOOD, {"g/other.csv": []}, r"f\.csv: no entry 'g/f\.csv' in the labels file"),
    (GOOD, {"g/f.csv": [["2014-04-01 00:05:00", "soon"]]}, r"combined_windows\.json: 'g/f\.csv' window 0: unparsable"),
    (GOOD, {"g/f.csv": [["2014-04-01 00:05:00"]]}, r"combined_windows\.json: 'g/f\.csv' window 0: expected"),
    (GOOD, {"g/f.csv": [["2014-04-01 00:10:00", "2014-04-01 00:05:00"]]}, r"window 0: ends before it starts"),
])
def test_malformed_corpus_gives_a_clear_error_and_writes_nothing(tmp_path, text, labels, message):
    root = _only(tmp_path / "corpus", text, labels)
    with pytest.raises(NabFormatError, match=message):
        run_nab(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_labels_file_and_data_folder(tmp_path):
    root = _only(tmp_path, GOOD)
    (root / "labels" / "combined_windows.json").unlink()
    with pytest.raises(NabFormatError, match=r"combined_windows\.json: labels file not found"):
        load_nab_corpus(root)
    with pytest.raises(NabFormatError, match=r"data folder not found"):
        load_nab_corpus(tmp_path / "nowhere")
    (root / "labels" / "combined_windows.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NabFormatError, match=r"combined_windows\.json: not valid JSON"):
        load_nab_corpus(root)


def test_command_line(tmp_path, capsys):
    make_corpus(tmp_path / "corpus")
    assert main_nab([str(tmp_path / "corpus"), "--out", str(tmp_path / "res"), "--detector", "mine", "--quiet"]) == 0
    assert (tmp_path / "res" / "mine" / "groupB" / "mine_ambient_flow.csv").is_file()
    assert "wrote 3 results files" in capsys.readouterr().out
    bad = _only(tmp_path / "bad", "oops\n")
    assert main_nab([str(bad), "--out", str(tmp_path / "res2")]) == 1
    assert "f.csv: line 1: expected the header" in capsys.readouterr().err
    assert main_nab([str(bad), "--out", str(tmp_path / "res2"), "--detector", "a/b"]) == 2
    assert main_nab([str(bad)]) == 2  # --out is required


def test_default_learning_period_is_nabs_probationary_period():
    from viewer.analytics.nab import probationary_rows

    # NAB: floor(15 % of the rows), at most 15 % of 5000 = 750; here at least 50 and never past the file.
    assert [probationary_rows(n) for n in (30, 200, 4000, 4033, 10_000, 22_695)] == [30, 50, 600, 604, 750, 750]
