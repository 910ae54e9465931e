"""Summaries across runs: headline metrics of a run and their mean +- std over seeds.

The app's side-by-side view, its trade-off plot and the report builder all pool seeds this way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fairmoe.metrics.fairness import fairness_result
from fairmoe.metrics.result import FairnessResult
from fairmoe.schema import OPERATING_POINT
from fairmoe.scores import ScoreSet

__all__ = [
    "HEADLINE_METRICS",
    "headline_metrics",
    "mean_std",
    "paired_difference",
]

HEADLINE_METRICS = ("AUC", "ES-AUC", "DPD", "DEOdds")


def mean_std(values: Iterable[float | None]) -> dict[str, Any]:
    """{mean, std (sample, ddof=1; None for one value), k} over the defined values."""
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return {"mean": None, "std": None, "k": 0}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
        "k": len(v),
    }


def headline_metrics(
    ss: ScoreSet, attr: str, threshold: float = OPERATING_POINT
) -> dict[str, float | None]:
    """AUC, and ES-AUC, DPD, DEOdds for ``attr`` (or two crossed), at ``threshold``."""
    return _headline(ss.fairness(attr, threshold, ci="none"))


def _headline(res: FairnessResult) -> dict[str, float | None]:
    return {"AUC": res.auc, "ES-AUC": res.es_auc, "DPD": res.dpd, "DEOdds": res.deodds}


def paired_difference(
    a: Sequence[ScoreSet],
    b: Sequence[ScoreSet] | None,
    attr: str,
    metric: str,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean over seed pairs of ``metric(a_i) - metric(b_i)`` with a percentile bootstrap interval.

    ``a`` and ``b`` are runs paired by seed on the same test cases (ids checked); each resample
    draws the test cases once and evaluates every run on them, so the interval reflects both the
    test-set sampling and the seed-to-seed spread of the difference. ``metric`` is one of
    :data:`HEADLINE_METRICS`. With ``b=None`` it is the seed mean of ``a`` itself, with its
    interval.
    """
    if b is None:
        b = [None] * len(a)
    if len(a) != len(b) or not a:
        raise ValueError(f"need runs paired by seed, got {len(a)} and {len(b)}")
    for x, y in zip(a, b, strict=True):
        if y is not None and x.ids != y.ids:
            raise ValueError(f"{x.name} and {y.name} were scored on different cases")
    diffs = [_value(x, y, attr, metric, None) for x, y in zip(a, b, strict=True)]
    rng = np.random.default_rng(seed)
    n = a[0].n
    boot = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        vals = [_value(x, y, attr, metric, idx) for x, y in zip(a, b, strict=True)]
        vals = [v for v in vals if v is not None]
        if vals:
            boot.append(float(np.mean(vals)))
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2]) if boot else (None, None)
    return {
        "mean": float(np.mean(diffs)),
        "per_seed": [float(d) for d in diffs],
        "ci": [float(lo), float(hi)] if boot else None,
        "n_boot": len(boot),
    }


def _value(
    x: ScoreSet, y: ScoreSet | None, attr: str, metric: str, idx: np.ndarray | None
) -> float | None:
    """metric(x) - metric(y) (or metric(x) alone) on all cases, or on resampled ``idx``."""
    vals = []
    for ss in (x, y):
        if ss is None:
            vals.append(0.0)
        elif idx is None:
            vals.append(headline_metrics(ss, attr)[metric])
        else:
            codes = {a: c[idx] for a, c in ss.attrs.items()}
            vals.append(_headline(fairness_result(ss.y[idx], ss.scores[idx], codes, attr))[metric])
    return None if None in vals else vals[0] - vals[1]
