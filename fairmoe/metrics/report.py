"""The full fairness report: :func:`evaluate` and its markdown rendering.

:func:`evaluate` is the plain implementation; :class:`ScoreTable` builds the same dictionary from
cumulative counts through the same :func:`_report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from fairmoe.metrics._checks import (
    _check_attrs,
    _check_inputs,
)
from fairmoe.metrics.ranking import _equity_scaled, auc
from fairmoe.metrics.rates import (
    _CELLS,
    _RATE_NAMES,
    _counts_by_code,
    _gaps,
    _group_and_total_rates,
    _group_rates,
    _Rates,
)
from fairmoe.metrics.thresholds import Thresholds, _resolve_thresholds, _threshold_json
from fairmoe.schema import OPERATING_POINT, Attribute

__all__ = ["GROUP_SUMMARY", "evaluate", "format_report_table"]

# A group's row as the app's /fairness answer and the audit show it (a subset of evaluate's keys).
GROUP_SUMMARY = (
    "name",
    "n",
    "n_pos",
    "auc",
    "tpr",
    "fpr",
    "selection_rate",
    "accuracy",
    "threshold",
)

_HEADLINES = ("es_auc", "es_acc", "dpd", "tpr_gap", "fpr_gap", "deodds")  # as stacked
_SECTION_KEYS = ("es_auc", "es_acc", "dpd", "deodds", "tpr_gap", "fpr_gap")
_GROUP_KEYS = ("name", "code", "n", "n_pos", "auc", *_RATE_NAMES, "threshold", *_CELLS)


def _nan_to_none(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _json_lists(x: np.ndarray) -> list[Any]:
    """``x.tolist()`` with None for nan, in one pass rather than one call per number."""
    return np.where(np.isnan(x), None, x).tolist()


class _Stacked(NamedTuple):
    """Every attribute's counts and group AUCs, stacked in ``attrs`` order.

    W code columns per attribute: groups 0..G-1, empty columns up to W-1 (left out like any absent
    group), then the unknown code. Stacked, the rate, gap and equity kernels run once per report.
    """

    attrs: Mapping[str, Attribute]
    counts: np.ndarray  # (A, W+1, 4) tn, fp, fn, tp
    group_auc: np.ndarray  # (A, W) nan where undefined
    cols: Mapping[str, np.ndarray]  # per attribute (G+1,) thresholds, unknown last


def _sections(st: _Stacked, overall_auc: float) -> tuple[dict[str, dict[str, Any]], _Rates]:
    """Each attribute's part of the report, and the (A,) rates of all samples at its thresholds."""
    attrs, counts, group_auc, cols = st
    r, total = _group_and_total_rates(counts)  # (A, W) and (A,)
    overall = np.empty((2, len(attrs)))
    overall[0], overall[1] = overall_auc, total["accuracy"]
    es = _equity_scaled(overall, np.array([group_auc, r["accuracy"]]))  # (2, A) ES-AUC, ES-ACC
    gaps = _gaps(r)
    heads = _json_lists(np.concatenate([es.T, gaps.table, gaps.deodds[:, None]], axis=1))
    rates = _json_lists(np.concatenate([group_auc[..., None], r.table], axis=-1))  # (A, W, 7)
    sizes, cells, acc = r.sizes.tolist(), counts.tolist(), overall[1].tolist()
    out = {}
    for i, (k, a) in enumerate(attrs.items()):
        thr = cols[k].tolist()
        groups = [
            dict(
                zip(
                    _GROUP_KEYS,
                    [name, g, *sizes[i][g], *rates[i][g], thr[g], *cells[i][g]],
                    strict=True,
                )
            )
            for g, name in enumerate(a.groups)
        ]
        head = dict(zip(_HEADLINES, heads[i], strict=True))
        out[k] = {key: head[key] for key in _SECTION_KEYS} | {
            "accuracy": acc[i],
            "n_unknown": sum(cells[i][-1]),
            "groups": groups,
        }
    return out, total


def _report(
    n: int,
    n_pos: int,
    overall_auc: float,
    threshold: Thresholds,
    source: str | None,
    st: _Stacked,
    top: Callable[[], np.ndarray],
) -> dict[str, Any]:
    """The report dictionary of :func:`evaluate`.

    The overall thresholded numbers (accuracy, tpr, ...) are those of every sample at the
    thresholds of ``source`` ("": the single threshold, shared by every attribute; None: ambiguous,
    left None): that attribute's all-samples row, or ``top()`` (4,) counts without attributes.
    """
    sections, total = _sections(st, overall_auc) if st.attrs else ({}, None)
    r: dict[str, Any] = {}
    if source is not None:
        if total is not None:
            i = list(st.attrs).index(source) if source else 0
            rates, cells = total.table[i], st.counts[i].sum(axis=0)
        else:
            cells = top()
            rates = _group_rates(cells).table
        r = dict(zip(_RATE_NAMES, _json_lists(rates), strict=True))
        r |= dict(zip(_CELLS, cells.tolist(), strict=True))
    return {
        "n": n,
        "n_pos": n_pos,
        "auc": _nan_to_none(overall_auc),
        "accuracy": r.get("accuracy"),
        "threshold": _threshold_json(threshold),
        **{k: r.get(k) for k in ("tpr", "fpr", "selection_rate", "tn", "fp", "fn", "tp")},
        "attributes": sections,
    }


def evaluate(
    y: Any,
    scores: Any,
    attrs: Mapping[str, Any],
    *,
    threshold: Thresholds = OPERATING_POINT,
    default_threshold: float = OPERATING_POINT,
) -> dict[str, Any]:
    """The full JSON-ready fairness report (FairCLIP's ``evalute_comprehensive_perf`` and more).

    ``threshold`` is one number, or ``{attribute: [one threshold per group code]}``; attributes the
    mapping does not name, and members with an unknown code, use ``default_threshold``. With a
    mapping, the overall thresholded numbers (accuracy, tpr, ...) use the named attribute's
    thresholds, and are None when the mapping names several attributes; each attribute section
    always has its own ``accuracy`` (all samples, that attribute's thresholds), the base of ES-ACC.

    Keys: n, n_pos, auc, accuracy, threshold, tpr, fpr, selection_rate, tn, fp, fn, tp, attributes:
    {name: {es_auc, es_acc, dpd, deodds, tpr_gap, fpr_gap, accuracy, n_unknown, groups: [{name,
    code, n, n_pos, auc, tpr, fpr, ppv, npv, selection_rate, accuracy, threshold, tn, fp, fn, tp}]}}.
    This is the plain implementation; :class:`ScoreTable` gives the same numbers faster.
    """
    y, s = _check_inputs(y, scores)
    checked = _check_attrs(attrs, len(y))
    attributes = {k: a for k, (a, _) in checked.items()}
    cols, source = _resolve_thresholds(threshold, attributes, default_threshold)
    overall_auc = auc(y, s)
    # stacked (see _Stacked): W code columns per attribute, the unknown code last
    width = max((a.n_groups for a in attributes.values()), default=0)
    counts = np.zeros((len(checked), width + 1, 4), np.int64)
    group_auc = np.full((len(checked), width), math.nan)
    for i, (name, (a, codes)) in enumerate(checked.items()):
        pred = s >= cols[name][codes]  # index -1 picks the unknown column
        counts[i] = _counts_by_code(y, pred, codes, width)
        for g in range(a.n_groups):
            if (codes == g).any():
                group_auc[i, g] = auc(y[codes == g], s[codes == g])
    return _report(
        len(y),
        int(y.sum()),
        overall_auc,
        threshold,
        source,
        _Stacked(attributes, counts, group_auc, cols),
        top=lambda: _counts_by_code(y, s >= float(threshold), np.zeros(len(y), np.int64), 1)[0],
    )


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def format_report_table(report: Mapping[str, Any]) -> str:
    """Markdown: a summary line, one row per attribute (equity and gaps), one row per group."""
    thr = report["threshold"]
    lines = [
        f"Overall: n = {report['n']}, positives = {report['n_pos']}, AUC {_fmt(report['auc'])}, "
        f"accuracy {_fmt(report['accuracy'])} at threshold "
        f"{_fmt(thr) if not isinstance(thr, Mapping) else 'per group'}",
        "",
        "| Attribute | ES-AUC | ES-ACC | DPD | DEOdds | Unknown |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, sec in report["attributes"].items():
        lines.append(
            f"| {name} | {_fmt(sec['es_auc'])} | {_fmt(sec['es_acc'])} | {_fmt(sec['dpd'])} "
            f"| {_fmt(sec['deodds'])} | {sec['n_unknown']} |"
        )
    lines += [
        "",
        "| Attribute | Group | n | Positives | AUC | TPR | FPR | Selection rate | Accuracy | Threshold |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, sec in report["attributes"].items():
        for g in sec["groups"]:
            lines.append(
                f"| {name} | {g['name']} | {g['n']} | {g['n_pos']} | {_fmt(g['auc'])} "
                f"| {_fmt(g['tpr'])} | {_fmt(g['fpr'])} | {_fmt(g['selection_rate'])} "
                f"| {_fmt(g['accuracy'])} | {_fmt(g['threshold'])} |"
            )
    return "\n".join(lines)
