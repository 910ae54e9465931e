"""Clinical group figures against fairlearn's own implementation (an external oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import roc_auc_score

from fairmoe.fairtest.clinical import group_rates, ranking_figures, rate_figures


def _cohort(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    g = rng.choice(3, n, p=[0.1, 0.2, 0.7])
    y = (rng.random(n) < np.array([0.5, 0.63, 0.47])[g]).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1.3, n) - 0.4 * (g == 1))))
    return y, p, g


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_hard_decisions_match_fairlearn(seed: int, threshold: float) -> None:
    y, p, g = _cohort(seed)
    d = (p >= threshold).astype(int)
    mf = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "sel": selection_rate},
        y_true=y,
        y_pred=d,
        sensitive_features=g,
    )
    r = rate_figures(y, d.astype(float), g, 3)
    np.testing.assert_allclose(r["tpr"], mf.by_group["tpr"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(r["fpr"], mf.by_group["fpr"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(r["selection"], mf.by_group["sel"].to_numpy(), atol=1e-12)
    assert r["dpd"] == pytest.approx(demographic_parity_difference(y, d, sensitive_features=g))
    assert r["deodds"] == pytest.approx(equalized_odds_difference(y, d, sensitive_features=g))
    assert r["tpr_gap"] == pytest.approx(np.ptp(mf.by_group["tpr"].to_numpy()))


def test_soft_decisions_are_expected_rates() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    g = np.array([0, 0, 0, 1, 1, 1])
    r = group_rates(y, np.array([1.0, 0.5, 0.25, 0.0, 0.2, 1.0]), g, 3)
    assert r["tpr"][0] == pytest.approx(0.75) and r["fnr"][0] == pytest.approx(0.25)
    assert r["fpr"][1] == pytest.approx(0.5) and r["tpr"][1] == pytest.approx(0.2)
    assert np.isnan(r["tpr"][2]) and np.isnan(r["selection"][2])  # an empty group is undefined


def test_ranking_figures_match_sklearn() -> None:
    y, p, g = _cohort(3)
    f = ranking_figures(y, p, g, 3)
    per = [roc_auc_score(y[g == k], p[g == k]) for k in range(3)]
    assert f["auc"] == pytest.approx(roc_auc_score(y, p))
    np.testing.assert_allclose(f["group_auc"], per)
    assert f["worst_group_auc"] == pytest.approx(min(per))
    # ES-AUC (FairCLIP): overall / (1 + sum |overall - group|)
    assert f["es_auc"] == pytest.approx(f["auc"] / (1 + sum(abs(f["auc"] - a) for a in per)))
    # ECE per group: a model whose scores are its own probabilities is calibrated
    rng = np.random.default_rng(0)
    q = rng.random(20_000)
    yy = (rng.random(20_000) < q).astype(int)
    gg = rng.integers(0, 3, 20_000)
    assert max(ranking_figures(yy, q, gg, 3)["group_ece"]) < 0.03
    assert max(ranking_figures(yy, q**3, gg, 3)["group_ece"]) > 0.1
