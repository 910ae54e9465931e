"""The typed fairness result against independent computations: fairlearn's MetricFrame with
sklearn metrics, a plain numpy ECE, a pandas groupby for intersectional cells; its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    true_positive_rate,
)
from sklearn.metrics import precision_score, roc_auc_score

from fairmoe.metrics import bootstrap_ci
from fairmoe.metrics.result import FairnessResult
from fairmoe.schema import ATTRIBUTES, attribute, attribute_codes
from fairmoe.scores import ScoreSet


def _scores(n: int = 1500, seed: int = 0) -> ScoreSet:
    rng = np.random.default_rng(seed)
    race = rng.choice(3, n, p=[0.1, 0.2, 0.7])
    gender = rng.integers(0, 2, n)
    eth = rng.choice([-1, 0, 1], n, p=[0.05, 0.85, 0.1])
    lang = rng.choice([-1, 0, 1, 2], n, p=[0.05, 0.8, 0.1, 0.05])
    truth = rng.beta(0.7, 0.7, n)
    y = (rng.random(n) < truth).astype(int)
    p = np.where(race == 1, truth * 0.6, truth)  # calibrated, except for Black patients
    attrs = {"race": race, "gender": gender, "ethnicity": eth, "language": lang}
    return ScoreSet("synthetic", [str(i) for i in range(n)], y, p, attrs)


def _numpy_ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Guo et al.'s ECE written out bin by bin."""
    total = 0.0
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        m = (p >= lo) & ((p < hi) if k < bins - 1 else (p <= hi))
        if m.any():
            total += m.sum() / len(y) * abs(p[m].mean() - y[m].mean())
    return total


@pytest.mark.parametrize("threshold", [0.5, 0.37])
def test_group_rates_match_fairlearn_metricframe(threshold: float) -> None:
    ss = _scores()
    res = ss.fairness("race", threshold, ci="none")
    pred = (ss.scores >= threshold).astype(int)

    def npv(y, yp):
        return precision_score(1 - np.asarray(y), 1 - np.asarray(yp), zero_division=np.nan)

    mf = MetricFrame(
        metrics={
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "ppv": lambda y, yp: precision_score(y, yp, zero_division=np.nan),
            "npv": npv,
        },
        y_true=ss.y,
        y_pred=pred,
        sensitive_features=ss.attrs["race"],
    )
    for g in res.groups:
        for k in ("tpr", "fpr", "fnr", "ppv", "npv"):
            assert getattr(g, k) == pytest.approx(mf.by_group.loc[g.code, k], abs=1e-12), (g, k)
        m = ss.attrs["race"] == g.code
        assert g.auc == pytest.approx(roc_auc_score(ss.y[m], ss.scores[m]))
        assert g.ece == pytest.approx(_numpy_ece(ss.y[m], ss.scores[m]), abs=1e-12)
        assert g.citl == pytest.approx(ss.scores[m].mean() - ss.y[m].mean())
        assert sum(g.reliability.count) == g.n
    assert res.ece == pytest.approx(_numpy_ece(ss.y, ss.scores), abs=1e-12)


def test_intersectional_cells_match_a_pandas_groupby() -> None:
    ss = _scores()
    res = ss.fairness("race*ethnicity", ci="none")
    df = pd.DataFrame({"race": ss.attrs["race"], "eth": ss.attrs["ethnicity"], "y": ss.y})
    df = df[(df.race >= 0) & (df.eth >= 0)]
    expected = df.groupby(["race", "eth"]).agg(n=("y", "size"), n_pos=("y", "sum"))
    names = {
        (r, e): f"{ATTRIBUTES['race'].groups[r]} & {ATTRIBUTES['ethnicity'].groups[e]}"
        for r, e in expected.index
    }
    got = {g.name: (g.n, g.n_pos) for g in res.groups if g.n}
    assert got == {names[k]: (int(v.n), int(v.n_pos)) for k, v in expected.iterrows()}
    assert sum(g.n for g in res.groups) == len(df)  # cells sum to the cases with both known
    assert res.n_unknown == ss.n - len(df)
    # either order names the same cells
    assert attribute("ethnicity*race").name == "race*ethnicity"
    assert ss.fairness("ethnicity*race", ci="none") == res


def test_crossed_codes_unknown_when_either_is() -> None:
    codes = attribute_codes(
        {"race": np.array([0, 2, -1, 1]), "language": [2, -1, 0, 1]}, "race*language"
    )
    assert codes.tolist() == [2, -1, -1, 4]


def test_intervals_cover_the_estimate_and_fnr_mirrors_tpr() -> None:
    ss = _scores()
    res = ss.fairness("race", 0.5, ci="all")
    assert res.threshold_ci
    for g in res.groups:
        for k in ("auc", "tpr", "fpr", "fnr", "ppv", "npv", "ece"):
            iv = getattr(g.ci, k)
            assert (
                iv is not None
                and iv.low <= getattr(g, k) + 0.02
                and getattr(g, k) - 0.02 <= iv.high
            )
        assert g.ci.fnr.low == pytest.approx(1 - g.ci.tpr.high)
    # the ECE interval is the bootstrap of the same ECE: resample 0 replayed by hand
    one = bootstrap_ci(ss.y, ss.scores, {"race": ss.attrs["race"]}, metrics=["ece"], n_boot=1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, ss.n, size=(1, ss.n))[0]
    assert one["ece"]["low"] == pytest.approx(_numpy_ece(ss.y[idx], ss.scores[idx]), abs=1e-9)


def test_json_round_trip_keeps_every_release_2_key() -> None:
    ss = _scores()
    res = ss.fairness("race", {"race": [0.4, 0.5, 0.6]}, ci="all")
    d = json.loads(json.dumps(res.to_json(), allow_nan=False))
    assert FairnessResult.from_json(d) == res
    old = {"model", "attribute", "threshold", "n", "n_pos", "auc", "accuracy", "es_auc", "es_acc"}
    old |= {"dpd", "deodds", "tpr_gap", "fpr_gap", "n_unknown", "groups", "warnings"}
    assert old <= set(d)
    group_old = {
        "name",
        "n",
        "n_pos",
        "auc",
        "tpr",
        "fpr",
        "selection_rate",
        "accuracy",
        "threshold",
    }
    assert all(
        group_old | {"ece", "fnr", "ppv", "npv", "citl", "reliability"} <= set(g)
        for g in d["groups"]
    )


def test_miscalibrated_group_is_warned() -> None:
    ss = _scores()
    res = ss.fairness("race", ci="none")
    codes = {(w.code, w.group) for w in res.warnings}
    assert ("group_ece", "Black") in codes
    assert ("group_ece", "White") not in codes
