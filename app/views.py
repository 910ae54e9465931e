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
from app.theme import icon
from app.views_runs import (
    COMPARE_METRICS,
    TRADEOFF_METRICS,
    comparison,
    menu_labels,
    tradeoff_points,
)
from app.warnings_md import ES_AUC_RULE, warnings_markdown
from fairmoe.metrics import Thresholds
from fairmoe.metrics.reliability import Band
from fairmoe.metrics.result import FairnessResult, Interval
from fairmoe.schema import ATTRIBUTE_CHOICES, ATTRIBUTE_NAMES, CROSS, attribute
from fairmoe.scores import ScoreSet
from fairmoe.wording import band_for, band_sentence, contradicts

__all__ = [
    "COMPARE_METRICS",
    "TRADEOFF_METRICS",
    "FairnessView",
    "attribute_menu",
    "comparison",
    "confidence_text",
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


def attribute_menu() -> list[tuple[str, str]]:
    """(label, value) of every attribute menu: the four attributes, then each pair crossed."""
    return [(a.replace(CROSS, " × "), a) for a in ATTRIBUTE_CHOICES]


def _ci_text(ci: Interval | None, digits: int = 3) -> str:
    return f" [{ci.low:.{digits}f}, {ci.high:.{digits}f}]" if ci else ""


def resolve_thresholds(
    attr: str, mode: ThresholdMode, single: float, per_group: Sequence[float]
) -> Thresholds:
    """The fairmoe.metrics threshold argument for the slider state."""
    if mode == "single":
        return float(single)
    a = attribute(attr)
    if len(per_group) < a.n_groups:
        raise ValueError(f"{attr} needs {a.n_groups} group thresholds, got {len(per_group)}")
    return {a.name: [float(t) for t in per_group[: a.n_groups]]}


def fairness_json(ss: ScoreSet, attr: str, threshold: Thresholds) -> dict[str, Any]:
    """The /fairness endpoint's answer: ``FairnessResult.to_json`` with the AUC and calibration
    intervals and the guardrail warnings (small groups quoting their AUC interval)."""
    return ss.fairness(attr, threshold).to_json()


@dataclass(frozen=True)
class FairnessView:
    """Everything the fairness panel shows for one (score set, attribute, thresholds)."""

    summary_md: str
    groups_md: str
    roc: go.Figure
    confusion: go.Figure
    rates: go.Figure
    reliability: go.Figure
    metrics: dict[str, Any]  # FairnessResult.to_json of the same state, for tests and the browser


def _summary_md(res: FairnessResult, stale: str) -> str:
    ci = res.ci
    cells = [
        (help_span("AUC"), fmt(res.auc), _ci_text(ci.get("auc"))),
        (help_span("ES-AUC"), fmt(res.es_auc), _ci_text(ci.get("es_auc"))),
        (help_span("DPD"), fmt(res.dpd), _ci_text(ci.get("dpd"))),
        (help_span("DEOdds"), fmt(res.deodds), _ci_text(ci.get("deodds"))),
        (help_span("Accuracy"), fmt(res.accuracy), _ci_text(ci.get("accuracy"))),
        (help_span("ECE"), fmt(res.ece), _ci_text(ci.get("ece"))),
    ]
    head = "| " + " | ".join(c[0] for c in cells) + " | " + help_span("n") + " |"
    sep = "|" + "---:|" * (len(cells) + 1)
    vals = "| " + " | ".join(f"**{v}**{c}" for _, v, c in cells) + f" | {res.n} |"
    note = (
        f"{help_span('95% CI')} in brackets. AUC and calibration intervals are always shown; "
        f"threshold intervals {stale}."
    )
    unknown = (
        f" {res.n_unknown} cases with unknown value left out of groups." if res.n_unknown else ""
    )
    banner = warnings_markdown(res.warnings)
    table = f"{head}\n{sep}\n{vals}\n\n<small>{note}{unknown}</small>"
    return f"{banner}\n\n{table}" if banner else table


def _pct(v: float | None, ci: Interval | None = None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0%}" + (f" [{ci.low:.0%}, {ci.high:.0%}]" if ci else "")


def _rates_table(res: FairnessResult) -> str:
    """The clinical rates at the operating point, one row per group, with bootstrap CIs."""
    head = [
        "Group",
        help_span("n"),
        "Glaucoma",
        help_span("Group AUC", "AUC"),
        help_span("TPR", "Sensitivity (TPR)"),
        help_span("FNR", "Under-diagnosis (FNR)"),
        help_span("FPR", "False alarms (FPR)"),
        help_span("PPV"),
        help_span("NPV"),
        help_span("Threshold"),
        "Reliability",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for g in res.groups:
        if g.n == 0:
            blanks = " | " * 6
            lines.append(f"| {g.name} | 0 | 0 | no cases{blanks}{g.threshold:.3f} | no cases |")
            continue
        name = f"**{g.name}** {icon('warn')}" if g.flag else g.name
        c = g.ci
        lines.append(
            f"| {name} | {g.n} | {g.n_pos} ({_pct(g.prevalence)}) | {fmt(g.auc)}{_ci_text(c.auc)} "
            f"| {_pct(g.tpr, c.tpr)} | {_pct(g.fnr, c.fnr)} | {_pct(g.fpr, c.fpr)} "
            f"| {_pct(g.ppv, c.ppv)} | {_pct(g.npv, c.npv)} | {g.threshold:.3f} | {g.flag or 'ok'} |"
        )
    return "\n".join(lines)


def _band_text(b: Band) -> str:
    return f"{_pct(b.observed)} of {b.n}" if b.n else "none"


def _calibration_table(res: FairnessResult) -> str:
    """Per group: ECE with CI, calibration-in-the-large, observed rate in the confident bands."""
    bands = [f"scored {b.low:.1f}-{b.high:.1f}: had glaucoma" for b in res.groups[0].bands]
    head = ["Group", help_span("n"), help_span("ECE"), help_span("CITL", "Mean prob. - rate")]
    lines = [
        "| " + " | ".join(head + bands) + " |",
        "|---|" + "---:|" * (len(head) + len(bands) - 1),
    ]
    for g in res.present:
        lines.append(
            f"| {g.name} | {g.n} | {fmt(g.ece)}{_ci_text(g.ci.ece)} | "
            f"{'n/a' if g.citl is None else f'{g.citl:+.3f}'} | "
            + " | ".join(_band_text(b) for b in g.bands)
            + " |"
        )
    return "\n".join(lines)


def _groups_md(res: FairnessResult) -> str:
    return (
        f"**Clinical rates at the operating point** (95% CI in brackets)\n\n{_rates_table(res)}"
        f"\n\n**Calibration by group** (calibrated probability, 10 bins)\n\n"
        f"{_calibration_table(res)}\n\n<small>{ES_AUC_RULE}</small>"
    )


def fairness_view(
    ss: ScoreSet, attr: str, threshold: Thresholds, *, compute_ci: bool = False
) -> FairnessView:
    """Per-group ROC, confusion matrices, rates, calibration and metrics with bootstrap CIs.

    Threshold-dependent CIs are computed only when ``compute_ci`` (a button), else reused from the
    cache when the thresholds match; AUC and ECE CIs do not depend on the threshold.
    """
    res = ss.fairness(attr, threshold, ci="all" if compute_ci else "auc")
    stale = (
        "are shown" if res.threshold_ci else "are computed on demand (press *Confidence intervals*)"
    )
    present = [g.to_json() for g in res.present]
    curves = []
    for g in res.present:
        fpr, tpr = ss.roc(attr, g.code)
        curves.append(
            {
                "name": g.name,
                "index": g.code,
                "n": g.n,
                "auc": g.auc,
                "fpr": fpr,
                "tpr": tpr,
                "point": (g.fpr, g.tpr),
                "threshold": g.threshold,
            }
        )
    fpr, tpr = ss.roc()
    rel = [
        {"name": g.name, "index": g.code, "n": g.n, "ece": g.ece} | g.reliability.to_json()
        for g in res.present
    ]
    rates_ci = {g.name: g.ci.to_json() for g in res.present} if res.threshold_ci else None
    return FairnessView(
        summary_md=_summary_md(res, stale),
        groups_md=_groups_md(res),
        roc=plots.roc_curves(curves, {"fpr": fpr, "tpr": tpr}),
        confusion=plots.confusion_matrices(present),
        rates=plots.group_rates(present, rates_ci),
        reliability=plots.reliability_diagram(rel),
        metrics=res.to_json(),
    )


def load_view(ss: ScoreSet, attr: str) -> go.Figure:
    """Expert load per group: by gate weight when the scores have it, else patches kept."""
    by_gate = ss.gate_loads is not None
    loads = ss.mean_loads(attr, gate=by_gate)
    sizes = {g.name: g.n for g in ss.fairness(attr, ci="none").groups}
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
    head = [
        "Test patients",
        help_span("n"),
        help_span("Group AUC", "AUC"),
        help_span("TPR", "Sensitivity (TPR)"),
        help_span("FPR"),
        help_span("ECE"),
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---:|---:|"]
    first = True
    for a in ATTRIBUTE_NAMES:
        if a not in picked:
            continue
        res = ss.fairness(a, threshold, ci="none")
        if first:
            lines.append(
                f"| everyone | {res.n} | {fmt(res.auc)} | {fmt(res.tpr)} | {fmt(res.fpr)} "
                f"| {fmt(res.ece)} |"
            )
            first = False
        g = res.groups[picked[a]]
        small = f" ({g.flag}: unreliable)" if g.flag else ""
        lines.append(
            f"| {a}: {g.name}{small} | {g.n} | {fmt(g.auc)} | {fmt(g.tpr)} | {fmt(g.fpr)} "
            f"| {fmt(g.ece)} |"
        )
    return (
        f"**How this model performed on test patients of these groups** (threshold "
        f"{threshold:.2f}; the attributes you chose are not model inputs):\n\n" + "\n".join(lines)
    )


def confidence_text(
    ss: ScoreSet | None, chosen: Mapping[str, int | None], p: float, threshold: float, said: str
) -> str:
    """The Case tab's confidence sentence, checked against the test set: what happened to test
    patients of the chosen groups (everyone without groups) scored in the same band. Where their
    observed rate contradicts the band, the model's confidence is not claimed."""
    if ss is None:
        return said
    low, high = band_for(p, threshold)
    picked = [(a, c) for a, c in chosen.items() if c is not None and c >= 0]
    who = [(f"{attribute(a).groups[c]} patients", ss.band(a, c, low, high)) for a, c in picked] or [
        ("test patients", ss.band(None, None, low, high))
    ]
    sentences = " ".join(band_sentence(w, b) for w, b in who)
    if any(contradicts(b) for _, b in who) and not said.startswith("Inconclusive"):
        groups = ", ".join(w for w, b in who if contradicts(b))
        return (
            f"**Not a confident result for {groups}:** the test set contradicts this score band. "
            f"{sentences}"
        )
    return f"{said} {sentences}"
