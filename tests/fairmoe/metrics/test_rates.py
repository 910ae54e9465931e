"""The rates/gaps kernel against sklearn and fairlearn, batch by batch and row by row."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

from fairmoe.metrics import deodds, dpd
from fairmoe.metrics.rates import _counts_by_code, _gaps, _group_rates

G = 4  # code 3 is never drawn: an absent group, which fairlearn never sees


def batch(seed: int, b: int = 40, n: int = 60):
    """b small data sets with a group lacking positives and one lacking negatives in each."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(b):
        codes = rng.choice([-1, 0, 1, 2], n, p=[0.1, 0.5, 0.25, 0.15])
        y = rng.integers(0, 2, n)
        y[codes == 1] = 0  # no positives: TPR 0/0
        y[codes == 2] = 1  # no negatives: FPR 0/0
        pred = rng.uniform(size=n) < rng.uniform(0.2, 0.8)
        data.append((y, pred, codes))
    counts = np.stack([_counts_by_code(y, p, c, G)[:G] for y, p, c in data])  # (b, G, 4)
    return data, counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaps_match_fairlearn_row_by_row(seed):
    data, counts = batch(seed)
    gaps = _gaps(_group_rates(counts))
    assert gaps.table.shape == (len(data), 3)
    for (y, pred, codes), dp, eo in zip(data, gaps.dpd, gaps.deodds, strict=True):
        m = codes >= 0
        kw = {"sensitive_features": codes[m]}
        assert dp == pytest.approx(demographic_parity_difference(y[m], pred[m], **kw), abs=1e-12)
        assert eo == pytest.approx(equalized_odds_difference(y[m], pred[m], **kw), abs=1e-12)


def test_gaps_do_not_depend_on_batching_or_count_dtype():
    _, counts = batch(3)
    whole = _gaps(_group_rates(counts)).table
    rows = np.stack([_gaps(_group_rates(c)).table for c in counts])
    as_float = _gaps(_group_rates(counts.astype(np.float64))).table  # the bootstrap's counts
    nested = _gaps(_group_rates(counts.reshape(4, 10, G, 4))).table.reshape(-1, 3)
    for other in (rows, as_float, nested):
        assert np.array_equal(whole, other)


def test_gaps_without_present_groups_are_nan():
    counts = np.zeros((2, 3, 4), np.int64)
    counts[1, 0] = [1, 0, 0, 1]  # one group only: every gap is 0
    gaps = _gaps(_group_rates(counts))
    assert np.isnan(gaps.table[0]).all() and math.isnan(gaps.deodds[0])
    assert (gaps.table[1] == 0).all()
    assert np.isnan(_gaps(_group_rates(np.zeros((5, 0, 4)))).table).all()  # no groups at all


@pytest.mark.parametrize("seed", [0, 1])
def test_group_rates_match_sklearn(seed):
    data, counts = batch(seed, b=5)
    r = _group_rates(counts)
    for i, (y, pred, codes) in enumerate(data):
        for g in range(G):
            m = codes == g
            assert r.n[i, g] == m.sum() and r.n_pos[i, g] == y[m].sum()
            if not m.any():
                assert np.isnan(r.table[i, g]).all()
                continue
            tn, fp, fn, tp = confusion_matrix(y[m], pred[m], labels=[0, 1]).ravel()
            assert r["accuracy"][i, g] == pytest.approx(accuracy_score(y[m], pred[m]), abs=1e-15)
            assert r["selection_rate"][i, g] == pytest.approx(pred[m].mean(), abs=1e-15)
            want = {
                "tpr": recall_score(y[m], pred[m], zero_division=np.nan),
                "fpr": fp / (fp + tn) if fp + tn else math.nan,
                "ppv": precision_score(y[m], pred[m], zero_division=np.nan),
                "npv": tn / (tn + fn) if tn + fn else math.nan,
            }
            for key, v in want.items():
                assert r[key][i, g] == pytest.approx(v, abs=1e-15, nan_ok=True), (key, g)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_public_dpd_deodds_with_group_thresholds_match_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 300
    codes = rng.choice([-1, 0, 1, 2], n, p=[0.05, 0.6, 0.3, 0.05])
    y = rng.integers(0, 2, n)
    y[codes == 2] = 0  # a group without positives
    s = rng.uniform(size=n)
    thr = rng.uniform(0.3, 0.7, 3)
    m = codes >= 0
    pred = s[m] >= thr[codes[m]]
    kw = {"sensitive_features": codes[m]}
    want_dp = demographic_parity_difference(y[m], pred, **kw)
    want_eo = equalized_odds_difference(y[m], pred, **kw)
    assert dpd(y, s, codes, threshold=thr) == pytest.approx(want_dp, abs=1e-12)
    assert deodds(y, s, codes, threshold=thr) == pytest.approx(want_eo, abs=1e-12)
