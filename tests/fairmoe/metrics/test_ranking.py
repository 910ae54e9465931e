"""ES-AUC / ES-ACC: the vectorised formula adds the groups one at a time, like the scalar one;
the bootstrap's weighted AUC equals the AUC of each resample."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fairmoe.metrics import es_acc, es_auc
from fairmoe.metrics.ranking import _auc_sorted, _equity_scaled, _weighted_auc, auc_count_dtype


def python_formula(overall: float, values: list[float]) -> float:
    """FairCLIP's formula over the defined groups, one addition at a time."""
    gap = 0.0
    for v in values:
        if not math.isnan(v):
            gap += abs(overall - v)
    return overall / (1.0 + gap)


@pytest.mark.parametrize("n_groups", [0, 1, 3, 8, 9, 20])
def test_equity_scaled_is_bit_identical_to_the_scalar_formula(n_groups):
    rng = np.random.default_rng(n_groups)
    values = rng.uniform(size=(50, 2, n_groups))
    values[rng.uniform(size=values.shape) < 0.2] = math.nan  # undefined groups are skipped
    overall = rng.uniform(size=(50, 2))
    got = _equity_scaled(overall, values)
    assert got.shape == (50, 2)
    for idx in np.ndindex(overall.shape):
        want = python_formula(float(overall[idx]), values[idx].tolist())
        assert got[idx] == want  # exact for any G (numpy's own sum goes pairwise from 8 on)
        assert es_auc(float(overall[idx]), values[idx].tolist()) == want
        assert (
            es_acc(float(overall[idx]), [None if math.isnan(v) else v for v in values[idx]]) == want
        )


def test_equity_scaled_undefined_overall_is_nan():
    assert math.isnan(es_auc(math.nan, [0.5, 0.7]))
    assert math.isnan(float(_equity_scaled(np.array([math.nan]), np.array([[0.5]]))[0]))


@pytest.mark.parametrize("decimals", [1, 2, 6])  # 1-2: most scores tied with others
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_auc_equals_the_auc_of_each_resample(decimals, dtype) -> None:
    """The bootstrap's counts form (float32 or float64) gives exactly the AUC of the resampled
    cases: ties pooled per block, as roc_auc_score does."""
    rng = np.random.default_rng(decimals)
    n, b = 400, 25
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), decimals)
    order = np.argsort(s, kind="stable")
    ys, ss = y[order], s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    idx = rng.integers(0, n, size=(b, n))
    w = np.stack([np.bincount(i, minlength=n) for i in idx], axis=1)[order].astype(dtype)
    got = _weighted_auc(w, ys.astype(np.float64), starts)
    want = [roc_auc_score(y[i], s[i]) for i in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    exact = [_auc_sorted(ss[np.repeat(np.arange(n), w[:, j].astype(int))],
                         ys[np.repeat(np.arange(n), w[:, j].astype(int))]) for j in range(b)]  # fmt: skip
    assert got.tolist() == exact  # bit-identical to the plain AUC of the resampled cases
    assert auc_count_dtype(5000) is np.float32 and auc_count_dtype(6000) is np.float64
