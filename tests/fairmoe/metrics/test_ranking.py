"""ES-AUC / ES-ACC: the vectorised formula adds the groups one at a time, like the scalar one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fairmoe.metrics import es_acc, es_auc
from fairmoe.metrics.ranking import _equity_scaled


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
