"""Percentile bootstrap confidence intervals for the report's headline metrics.

Resampling is done with per-case counts, vectorised over resamples: a chunk of b resamples is an
(n, b) count matrix over the score-sorted cases, and every metric is a matrix product with it
followed by the same rate, gap, AUC and equity kernels as :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from fairmoe.metrics._checks import (
    _check_attrs,
    _check_inputs,
)
from fairmoe.metrics.ranking import _equity_scaled, _weighted_auc, auc_count_dtype
from fairmoe.metrics.rates import _gaps, _group_and_total_rates
from fairmoe.metrics.reliability import ECE_BINS, ece_bins
from fairmoe.metrics.thresholds import Thresholds, _resolve_thresholds, _threshold_json
from fairmoe.schema import OPERATING_POINT, Attribute

__all__ = ["BOOT_METRICS", "BootMetric", "bootstrap_ci"]

BootMetric = Literal[
    "auc",
    "accuracy",
    "ece",
    "es_auc",
    "es_acc",
    "dpd",
    "deodds",
    "group_auc",
    "group_tpr",
    "group_fpr",
    "group_fnr",
    "group_ppv",
    "group_npv",
    "group_ece",
]
BOOT_METRICS: tuple[str, ...] = get_args(BootMetric)

_BOOT_CELLS = 1_000_000  # resamples x samples per bootstrap chunk: bounds memory at about 8 MB
_AUC_METRICS = frozenset({"auc", "es_auc", "group_auc"})
_SECTION_METRICS = ("es_auc", "es_acc", "dpd", "deodds")
_GROUP_METRICS = (
    "group_auc",
    "group_tpr",
    "group_fpr",
    "group_fnr",
    "group_ppv",
    "group_npv",
    "group_ece",
)
_RATE_METRICS = ("group_tpr", "group_fpr", "group_fnr", "group_ppv", "group_npv")


@dataclass(frozen=True)
class _BootAttr:
    attr: Attribute
    members: list[np.ndarray]  # sorted positions of each group's members
    starts: list[np.ndarray]  # tie-block starts among each group's members
    ind: np.ndarray  # (n, 4(G+1)) one-hot confusion cell (tn, fp, fn, tp per code) of each case
    bins: np.ndarray  # (n, G*K) one-hot (group, calibration bin) of each case, K = ECE_BINS


@dataclass(frozen=True)
class _Sorted:
    """The cases in ascending score order, with what every resample's metrics need."""

    rank: np.ndarray  # (n,) position of each case in score order
    y: np.ndarray  # (n,) sorted labels
    yf: np.ndarray  # (n,) the same as float64, for the AUCs' weighted sums
    starts: np.ndarray  # tie-block starts of the sorted scores
    top_pred: np.ndarray | None  # (n,) overall predictions; None when the threshold is ambiguous
    attrs: dict[str, _BootAttr]
    gap: np.ndarray  # (n,) score minus label: the calibration error's summand
    bins: np.ndarray  # (n, K) one-hot calibration bin of each case


def _tie_starts(x: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, x[1:] != x[:-1]]) if len(x) else np.zeros(0, np.int64)


def _sort_cases(
    y: np.ndarray,
    s: np.ndarray,
    checked: Mapping[str, tuple[Attribute, np.ndarray]],
    cols: Mapping[str, np.ndarray],
    top_thresholds: Any,
) -> _Sorted:
    """Sort once; per attribute the confusion cell of each case at its thresholds."""
    n = len(y)
    order = np.argsort(s, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    ys, ss = y[order], s[order]
    bin_of = ece_bins(ss)
    per_attr = {}
    for name, (a, codes) in checked.items():
        c = codes[order]
        pred = ss >= cols[name][c]
        col = np.where(c >= 0, c, a.n_groups)
        ind = np.zeros((n, 4 * (a.n_groups + 1)))
        ind[np.arange(n), 4 * col + 2 * ys + pred] = 1.0
        members = [np.flatnonzero(c == g) for g in range(a.n_groups)]
        gb = np.zeros((n, a.n_groups * ECE_BINS))
        known = c >= 0
        gb[np.flatnonzero(known), c[known] * ECE_BINS + bin_of[known]] = 1.0
        per_attr[name] = _BootAttr(a, members, [_tie_starts(ss[m]) for m in members], ind, gb)
    top_pred = None if top_thresholds is None else ss >= top_thresholds[order]
    gap = ss - ys
    bins = np.zeros((n, ECE_BINS))
    bins[np.arange(n), bin_of] = 1.0
    return _Sorted(rank, ys, ys.astype(np.float64), _tie_starts(ss), top_pred, per_attr, gap, bins)


def _resample_indices(
    rng: np.random.Generator, y: np.ndarray, n_boot: int, resample: str
) -> Iterator[np.ndarray]:
    """(b, n) index chunks: plain = n draws with replacement; stratified = within each class."""
    n = len(y)
    chunk = max(1, _BOOT_CELLS // n)
    classes = [np.flatnonzero(y), np.flatnonzero(~y)]
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        if resample == "plain":
            yield rng.integers(0, n, size=(b, n))
        else:
            yield np.concatenate(
                [c[rng.integers(0, len(c), size=(b, len(c)))] for c in classes if len(c)], axis=1
            )


def _weighted_ece(onehot: np.ndarray, gap: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """(b, C) ECE of C case sets for (n, b) counts: ``onehot`` (n, C*k) set-and-bin of each case."""
    per_bin = (onehot * gap[:, None]).T @ w  # (C*k, b) summed score minus label per bin
    size = onehot.T @ w  # (C*k, b) cases per bin
    b = w.shape[1]
    err = np.abs(per_bin).reshape(-1, k, b).sum(axis=1)  # (C, b)
    total = size.reshape(-1, k, b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (err / np.where(total > 0, total, np.nan)).T


def _attr_values(
    d: _BootAttr,
    w: np.ndarray,
    cases: _Sorted,
    overall: np.ndarray | None,
    wanted: set[str],
) -> dict[str, np.ndarray]:
    """One attribute's metrics for (n, b) case counts ``w``: (b,) each, (b, G) per group."""
    b, n_groups, yf = w.shape[1], d.attr.n_groups, cases.yf
    out = {}
    if "group_ece" in wanted:
        out["group_ece"] = _weighted_ece(d.bins, cases.gap, w, ECE_BINS)
    if overall is not None and wanted & {"es_auc", "group_auc"}:
        aucs = np.stack(
            [_weighted_auc(w[m], yf[m], st) for m, st in zip(d.members, d.starts, strict=True)],
            axis=1,
        )  # (b, G)
        out["es_auc"], out["group_auc"] = _equity_scaled(overall, aucs), aucs
    if not wanted - _AUC_METRICS - {"group_ece", "ece"}:  # threshold-free: no confusion counts
        return {k: v for k, v in out.items() if k in wanted}
    cnt = (d.ind.T @ w).T.reshape(b, n_groups + 1, 4).astype(np.float64)  # tn fp fn tp
    r, total = _group_and_total_rates(cnt)  # (b, G) and (b,)
    if "es_acc" in wanted:
        out["es_acc"] = _equity_scaled(total["accuracy"], r["accuracy"])
    gaps = _gaps(r)
    out |= {"dpd": gaps.dpd, "deodds": gaps.deodds}
    out |= {f"group_{k}": r[k] for k in ("tpr", "fpr", "ppv", "npv")} | {"group_fnr": 1 - r["tpr"]}
    return {k: v for k, v in out.items() if k in wanted}


def _resample_values(d: _Sorted, idx: np.ndarray, wanted: set[str]) -> dict[str, np.ndarray]:
    """Each wanted metric of the resamples in a (b, n) index chunk; keys "auc", "race.dpd", ..."""
    b, n = idx.shape[0], len(d.y)
    w = np.bincount((d.rank[idx] * b + np.arange(b)[:, None]).ravel(), minlength=n * b)
    # (n, b) count of each sorted case per resample; float32 where that stays exact
    w = w.reshape(n, b).astype(auc_count_dtype(n))
    overall = _weighted_auc(w, d.yf, d.starts) if wanted & _AUC_METRICS else None
    out = {}
    if "auc" in wanted:
        out["auc"] = overall
    if "accuracy" in wanted and d.top_pred is not None:
        out["accuracy"] = ((d.top_pred == d.y) @ w).astype(np.float64) / n
    if "ece" in wanted:
        out["ece"] = _weighted_ece(d.bins, d.gap, w, ECE_BINS)[:, 0]
    for name, a in d.attrs.items():
        out |= {f"{name}.{k}": v for k, v in _attr_values(a, w, d, overall, wanted).items()}
    return out


def _ci(v: np.ndarray, alpha: float) -> dict[str, Any] | None:
    ok = v[~np.isnan(v)]
    if not len(ok):
        return None
    lo, hi = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    return {"low": float(lo), "high": float(hi), "n_defined": len(ok)}


def _intervals(
    vals: Mapping[str, np.ndarray], wanted: set[str], attrs: Mapping[str, Attribute], alpha: float
) -> dict[str, Any]:
    """The output's metric entries: overall intervals, then per attribute and per group."""
    out: dict[str, Any] = {}
    for key in ("auc", "accuracy", "ece"):
        if key in wanted:
            out[key] = _ci(vals[key], alpha) if key in vals else None
    out["attributes"] = {}
    for name, a in attrs.items():
        sec: dict[str, Any] = {
            k: _ci(vals[f"{name}.{k}"], alpha) for k in _SECTION_METRICS if k in wanted
        }
        group_keys = [k for k in _GROUP_METRICS if k in wanted]
        if group_keys:
            sec["groups"] = [
                {"name": gname, "code": g}
                | {k[6:]: _ci(vals[f"{name}.{k}"][:, g], alpha) for k in group_keys}
                for g, gname in enumerate(a.groups)
            ]
        out["attributes"][name] = sec
    return out


def _check_boot_args(
    metrics: Iterable[str] | None, n_boot: int, alpha: float, resample: str
) -> set[str]:
    """Validate the bootstrap's own arguments; return the wanted metrics."""
    wanted = set(BOOT_METRICS if metrics is None else metrics)
    if wanted - set(BOOT_METRICS):
        raise ValueError(
            f"unknown metrics {sorted(wanted - set(BOOT_METRICS))}; choose from {BOOT_METRICS}"
        )
    if resample not in ("plain", "stratified"):
        raise ValueError(f"resample must be 'plain' or 'stratified', got {resample!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return wanted


def bootstrap_ci(
    y: Any,
    scores: Any,
    attrs: Mapping[str, Any],
    *,
    threshold: Thresholds = OPERATING_POINT,
    default_threshold: float = OPERATING_POINT,
    metrics: Iterable[BootMetric] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    resample: Literal["plain", "stratified"] = "plain",
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals for the report's headline metrics.

    Each resample is evaluated exactly as :func:`evaluate` would evaluate the resampled cases
    (resampling is done with per-case counts, vectorised over resamples). ``plain`` draws n cases
    with replacement, as fairlearn's MetricFrame does; ``stratified`` keeps the number of positives
    fixed, so the overall AUC is always defined. An interval ``{low, high, n_defined}`` is taken
    over the resamples where the metric is defined (``n_defined`` of ``n_boot``: a small group may
    miss a class in some), and is None if it never is. ``metrics`` picks from :data:`BOOT_METRICS`
    (default: all); ``group_*`` give per-group intervals.
    """
    wanted = _check_boot_args(metrics, n_boot, alpha, resample)
    y, s = _check_inputs(y, scores)
    checked = _check_attrs(attrs, len(y))
    attributes = {k: a for k, (a, _) in checked.items()}
    cols, source = _resolve_thresholds(threshold, attributes, default_threshold)
    if source == "":
        top_thresholds = np.full(len(y), float(threshold))
    elif source is not None:
        top_thresholds = cols[source][checked[source][1]]
    else:
        top_thresholds = None
    cases = _sort_cases(y, s, checked, cols, top_thresholds)
    parts: dict[str, list[np.ndarray]] = {}
    for idx in _resample_indices(np.random.default_rng(seed), y, n_boot, resample):
        for key, v in _resample_values(cases, idx, wanted).items():
            parts.setdefault(key, []).append(v)
    vals = {k: np.concatenate(v) for k, v in parts.items()}
    out = {"n_boot": n_boot, "alpha": alpha, "resample": resample, "seed": seed}
    out["threshold"] = _threshold_json(threshold)
    return out | _intervals(vals, wanted, attributes, alpha)
