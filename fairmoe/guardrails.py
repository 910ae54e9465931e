"""Guardrails on fairness numbers: the warnings a reader needs before trusting a metric.

Every view of a fairness report (the app's Fairness and Cohort tabs, ``/fairness``, the audit)
shows these next to the numbers. Rules, and the case that triggers each:
- a group with fewer than ``MIN_GROUP_N`` cases is *too small*: its AUC and rates swing with a few
  patients (the report's bootstrap interval says how much);
- a group with only one class has an *undefined* AUC; ES-AUC then sums over the groups whose AUC
  is defined (FairCLIP's formula would be undefined), so that group does not count in it;
- a model that flags (almost) everyone or no one has DPD and DEOdds near 0 only because every
  group is flagged alike: a *degenerate* operating point, not fairness;
- a threshold strategy that flags more than half of a group's healthy patients (FPR > 0.5), or
  costs more than ``MAX_ACCURACY_DROP`` accuracy against the single threshold, is flagged;
- per-group thresholds need the patient's attribute at deployment, which is itself a choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "DEGENERATE_RATE",
    "MAX_ACCURACY_DROP",
    "MAX_GROUP_FPR",
    "MIN_GROUP_N",
    "report_warnings",
    "strategy_warnings",
]

MIN_GROUP_N = 30  # below this a group's AUC moves by ~0.1 with a handful of patients
DEGENERATE_RATE = 0.98  # flagging >= 98% (or <= 2%) of everyone makes parity gaps meaningless
MAX_GROUP_FPR = 0.5  # a strategy that flags more than half of a group's healthy eyes
MAX_ACCURACY_DROP = 0.05  # accuracy lost against the single cost-minimising threshold

Level = Literal["info", "caution", "warning"]


def _w(level: Level, code: str, message: str, group: str | None = None) -> dict[str, Any]:
    return {"level": level, "code": code, "group": group, "message": message}


def _fmt_ci(ci: Mapping[str, Any] | None) -> str:
    return f" (95% CI {ci['low']:.2f} to {ci['high']:.2f})" if ci else ""


def report_warnings(
    report: Mapping[str, Any],
    attr: str,
    *,
    auc_ci: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Warnings for one attribute of a ``fairmoe.metrics.evaluate`` report.

    ``auc_ci`` is ``bootstrap_ci(...)``'s output for the same attribute (optional): a small
    group's warning then quotes its AUC interval.
    """
    out: list[dict[str, Any]] = []
    sec = report["attributes"][attr]
    ci_groups = {}
    if auc_ci:
        ci_groups = {g["name"]: g for g in auc_ci["attributes"][attr].get("groups", [])}
    for g in sec["groups"]:
        name, n = g["name"], g["n"]
        if n == 0:
            out.append(_w("info", "empty_group", f"{name}: no cases, left out of every gap.", name))
            continue
        if g["auc"] is None:
            missing = "glaucoma" if g["n_pos"] == 0 else "healthy"
            out.append(
                _w(
                    "warning",
                    "one_class",
                    f"{name}: no {missing} cases among {n}, so its "
                    "AUC is undefined and it does not count in ES-AUC.",
                    name,
                )
            )
        if n < MIN_GROUP_N:
            ci = _fmt_ci((ci_groups.get(name) or {}).get("auc"))
            out.append(
                _w(
                    "caution",
                    "small_group",
                    f"{name}: only {n} cases (fewer than "
                    f"{MIN_GROUP_N}); its AUC{ci} and rates are unreliable.",
                    name,
                )
            )
    rate = report.get("selection_rate")
    if rate is None:  # per-group thresholds: the overall rate from the attribute's counts
        flagged = sum(g["tp"] + g["fp"] for g in sec["groups"])
        total = sum(g["n"] for g in sec["groups"])
        rate = flagged / total if total else None
    if rate is not None and (rate >= DEGENERATE_RATE or rate <= 1 - DEGENERATE_RATE):
        who = "everyone" if rate >= DEGENERATE_RATE else "no one"
        out.append(
            _w(
                "warning",
                "degenerate",
                f"The model flags {rate:.0%} of cases (almost "
                f"{who}) at this threshold: DPD ({sec['dpd']:.3f}) and DEOdds "
                f"({sec['deodds']:.3f}) look fair only because every group is treated "
                "alike by a useless rule.",
            )
        )
    return out


def strategy_warnings(
    baseline: Mapping[str, Any],
    chosen: Mapping[str, Any],
    attr: str,
    *,
    per_group: bool,
) -> list[dict[str, Any]]:
    """Warnings for thresholds chosen by a strategy (``chosen``) against the single threshold
    (``baseline``); both are ``evaluate`` reports."""
    out: list[dict[str, Any]] = []
    sec = chosen["attributes"][attr]
    for g in sec["groups"]:
        if g["fpr"] is not None and g["fpr"] > MAX_GROUP_FPR:
            out.append(
                _w(
                    "warning",
                    "high_fpr",
                    f"{g['name']}: {g['fpr']:.0%} of healthy "
                    f"patients are flagged (FPR above {MAX_GROUP_FPR:.0%}).",
                    g["name"],
                )
            )
    base_acc = baseline["attributes"][attr]["accuracy"]
    drop = base_acc - sec["accuracy"]
    if drop > MAX_ACCURACY_DROP:
        out.append(
            _w(
                "warning",
                "accuracy_drop",
                f"Overall accuracy falls from {base_acc:.3f} "
                f"to {sec['accuracy']:.3f} ({drop:.3f}) against the single threshold.",
            )
        )
    flagged = sum(g["tp"] + g["fp"] for g in sec["groups"])
    total = sum(g["n"] for g in sec["groups"])
    if total:
        out.append(
            _w(
                "info",
                "flag_rate",
                f"These thresholds flag {flagged / total:.0%} of "
                f"patients (accuracy {sec['accuracy']:.3f}).",
            )
        )
    if per_group:
        out.append(
            _w(
                "caution",
                "needs_attribute",
                f"Per-group thresholds need each patient's "
                f"{attr} at deployment, to choose the threshold.",
            )
        )
    return out
