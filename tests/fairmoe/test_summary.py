"""Summaries across runs: mean +- std over seeds and paired differences with bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest

from fairmoe.metrics import evaluate
from fairmoe.schema import ATTRIBUTE_NAMES, attribute_codes
from fairmoe.scores import ScoreSet
from fairmoe.summary import headline_metrics, mean_std, paired_difference


def _run(name: str, noise: float, seed: int) -> ScoreSet:
    """A run on the same 300 test cases (fixed labels and groups); ``noise`` blurs its scores."""
    fixed = np.random.default_rng(99)
    n = 300
    y = fixed.integers(0, 2, n)
    attrs = {a: fixed.integers(0, 2, n) for a in ATTRIBUTE_NAMES}
    s = np.clip(0.5 + (y - 0.5) * 0.3 + np.random.default_rng(seed).normal(0, noise, n), 0, 1)
    return ScoreSet(name, [str(i) for i in range(n)], y, s, attrs)


def test_mean_std_skips_undefined_values() -> None:
    assert mean_std([0.5, None, float("nan"), 0.7]) == pytest.approx(
        {"mean": 0.6, "std": np.std([0.5, 0.7], ddof=1), "k": 2}
    )
    assert mean_std([None]) == {"mean": None, "std": None, "k": 0}


def test_paired_difference_is_the_mean_seed_difference_with_an_interval() -> None:
    # same labels in every run (the same test cases); a is less noisy than b
    a = [_run("a", 0.10, s) for s in range(3)]
    b = [_run("b", 0.30, s + 10) for s in range(3)]
    d = paired_difference(a, b, "race", "AUC", n_boot=200)
    expected = np.mean([headline_metrics(x, "race")["AUC"] - headline_metrics(y, "race")["AUC"]
                        for x, y in zip(a, b, strict=True)])  # fmt: skip
    assert d["mean"] == pytest.approx(expected) and d["mean"] > 0
    lo, hi = d["ci"]
    assert lo < d["mean"] < hi and lo > 0  # clearly better: the interval excludes 0
    with pytest.raises(ValueError, match="paired"):
        paired_difference(a, b[:2], "race", "AUC")


@pytest.mark.parametrize("attr", ["race", "race*gender"])
def test_headline_metrics_are_the_engines_numbers(attr: str) -> None:
    ss = _run("a", 0.2, 0)
    codes = attribute_codes(ss.attrs, attr)
    rep = evaluate(ss.y, ss.scores, {attr: codes}, threshold=0.4)  # the oracle: the plain engine
    sec = rep["attributes"][attr]
    got = headline_metrics(ss, attr, 0.4)
    assert got == {"AUC": rep["auc"], "ES-AUC": sec["es_auc"], "DPD": sec["dpd"],
                   "DEOdds": sec["deodds"]}  # fmt: skip
    d = paired_difference([ss], None, attr, "ES-AUC", n_boot=20)  # resamples crossed cells too
    assert d["n_boot"] == 20 and d["mean"] == headline_metrics(ss, attr)["ES-AUC"]
