"""Plain data and markdown for each view, from fairmoe.metrics reports (no metric maths here).

Functions take a :class:`~fairmoe.scores.ScoreSet` (or several runs) and UI choices, and return
JSON-ready dicts, markdown strings and figures from :mod:`app.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go

from app import plots
from app.text import help_span
from app.views_runs import (
    COMPARE_METRICS,
    TRADEOFF_METRICS,
    comparison,
    menu_labels,
    tradeoff_points,
)
from app.warnings_md import ES_AUC_RULE, group_flag, warnings_markdown
from fairmoe.guardrails import report_warnings
from fairmoe.metrics import GROUP_SUMMARY, Thresholds
from fairmoe.schema import ATTRIBUTE_NAMES, attribute
from fairmoe.scores import ScoreSet

__all__ = [
    "COMPARE_METRICS",
    "TRADEOFF_METRICS",
    "FairnessView",
    "comparison",
    "fairness_json",
    "fairness_view",
    "fmt",
    "load_view",
    "menu_labels",
    "resolve_thresholds",
    "subgroup_context",
    "tradeoff_points",
]

ThresholdMode = Literal["single", "per group"]


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _ci_text(ci: Mapping[str, Any] | None) -> str:
    return f" [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else ""


def resolve_thresholds(
    attr: str, mode: ThresholdMode, single: float, per_group: Sequence[float]
) -> Thresholds:
    """The fairmoe.metrics threshold argument for the slider state."""
    if mode == "single":
        return float(single)
    g = attribute(attr).n_groups
    if len(per_group) < g:
        raise ValueError(f"{attr} needs {g} group thresholds, got {len(per_group)}")
    return {attr: [float(t) for t in per_group[:g]]}


def fairness_json(ss: ScoreSet, attr: str, threshold: Thresholds) -> dict[str, Any]:
    """The /fairness endpoint's answer: headline metrics, per-group rates and the guardrail
    warnings (fairmoe.guardrails.report_warnings, small groups quoting their AUC interval)."""
    rep = ss.report(threshold)
    sec = rep["attributes"][attr]
    return {
        "model": ss.name,
        "attribute": attr,
        "threshold": rep["threshold"],
        "n": rep["n"],
        "n_pos": rep["n_pos"],
        "auc": rep["auc"],
        "accuracy": sec["accuracy"],
        "es_auc": sec["es_auc"],
        "es_acc": sec["es_acc"],
        "dpd": sec["dpd"],
        "deodds": sec["deodds"],
        "tpr_gap": sec["tpr_gap"],
        "fpr_gap": sec["fpr_gap"],
        "n_unknown": sec["n_unknown"],
        "groups": [{k: g[k] for k in GROUP_SUMMARY} for g in sec["groups"]],
        "warnings": report_warnings(rep, attr, auc_ci=ss.auc_ci(attr)),
    }


@dataclass(frozen=True)
class FairnessView:
    """Everything the fairness panel shows for one (score set, attribute, thresholds)."""

    summary_md: str
    groups_md: str
    roc: go.Figure
    confusion: go.Figure
    rates: go.Figure
    metrics: dict[str, Any]  # fairness_json of the same state, for tests and the browser


def _summary_md(
    rep: dict, sec: dict, auc_ci: dict, thr_ci: dict | None, stale: str, warnings: list
) -> str:
    a_ci = auc_ci["attributes"][next(iter(auc_ci["attributes"]))]
    t_ci = thr_ci["attributes"][next(iter(thr_ci["attributes"]))] if thr_ci else {}
    cells = [
        (help_span("AUC"), fmt(rep["auc"]), _ci_text(auc_ci.get("auc"))),
        (help_span("ES-AUC"), fmt(sec["es_auc"]), _ci_text(a_ci.get("es_auc"))),
        (help_span("DPD"), fmt(sec["dpd"]), _ci_text(t_ci.get("dpd"))),
        (help_span("DEOdds"), fmt(sec["deodds"]), _ci_text(t_ci.get("deodds"))),
        (help_span("Accuracy"), fmt(sec["accuracy"]), _ci_text((thr_ci or {}).get("accuracy"))),
    ]
    head = "| " + " | ".join(c[0] for c in cells) + " | " + help_span("n") + " |"
    sep = "|" + "---:|" * (len(cells) + 1)
    vals = "| " + " | ".join(f"**{v}**{ci}" for _, v, ci in cells) + f" | {rep['n']} |"
    note = (
        f"{help_span('95% CI')} in brackets. AUC intervals are always shown; threshold "
        f"intervals {stale}."
    )
    unknown = (
        f" {sec['n_unknown']} cases with unknown value left out of groups."
        if sec["n_unknown"]
        else ""
    )
    banner = warnings_markdown(warnings)
    table = f"{head}\n{sep}\n{vals}\n\n<small>{note}{unknown}</small>"
    return f"{banner}\n\n{table}" if banner else table


def _groups_md(sec: dict, auc_ci: dict, thr_ci: dict | None) -> str:
    a_groups = {
        g["name"]: g
        for g in auc_ci["attributes"][next(iter(auc_ci["attributes"]))].get("groups", [])
    }
    t_groups = (
        {
            g["name"]: g
            for g in thr_ci["attributes"][next(iter(thr_ci["attributes"]))].get("groups", [])
        }
        if thr_ci
        else {}
    )
    head = [
        "Group",
        help_span("n"),
        "Positives",
        help_span("Group AUC", "AUC"),
        help_span("TPR"),
        help_span("FPR"),
        help_span("Selection rate"),
        help_span("Accuracy"),
        help_span("Threshold"),
        "Reliability",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for g in sec["groups"]:
        if g["n"] == 0:
            lines.append(
                f"| {g['name']} | 0 | 0 | no cases | | | | | {g['threshold']:.3f} | no cases |"
            )
            continue
        ac = (a_groups.get(g["name"]) or {}).get("auc")
        tc = t_groups.get(g["name"]) or {}
        flag = group_flag(g)
        name = f"**{g['name']}** ⚠" if flag else g["name"]
        lines.append(
            f"| {name} | {g['n']} | {g['n_pos']} | {fmt(g['auc'])}{_ci_text(ac)} "
            f"| {fmt(g['tpr'])}{_ci_text(tc.get('tpr'))} | {fmt(g['fpr'])}{_ci_text(tc.get('fpr'))}"
            f" | {fmt(g['selection_rate'])} | {fmt(g['accuracy'])} | {g['threshold']:.3f} "
            f"| {flag or 'ok'} |"
        )
    lines.append(f"\n<small>{ES_AUC_RULE}</small>")
    return "\n".join(lines)


def fairness_view(
    ss: ScoreSet, attr: str, threshold: Thresholds, *, compute_ci: bool = False
) -> FairnessView:
    """Per-group ROC, confusion matrices, rates and metrics with bootstrap CIs.

    Threshold-dependent CIs are computed only when ``compute_ci`` (a button), else reused from the
    cache when the thresholds match; AUC CIs do not depend on the threshold and are cached per set.
    """
    rep = ss.report(threshold)
    sec = rep["attributes"][attr]
    auc_ci = ss.auc_ci(attr)
    thr_ci = (
        ss.threshold_ci(attr, threshold) if compute_ci else ss.cached_threshold_ci(attr, threshold)
    )
    stale = "are shown" if thr_ci else "are computed on demand (press *Confidence intervals*)"
    present = [g for g in sec["groups"] if g["n"] > 0]
    curves = []
    for g in sec["groups"]:
        if g["n"] == 0:
            continue
        fpr, tpr = ss.roc(attr, g["code"])
        curves.append(
            {
                "name": g["name"],
                "index": g["code"],
                "n": g["n"],
                "auc": g["auc"],
                "fpr": fpr,
                "tpr": tpr,
                "point": (g["fpr"], g["tpr"]),
                "threshold": g["threshold"],
            }
        )
    fpr, tpr = ss.roc()
    rates_ci = None
    if thr_ci:
        groups_ci = thr_ci["attributes"][attr].get("groups", [])
        rates_ci = {g["name"]: g for g in groups_ci}
    return FairnessView(
        summary_md=_summary_md(
            rep, sec, auc_ci, thr_ci, stale, report_warnings(rep, attr, auc_ci=auc_ci)
        ),
        groups_md=_groups_md(sec, auc_ci, thr_ci),
        roc=plots.roc_curves(curves, {"fpr": fpr, "tpr": tpr}),
        confusion=plots.confusion_matrices(present),
        rates=plots.group_rates(present, rates_ci),
        metrics=fairness_json(ss, attr, threshold),
    )


def load_view(ss: ScoreSet, attr: str) -> go.Figure:
    """Expert load per group: by gate weight when the scores have it, else patches kept."""
    by_gate = ss.gate_loads is not None
    loads = ss.mean_loads(attr, gate=by_gate)
    sizes = {g["name"]: g["n"] for g in ss.report()["attributes"][attr]["groups"]}
    measure = "mean gate weight per patch" if by_gate else "mean share of patches kept"
    return plots.expert_load(loads or {}, sizes, measure=measure)


# ----------------------------------------------------------------------------- case


def subgroup_context(
    ss: ScoreSet | None, chosen: Mapping[str, int | None], threshold: float
) -> str:
    """How the model did on test patients of the chosen groups (cached scores, not this scan)."""
    picked = {a: c for a, c in chosen.items() if c is not None and c >= 0}
    if not picked:
        return (
            "*Optional:* choose the patient's groups to see how the model performed on test "
            "patients of those groups. Attributes are **never** model inputs."
        )
    if ss is None:
        return "No cached test scores for this model, so no subgroup context."
    rep = ss.report(threshold)
    head = [
        "Test patients",
        help_span("n"),
        help_span("Group AUC", "AUC"),
        help_span("TPR"),
        help_span("FPR"),
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|---|---:|---:|---:|---:|",
        f"| everyone | {rep['n']} | {fmt(rep['auc'])} | {fmt(rep['tpr'])} | {fmt(rep['fpr'])} |",
    ]
    for a in ATTRIBUTE_NAMES:
        if a not in picked:
            continue
        g = rep["attributes"][a]["groups"][picked[a]]
        small = " (few cases: unreliable)" if 0 < g["n"] < 30 else ""
        lines.append(
            f"| {a}: {g['name']}{small} | {g['n']} | {fmt(g['auc'])} | {fmt(g['tpr'])} "
            f"| {fmt(g['fpr'])} |"
        )
    return (
        f"**How this model performed on test patients of these groups** (threshold "
        f"{threshold:.2f}; the attributes you chose are not model inputs):\n\n" + "\n".join(lines)
    )
