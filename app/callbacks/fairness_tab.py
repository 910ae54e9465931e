"""Handlers of the Fairness tab: /fairness, /models, thresholds, strategies, comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import plots, views
from app.callbacks.common import user_error
from app.callbacks.panel import panel_view
from app.callbacks.source import require_source
from app.runtime import Runtime
from app.scenarios import MAIN, baselines_markdown, first_clip, runs_of, scenario_note
from app.text import STRATEGY_LABELS
from app.theme import icon
from app.views_runs import menu_labels
from app.warnings_md import warnings_markdown
from fairmoe.guardrails import strategy_warnings
from fairmoe.metrics import STRATEGIES
from fairmoe.metrics.thresholds import SENSITIVITY_TARGET
from fairmoe.schema import ATTRIBUTE_CHOICES, OPERATING_POINT, attribute
from fairmoe.scores import ScoreSet

__all__ = [
    "MAX_GROUPS",
    "StrategyChoice",
    "StrategyUpdate",
    "check_attribute",
    "check_cost",
    "sensitivity_preset",
    "scores_of",
    "fairness",
    "fairness_scenario",
    "fairness_select",
    "fairness_strategy",
    "fairness_tradeoff",
    "fairness_update",
    "group_slider_updates",
    "menu_default",
    "model_choices",
    "models",
]

# per-group sliders the UI pre-builds: enough for the largest crossed attribute (race*language: 9)
MAX_GROUPS = max(attribute(a).n_groups for a in ATTRIBUTE_CHOICES)


def scores_of(rt: Runtime, model: str, own: ScoreSet | None = None) -> ScoreSet:
    """The scores behind the Fairness tab's model menu: a run's test scores, or the user's CSV."""
    return require_source(rt, model, own, "own").scores


def fairness(
    rt: Runtime, model: str, attribute: str = "race", threshold: float = OPERATING_POINT
) -> dict:
    """AUC, ES-AUC, DPD, DEOdds and per-group n/AUC/TPR/FPR of a run's test scores."""
    try:
        run = rt.run(model)
    except KeyError as e:
        raise user_error(str(e.args[0])) from None
    attr = check_attribute(attribute)
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise user_error(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    if not (math.isfinite(t) and 0 <= t <= 1):
        raise user_error(f"threshold must be between 0 and 1, got {threshold!r}")
    out = views.fairness_json(run.scores, attr, t)
    out["model"] = run.name
    return out


def check_attribute(name: Any) -> str:
    """An attribute, or two crossed ("race*gender"), as its canonical name; else a user error."""
    try:
        return attribute(str(name).strip().replace(" ", "")).name
    except ValueError as e:
        raise user_error(str(e)) from None


def models(rt: Runtime) -> list[dict[str, Any]]:
    """The runs the fairness endpoint knows, with the loaded model marked."""
    labels = menu_labels(list(rt.runs.values()))
    return [
        {
            "name": r.name,
            "label": labels[r.name],
            "method": r.method,
            "attribute": r.attribute,
            "seed": r.seed,
            "fairness_scale": r.fairness_scale,
            "data": r.data,
            "scenario": r.scenario,
            "n_test": r.scores.n,
            "loaded": r.name == rt.default_run,
        }
        for r in rt.runs.values()
    ]


def group_slider_updates(attr: str, values: Sequence[float] | None = None) -> list:
    a = attribute(attr)
    out = []
    for j in range(MAX_GROUPS):
        if j < a.n_groups:
            v = OPERATING_POINT if values is None else float(values[j])
            out.append(gr.update(visible=True, label=f"Threshold: {a.groups[j]}", value=v))
        else:
            out.append(gr.update(visible=False))
    return out


def model_choices(rt: Runtime, scenario: str = MAIN) -> list[tuple[str, str]]:
    """(label, run name) of the Fairness tab's model menu: the runs of ``scenario``."""
    runs = runs_of(list(rt.runs.values()), scenario)
    labels = menu_labels(runs)  # unique within the menu
    return [(labels[r.name], r.name) for r in runs]


def fairness_scenario(rt: Runtime, scenario: str) -> tuple[Any, str]:
    """On a Scenario choice: the model menu limited to its runs, with its first CLIP run chosen
    (the main data set: the loaded model's run), and the line with its role and cause."""
    if scenario != MAIN and scenario not in rt.scenarios:
        known = ", ".join([MAIN, *rt.scenarios])
        raise user_error(f"unknown scenario {scenario!r}; choose one of {known}")
    menu = gr.update(choices=model_choices(rt, scenario), value=menu_default(rt, scenario))
    return menu, scenario_note(scenario, rt.scenarios)


def menu_default(rt: Runtime, scenario: str = MAIN) -> str | None:
    """The model chosen with ``scenario``: on the main data the loaded model's run (else the
    first), on a scenario its first CLIP run, the reference the methods are compared with."""
    runs = runs_of(list(rt.runs.values()), scenario)
    if scenario != MAIN:
        return first_clip(runs)
    hit = [r.name for r in runs if r.name == rt.default_run]
    return (hit or [r.name for r in runs] or [None])[0]


def fairness_select(
    rt: Runtime,
    model: str,
    attr: str,
    tradeoff_metric: str,
    own: ScoreSet | None = None,
    scenario: str = MAIN,
) -> tuple:
    """On model, attribute or scenario change: group sliders, the comparison of the scenario's
    runs (with its post-processing baselines and verdict), the trade-off (main data only) and
    expert load."""
    ss = scores_of(rt, model, own)
    chosen = None if scenario in (None, "", MAIN) else scenario
    rows, table_md = views.comparison(list(rt.runs.values()), attr, chosen)
    if chosen and (extra := baselines_markdown(rt.fair_test.get(chosen))):
        table_md += "\n\n" + extra
    return (
        *group_slider_updates(attr),
        plots.model_comparison(rows, views.COMPARE_METRICS, attr, scenario=chosen),
        table_md,
        fairness_tradeoff(rt, attr, tradeoff_metric),
        views.load_view(ss, attr),
    )


def fairness_tradeoff(rt: Runtime, attr: str, metric: str) -> Any:
    """The accuracy-fairness trade-off figure: the sweep, the references, the loaded run."""
    points = views.tradeoff_points(list(rt.runs.values()), attr, metric, rt.default_run)
    return plots.tradeoff(points, metric, attr)


def fairness_update(
    ss: ScoreSet, attr: str, mode: str, single: float, *groups: float, compute_ci: bool = False
) -> tuple:
    """The panel (summary, group table, ROC, confusion, rates) at the sliders' thresholds."""
    threshold = views.resolve_thresholds(attr, mode, single, groups)  # type: ignore[arg-type]
    return panel_view(ss, attr, threshold, compute_ci=compute_ci)


def check_cost(cost_ratio: Any) -> float | None:
    """The cost ratio as a positive finite float, or None (0, negative, NaN, not a number)."""
    try:
        cost = float(cost_ratio)
    except (TypeError, ValueError):
        return None
    return cost if math.isfinite(cost) and cost > 0 else None


def strategy_summary(
    ss: ScoreSet, attr: str, strategy: str, t: Sequence[float], cost: float
) -> str:
    """What the chosen thresholds do: accuracy and flag rate against the single threshold, and
    the guardrail warnings (fairmoe.guardrails.strategy_warnings)."""
    a = attribute(attr)
    chosen = ss.fairness(a.name, t[0] if strategy == "single" else {a.name: list(t)}, ci="none")
    single = ss.choose(attr, "single", cost)[0]
    base = ss.fairness(a.name, single, ci="none")
    ws = strategy_warnings(base, chosen, per_group=strategy != "single")
    shown = ", ".join(f"{name} {v:.3f}" for name, v in zip(a.groups, t, strict=True))
    head = (
        f"Thresholds set by **{STRATEGY_LABELS[strategy]}** (cost ratio {cost:g}): {shown}. "
        f"Overall accuracy **{chosen.accuracy:.3f}** (against "
        f"{base.accuracy:.3f} at the cost-optimal single threshold {single:.3f}, not the "
        f"slider's value)."
    )
    return head + "\n\n" + warnings_markdown(ws)


@dataclass(frozen=True)
class StrategyChoice:
    """The last strategy applied (kept in a tab's state): the audit names it while the sliders
    still hold its thresholds."""

    strategy: str
    cost: float
    thresholds: tuple[float, ...]


@dataclass(frozen=True)
class StrategyUpdate:
    """What a strategy button sets: mode, single and per-group sliders, summary, remembered choice."""

    mode: Any
    single: Any
    groups: tuple[Any, ...]  # MAX_GROUPS slider values (or gr.update() to keep them)
    summary: str
    chosen: StrategyChoice | None

    def outputs(self) -> tuple:
        """In the order of [mode, single, *group sliders, summary, chosen state]."""
        return (self.mode, self.single, *self.groups, self.summary, self.chosen)


def fairness_strategy(ss: ScoreSet, attr: str, strategy: str, cost_ratio: Any) -> StrategyUpdate:
    """The thresholds chosen by fairmoe.metrics.choose_thresholds, rounded to 3 decimals; an
    invalid cost ratio leaves the sliders as they are and says why (no error, no traceback)."""
    if strategy not in STRATEGIES:
        raise user_error(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    cost = check_cost(cost_ratio)
    if cost is None:
        msg = (
            icon("warn") + f"The cost ratio must be a positive number (e.g. 4), not {cost_ratio!r}."
        )
        return StrategyUpdate(gr.update(), gr.update(), (gr.update(),) * MAX_GROUPS, msg, None)
    t = [round(v, 3) for v in ss.choose(attr, strategy, cost)]
    mode = "single" if strategy == "single" else "per group"
    padded = (*t, *([OPERATING_POINT] * (MAX_GROUPS - len(t))))
    summary = strategy_summary(ss, attr, strategy, t, cost)
    return StrategyUpdate(mode, t[0], padded, summary, StrategyChoice(strategy, cost, tuple(t)))


def sensitivity_preset(ss: ScoreSet, target: float = SENSITIVITY_TARGET) -> tuple[float, str]:
    """(threshold, sentence): the highest single threshold whose overall sensitivity reaches
    ``target`` on these scores, stating the threshold it picked and what it gives."""
    # rounded down to the slider's 0.001 steps: rounding up could lose the target
    t = math.floor(ss.threshold_for_sensitivity(target) * 1000) / 1000
    res = ss.fairness("race", t, ci="none")
    return t, (
        f"Operating point for overall sensitivity {target:.2f}: threshold **{t:.3f}** gives "
        f"sensitivity {res.tpr:.3f} and false-alarm rate {res.fpr:.3f} on everyone "
        f"(n = {ss.n}). The per-group rates are in the tables below."
    )
