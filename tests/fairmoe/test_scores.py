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


def test_fields_read_as_float_reads_them(tmp_path: Path) -> None:
    """pandas' C reader parses the columns: every value must be the float Python's float()
    gives, spaces, exponents, 17 digits and blank cosines included."""
    rng = np.random.default_rng(1)
    n = 3000
    digits = [repr(float(v)) for v in rng.random(n)]
    digits[:4] = ["1e-7", " 0.25", "0.1234567890123456789", "5E-1"]
    header = ",".join(["id", "label", "score", "cos_non_glaucoma", "cos_glaucoma",
                       *ATTRIBUTE_NAMES])  # fmt: skip
    rows = [f"c{i},{i % 2},{d},{d},,{i % 3},1.0,0,-1" for i, d in enumerate(digits)]
    rows.insert(7, "skipped,1, ,0.5,0.5,0,0,0,0")  # no score: not a case
    (tmp_path / "p.csv").write_text("\n".join([header, *rows]) + "\n")
    read = read_scores(tmp_path / "p.csv")
    assert read.n == n and read.ids[:2] == ["c0", "c1"] and "skipped" not in read.ids
    assert read.scores.tolist() == [float(d) for d in digits]
    assert read.cosines is None  # one cosine column is blank
    assert read.attrs["race"].tolist() == [i % 3 for i in range(n)]
    assert read.attrs["gender"].tolist() == [1] * n and read.y.dtype.kind == "i"


@pytest.mark.parametrize("bad", ["nan", "inf", "", "one"])
def test_a_label_that_is_not_a_whole_number_is_named(tmp_path: Path, bad: str) -> None:
    header = ",".join(["label", "score", *ATTRIBUTE_NAMES])
    (tmp_path / "b.csv").write_text(f"{header}\n{bad},0.5,0,0,0,0\n")
    with pytest.raises(ScoresError, match="non-numeric|not a readable"):
        read_scores(tmp_path / "b.csv")
