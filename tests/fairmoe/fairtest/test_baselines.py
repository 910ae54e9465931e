"""Post-processing baselines fit on validation: do they equalise what they promise?"""

from __future__ import annotations

import numpy as np
import pytest

from fairmoe.fairtest.baselines import BASELINES, fit_baseline
from fairmoe.fairtest.clinical import rate_figures


def _scores(seed: int, n: int = 4000):
    """One group's scores are shifted down: ranking intact, TPR and FPR lower at one threshold."""
    rng = np.random.default_rng(seed)
    g = rng.choice(3, n, p=[0.1, 0.2, 0.7])
    y = (rng.random(n) < 0.55).astype(int)
    s = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 1.2, n) - 1.2 * (g == 1))))
    return y, s, g


def test_per_group_thresholds_reach_the_target_in_every_group() -> None:
    y, s, g = _scores(0)
    d = fit_baseline("per_group_thresholds", (y, s, g))(s, g)
    tpr = rate_figures(y, d, g, 3)["tpr"]
    assert min(tpr) >= 0.85 and max(tpr) < 0.87  # each group's own k-th highest positive


@pytest.mark.parametrize("name", ["threshold_optimizer_eo", "threshold_optimizer_tpr"])
def test_threshold_optimizer_narrows_the_gap_out_of_sample(name: str) -> None:
    val, test = _scores(1), _scores(2)
    decide = fit_baseline(name, val)
    y, s, g = test
    before = rate_figures(y, (s >= 0.5).astype(float), g, 3)
    after = rate_figures(y, decide(s, g), g, 3)
    assert before["tpr_gap"] > 0.1
    assert after["tpr_gap"] < before["tpr_gap"] / 2
    if name.endswith("eo"):
        assert after["deodds"] < before["deodds"] / 2


def test_every_baseline_gives_decisions_in_0_1() -> None:
    y, s, g = _scores(3, 600)
    for name in BASELINES:
        d = fit_baseline(name, (y, s, g))(s, g)
        assert d.shape == y.shape and d.min() >= 0 and d.max() <= 1
