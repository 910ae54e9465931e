"""The Cohort tab: score a zipped, labelled cohort (/cohort), list the rows that could not be
read, and show the shared fairness panel of the user's own scores. Scans that are not assessable
by the model stay out of the metrics unless "Include scans that are not assessable" is ticked
(ticking it after scoring re-filters the scored cohort: nothing is scored again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import callbacks as cb
from app.callbacks.cohort_tab import (
    INCLUDE_LABEL,
    assessability_note,
    cohort_including,
    cohort_scored,
)
from app.events import model_events, session
from app.privacy import SessionFiles
from app.runtime import Runtime
from app.tabs import panel as workbench
from app.text import STRATEGY_LABELS
from app.views import attribute_menu, menu_labels
from fairmoe.metrics import STRATEGIES
from fairmoe.metrics.thresholds import DEFAULT_COST_RATIO

__all__ = ["CohortTab", "build_cohort_tab", "wire_cohort"]


@dataclass(frozen=True)
class CohortTab:
    """The Cohort tab's components that events read or write."""

    file: gr.File
    run: gr.Button
    csv: gr.File
    include: gr.Checkbox  # scans that are not assessable in the metrics (off: left out)
    assessable_md: gr.Markdown  # how many were left out, or the warning that they are in
    scored: gr.State  # the CohortResult, re-filtered when ``include`` changes
    results: gr.Column  # hidden until a cohort is scored
    bad: gr.Dataframe
    attr: gr.Dropdown
    panel: workbench.FairnessPanel
    json: gr.JSON  # what /cohort returned
    model: gr.Dropdown  # the scored cohort, or any run's test scores
    thresholds: workbench.ThresholdSliders
    cost: gr.Number
    strategy: gr.Dropdown
    apply: gr.Button
    strategy_md: gr.Markdown
    chosen: gr.State  # the last strategy applied
    audit: workbench.AuditControls

    @property
    def sliders(self) -> list[gr.Slider]:
        return self.thresholds.sliders


def _upload_row() -> tuple[gr.File, gr.Button, gr.File, gr.Checkbox]:
    with gr.Row(equal_height=False):
        file = workbench.upload_box("Cohort (.zip)", ".zip", "cohort-file", 120)
        with gr.Column():
            run = gr.Button("Score cohort", variant="primary", elem_id="cohort-run")
            include = gr.Checkbox(
                False,
                label=INCLUDE_LABEL,
                info="Off: scans the model cannot assess are listed but left out of the metrics "
                "(their probabilities mean nothing).",
                elem_id="cohort-include",
            )
            csv = gr.File(label="Scores (CSV)", interactive=False, elem_id="cohort-csv", height=80)
    return file, run, csv, include


def _model_menu(rt: Runtime | None) -> gr.Dropdown:
    runs = list(rt.runs.values()) if rt else []
    labels = menu_labels(runs)
    choices = [("Your cohort (scored by the loaded model)", cb.USER_SCORES)]
    choices += [(f"Test scores: {labels[r.name]}", r.name) for r in runs]
    return gr.Dropdown(
        choices, value=cb.USER_SCORES, label="Scores", elem_id="cohort-model", scale=3
    )


def _threshold_controls() -> tuple:
    with gr.Row():
        cost = gr.Number(
            DEFAULT_COST_RATIO, label="Cost ratio (miss / false alarm)", elem_id="cohort-cost"
        )
        strategy = gr.Dropdown(
            [(STRATEGY_LABELS[s], s) for s in STRATEGIES],
            value="single",
            label="Threshold strategy",
            elem_id="cohort-strategy",
        )
        apply = gr.Button("Apply strategy", size="sm", elem_id="cohort-apply")
    strategy_md = gr.Markdown(elem_id="cohort-strategy-md")
    thresholds = workbench.build_threshold_sliders("cohort", label="Threshold")
    return cost, strategy, apply, strategy_md, thresholds


def build_cohort_tab(rt: Runtime | None = None) -> CohortTab:
    """Lay out the Cohort tab (inside a ``gr.Tab``); ``rt`` lists the runs in the model menu."""
    gr.Markdown(
        "Upload a **.zip** of labelled cases: the FairVLMed layout (`data_summary.csv` and "
        "`Training/Validation/Test/*.npz`), or a CSV with columns "
        "`file,label,race,gender,ethnicity,language,note` beside the image files it names. "
        "Rows that cannot be read are listed with the reason; the rest are scored by the loaded "
        "model. The panel below shows your cohort or, to compare, any run's test scores."
    )
    file, run, csv, include = _upload_row()
    assessable_md = gr.Markdown(elem_id="cohort-assessable")
    with gr.Column(visible=False) as results:
        bad = gr.Dataframe(
            headers=["row", "file", "reason"],
            label="Rows not scored",
            interactive=False,
            max_height=220,
            wrap=True,
        )
    with gr.Row():
        model = _model_menu(rt)
        attr = gr.Dropdown(
            attribute_menu(), value="race", label="Attribute (or two crossed)", scale=1
        )
        with gr.Column(scale=2):
            audit = workbench.build_audit_controls("cohort")
    cost, strategy, apply, strategy_md, thresholds = _threshold_controls()
    panel = workbench.build_fairness_panel("cohort")
    with gr.Accordion("Raw answer (what /cohort returns)", open=False):
        raw = gr.JSON(label="cohort", max_height=400)
    return CohortTab(
        file=file,
        run=run,
        csv=csv,
        include=include,
        assessable_md=assessable_md,
        scored=gr.State(None),
        results=results,
        bad=bad,
        attr=attr,
        panel=panel,
        json=raw,
        model=model,
        thresholds=thresholds,
        cost=cost,
        strategy=strategy,
        apply=apply,
        strategy_md=strategy_md,
        chosen=gr.State(None),
        audit=audit,
    )


def _wire_strategy_and_audit(rt: Runtime, tab: CohortTab, state: gr.State) -> None:
    tab.apply.click(
        workbench.strategy_handler(rt, "cohort"),
        [tab.model, state, tab.attr, tab.cost, tab.strategy],
        [tab.thresholds.mode, *tab.sliders, tab.strategy_md, tab.chosen],
        api_visibility="private",
        show_progress="hidden",
    )
    tab.audit.button.click(
        workbench.audit_handler(rt, "cohort"),
        [tab.model, state, tab.attr, tab.thresholds.mode, tab.chosen, *tab.sliders],
        [tab.audit.file],
        api_visibility="private",
    )


def wire_cohort(rt: Runtime, tab: CohortTab, state: gr.State, files: SessionFiles) -> None:
    """Scoring fills ``state`` with the cohort's ScoreSet; the model menu, attribute and
    thresholds redraw the panel."""

    def cohort(
        upload: str | None,
        include_not_assessable: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        request: gr.Request = None,
    ) -> tuple:
        files.track(session(request), cb.upload_path(upload))
        summary, csv_path, ss, result = cohort_scored(
            rt,
            upload,
            lambda x, d: progress(x, desc=d),
            include_not_assessable=include_not_assessable,
        )
        files.track(session(request), csv_path)
        return cb.numpy_free(summary), csv_path, ss, result

    def including(result: Any, include: bool) -> tuple:
        if result is None:  # nothing scored yet: the box applies to the next cohort
            return gr.update(), gr.update(), None, ""
        summary, ss, result = cohort_including(rt, result, include)
        summary = cb.numpy_free(summary)
        return summary, ss, result, assessability_note(summary)

    def view(model: str, ss: Any, attr: str, mode: str, *ts: float) -> tuple:
        return cb.cohort_panel(rt, model, ss, attr, mode, *ts)

    def view_ci(model: str, ss: Any, attr: str, mode: str, *ts: float) -> tuple:
        return cb.cohort_panel(rt, model, ss, attr, mode, *ts, compute_ci=True)

    def sliders(attr: str) -> list:
        return cb.group_slider_updates(attr)

    inputs = [tab.model, state, tab.attr, tab.thresholds.mode, *tab.sliders]
    outs = tab.panel.outputs(load=True)
    tab.run.click(
        cohort,
        [tab.file, tab.include],
        [tab.json, tab.csv, state, tab.scored],
        api_name="cohort",
        **model_events(rt.config)["cohort"],
    ).success(
        lambda summary: (
            cb.bad_rows_table(summary),
            gr.update(visible=True),
            cb.USER_SCORES,
            assessability_note(summary),
        ),
        [tab.json],
        [tab.bad, tab.results, tab.model, tab.assessable_md],
        api_visibility="private",
    ).success(view, inputs, outs, api_visibility="private")
    tab.include.input(
        including,
        [tab.scored, tab.include],
        [tab.json, state, tab.scored, tab.assessable_md],
        api_visibility="private",
        show_progress="hidden",
    ).success(view, inputs, outs, api_visibility="private")
    tab.panel.ci.click(view_ci, inputs, outs, api_visibility="private")
    tab.attr.change(sliders, [tab.attr], list(tab.thresholds.groups), api_visibility="private")
    gr.on(
        [tab.model.change, tab.attr.change, tab.thresholds.mode.change]
        + [s.change for s in tab.sliders],
        view,
        inputs,
        outs,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    _wire_strategy_and_audit(rt, tab, state)
