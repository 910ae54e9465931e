"""Ranking metrics: AUC, per-group AUC, and the equity-scaled ES-AUC / ES-ACC of FairCLIP.

Every AUC here is the Mann-Whitney U statistic with ties counted half, computed in exact integer
(or whole-number float) arithmetic up to one correctly rounded division, so :func:`evaluate`,
:class:`ScoreTable` and :func:`bootstrap_ci` agree bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from fairmoe.metrics._checks import _check_codes, _check_inputs

__all__ = ["auc", "es_acc", "es_auc", "group_aucs"]


def _auc_sorted(s: np.ndarray, y: np.ndarray) -> float:
    """AUC of ascending scores: Mann-Whitney U with ties counted half, as sklearn's trapezoid.

    Exact integer arithmetic up to one correctly rounded division, so every code path that calls it
    (evaluate, ScoreTable, bootstrap) gets bit-identical numbers.
    """
    n, n_pos = len(y), int(np.count_nonzero(y))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(y.astype(np.int64), starts)
    neg = np.diff(np.r_[starts, n]) - pos
    neg_below = np.cumsum(neg) - neg
    return int(np.dot(pos, 2 * neg_below + neg)) / (2 * n_pos * n_neg)


def _weighted_auc(w: np.ndarray, y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(b,) AUCs of ascending scores with (m, b) sample counts; same arithmetic as _auc_sorted.

    Each positive case i adds 2 * (negatives strictly below its tie block) + (negatives tied
    with it), i.e. c[end] + c[start - 1] with c the running count of negatives and [start, end]
    its tie block (2 * c[i] - neg[i] when it is tied with no one). Counts are whole numbers, so
    every sum is exact and the result is bit-identical to _auc_sorted on the resampled cases.
    ``w`` may be float32 (half the memory traffic) when its caller knows every partial sum stays
    below 2**24 (:func:`auc_count_dtype`); the final sums and the division are float64.
    """
    m = len(w)
    if m == 0:
        return np.full(w.shape[1], math.nan)
    yw = y.astype(w.dtype, copy=False)
    neg = w * (1 - yw)[:, None]
    c = np.cumsum(neg, axis=0)
    term = c * 2
    term -= neg
    if len(starts) < m:  # tie blocks: every member gets the block's count
        sizes = np.diff(np.r_[starts, m])
        first = np.repeat(starts, sizes)
        tied = np.flatnonzero(np.repeat(sizes > 1, sizes))
        last = (first + np.repeat(sizes, sizes) - 1)[tied]
        below = np.where((first[tied] > 0)[:, None], c[np.maximum(first[tied] - 1, 0)], 0)
        term[tied] = c[last] + below
    num = np.einsum("i,ij,ij->j", yw, w, term, dtype=np.float64)
    den = 2 * np.einsum("i,ij->j", yw, w, dtype=np.float64) * neg.sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), math.nan)


def auc_count_dtype(n: int) -> type:
    """float32 when counts of ``n`` resampled cases keep every AUC partial sum exact in it (the
    largest, 2 * n_pos * n_neg <= n**2 / 2, below 2**24), else float64."""
    return np.float32 if n * n // 2 < 2**24 else np.float64


def auc(y: Any, scores: Any) -> float:
    """ROC AUC as ``sklearn.metrics.roc_auc_score``; nan (never an error) when one class is absent."""
    y, s = _check_inputs(y, scores)
    order = np.argsort(s, kind="stable")
    return _auc_sorted(s[order], y[order])


def group_aucs(y: Any, scores: Any, groups: Any, *, n_groups: int | None = None) -> np.ndarray:
    """AUC of each group code 0..n_groups-1 (default: max code + 1); nan where undefined."""
    y, s = _check_inputs(y, scores)
    g = np.asarray(groups)
    n_groups = int(g.max()) + 1 if n_groups is None else n_groups
    g = _check_codes("groups", g, len(y), max(n_groups, 0))
    out = np.full(n_groups, math.nan)
    for k in range(n_groups):
        m = g == k
        if m.any():
            out[k] = auc(y[m], s[m])
    return out


def _equity_scaled(overall: Any, group_values: Any) -> np.ndarray:
    """overall / (1 + sum_g |overall - value_g|) over the groups whose value is defined (not nan).

    ``overall`` (...,) and ``group_values`` (..., G): vectorised over leading axes for the report's
    attributes and the bootstrap's resamples. The sum runs over the groups in order, one addition
    at a time as Python's ``sum`` does, so every caller gets bit-identical numbers whatever G is.
    """
    overall = np.asarray(overall, dtype=np.float64)
    v = np.asarray(group_values, dtype=np.float64)
    dev = np.where(np.isnan(v), 0.0, np.abs(overall[..., None] - v))
    gap = np.add.accumulate(dev, axis=-1)[..., -1] if v.shape[-1] else np.zeros(overall.shape)
    return overall / (1.0 + gap)


def _scalar_equity_scaled(overall: float | None, group_values: Iterable[float | None]) -> float:
    vals = [math.nan if v is None else v for v in group_values]
    return float(_equity_scaled(math.nan if overall is None else overall, vals))


def es_auc(overall: float, group_values: Iterable[float | None]) -> float:
    """Equity-scaled AUC: AUC / (1 + sum_g |AUC - AUC_g|) over groups with a defined AUC."""
    return _scalar_equity_scaled(overall, group_values)


def es_acc(overall: float, group_values: Iterable[float | None]) -> float:
    """Equity-scaled accuracy: ACC / (1 + sum_g |ACC - ACC_g|) over non-empty groups."""
    return _scalar_equity_scaled(overall, group_values)
