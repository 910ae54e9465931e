"""fairness_result from arrays against ScoreSet.fairness, and against evaluate for a crossed cell."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fairmoe.metrics.fairness import fairness_result
from fairmoe.scores import ScoreSet


def _scores(n: int = 600, seed: int = 0) -> ScoreSet:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    attrs = {a: rng.integers(-1, 2, n) for a in ("race", "gender", "ethnicity", "language")}
    s = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.2, n), 0, 1)
    return ScoreSet("m", [str(i) for i in range(n)], y, s, attrs)


@pytest.mark.parametrize(
    ("attr", "threshold"),
    [("race", 0.5), ("race", {"race": [0.3, 0.5, 0.7]}), ("race*gender", 0.4)],
)
def test_matches_the_score_sets_result_without_caveats(attr, threshold) -> None:
    ss = _scores()
    got = fairness_result(ss.y, ss.scores, ss.attrs, attr, threshold=threshold, model="m")
    want = ss.fairness(attr, threshold, ci="none")
    assert got == dataclasses.replace(want, warnings=())


def test_a_crossed_cell_is_its_two_groups() -> None:
    ss = _scores()
    res = fairness_result(ss.y, ss.scores, ss.attrs, "gender*race")  # either order
    cell = res.group("Black & Female")
    m = (ss.attrs["race"] == 1) & (ss.attrs["gender"] == 0)
    assert res.attribute == "race*gender" and cell.n == m.sum()
    assert cell.auc == pytest.approx(roc_auc_score(ss.y[m], ss.scores[m]))
    assert res.n_unknown == ((ss.attrs["race"] < 0) | (ss.attrs["gender"] < 0)).sum()
