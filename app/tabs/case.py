"""The Case tab: upload or pick a scan, analyse it, read the result and the subgroup context.

Analysing runs /predict, the case view, /explain, the first Experts view and /model_maps in one
chain, so the Experts tab is ready when the user opens it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
from gradio.events import Dependency
from PIL import Image

from app import callbacks as cb
from app.events import model_events, session
from app.privacy import SessionFiles
from app.runtime import Runtime
from app.tabs.experts import ExpertsTab
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = ["SCAN_TYPES", "CaseTab", "build_case_tab", "wire_case"]

SCAN_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npz"]


@dataclass(frozen=True)
class CaseTab:
    """The Case tab's components that events read or write."""

    scan: gr.File
    upload_info: gr.Markdown
    note: gr.Textbox
    attrs: tuple[gr.Dropdown, ...]  # one per ATTRIBUTE_NAMES, in that order
    analyse: gr.Button
    examples: tuple[gr.Button, ...]  # one per runtime example
    result: gr.Markdown
    prob: gr.Plot
    preview: gr.Image
    meaning: gr.Markdown
    warnings: gr.Markdown
    context: gr.Markdown
    json: gr.JSON  # what /predict returned


def _attribute_inputs() -> tuple[gr.Dropdown, ...]:
    attrs: list[gr.Dropdown] = []
    with gr.Accordion("Patient attributes (optional): subgroup context only", open=True):
        gr.Markdown(
            "These are **never model inputs**. They only select which test-set groups "
            "are shown below, so you can see how reliable the model is for such patients."
        )
        for pair in (ATTRIBUTE_NAMES[:2], ATTRIBUTE_NAMES[2:]):
            with gr.Row():
                attrs += [
                    gr.Dropdown(
                        cb.attribute_choices(a),
                        value=cb.NOT_GIVEN,
                        label=a.capitalize(),
                        elem_id=f"case-{a}",
                    )
                    for a in pair
                ]
    return tuple(attrs)


def _example_buttons(rt: Runtime) -> tuple[gr.Button, ...]:
    if not rt.examples:
        return ()
    gr.Markdown("**Examples** (one click loads and analyses a case)")
    with gr.Row():
        return tuple(
            gr.Button(ex.title, size="sm", elem_id=f"example-{i}")
            for i, ex in enumerate(rt.examples)
        )


def _result_column(rt: Runtime) -> tuple[Any, ...]:
    """(result, prob, preview, meaning, warnings, context, json) of the right-hand column."""
    result = gr.Markdown(
        "### Upload a scan or pick an example, then press *Analyse*.",
        elem_id="case-result",
    )
    prob = gr.Plot(show_label=False, elem_id="case-prob")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=200):
            preview = gr.Image(
                show_label=False,
                type="filepath",
                interactive=False,
                height=230,
                buttons=[],
                alt_text="What the model sees: the centre square of the scan, resized",
                elem_id="case-preview",
            )
            gr.Markdown(
                "<small>What the model sees: the centre square of the scan, resized.</small>"
            )
        meaning = gr.Markdown(elem_id="case-meaning")
    with gr.Group():
        gr.Markdown("**Warnings**", padding=True)
        warnings = gr.Markdown(elem_id="case-warnings", padding=True)
    context = gr.Markdown(cb.context_view(rt, *[None] * 4), elem_id="case-context")
    with gr.Accordion("Raw answer (what /predict returns)", open=False):
        raw = gr.JSON(label="predict", max_height=400)
    return result, prob, preview, meaning, warnings, context, raw


def build_case_tab(rt: Runtime) -> CaseTab:
    """Lay out the Case tab (inside a ``gr.Tab``)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            scan = gr.File(
                label="Scan: SLO fundus (PNG, JPEG, TIFF) or a FairVLMed .npz",
                file_types=SCAN_TYPES,
                type="filepath",
                elem_id="case-scan",
                height=120,
            )
            upload_info = gr.Markdown(elem_id="case-upload-info")
            note = gr.Textbox(
                label="Clinical note (optional)",
                lines=4,
                max_lines=10,
                elem_id="case-note",
                placeholder="e.g. IOP 21/22 mmHg, C/D 0.7 OU, inferior rim thinning ...",
            )
            attrs = _attribute_inputs()
            analyse = gr.Button("Analyse", variant="primary", elem_id="case-analyse")
            examples = _example_buttons(rt)
        with gr.Column(scale=6):
            result, prob, preview, meaning, warnings, context, raw = _result_column(rt)
    return CaseTab(
        scan=scan,
        upload_info=upload_info,
        note=note,
        attrs=attrs,
        analyse=analyse,
        examples=examples,
        result=result,
        prob=prob,
        preview=preview,
        meaning=meaning,
        warnings=warnings,
        context=context,
        json=raw,
    )


def _explain_steps(
    rt: Runtime, case: CaseTab, experts: ExpertsTab, state: gr.State, files: SessionFiles
) -> Callable[..., None]:
    """``then_explain(predicted, public=...)``: /explain -> first Experts view -> /model_maps ->
    Experts views again. The expert maps show as soon as they exist; the whole-model and
    occlusion maps (about as costly again) follow on the same explanation slot."""
    slots = model_events(rt.config)

    def explain(image: str | None, note: str | None = None, request: gr.Request = None) -> tuple:
        sid = session(request)
        files.track(sid, cb.upload_path(image))
        result, gallery, st = cb.explain(rt, image, note, session=sid)
        files.track(sid, *(path for path, _ in gallery))
        return cb.numpy_free(result), gallery, st

    def model_maps(image: str | None, st: dict | None, request: gr.Request = None) -> tuple:
        maps, st = cb.model_maps(rt, image, st, session=session(request))
        return cb.numpy_free(maps), st

    def then_explain(predicted: Dependency, *, public: bool) -> None:
        api = {"api_visibility": "public" if public else "private"}
        hidden = {"api_visibility": "private", "show_progress": "hidden"}
        explained = predicted.success(
            explain,
            [case.scan, case.note],
            [experts.json, experts.gallery, state],
            **slots["explain"],
            api_name="explain" if public else None,
            show_progress_on=[experts.attribution],
            **api,
        ).success(cb.experts_first_view, [state], [experts.shown, *experts.views], **hidden)
        explained.success(
            model_maps,
            [case.scan, state],
            [experts.maps_json, state],
            **slots["explain"],
            api_name="model_maps" if public else None,
            show_progress_on=[experts.whole],
            **api,
        ).success(cb.experts_view, [state, experts.shown], experts.views, **hidden)

    return then_explain


def _analysis_chain(
    rt: Runtime, case: CaseTab, experts: ExpertsTab, state: gr.State, files: SessionFiles
) -> Callable[..., None]:
    """``chain(first, public=...)``: after ``first``, predict -> case view -> explain -> experts
    (:func:`_explain_steps`). Only the Analyse button's chain is public (/predict, /explain,
    /model_maps).
    """

    def predict(image: str | None, note: str | None = None, request: gr.Request = None) -> dict:
        files.track(session(request), cb.upload_path(image))
        return cb.numpy_free(cb.predict(rt, image, note))

    def case_view(result: dict | None, *values: Any) -> tuple:
        return cb.case_view(rt, result, *values)

    slots = model_events(rt.config)  # predict and explain each on their own queue slot
    then_explain = _explain_steps(rt, case, experts, state, files)

    def failed() -> tuple:
        # the error itself is shown as a toast; the result column must not stay on "Analysing"
        return (
            "### Not analysed",
            "The scan or note could not be used (see the message). Upload a fundus scan "
            "(PNG, JPEG, TIFF or .npz) or pick an example, then press Analyse again.",
            "",
        )

    def chain(first: Dependency, *, public: bool) -> None:
        api = {"api_visibility": "public" if public else "private"}
        predicted = first.then(
            predict,
            [case.scan, case.note],
            [case.json],
            **slots["predict"],
            api_name="predict" if public else None,
            **api,
        )
        predicted.failure(
            failed,
            None,
            [case.result, case.warnings, case.meaning],
            api_visibility="private",
            queue=False,
        )
        viewed = predicted.success(
            case_view,
            [case.json, *case.attrs],
            [case.result, case.prob, case.meaning, case.warnings, case.context],
            api_visibility="private",
            show_progress="hidden",
        )
        then_explain(viewed, public=public)

    return chain


def _preview_png(rt: Runtime, pixels: Any) -> str | None:
    """The preview as a PNG in the output folder (a numpy value would be copied into Gradio's
    cache where no session owns it)."""
    if pixels is None:
        return None
    path = rt.new_output_path("preview", ".png")
    Image.fromarray(pixels).save(path)
    return str(path)


def _wire_upload(rt: Runtime, case: CaseTab, files: SessionFiles) -> None:
    """An upload fills note and attributes (from a .npz); any new scan redraws the preview."""

    def inspect_upload(image: str | None, request: gr.Request = None) -> tuple:
        files.track(session(request), cb.upload_path(image))
        _, *rest = cb.inspect_upload(rt, image)  # the preview itself comes from scan.change
        return tuple(rest)

    def preview(image: str | None, request: gr.Request = None) -> str | None:
        files.track(session(request), cb.upload_path(image))
        png = _preview_png(rt, cb.preview(rt, image))
        files.track(session(request), png)
        return png

    case.scan.upload(
        inspect_upload,
        [case.scan],
        [case.note, *case.attrs, case.upload_info],
        api_visibility="private",
    )
    case.scan.change(
        preview,
        [case.scan],
        [case.preview],
        api_visibility="private",
        show_progress="hidden",
    )


def wire_case(
    rt: Runtime, case: CaseTab, experts: ExpertsTab, state: gr.State, files: SessionFiles
) -> None:
    """Analyse and the examples run the analysis chain; uploads and attributes update the view.

    ``state`` receives the explanation the Experts tab draws; ``files`` records each session's
    uploads and outputs.
    """
    chain = _analysis_chain(rt, case, experts, state, files)

    def clear() -> tuple:
        return "### Analysing ...", "", ""

    clear_out = [case.result, case.warnings, case.meaning]
    chain(
        case.analyse.click(clear, None, clear_out, queue=False, api_visibility="private"),
        public=True,
    )
    for i, btn in enumerate(case.examples):
        loaded = btn.click(
            partial(cb.load_example, rt, i),
            None,
            [case.scan, case.note, *case.attrs],
            api_visibility="private",
            queue=False,
        )
        chain(
            loaded.then(clear, None, clear_out, queue=False, api_visibility="private"), public=False
        )
    _wire_upload(rt, case, files)
    gr.on(
        [a.change for a in case.attrs],
        partial(cb.context_view, rt),
        list(case.attrs),
        [case.context],
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
