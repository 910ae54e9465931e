"""The Cohort tab: score a zipped, labelled cohort (/cohort), list the rows that could not be
read, and show the shared fairness panel of the user's own scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import callbacks as cb
from app.events import model_events, session
from app.privacy import SessionFiles
from app.runtime import Runtime
from app.tabs.panel import FairnessPanel, build_fairness_panel
from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT

__all__ = ["CohortTab", "build_cohort_tab", "wire_cohort"]


@dataclass(frozen=True)
class CohortTab:
    """The Cohort tab's components that events read or write."""

    file: gr.File
    run: gr.Button
    csv: gr.File
    results: gr.Column  # hidden until a cohort is scored
    bad: gr.Dataframe
    attr: gr.Dropdown
    threshold: gr.Slider
    panel: FairnessPanel
    json: gr.JSON  # what /cohort returned


def _upload_row() -> tuple[gr.File, gr.Button, gr.File]:
    with gr.Row(equal_height=False):
        file = gr.File(
            label="Cohort (.zip)",
            file_types=[".zip"],
            type="filepath",
            elem_id="cohort-file",
            height=120,
        )
        with gr.Column():
            run = gr.Button("Score cohort", variant="primary", elem_id="cohort-run")
            csv = gr.File(label="Scores (CSV)", interactive=False, elem_id="cohort-csv", height=80)
    return file, run, csv


def build_cohort_tab() -> CohortTab:
    """Lay out the Cohort tab (inside a ``gr.Tab``)."""
    gr.Markdown(
        "Upload a **.zip** of labelled cases: the FairVLMed layout (`data_summary.csv` and "
        "`Training/Validation/Test/*.npz`), or a CSV with columns "
        "`file,label,race,gender,ethnicity,language,note` beside the image files it names. "
        "Rows that cannot be read are listed with the reason; the rest are scored."
    )
    file, run, csv = _upload_row()
    with gr.Column(visible=False) as results:
        bad = gr.Dataframe(
            headers=["row", "file", "reason"],
            label="Rows not scored",
            interactive=False,
            max_height=220,
            wrap=True,
        )
        with gr.Row():
            attr = gr.Dropdown(list(ATTRIBUTE_NAMES), value="race", label="Attribute")
            threshold = gr.Slider(
                0,
                1,
                value=OPERATING_POINT,
                step=0.001,
                label="Threshold",
                elem_id="cohort-threshold",
            )
        panel = build_fairness_panel("cohort")
    with gr.Accordion("Raw answer (what /cohort returns)", open=False):
        raw = gr.JSON(label="cohort", max_height=400)
    return CohortTab(
        file=file,
        run=run,
        csv=csv,
        results=results,
        bad=bad,
        attr=attr,
        threshold=threshold,
        panel=panel,
        json=raw,
    )


def wire_cohort(rt: Runtime, tab: CohortTab, state: gr.State, files: SessionFiles) -> None:
    """Scoring fills ``state`` with the cohort's ScoreSet; attribute and threshold redraw it."""

    def cohort(
        upload: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        request: gr.Request = None,
    ) -> tuple:
        files.track(session(request), cb.upload_path(upload))
        summary, csv_path, ss = cb.cohort(rt, upload, lambda x, d: progress(x, desc=d))
        files.track(session(request), csv_path)
        return cb.numpy_free(summary), csv_path, ss

    def view(ss: Any, attr: str, threshold: float) -> tuple:
        return cb.cohort_view(ss, attr, threshold)

    def view_ci(ss: Any, attr: str, threshold: float) -> tuple:
        return cb.cohort_view(ss, attr, threshold, compute_ci=True)

    inputs = [state, tab.attr, tab.threshold]
    outs = tab.panel.outputs(load=True)
    tab.run.click(
        cohort,
        [tab.file],
        [tab.json, tab.csv, state],
        api_name="cohort",
        **model_events()["cohort"],
    ).success(
        lambda summary: (cb.bad_rows_table(summary), gr.update(visible=True)),
        [tab.json],
        [tab.bad, tab.results],
        api_visibility="private",
    ).success(view, inputs, outs, api_visibility="private")
    tab.panel.ci.click(view_ci, inputs, outs, api_visibility="private")
    gr.on(
        [tab.attr.change, tab.threshold.change],
        view,
        inputs,
        outs,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
