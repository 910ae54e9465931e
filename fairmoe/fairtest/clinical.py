"""Per-group figures of one set of decisions or scores: the harm a clinician sees.

Decisions may be soft (a probability of calling the case positive, as a randomised
post-processing rule gives): every rate is then its expected value. With hard 0/1 decisions the
figures are fairlearn's (``MetricFrame`` with recall / false positive rate / selection rate,
``demographic_parity_difference``, ``equalized_odds_difference``), which the tests check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fairmoe.metrics import auc, group_aucs
from fairmoe.metrics.ranking import es_auc
from fairmoe.metrics.reliability import ece

__all__ = ["group_rates", "ranking_figures", "rate_figures", "stamp_reliance"]


def group_rates(y: np.ndarray, decision: np.ndarray, groups: np.ndarray, n_groups: int) -> dict:
    """TPR, FNR, FPR and selection rate per group code (nan where undefined); -1 is left out."""
    y = np.asarray(y).astype(bool)
    d = np.asarray(decision, dtype=np.float64)
    out = {k: np.full(n_groups, np.nan) for k in ("tpr", "fnr", "fpr", "selection")}
    for g in range(n_groups):
        m = groups == g
        if not m.any():
            continue
        pos, neg = m & y, m & ~y
        out["selection"][g] = d[m].mean()
        if pos.any():
            out["tpr"][g] = d[pos].mean()
            out["fnr"][g] = 1.0 - out["tpr"][g]
        if neg.any():
            out["fpr"][g] = d[neg].mean()
    return out


def _spread(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if len(v) else float("nan")


def rate_figures(y: np.ndarray, decision: np.ndarray, groups: np.ndarray, n_groups: int) -> dict:
    """Per-group rates with the gaps: TPR gap, DPD (selection rate) and DEOdds.

    DEOdds counts a group without positives with TPR 0 (fairlearn's convention); the groups here
    are large enough that it never arises, and the per-group TPR shows None if it did.
    """
    r = group_rates(y, decision, groups, n_groups)
    present = [g for g in range(n_groups) if np.isfinite(r["selection"][g])]
    tpr = np.nan_to_num(r["tpr"][present])
    fpr = np.nan_to_num(r["fpr"][present])
    return {
        **{k: _json(v) for k, v in r.items()},
        "tpr_gap": _spread(r["tpr"]),
        "fpr_gap": _spread(r["fpr"]),
        "dpd": _spread(r["selection"]),
        "deodds": float(max(np.ptp(tpr), np.ptp(fpr))) if present else float("nan"),
    }


def ranking_figures(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_groups: int) -> dict:
    """AUC overall and per group, worst-group AUC, ES-AUC and ECE (10 bins) per group."""
    overall = auc(y, p)
    per = group_aucs(y, p, groups, n_groups=n_groups)
    eces = np.array([ece(y[groups == g], p[groups == g]) if (groups == g).any() else np.nan
                     for g in range(n_groups)])  # fmt: skip
    return {
        "auc": overall,
        "group_auc": _json(per),
        "worst_group_auc": float(np.nanmin(per)),
        "es_auc": es_auc(overall, [None if np.isnan(v) else float(v) for v in per]),
        "ece": ece(y, p),
        "group_ece": _json(eces),
    }


def stamp_reliance(auc_with: float, auc_without: float) -> float:
    """The probe's delta AUC: how much a group's AUC falls when the stamp is taken away."""
    return float(auc_with - auc_without)


def _json(v: np.ndarray) -> list[Any]:
    return [None if not np.isfinite(x) else float(x) for x in np.asarray(v, dtype=np.float64)]
