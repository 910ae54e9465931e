"""The audit report from the app: the Fairness and Cohort tabs' download buttons and /audit.

The HTML is written by :mod:`fairmoe.audit` (the same file ``python -m fairmoe.audit`` writes)
into the runtime's output folder, which Gradio serves as a download.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gradio as gr

from app.callbacks.common import upload_path, user_error
from app.callbacks.fairness_tab import StrategyChoice
from app.callbacks.source import ScoreSource, require_source
from app.runtime import Runtime
from fairmoe.audit import AuditError, write_audit
from fairmoe.audit.scores_csv import load_user_scores
from fairmoe.checkpoint import RunMetadata
from fairmoe.metrics.thresholds import DEFAULT_COST_RATIO
from fairmoe.schema import attribute
from fairmoe.scores import ScoreSet

__all__ = ["audit", "audit_file", "own_scores", "panel_audit", "strategy_of"]


def own_scores(upload: Any) -> ScoreSet:
    """A user's scores CSV (any model) read and checked by fairmoe.audit.read_user_scores.

    Rows marked not assessable (column ``assessable`` = "no") are left out; a warning says how
    many."""
    path = upload_path(upload)
    if not path:
        raise user_error(
            "Upload a CSV of scores: columns id, label, score, race, gender, ethnicity, language."
        )
    try:
        loaded = load_user_scores(path)
    except AuditError as e:
        raise user_error(f"Cannot read these scores: {e}") from None
    if loaded.message:
        gr.Warning(f"Your scores: {loaded.message}")
    return loaded.scores


def audit_file(
    rt: Runtime,
    ss: ScoreSet,
    attr: str,
    threshold: float | Sequence[float] | None,
    *,
    strategy: str | None = None,
    cost_ratio: float = DEFAULT_COST_RATIO,
    meta: RunMetadata | None = None,
    source: str = "",
) -> str:
    """Write the audit of ``ss`` at ``threshold`` and return the HTML file's path."""
    path = rt.new_output_path("fairness-audit", ".html")
    try:
        write_audit(
            path,
            ss,
            attr=attr,
            threshold=threshold,
            strategy=strategy or None,
            cost_ratio=cost_ratio,
            meta=meta,
            source=source or ss.name,
        )
    except AuditError as e:
        path.unlink(missing_ok=True)
        raise user_error(str(e)) from None
    return str(path)


def strategy_of(chosen: StrategyChoice | None, thresholds: Sequence[float]) -> str | None:
    """The strategy that set ``thresholds`` (the last one applied, if the sliders still show
    what it chose), else None: the thresholds were set by hand."""
    if chosen is None:
        return None
    same = len(chosen.thresholds) == len(thresholds) and all(
        math.isclose(a, b, abs_tol=5e-4) for a, b in zip(chosen.thresholds, thresholds, strict=True)
    )
    return chosen.strategy if same else None


def audit(
    rt: Runtime,
    model: str,
    attribute: str = "race",
    threshold: float = 0.5,
    strategy: str = "",
    cost_ratio: float = DEFAULT_COST_RATIO,
    scores: Any = None,
) -> str:
    """/audit: the audit HTML of a run's test scores, or of an uploaded scores CSV (any model).

    With a ``strategy`` the thresholds are the strategy's at ``cost_ratio``; else ``threshold``.
    """
    src = require_source(rt, model, own_scores(scores) if upload_path(scores) else None, "own")
    try:
        t = float(threshold)
        cost = float(cost_ratio)
    except (TypeError, ValueError):
        raise user_error("threshold and cost_ratio must be numbers") from None
    if not (math.isfinite(t) and 0 <= t <= 1):
        raise user_error(f"threshold must be between 0 and 1, got {threshold!r}")
    return audit_file(
        rt,
        src.scores,
        attribute,
        None if strategy else t,
        strategy=strategy or None,
        cost_ratio=cost,
        meta=src.meta,
        source=src.label,
    )


def panel_audit(
    rt: Runtime,
    source: ScoreSource,
    attr: str,
    mode: str,
    single: float,
    groups: Sequence[float],
    chosen: StrategyChoice | None,
) -> str:
    """The audit of what a fairness panel shows (Fairness and Cohort tabs): its scores at its
    thresholds, and the strategy that set them when the sliders still hold its choice."""
    n = attribute(attr).n_groups
    ts = [float(single)] * n if mode == "single" else [float(t) for t in groups[:n]]
    strategy = strategy_of(chosen, ts)
    cost = chosen.cost if chosen else DEFAULT_COST_RATIO
    thr: float | list[float] = ts[0] if mode == "single" else ts
    return audit_file(
        rt,
        source.scores,
        attr,
        thr,
        strategy=strategy,
        cost_ratio=cost,
        meta=source.meta,
        source=source.label,
    )
