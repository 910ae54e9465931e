"""What an audit says: model card, thresholds, the fairness result with every bootstrap
interval, guardrail warnings, ROC curves per group and routing health.

Every number comes from :mod:`fairmoe.metrics` through the :class:`~fairmoe.scores.ScoreSet` and
every warning from :mod:`fairmoe.guardrails`, so the audit and the app never disagree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairmoe.audit.scores_csv import AuditError
from fairmoe.checkpoint import RunMetadata
from fairmoe.guardrails import strategy_warnings
from fairmoe.methods import method_label
from fairmoe.metrics import STRATEGIES, Thresholds
from fairmoe.metrics.result import Caveat, FairnessResult
from fairmoe.schema import OPERATING_POINT, attribute
from fairmoe.scores import N_BOOT, ScoreSet

__all__ = ["AuditData", "audit_data", "check_attribute", "resolve_thresholds"]


def check_attribute(attr: str) -> str:
    """The attribute's canonical name ("gender*race" -> "race*gender"), or an AuditError that
    lists the valid ones."""
    try:
        return attribute(attr).name
    except ValueError as e:
        raise AuditError(str(e)) from None


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
    attr = check_attribute(attr)
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


def _roc(ss: ScoreSet, res: FairnessResult) -> tuple[dict[str, Any], ...]:
    fpr, tpr = ss.roc()
    curves = [{"name": "everyone", "fpr": fpr, "tpr": tpr, "auc": res.auc, "point": None}]
    for g in res.present:
        fpr, tpr = ss.roc(res.attribute, g.code)
        point = (g.fpr, g.tpr) if None not in (g.fpr, g.tpr) else None
        curves.append(
            {
                "name": g.name,
                "n": g.n,
                "fpr": fpr,
                "tpr": tpr,
                "auc": g.auc,
                "point": point,
                "threshold": g.threshold,
            }
        )
    return tuple(curves)


def _sha256(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class AuditData:
    """Everything an audit shows: the fairness result (every interval computed) and what
    surrounds it."""

    title: str
    result: FairnessResult
    model_card: tuple[tuple[str, str], ...]
    thresholds: tuple[tuple[str, str], ...]  # (group or "everyone", threshold)
    warnings: tuple[Caveat, ...]  # the result's, then the strategy's
    roc: tuple[dict[str, Any], ...]  # everyone's curve, then one per group with cases
    strategy: str | None = None
    cost_ratio: float | None = None
    scores_sha256: str | None = None
    routing_health: Mapping[str, Any] | None = None
    n_boot: int = N_BOOT

    @property
    def flag_rate(self) -> float | None:
        """Share of the cases of known attribute value that the thresholds flag."""
        return self.result.flagged / self.result.known if self.result.known else None


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
) -> AuditData:
    """Everything the audit shows (``threshold`` already resolved)."""
    attr = check_attribute(attr)
    res = ss.fairness(attr, threshold, ci="all")
    warnings = res.warnings
    if strategy is not None:
        single = ss.choose(attr, "single", _check_cost(cost_ratio or 4.0))[0]
        base = ss.fairness(attr, single, ci="none")
        warnings += strategy_warnings(base, res, per_group=strategy != "single")
    return AuditData(
        title=f"Fairness audit: {meta.name if meta and meta.name else ss.name}",
        result=res,
        model_card=tuple(_model_card(meta, ss, source)),
        thresholds=tuple(_thresholds_text(threshold, attr)),
        warnings=warnings,
        roc=_roc(ss, res),
        strategy=strategy,
        cost_ratio=cost_ratio,
        scores_sha256=_sha256(scores_path),
        routing_health=meta.routing_health if meta else None,
    )
