"""Handlers of the Fairness tab: /fairness, /models, thresholds, strategies, comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gradio as gr

from app import plots, views
from app.callbacks.common import user_error
from app.callbacks.panel import panel_view
from app.runtime import Runtime
from app.text import STRATEGY_LABELS
from fairmoe.metrics import STRATEGIES
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES, OPERATING_POINT
from fairmoe.scores import ScoreSet

__all__ = [
    "MAX_GROUPS",
    "fairness",
    "fairness_select",
    "fairness_strategy",
    "fairness_tradeoff",
    "fairness_update",
    "models",
]

MAX_GROUPS = max(a.n_groups for a in ATTRIBUTES.values())  # per-group sliders the UI pre-builds


def fairness(
    rt: Runtime, model: str, attribute: str = "race", threshold: float = OPERATING_POINT
) -> dict:
    """AUC, ES-AUC, DPD, DEOdds and per-group n/AUC/TPR/FPR of a run's test scores."""
    try:
        run = rt.run(model)
    except KeyError as e:
        raise user_error(str(e.args[0])) from None
    if attribute not in ATTRIBUTE_NAMES:
        raise user_error(
            f"unknown attribute {attribute!r}; choose one of {', '.join(ATTRIBUTE_NAMES)}"
        )
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise user_error(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    if not (math.isfinite(t) and 0 <= t <= 1):
        raise user_error(f"threshold must be between 0 and 1, got {threshold!r}")
    out = views.fairness_json(run.scores, attribute, t)
    out["model"] = run.name
    return out


def models(rt: Runtime) -> list[dict[str, Any]]:
    """The runs the fairness endpoint knows, with the loaded model marked."""
    return [
        {
            "name": r.name,
            "label": r.label,
            "method": r.method,
            "attribute": r.attribute,
            "seed": r.seed,
            "fairness_scale": r.fairness_scale,
            "n_test": r.scores.n,
            "loaded": r.name == rt.default_run,
        }
        for r in rt.runs.values()
    ]


def _group_slider_updates(attr: str, values: Sequence[float] | None = None) -> list:
    a = ATTRIBUTES[attr]
    out = []
    for j in range(MAX_GROUPS):
        if j < a.n_groups:
            v = OPERATING_POINT if values is None else float(values[j])
            out.append(gr.update(visible=True, label=f"Threshold: {a.groups[j]}", value=v))
        else:
            out.append(gr.update(visible=False))
    return out


def fairness_select(rt: Runtime, model: str, attr: str, tradeoff_metric: str) -> tuple:
    """On model or attribute change: group sliders, comparison, trade-off and expert load."""
    run = rt.run(model)
    rows, table_md = views.comparison(list(rt.runs.values()), attr)
    return (
        *_group_slider_updates(attr),
        plots.model_comparison(rows, views.COMPARE_METRICS, attr),
        table_md,
        fairness_tradeoff(rt, attr, tradeoff_metric),
        views.load_view(run.scores, attr),
    )


def fairness_tradeoff(rt: Runtime, attr: str, metric: str) -> Any:
    """The accuracy-fairness trade-off figure of every swept run."""
    return plots.tradeoff(views.tradeoff_points(list(rt.runs.values()), attr, metric), metric, attr)


def fairness_update(
    ss: ScoreSet, attr: str, mode: str, single: float, *groups: float, compute_ci: bool = False
) -> tuple:
    """The panel (summary, group table, ROC, confusion, rates) at the sliders' thresholds."""
    threshold = views.resolve_thresholds(attr, mode, single, groups)  # type: ignore[arg-type]
    return panel_view(ss, attr, threshold, compute_ci=compute_ci)


def fairness_strategy(ss: ScoreSet, attr: str, strategy: str, cost_ratio: float) -> tuple:
    """(mode, single threshold, *group thresholds) chosen by fairmoe.metrics.choose_thresholds."""
    if strategy not in STRATEGIES:
        raise user_error(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    try:
        cost = float(cost_ratio)
        if not (math.isfinite(cost) and cost > 0):
            raise ValueError
    except (TypeError, ValueError):
        raise user_error("The cost ratio must be a positive number (e.g. 4).") from None
    t = ss.choose(attr, strategy, cost)
    mode = "single" if strategy == "single" else "per group"
    padded = [*t, *([OPERATING_POINT] * (MAX_GROUPS - len(t)))]
    return (
        mode,
        t[0],
        *padded,
        f"Thresholds set by **{STRATEGY_LABELS[strategy]}** (cost ratio {cost:g}).",
    )
