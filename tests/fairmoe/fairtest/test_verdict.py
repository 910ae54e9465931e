"""The paired bootstrap and the pre-registered verdict rules."""

from __future__ import annotations

import numpy as np
import pytest

from fairmoe.fairtest.paired import paired_difference
from fairmoe.fairtest.verdict import verdict


def _mean_of(x):
    return lambda idx: float(x[idx].mean())


def test_identical_models_differ_by_exactly_zero() -> None:
    x = np.random.default_rng(0).random(500)
    c = paired_difference([_mean_of(x)] * 3, [_mean_of(x)] * 3, 500, n_boot=200)
    assert c["diff"] == 0 and c["ci"] == [0.0, 0.0]


def test_pairing_narrows_the_interval_of_a_small_shared_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 2000)
    c = paired_difference([_mean_of(x)], [_mean_of(x + 0.02 + rng.normal(0, 0.01, 2000))], 2000)
    assert c["ci"][0] > 0 and c["diff"] == pytest.approx(0.02, abs=0.002)
    assert c["ci"][1] - c["ci"][0] < 0.01  # unpaired, the interval would be about 0.18 wide
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_difference([_mean_of(x)], [], 2000)


def _comp(diff, lo, hi, share, auc_diff=0.0):
    return {
        "auc_diff": auc_diff,
        "worst_group_auc": {"diff": diff, "ci": [lo, hi], "share": share},
        "tpr_gap": None,
        "stamp_reliance": None,
    }


def test_positive_needs_the_share_the_ci_the_auc_and_a_failing_ablation() -> None:
    good, none = _comp(0.03, 0.01, 0.05, 0.6), _comp(0.0, -0.02, 0.02, 0.0)
    assert verdict(good, none, True)["verdict"] == "positive"
    assert verdict(good, good, True)["verdict"] == "inconclusive"  # the ablation does it too
    assert verdict(_comp(0.03, -0.001, 0.05, 0.6), none, True)["verdict"] == "inconclusive"
    assert verdict(_comp(0.03, 0.01, 0.05, 0.4), none, True)["verdict"] == "inconclusive"
    assert verdict(_comp(0.03, 0.01, 0.05, 0.6, -0.02), none, True)["verdict"] == "inconclusive"


def test_negative_needs_a_tight_interval_and_a_holding_control() -> None:
    tight, none = _comp(0.001, -0.008, 0.009, 0.05), _comp(0.0, -0.02, 0.02, 0.0)
    assert verdict(tight, none, True)["verdict"] == "negative"
    assert verdict(tight, none, False)["verdict"] == "inconclusive"
    assert verdict(_comp(0.001, -0.012, 0.009, 0.05), none, True)["verdict"] == "inconclusive"
