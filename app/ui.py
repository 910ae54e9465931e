"""Gradio layout and event wiring: five tabs over one loaded Runtime.

Public endpoints (gradio_client): /predict, /explain, /fairness, /cohort, /models. Every other event
is private. Queue: model events share one concurrency slot (``MODEL_QUEUE``); see ``QUEUE_*``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from app import callbacks as cb  # noqa: E402
from app import card  # noqa: E402
from app.privacy import CLEAN_EVERY_S, SESSION_MAX_AGE_S, SessionFiles, cache_dir  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.text import STRATEGY_HELP, STRATEGY_LABELS, glossary_markdown  # noqa: E402
from app.theme import CSS, theme  # noqa: E402
from app.views import TRADEOFF_METRICS  # noqa: E402
from fairmoe.metrics import STRATEGIES  # noqa: E402
from fairmoe.schema import ATTRIBUTE_NAMES  # noqa: E402

__all__ = [
    "MAX_FILE_SIZE",
    "MODEL_QUEUE",
    "QUEUE_CONCURRENCY",
    "QUEUE_MAX_SIZE",
    "build_demo",
    "launch_kwargs",
]

# The model runs on 2 CPU cores with torch using both: two model calls at once would only halve
# each other's speed and double peak memory, so predict/explain/cohort share ONE slot.
MODEL_QUEUE = "model"
MODEL_CONCURRENCY = 1
# Everything else (fairness views from cached scores) is numpy in a few ms: a few at once is fine.
QUEUE_CONCURRENCY = 4
# Beyond this many waiting events new requests are refused with "queue full" instead of piling
# up behind a long cohort job.
QUEUE_MAX_SIZE = 64
# Single scans are limited to 50 MB by the Predictor; cohort zips need more room.
MAX_FILE_SIZE = "200mb"
SCAN_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npz"]


def launch_kwargs(rt: Runtime) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` shared by ``python -m app``, tests and benchmarks."""
    return {
        "theme": theme(),
        "css": CSS,
        "share": False,
        "max_file_size": MAX_FILE_SIZE,
        "allowed_paths": [str(rt.assets)],
        "footer_links": ["api", "settings"],
        "show_error": True,
        "ssr_mode": False,
    }


def _case_tab(rt: Runtime) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            c["scan"] = gr.File(
                label="Scan: SLO or colour fundus (PNG, JPEG, TIFF) or a FairVLMed .npz",
                file_types=SCAN_TYPES,
                type="filepath",
                elem_id="case-scan",
                height=120,
            )
            c["upload_info"] = gr.Markdown(elem_id="case-upload-info")
            c["note"] = gr.Textbox(
                label="Clinical note (optional)",
                lines=4,
                max_lines=10,
                elem_id="case-note",
                placeholder="e.g. IOP 21/22 mmHg, C/D 0.7 OU, inferior rim thinning ...",
            )
            with gr.Accordion("Patient attributes (optional): subgroup context only", open=True):
                gr.Markdown(
                    "These are **never model inputs**. They only select which test-set groups "
                    "are shown below, so you can see how reliable the model is for such patients."
                )
                c["attrs"] = []
                for pair in (ATTRIBUTE_NAMES[:2], ATTRIBUTE_NAMES[2:]):
                    with gr.Row():
                        c["attrs"] += [
                            gr.Dropdown(
                                cb.attribute_choices(a),
                                value=cb.NOT_GIVEN,
                                label=a.capitalize(),
                                elem_id=f"case-{a}",
                            )
                            for a in pair
                        ]
            c["analyse"] = gr.Button("Analyse", variant="primary", elem_id="case-analyse")
            if rt.examples:
                gr.Markdown("**Examples** (one click loads and analyses a case)")
                with gr.Row():
                    c["examples"] = [
                        gr.Button(ex.title, size="sm", elem_id=f"example-{i}")
                        for i, ex in enumerate(rt.examples)
                    ]
            else:
                c["examples"] = []
        with gr.Column(scale=6):
            c["result"] = gr.Markdown(
                "### Upload a scan or pick an example, then press *Analyse*.",
                elem_id="case-result",
            )
            c["prob"] = gr.Plot(show_label=False, elem_id="case-prob")
            with gr.Row(equal_height=False):
                with gr.Column(min_width=200):
                    c["preview"] = gr.Image(
                        show_label=False,
                        type="filepath",
                        interactive=False,
                        height=230,
                        buttons=[],
                        elem_id="case-preview",
                    )
                    gr.Markdown(
                        "<small>What the model sees: the centre square of the scan, "
                        "resized.</small>"
                    )
                c["meaning"] = gr.Markdown(elem_id="case-meaning")
            with gr.Group():
                gr.Markdown("**Warnings**", padding=True)
                c["warnings"] = gr.Markdown(elem_id="case-warnings", padding=True)
            c["context"] = gr.Markdown(cb.context_view(rt, *[None] * 4), elem_id="case-context")
            with gr.Accordion("Raw answer (what /predict returns)", open=False):
                c["json"] = gr.JSON(label="predict", max_height=400)
    return c


def _experts_tab(rt: Runtime) -> dict[str, Any]:
    e: dict[str, Any] = {}
    choices = cb.expert_choices(rt)
    e["summary"] = gr.Markdown(
        "Analyse a scan on the **Case** tab first.", elem_id="experts-summary"
    )
    e["shown"] = gr.CheckboxGroup(
        choices,
        value=choices[: min(len(choices), 5)],
        label="Show attributions of",
        elem_id="experts-shown",
    )
    gr.Markdown("#### Attributions on the scan (one colour scale shared by all experts)")
    e["attribution"] = gr.Plot(show_label=False, elem_id="experts-attribution")
    gr.Markdown(
        "#### Image token MoE: gate weights of the patches each expert kept\n"
        "Crosses: patches the expert was chosen for but dropped by its capacity (when the model "
        "reports them). Last panel: patches no expert kept, whose expert output is zero."
    )
    e["routing"] = gr.Plot(show_label=False, elem_id="experts-routing")
    with gr.Row(equal_height=False):
        e["gates"] = gr.Plot(show_label=False, elem_id="experts-gates")
        e["note"] = gr.HighlightedText(
            label="Note tokens coloured by attribution (scan-note similarity)",
            show_legend=False,
            combine_adjacent=False,
            elem_id="experts-note",
        )
    with gr.Accordion("Overlay PNGs and raw answer (what /explain returns)", open=False):
        e["gallery"] = gr.Gallery(label="Overlays", columns=6, height=260, object_fit="contain")
        e["json"] = gr.JSON(label="explain", max_height=400)
    return e


def _fairness_tab(rt: Runtime) -> dict[str, Any]:
    f: dict[str, Any] = {}
    runs = list(rt.runs.values())
    default = rt.default_run or (runs[0].name if runs else None)
    with gr.Row():
        f["model"] = gr.Dropdown(
            [(r.label, r.name) for r in runs],
            value=default,
            label="Model (test-set scores)",
            elem_id="fair-model",
            scale=3,
        )
        f["attr"] = gr.Dropdown(
            list(ATTRIBUTE_NAMES),
            value=rt.predictor.attribute if rt.predictor.attribute in ATTRIBUTE_NAMES else "race",
            label="Attribute",
            elem_id="fair-attr",
            scale=2,
        )
        f["cost"] = gr.Number(
            4.0,
            label="Cost ratio (miss / false alarm)",
            minimum=0.01,
            elem_id="fair-cost",
            info="4 = a missed glaucoma costs four false alarms; used by the strategies.",
            scale=2,
        )
    with gr.Row():
        f["strategies"] = [
            gr.Button(STRATEGY_LABELS[s], size="sm", elem_id=f"strategy-{s}") for s in STRATEGIES
        ]
    gr.Markdown(" · ".join(f"**{STRATEGY_LABELS[s]}**: {STRATEGY_HELP[s]}" for s in STRATEGIES))
    f["strategy_md"] = gr.Markdown(elem_id="fair-strategy")
    with gr.Row():
        f["mode"] = gr.Radio(
            ["single", "per group"],
            value="single",
            label="Thresholds",
            elem_id="fair-mode",
            scale=1,
        )
        f["threshold"] = gr.Slider(
            0,
            1,
            value=0.5,
            step=0.001,
            label="Threshold (all groups)",
            elem_id="fair-threshold",
            info="Calibrated probability at or above which a case is called glaucoma.",
            scale=3,
        )
    with gr.Row():
        f["groups"] = [
            gr.Slider(
                0,
                1,
                value=0.5,
                step=0.001,
                label=f"Threshold: group {j}",
                elem_id=f"fair-g{j}",
                visible=j < 3,
                info="used in 'per group' mode",
            )
            for j in range(cb.MAX_GROUPS)
        ]
    with gr.Row(equal_height=False):
        f["summary"] = gr.Markdown(elem_id="fair-summary")
        f["ci"] = gr.Button(
            "Confidence intervals", size="sm", elem_id="fair-ci", scale=0, min_width=180
        )
    f["groups_md"] = gr.Markdown(elem_id="fair-groups")
    with gr.Row(equal_height=False):
        f["roc"] = gr.Plot(show_label=False, elem_id="fair-roc")
        f["rates"] = gr.Plot(show_label=False, elem_id="fair-rates")
    f["confusion"] = gr.Plot(show_label=False, elem_id="fair-confusion")
    with gr.Accordion("Glossary: what each metric means", open=False):
        gr.Markdown(glossary_markdown())
    gr.Markdown("### Models side by side")
    with gr.Row(equal_height=False):
        f["compare"] = gr.Plot(show_label=False, elem_id="fair-compare")
        f["compare_md"] = gr.Markdown(elem_id="fair-compare-table")
    gr.Markdown("### Accuracy-fairness trade-off")
    with gr.Row(equal_height=False):
        f["trade_metric"] = gr.Radio(
            list(TRADEOFF_METRICS), value="DPD", label="Fairness metric", scale=1
        )
        f["tradeoff"] = gr.Plot(show_label=False, elem_id="fair-tradeoff", scale=4)
    gr.Markdown("### Expert load per demographic group")
    f["load"] = gr.Plot(show_label=False, elem_id="fair-load")
    return f


def _cohort_tab() -> dict[str, Any]:
    k: dict[str, Any] = {}
    gr.Markdown(
        "Upload a **.zip** of labelled cases: the FairVLMed layout (`data_summary.csv` and "
        "`Training/Validation/Test/*.npz`), or a CSV with columns "
        "`file,label,race,gender,ethnicity,language,note` beside the image files it names. "
        "Rows that cannot be read are listed with the reason; the rest are scored."
    )
    with gr.Row(equal_height=False):
        k["file"] = gr.File(
            label="Cohort (.zip)",
            file_types=[".zip"],
            type="filepath",
            elem_id="cohort-file",
            height=120,
        )
        with gr.Column():
            k["run"] = gr.Button("Score cohort", variant="primary", elem_id="cohort-run")
            k["csv"] = gr.File(
                label="Scores (CSV)", interactive=False, elem_id="cohort-csv", height=80
            )
    with gr.Column(visible=False) as k["results"]:
        k["bad"] = gr.Dataframe(
            headers=["row", "file", "reason"],
            label="Rows not scored",
            interactive=False,
            max_height=220,
            wrap=True,
        )
        with gr.Row():
            k["attr"] = gr.Dropdown(list(ATTRIBUTE_NAMES), value="race", label="Attribute")
            k["threshold"] = gr.Slider(
                0, 1, value=0.5, step=0.001, label="Threshold", elem_id="cohort-threshold"
            )
        with gr.Row(equal_height=False):
            k["summary"] = gr.Markdown(elem_id="cohort-summary")
            k["ci"] = gr.Button(
                "Confidence intervals", size="sm", elem_id="cohort-ci", scale=0, min_width=180
            )
        k["groups_md"] = gr.Markdown()
        with gr.Row(equal_height=False):
            k["roc"] = gr.Plot(show_label=False)
            k["rates"] = gr.Plot(show_label=False)
        k["confusion"] = gr.Plot(show_label=False)
        k["load"] = gr.Plot(show_label=False)
    with gr.Accordion("Raw answer (what /cohort returns)", open=False):
        k["json"] = gr.JSON(label="cohort", max_height=400)
    return k


def build_demo(rt: Runtime, files: SessionFiles | None = None) -> gr.Blocks:
    """The whole app over one loaded runtime (model loaded once, shared by all users).

    ``files`` records each session's uploads and outputs, deleted when the session ends.
    """
    if files is None:
        examples = [ex.file for ex in rt.examples] + [
            ex.file.with_suffix(".npz") for ex in rt.examples
        ]
        files = SessionFiles([cache_dir(), rt.out_dir], public=examples)
    with gr.Blocks(
        title="Fair-MoE Studio",
        analytics_enabled=False,
        delete_cache=(CLEAN_EVERY_S, SESSION_MAX_AGE_S),
    ) as demo:
        # per user: last explanation + the pixels it refers to; cohort ScoreSet. Dropped when the
        # session ends (unload below), at the latest SESSION_MAX_AGE_S after they were set.
        case_state = gr.State(None, time_to_live=SESSION_MAX_AGE_S)
        cohort_state = gr.State(None, time_to_live=SESSION_MAX_AGE_S)
        gr.Markdown(card.header_markdown(rt), elem_id="header")
        with gr.Tabs():
            with gr.Tab("Case", id="case"):
                c = _case_tab(rt)
            with gr.Tab("Experts", id="experts"):
                e = _experts_tab(rt)
            with gr.Tab("Fairness", id="fairness"):
                f = _fairness_tab(rt)
            with gr.Tab("Cohort", id="cohort"):
                k = _cohort_tab()
            with gr.Tab("Model card", id="card"):
                gr.Markdown(card.model_card(rt), elem_id="model-card")
                with gr.Accordion("Report (assets/REPORT.md)", open=rt.report_md is not None):
                    gr.Markdown(card.report_markdown(rt), elem_id="report")
        _wire_case(rt, c, e, case_state, files)
        _wire_fairness(rt, f, demo)
        _wire_cohort(rt, k, cohort_state, files)

        def end_session(request: gr.Request) -> None:
            _end_session(files, request)

        demo.unload(end_session)
        gr.api(partial_api(cb.fairness, rt), api_name="fairness")
        gr.api(partial_api(cb.models, rt), api_name="models")
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def partial_api(fn: Any, rt: Runtime) -> Any:
    """``fn`` with ``rt`` bound, keeping the typed signature gr.api reads for the client."""
    if fn is cb.fairness:

        def fairness(model: str, attribute: str = "race", threshold: float = 0.5) -> dict:
            """Fairness metrics of a run's cached test scores at one threshold.

            Args:
                model: run name from /models (e.g. the loaded model's name)
                attribute: race, gender, ethnicity or language
                threshold: decision threshold on the calibrated probability, 0 to 1
            """
            return cb.fairness(rt, model, attribute, threshold)

        return fairness

    def models() -> list:
        """The runs whose cached test scores /fairness can evaluate."""
        return cb.models(rt)

    return models


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def _end_session(files: SessionFiles, request: gr.Request) -> None:
    """Unload (tab closed, API client gone): delete the session's files and per-user state."""
    session = _session(request)
    files.end(session)
    # Gradio would keep a closed session's gr.State an hour in case the tab comes back, and its
    # per-session copy of the page config until 10,000 newer sessions push it out. The state holds
    # the last explanation (note included): it goes now, and the session with it.
    app = getattr(getattr(request, "request", None), "app", None)
    holder = getattr(app, "state_holder", None)
    if session and holder is not None:
        holder.delete_state(session)
        with holder.lock:
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)


def _preview_png(rt: Runtime, pixels: Any) -> str | None:
    """The preview as a PNG in the output folder (a numpy value would be copied into Gradio's
    cache where no session owns it)."""
    if pixels is None:
        return None
    path = rt.new_output_path("preview", ".png")
    Image.fromarray(pixels).save(path)
    return str(path)


def _wire_case(rt: Runtime, c: dict, e: dict, state: gr.State, files: SessionFiles) -> None:
    attrs = c["attrs"]

    def predict(image: str | None, note: str | None = None, request: gr.Request = None) -> dict:
        files.track(_session(request), cb.upload_path(image))
        return cb.numpy_free(cb.predict(rt, image, note))

    def explain(image: str | None, note: str | None = None, request: gr.Request = None) -> tuple:
        files.track(_session(request), cb.upload_path(image))
        result, gallery, st = cb.explain(rt, image, note)
        files.track(_session(request), *(path for path, _ in gallery))
        return cb.numpy_free(result), gallery, st

    def inspect_upload(image: str | None, request: gr.Request = None) -> tuple:
        files.track(_session(request), cb.upload_path(image))
        _, *rest = cb.inspect_upload(rt, image)  # the preview itself comes from scan.change
        return tuple(rest)

    def preview(image: str | None, request: gr.Request = None) -> str | None:
        files.track(_session(request), cb.upload_path(image))
        png = _preview_png(rt, cb.preview(rt, image))
        files.track(_session(request), png)
        return png

    def case_view(result: dict | None, *values: Any) -> tuple:
        return cb.case_view(rt, result, *values)

    def clear() -> tuple:
        return "### Analysing ...", "", ""

    experts_out = [e["attribution"], e["routing"], e["gates"], e["note"], e["summary"]]

    def chain(first: Any, *, public: bool) -> None:
        api = {"api_visibility": "public" if public else "private"}
        (
            first.then(
                predict,
                [c["scan"], c["note"]],
                [c["json"]],
                concurrency_id=MODEL_QUEUE,
                concurrency_limit=MODEL_CONCURRENCY,
                api_name="predict" if public else None,
                **api,
            )
            .success(
                case_view,
                [c["json"], *attrs],
                [c["result"], c["prob"], c["meaning"], c["warnings"], c["context"]],
                api_visibility="private",
                show_progress="hidden",
            )
            .success(
                explain,
                [c["scan"], c["note"]],
                [e["json"], e["gallery"], state],
                concurrency_id=MODEL_QUEUE,
                concurrency_limit=MODEL_CONCURRENCY,
                api_name="explain" if public else None,
                show_progress_on=[e["attribution"]],
                **api,
            )
            .success(
                cb.experts_first_view,
                [state],
                [e["shown"], *experts_out],
                api_visibility="private",
                show_progress="hidden",
            )
        )

    clear_out = [c["result"], c["warnings"], c["meaning"]]
    chain(
        c["analyse"].click(clear, None, clear_out, queue=False, api_visibility="private"),
        public=True,
    )
    for i, btn in enumerate(c["examples"]):
        loaded = btn.click(
            partial(cb.load_example, rt, i),
            None,
            [c["scan"], c["note"], *attrs],
            api_visibility="private",
            queue=False,
        )
        chain(
            loaded.then(clear, None, clear_out, queue=False, api_visibility="private"), public=False
        )
    c["scan"].upload(
        inspect_upload,
        [c["scan"]],
        [c["note"], *attrs, c["upload_info"]],
        api_visibility="private",
    )
    c["scan"].change(
        preview,
        [c["scan"]],
        [c["preview"]],
        api_visibility="private",
        show_progress="hidden",
    )
    gr.on(
        [a.change for a in attrs],
        partial(cb.context_view, rt),
        attrs,
        [c["context"]],
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    e["shown"].change(
        cb.experts_view,
        [state, e["shown"]],
        experts_out,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )


def _wire_fairness(rt: Runtime, f: dict, demo: gr.Blocks) -> None:
    sliders = [f["threshold"], *f["groups"]]
    inputs = [f["model"], f["attr"], f["mode"], *sliders]
    outputs = [f["summary"], f["groups_md"], f["roc"], f["confusion"], f["rates"]]

    def update(model: str, attr: str, mode: str, single: float, *groups: float) -> tuple:
        return cb.fairness_update(rt.run(model).scores, attr, mode, single, *groups)

    def update_ci(model: str, attr: str, mode: str, single: float, *groups: float) -> tuple:
        return cb.fairness_update(
            rt.run(model).scores, attr, mode, single, *groups, compute_ci=True
        )

    def select(model: str, attr: str, metric: str) -> tuple:
        return cb.fairness_select(rt, model, attr, metric)

    fast = {"api_visibility": "private", "show_progress": "hidden", "trigger_mode": "always_last"}
    gr.on([s.change for s in sliders] + [f["mode"].change], update, inputs, outputs, **fast)
    select_out = [*f["groups"], f["compare"], f["compare_md"], f["tradeoff"], f["load"]]
    gr.on(
        [f["model"].change, f["attr"].change, demo.load],
        select,
        [f["model"], f["attr"], f["trade_metric"]],
        select_out,
        api_visibility="private",
    ).then(update, inputs, outputs, **fast)
    f["ci"].click(update_ci, inputs, outputs, api_visibility="private")
    f["trade_metric"].change(
        lambda attr, metric: cb.fairness_tradeoff(rt, attr, metric),
        [f["attr"], f["trade_metric"]],
        [f["tradeoff"]],
        **fast,
    )
    for strategy, btn in zip(STRATEGIES, f["strategies"], strict=True):

        def choose(model: str, attr: str, cost: float, strategy: str = strategy) -> tuple:
            return cb.fairness_strategy(rt.run(model).scores, attr, strategy, cost)

        btn.click(
            choose,
            [f["model"], f["attr"], f["cost"]],
            [f["mode"], *sliders, f["strategy_md"]],
            api_visibility="private",
            show_progress="hidden",
        )


def _wire_cohort(rt: Runtime, k: dict, state: gr.State, files: SessionFiles) -> None:
    def cohort(
        upload: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        request: gr.Request = None,
    ) -> tuple:
        files.track(_session(request), cb.upload_path(upload))
        summary, csv_path, ss = cb.cohort(rt, upload, lambda x, d: progress(x, desc=d))
        files.track(_session(request), csv_path)
        return cb.numpy_free(summary), csv_path, ss

    def view(ss: Any, attr: str, threshold: float) -> tuple:
        return cb.cohort_view(ss, attr, threshold)

    def view_ci(ss: Any, attr: str, threshold: float) -> tuple:
        return cb.cohort_view(ss, attr, threshold, compute_ci=True)

    outs = [k["summary"], k["groups_md"], k["roc"], k["confusion"], k["rates"], k["load"]]
    k["run"].click(
        cohort,
        [k["file"]],
        [k["json"], k["csv"], state],
        api_name="cohort",
        concurrency_id=MODEL_QUEUE,
        concurrency_limit=MODEL_CONCURRENCY,
    ).success(
        lambda summary: (cb.bad_rows_table(summary), gr.update(visible=True)),
        [k["json"]],
        [k["bad"], k["results"]],
        api_visibility="private",
    ).success(view, [state, k["attr"], k["threshold"]], outs, api_visibility="private")
    k["ci"].click(view_ci, [state, k["attr"], k["threshold"]], outs, api_visibility="private")
    gr.on(
        [k["attr"].change, k["threshold"].change],
        view,
        [state, k["attr"], k["threshold"]],
        outs,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
