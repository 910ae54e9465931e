"""The Fairness tab: a run's cached test scores at thresholds the user sets or a strategy picks,
the shared fairness panel, and comparisons across runs (models side by side, trade-off sweep).

A Scenario menu above the model menu picks the test data: the main data set, or one of the fair
test's scenarios (a bias with a known cause), whose runs are compared on its own test draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import callbacks as cb
from app.events import LIVE
from app.runtime import Runtime
from app.scenarios import MAIN, scenario_choices, scenario_note
from app.tabs import panel as workbench
from app.text import STRATEGY_HELP, STRATEGY_LABELS, glossary_markdown
from app.views import TRADEOFF_METRICS, attribute_menu
from app.warnings_md import ES_AUC_RULE
from fairmoe.metrics import STRATEGIES
from fairmoe.metrics.thresholds import DEFAULT_COST_RATIO, SENSITIVITY_TARGET
from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT

__all__ = ["FairnessTab", "build_fairness_tab", "wire_audit_api", "wire_fairness"]


@dataclass(frozen=True)
class FairnessTab:
    """The Fairness tab's components that events read or write."""

    scenario: gr.Dropdown  # the main data set or a fair-test scenario: limits the model menu
    scenario_md: gr.Markdown  # its role and one-line cause
    model: gr.Dropdown
    attr: gr.Dropdown
    cost: gr.Number
    strategies: tuple[gr.Button, ...]  # one per fairmoe.metrics.STRATEGIES, in that order
    sensitivity: gr.Button  # the operating-point preset: overall sensitivity SENSITIVITY_TARGET
    strategy_md: gr.Markdown
    thresholds: workbench.ThresholdSliders
    panel: workbench.FairnessPanel
    compare: gr.Plot
    compare_md: gr.Markdown
    trade_metric: gr.Radio
    tradeoff: gr.Plot
    own_file: gr.File  # the user's own scores CSV (any model)
    own_md: gr.Markdown
    own: gr.State  # its ScoreSet
    chosen: gr.State  # the last strategy applied: {strategy, cost, thresholds}
    audit: workbench.AuditControls

    @property
    def sliders(self) -> list[gr.Slider]:
        """The single threshold, then the per-group ones."""
        return self.thresholds.sliders


def _scenario_picker(rt: Runtime) -> tuple[gr.Dropdown, gr.Markdown]:
    """The Scenario menu and its note, hidden when runs.json has no scenario with runs."""
    choices = scenario_choices(list(rt.runs.values()), rt.scenarios)
    shown = len(choices) > 1
    scenario = gr.Dropdown(
        choices,
        value=MAIN,
        label="Scenario (test data with a known cause of bias)",
        info="Limits the models below to the runs scored on this data.",
        elem_id="fair-scenario",
        visible=shown,
    )
    note = gr.Markdown(
        scenario_note(MAIN, rt.scenarios), elem_id="fair-scenario-note", visible=shown
    )
    return scenario, note


def _run_pickers(rt: Runtime) -> tuple[gr.Dropdown, gr.Dropdown, gr.Number]:
    with gr.Row():
        model = gr.Dropdown(
            cb.model_choices(rt, MAIN),
            value=cb.menu_default(rt, MAIN),
            label="Model (test-set scores)",
            elem_id="fair-model",
            scale=3,
        )
        attr = gr.Dropdown(
            attribute_menu(),
            value=rt.predictor.attribute if rt.predictor.attribute in ATTRIBUTE_NAMES else "race",
            label="Attribute (or two crossed)",
            elem_id="fair-attr",
            scale=2,
        )
        cost = gr.Number(
            DEFAULT_COST_RATIO,
            label="Cost ratio (miss / false alarm)",
            elem_id="fair-cost",
            info="4 = a missed glaucoma costs four false alarms; used by the strategies.",
            scale=2,
        )
    return model, attr, cost


def _comparisons() -> tuple[gr.Plot, gr.Markdown, gr.Radio, gr.Plot]:
    gr.Markdown("### Models side by side")
    with gr.Row(equal_height=False):
        compare = gr.Plot(show_label=False, elem_id="fair-compare")
        compare_md = gr.Markdown(elem_id="fair-compare-table")
    gr.Markdown("### Accuracy-fairness trade-off")
    with gr.Row(equal_height=False):
        trade_metric = gr.Radio(
            list(TRADEOFF_METRICS), value="DPD", label="Fairness metric", scale=1
        )
        tradeoff = gr.Plot(show_label=False, elem_id="fair-tradeoff", scale=4)
    return compare, compare_md, trade_metric, tradeoff


def _own_and_audit() -> tuple[gr.File, gr.Markdown, workbench.AuditControls]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3), gr.Accordion("Your own scores (any model)", open=False):
            own_file = workbench.upload_box(
                "Scores CSV: id, label, score, race, gender, ethnicity, language",
                ".csv",
                "fair-own-file",
                110,
            )
            own_md = gr.Markdown(elem_id="fair-own")
        with gr.Column(scale=2):
            audit = workbench.build_audit_controls("fair")
    return own_file, own_md, audit


def build_fairness_tab(rt: Runtime) -> FairnessTab:
    """Lay out the Fairness tab (inside a ``gr.Tab``)."""
    scenario, scenario_md = _scenario_picker(rt)
    model, attr, cost = _run_pickers(rt)
    own_file, own_md, audit = _own_and_audit()
    with gr.Row():
        strategies = tuple(
            gr.Button(STRATEGY_LABELS[s], size="sm", elem_id=f"strategy-{s}") for s in STRATEGIES
        )
        sensitivity = gr.Button(
            f"Overall sensitivity {SENSITIVITY_TARGET:.2f}", size="sm", elem_id="fair-sensitivity"
        )
    gr.Markdown(" · ".join(f"**{STRATEGY_LABELS[s]}**: {STRATEGY_HELP[s]}" for s in STRATEGIES))
    strategy_md = gr.Markdown(elem_id="fair-strategy")
    thresholds = workbench.build_threshold_sliders("fair", attr=attr.value)
    panel = workbench.build_fairness_panel("fair", place_load=False)
    with gr.Accordion("Glossary: what each metric means", open=False):
        gr.Markdown(glossary_markdown() + "\n\n**Small and one-class groups.** " + ES_AUC_RULE)
    compare, compare_md, trade_metric, tradeoff = _comparisons()
    gr.Markdown("### Expert load per demographic group")
    panel.load.render()
    return FairnessTab(
        scenario=scenario,
        scenario_md=scenario_md,
        model=model,
        attr=attr,
        cost=cost,
        strategies=strategies,
        sensitivity=sensitivity,
        strategy_md=strategy_md,
        thresholds=thresholds,
        panel=panel,
        compare=compare,
        compare_md=compare_md,
        trade_metric=trade_metric,
        tradeoff=tradeoff,
        own_file=own_file,
        own_md=own_md,
        own=gr.State(None),
        chosen=gr.State(None),
        audit=audit,
    )


def _wire_strategies(rt: Runtime, fair: FairnessTab) -> None:
    """Each strategy button sets the mode and every threshold slider, and remembers itself."""
    choose = workbench.strategy_handler(rt, "own")
    for strategy, btn in zip(STRATEGIES, fair.strategies, strict=True):
        btn.click(
            functools.partial(choose, strategy=strategy),
            [fair.model, fair.own, fair.attr, fair.cost],
            [fair.thresholds.mode, *fair.sliders, fair.strategy_md, fair.chosen],
            api_visibility="private",
            show_progress="hidden",
        )

    def preset(model: str, own: Any) -> tuple:
        t, text = cb.sensitivity_preset(cb.scores_of(rt, model, own))
        return "single", t, text, None

    fair.sensitivity.click(
        preset,
        [fair.model, fair.own],
        [fair.thresholds.mode, fair.thresholds.single, fair.strategy_md, fair.chosen],
        api_visibility="private",
        show_progress="hidden",
    )


def _wire_own_and_audit(rt: Runtime, fair: FairnessTab) -> None:
    def load_own(upload: Any, scenario: str) -> tuple:
        if not upload:
            return None, "", gr.update()
        ss = cb.own_scores(upload)
        choices = [(f"Your scores: {ss.name}", cb.USER_SCORES), *cb.model_choices(rt, scenario)]
        note = f"Read **{ss.n}** cases from your CSV; chosen as the model above."
        return ss, note, gr.update(choices=choices, value=cb.USER_SCORES)

    fair.own_file.upload(
        load_own,
        [fair.own_file, fair.scenario],
        [fair.own, fair.own_md, fair.model],
        api_visibility="private",
    )

    fair.audit.button.click(
        workbench.audit_handler(rt, "own"),
        [
            fair.model,
            fair.own,
            fair.attr,
            fair.thresholds.mode,
            fair.chosen,
            *fair.sliders,
        ],
        [fair.audit.file],
        api_visibility="private",
    )


def wire_audit_api(rt: Runtime) -> None:
    """/audit: hidden inputs (named for the client) and a file output, no visible control."""
    with gr.Column(visible=False):
        inputs = [
            gr.Textbox(label="model"),
            gr.Textbox("race", label="attribute"),
            gr.Number(OPERATING_POINT, label="threshold"),
            gr.Textbox("", label="strategy"),
            gr.Number(DEFAULT_COST_RATIO, label="cost_ratio"),
            gr.File(None, label="scores", type="filepath"),
        ]
        out = gr.File(label="audit")
        trigger = gr.Button(visible=False)

    def audit(
        model: str, attribute: str, threshold: float, strategy: str, cost_ratio: float, scores: Any
    ) -> str:
        return cb.audit(rt, model, attribute, threshold, strategy, cost_ratio, scores)

    trigger.click(audit, inputs, out, api_name="audit")


def wire_fairness(rt: Runtime, fair: FairnessTab, demo: gr.Blocks) -> None:
    """Sliders redraw the panel; a model or attribute change (and the page load) redraws all."""
    inputs = [fair.model, fair.attr, fair.thresholds.mode, fair.own, *fair.sliders]
    outputs = fair.panel.outputs()

    def update(model: str, attr: str, mode: str, own: Any, single: float, *groups: float) -> tuple:
        return cb.fairness_update(cb.scores_of(rt, model, own), attr, mode, single, *groups)

    def update_ci(
        model: str, attr: str, mode: str, own: Any, single: float, *groups: float
    ) -> tuple:
        ss = cb.scores_of(rt, model, own)
        return cb.fairness_update(ss, attr, mode, single, *groups, compute_ci=True)

    def select(model: str, attr: str, metric: str, own: Any, scenario: str) -> tuple:
        return cb.fairness_select(rt, model, attr, metric, own, scenario)

    gr.on(
        [s.change for s in fair.sliders] + [fair.thresholds.mode.change],
        update,
        inputs,
        outputs,
        **LIVE,
    )
    select_out = [
        *fair.thresholds.groups,
        fair.compare,
        fair.compare_md,
        fair.tradeoff,
        fair.panel.load,
    ]
    gr.on(
        [fair.model.change, fair.attr.change, demo.load],
        select,
        [fair.model, fair.attr, fair.trade_metric, fair.own, fair.scenario],
        select_out,
        api_visibility="private",
    ).then(update, inputs, outputs, **LIVE)
    # the runs of two menu entries never overlap: the chosen model changes, and redraws all
    fair.scenario.change(
        lambda scenario: cb.fairness_scenario(rt, scenario),
        [fair.scenario],
        [fair.model, fair.scenario_md],
        api_visibility="private",
        show_progress="hidden",
    )
    fair.panel.ci.click(update_ci, inputs, outputs, api_visibility="private")
    fair.trade_metric.change(
        lambda attr, metric: cb.fairness_tradeoff(rt, attr, metric),
        [fair.attr, fair.trade_metric],
        [fair.tradeoff],
        **LIVE,
    )
    _wire_strategies(rt, fair)
    _wire_own_and_audit(rt, fair)
    wire_audit_api(rt)
