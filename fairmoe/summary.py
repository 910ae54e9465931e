"""Summaries across runs: headline metrics of a run and their mean +- std over seeds.

The app's side-by-side view, its trade-off plot and the report builder all pool seeds this way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from fairmoe.schema import OPERATING_POINT
from fairmoe.scores import ScoreSet

__all__ = ["HEADLINE_METRICS", "headline_metrics", "mean_std"]

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
    """AUC, and ES-AUC, DPD, DEOdds for ``attr``, at ``threshold``."""
    rep = ss.report(threshold)
    sec = rep["attributes"][attr]
    return {"AUC": rep["auc"], "ES-AUC": sec["es_auc"], "DPD": sec["dpd"], "DEOdds": sec["deodds"]}
