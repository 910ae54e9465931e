"""What an audit says, as plain data: model card, thresholds, per-group table with bootstrap
intervals, guardrail warnings, ROC curves per group and routing health.

Every number comes from :mod:`fairmoe.metrics` through the :class:`~fairmoe.scores.ScoreSet` and
every warning from :mod:`fairmoe.guardrails`, so the audit and the app never disagree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fairmoe.audit.scores_csv import AuditError
from fairmoe.checkpoint import RunMetadata
from fairmoe.guardrails import report_warnings, strategy_warnings
from fairmoe.methods import method_label
from fairmoe.metrics import GROUP_SUMMARY, STRATEGIES, Thresholds
from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT, attribute
from fairmoe.scores import N_BOOT, ScoreSet

__all__ = ["audit_data", "resolve_thresholds"]


def _check_cost(cost_ratio: float) -> float:
    try:
        cost = float(cost_ratio)
    except (TypeError, ValueError):
        cost = math.nan
    if not (math.isfinite(cost) and cost > 0):
        raise AuditError(f"the cost ratio must be a positive number (e.g. 4), got {cost_ratio!r}")
    return cost


def resolve_thresholds(
    ss: ScoreSet,
    attr: str,
    *,
    threshold: float | Sequence[float] | None = None,
    strategy: str | None = None,
    cost_ratio: float = 4.0,
) -> Thresholds:
    """The thresholds to audit: the given ones (one value, or one per group of ``attr``), else a
    strategy's (fairmoe.metrics.choose_thresholds), else the operating point. With both, the
    strategy is only recorded as where the given thresholds came from."""
    if strategy is not None and strategy not in STRATEGIES:
        raise AuditError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy is not None and threshold is None:
        t = ss.choose(attr, strategy, _check_cost(cost_ratio))
        return t[0] if strategy == "single" else {attr: [round(v, 6) for v in t]}
    if threshold is None:
        return OPERATING_POINT
    values = [threshold] if isinstance(threshold, int | float) else list(threshold)
    for v in values:
        if not (isinstance(v, int | float) and math.isfinite(v) and 0 <= v <= 1):
            raise AuditError(f"a threshold must be a number between 0 and 1, got {v!r}")
    if len(values) == 1:
        return float(values[0])
    n = attribute(attr).n_groups
    if len(values) != n:
        raise AuditError(f"{attr} has {n} groups, so give 1 or {n} thresholds, not {len(values)}")
    return {attr: [float(v) for v in values]}


def _model_card(meta: RunMetadata | None, ss: ScoreSet, source: str) -> list[tuple[str, str]]:
    rows = [("Scores", source or ss.name), ("Cases scored", f"{ss.n:,}")]
    if meta is None:
        return rows + [("Model", "not given (scores only: any model can be audited this way)")]
    test = meta.test_metrics
    data = {k: v.get("n") for k, v in (meta.data or {}).items() if isinstance(v, dict)}
    rows += [
        ("Model", meta.name or "(unnamed)"),
        ("Method", method_label(meta.method)),
        ("Trained for attribute", meta.attribute),
        ("Model config", meta.config_name or "?"),
        ("Seed", str(meta.seed)),
        ("Fairness weight", f"x{meta.fairness_scale:g}"),
        (
            "Calibration",
            f"temperature {meta.temperature:.4g} fitted on "
            f"{meta.calibration_fitted_on or 'not recorded'}",
        ),
        ("Best epoch (on validation)", str(meta.best_epoch)),
        (
            "Training data",
            ("synthetic" if meta.data_synthetic else "as given")
            + (
                " · " + ", ".join(f"{k} {v}" for k, v in data.items() if v is not None)
                if data
                else ""
            ),
        ),
        (
            "Trained on",
            f"{meta.device or '?'}"
            + (f" in {meta.train_seconds:.0f} s" if meta.train_seconds else ""),
        ),
        ("Parameters", f"{meta.n_parameters:,}" if meta.n_parameters else "?"),
    ]
    if test.get("auc") is not None:
        rows.append(("Test AUC recorded at training", f"{test['auc']:.3f}"))
    return rows


def _thresholds_text(thr: Thresholds, attr: str) -> list[tuple[str, str]]:
    if not isinstance(thr, dict):
        return [("everyone", f"{float(thr):.3f}")]
    return list(zip(attribute(attr).groups, [f"{v:.3f}" for v in thr[attr]], strict=True))


def _groups(rep: dict, attr: str, auc_ci: dict, thr_ci: dict) -> list[dict[str, Any]]:
    a_ci = {g["name"]: g for g in auc_ci["attributes"][attr].get("groups", [])}
    t_ci = {g["name"]: g for g in thr_ci["attributes"][attr].get("groups", [])}
    out = []
    for g in rep["attributes"][attr]["groups"]:
        row = {k: g[k] for k in GROUP_SUMMARY}
        row["auc_ci"] = (a_ci.get(g["name"]) or {}).get("auc")
        row["tpr_ci"] = (t_ci.get(g["name"]) or {}).get("tpr")
        row["fpr_ci"] = (t_ci.get(g["name"]) or {}).get("fpr")
        out.append(row)
    return out


def _roc(ss: ScoreSet, rep: dict, attr: str) -> list[dict[str, Any]]:
    curves = []
    fpr, tpr = ss.roc()
    curves.append({"name": "everyone", "fpr": fpr, "tpr": tpr, "auc": rep["auc"], "point": None})
    for g in rep["attributes"][attr]["groups"]:
        if g["n"] == 0:
            continue
        fpr, tpr = ss.roc(attr, g["code"])
        point = (g["fpr"], g["tpr"]) if None not in (g["fpr"], g["tpr"]) else None
        curves.append(
            {
                "name": g["name"],
                "n": g["n"],
                "fpr": fpr,
                "tpr": tpr,
                "auc": g["auc"],
                "point": point,
                "threshold": g["threshold"],
            }
        )
    return curves


def _sha256(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_data(
    ss: ScoreSet,
    *,
    attr: str = "race",
    threshold: Thresholds = OPERATING_POINT,
    strategy: str | None = None,
    cost_ratio: float | None = None,
    meta: RunMetadata | None = None,
    source: str = "",
    scores_path: Path | None = None,
) -> dict[str, Any]:
    """Everything the audit shows, JSON-ready (``threshold`` already resolved)."""
    if attr not in ATTRIBUTE_NAMES:
        raise AuditError(f"unknown attribute {attr!r}; choose one of {', '.join(ATTRIBUTE_NAMES)}")
    rep = ss.report(threshold)
    sec = rep["attributes"][attr]
    auc_ci, thr_ci = ss.auc_ci(attr), ss.threshold_ci(attr, threshold)
    warnings = report_warnings(rep, attr, auc_ci=auc_ci)
    if strategy is not None:
        base = ss.report(ss.choose(attr, "single", _check_cost(cost_ratio or 4.0))[0])
        warnings += strategy_warnings(base, rep, attr, per_group=strategy != "single")
    summary = {k: sec[k] for k in ("accuracy", "es_auc", "es_acc", "dpd", "deodds", "n_unknown")}
    flagged = sum(g["tp"] + g["fp"] for g in sec["groups"])
    known = sum(g["n"] for g in sec["groups"])
    return {
        "title": f"Fairness audit: {meta.name if meta and meta.name else ss.name}",
        "attribute": attr,
        "model_card": _model_card(meta, ss, source),
        "scores_sha256": _sha256(scores_path),
        "strategy": strategy,
        "cost_ratio": cost_ratio,
        "thresholds": _thresholds_text(threshold, attr),
        "overall": {
            "n": rep["n"],
            "n_pos": rep["n_pos"],
            "auc": rep["auc"],
            "auc_ci": auc_ci.get("auc"),
            "es_auc_ci": auc_ci["attributes"][attr].get("es_auc"),
            "dpd_ci": thr_ci["attributes"][attr].get("dpd"),
            "deodds_ci": thr_ci["attributes"][attr].get("deodds"),
            "flag_rate": flagged / known if known else None,
            **summary,
        },
        "groups": _groups(rep, attr, auc_ci, thr_ci),
        "warnings": warnings,
        "roc": _roc(ss, rep, attr),
        "routing_health": meta.routing_health if meta else None,
        "n_boot": N_BOOT,
    }
