"""The scores CSV: one writer, one reader, ScoreSet numbers from fairmoe.metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fairmoe.metrics import evaluate
from fairmoe.schema import ATTRIBUTE_NAMES
from fairmoe.scores import BASE_COLUMNS, ScoresError, ScoreSet, read_scores, write_scores


def _set(n: int = 40, loads: bool = True) -> ScoreSet:
    rng = np.random.default_rng(0)
    attrs = {a: rng.integers(-1, 2, n) for a in ATTRIBUTE_NAMES}
    return ScoreSet(
        "x",
        [f"data_{i:05d}.npz" for i in range(n)],
        rng.integers(0, 2, n),
        rng.random(n).round(6),
        attrs,
        rng.random((n, 3)).round(4) if loads else None,
        rng.uniform(-1, 1, (n, 2)).round(6),
    )


def test_round_trip(tmp_path: Path) -> None:
    ss = _set()
    read = read_scores(write_scores(tmp_path / "a.scores.csv", ss))
    assert read.name == "a" and read.ids == ss.ids
    np.testing.assert_array_equal(read.y, ss.y)
    np.testing.assert_allclose(read.scores, ss.scores)
    np.testing.assert_allclose(read.loads, ss.loads)
    np.testing.assert_allclose(read.cosines, ss.cosines)
    for a in ATTRIBUTE_NAMES:
        np.testing.assert_array_equal(read.attrs[a], ss.attrs[a])
    assert read.report(0.4) == evaluate(ss.y, ss.scores, ss.attrs, threshold=0.4)


def test_extra_columns_and_failed_rows(tmp_path: Path) -> None:
    ss = _set(5, loads=False)
    path = write_scores(
        tmp_path / "c.csv",
        ss,
        extra={"decision": ["glaucoma"] * 5, "error": [""] * 5},
        failed=[{"id": "bad.png", "error": "not an image"}],
    )
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0])[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert len(rows) == 6 and rows[-1]["error"] == "not an image" and rows[-1]["score"] == ""
    assert read_scores(path).n == 5  # rows without a score are not cases


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ScoresError, match="not found"):
        read_scores(tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("id,label,score\n1,0,0.5\n")
    with pytest.raises(ScoresError, match="missing columns"):
        read_scores(tmp_path / "cols.csv")
    header = ",".join(["label", "score", *ATTRIBUTE_NAMES])
    (tmp_path / "nan.csv").write_text(f"{header}\n1,abc,0,0,0,0\n")
    with pytest.raises(ScoresError, match="non-numeric"):
        read_scores(tmp_path / "nan.csv")
