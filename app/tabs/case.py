"""The Case tab: upload or pick a scan, analyse it, read the result and the subgroup context.

Analysing runs the work of /predict, /explain and /model_maps in one private chain, so the Experts
tab is ready when the user opens it; every result names its scan, and a failed step clears what
came before and says why in one message area under *Analyse* (no toasts, no error badges on the
form). The public endpoints run the same work for API clients and raise their errors.
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
from app.callbacks.case_tab import analyse, analysing_view, upload_view
from app.callbacks.common import CaseState, scan_name, user_message
from app.callbacks.experts_tab import experts_blank
from app.events import model_events, session
from app.privacy import SessionFiles
from app.runtime import Runtime
from app.tabs.experts import ExpertsTab
from app.text import NOTE_HELP, scan_line
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
    message: gr.Markdown  # the one place user errors show (what was wrong, what to do)
    examples: tuple[gr.Button, ...]  # one per runtime example
    result: gr.Markdown
    prob: gr.Plot
    preview: gr.Image
    meaning: gr.Markdown
    warnings: gr.Markdown
    context: gr.Markdown
    json: gr.JSON  # what /predict returned
    api: gr.Button  # hidden: the trigger of the public endpoints, which API clients call by name


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
                info=NOTE_HELP,
            )
            attrs = _attribute_inputs()
            analyse = gr.Button("Analyse", variant="primary", elem_id="case-analyse")
            message = gr.Markdown(elem_id="case-message")
            examples = _example_buttons(rt)
        with gr.Column(scale=6):
            result, prob, preview, meaning, warnings, context, raw = _result_column(rt)
    api = gr.Button(visible=False)
    return CaseTab(
        scan=scan,
        upload_info=upload_info,
        note=note,
        attrs=attrs,
        analyse=analyse,
        message=message,
        examples=examples,
        result=result,
        prob=prob,
        preview=preview,
        meaning=meaning,
        warnings=warnings,
        context=context,
        json=raw,
        api=api,
    )


@dataclass(frozen=True)
class _Work:
    """The model's work behind /predict, /explain and /model_maps, with each session's files
    tracked. User errors raise gr.Error: what API clients get."""

    rt: Runtime
    files: SessionFiles

    def predict(
        self, image: str | None, note: str | None = None, request: gr.Request = None
    ) -> dict:
        self.files.track(session(request), cb.upload_path(image))
        return cb.numpy_free(cb.predict(self.rt, image, note))

    def explain(
        self, image: str | None, note: str | None = None, request: gr.Request = None
    ) -> tuple:
        sid = session(request)
        self.files.track(sid, cb.upload_path(image))
        result, gallery, st = cb.explain(self.rt, image, note, session=sid)
        self.files.track(sid, *(path for path, _ in gallery))
        return cb.numpy_free(result), gallery, st

    def model_maps(self, image: str | None, st: dict | None, request: gr.Request = None) -> tuple:
        maps, st = cb.model_maps(self.rt, image, st, session=session(request))
        return cb.numpy_free(maps), st


def _wire_api(work: _Work, case: CaseTab, experts: ExpertsTab, state: gr.State) -> None:
    """/predict, /explain and /model_maps for API clients, on a button no one sees: they raise
    their errors. The browser runs the same work through :func:`_analysis_chain`, which shows
    errors in the message area instead (a raised error marks every output with an "Error" badge
    and pops up a toast)."""
    slots = model_events(work.rt.config)
    public = {"api_visibility": "public"}
    scan_note = [case.scan, case.note]
    case.api.click(
        work.predict, scan_note, [case.json], api_name="predict", **slots["predict"], **public
    )
    explained = [experts.json, experts.gallery, state]
    case.api.click(
        work.explain, scan_note, explained, api_name="explain", **slots["explain"], **public
    )
    maps = [experts.maps_json, state]
    case.api.click(
        work.model_maps,
        [case.scan, state],
        maps,
        api_name="model_maps",
        **slots["explain"],
        **public,
    )


def _analysis_chain(
    work: _Work, case: CaseTab, experts: ExpertsTab, state: gr.State
) -> Callable[[Callable[..., Dependency]], None]:
    """``chain(start)``: on ``start`` (a trigger or a ``.then``), clear every tab's result ->
    predict and the case view -> explain -> first Experts view -> whole-model maps -> Experts
    views again, all private. No step raises a user error: it goes to the message area, and the
    steps after it skip."""
    rt, slots = work.rt, model_events(work.rt.config)
    hidden = {"api_visibility": "private", "show_progress": "hidden"}

    def begin(image: str | None, request: gr.Request = None) -> tuple:
        work.files.track(session(request), cb.upload_path(image))
        # nothing of the previous case may stay on screen under the new scan's name
        waiting = f"{scan_line(scan_name(image))}\n\nAnalysing: the maps follow the result."
        return analysing_view(image) + (None, None, None, [], None) + experts_blank(waiting)

    def predict(image: str | None, note: str | None, *attrs: Any) -> tuple:
        return analyse(rt, image, note, *attrs)

    def explain(
        image: str | None, note: str | None, predicted: Any, request: gr.Request = None
    ) -> tuple:
        if not predicted:  # predict failed and said why
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            result, gallery, st = work.explain(image, note, request)
        except gr.Error as e:
            return None, [], None, user_message(e)
        return result, gallery, CaseState({**st, "scan": scan_name(image)}), gr.skip()

    def model_maps(image: str | None, st: Any, request: gr.Request = None) -> tuple:
        if not st:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            return *work.model_maps(image, st, request), gr.skip()
        except gr.Error as e:
            return None, CaseState({**st, "maps_failed": True}), user_message(e)

    def first_view(st: Any) -> tuple:
        if not st:  # nothing explained: the maps stay blank, the ticked experts as they were
            return gr.skip(), *cb.experts_view(None, None)
        return cb.experts_first_view(st)

    result_out = [case.result, case.prob, case.meaning, case.warnings, case.message]
    cleared = [*result_out, case.json, state, experts.json, experts.gallery, experts.maps_json]

    def chain(start: Callable[..., Dependency]) -> None:
        # queued (no limit: it only clears): only a queued event's new state fires state.change,
        # which resets the scan editor
        begun = start(
            begin, [case.scan], [*cleared, *experts.views], concurrency_limit=None, **hidden
        )
        predicted = begun.then(
            predict,
            [case.scan, case.note, *case.attrs],
            [case.json, *result_out[:4], case.context, case.message],
            **slots["predict"],
            api_visibility="private",
            show_progress_on=[case.prob],
        )
        explained = predicted.then(
            explain,
            [case.scan, case.note, case.json],
            [experts.json, experts.gallery, state, case.message],
            **slots["explain"],
            api_visibility="private",
            show_progress_on=[experts.attribution],
        ).then(first_view, [state], [experts.shown, *experts.views], **hidden)
        explained.then(
            model_maps,
            [case.scan, state],
            [experts.maps_json, state, case.message],
            **slots["explain"],
            api_visibility="private",
            show_progress_on=[experts.whole],
        ).then(cb.experts_view, [state, experts.shown], experts.views, **hidden)

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
        return upload_view(rt, image)  # a bad file: a message, never an error on the form

    def preview(image: str | None, request: gr.Request = None) -> str | None:
        files.track(session(request), cb.upload_path(image))
        png = _preview_png(rt, cb.preview(rt, image))
        files.track(session(request), png)
        return png

    case.scan.upload(
        inspect_upload,
        [case.scan],
        [case.note, *case.attrs, case.upload_info, case.message],
        api_visibility="private",
        show_progress_on=[case.upload_info],
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
    API clients call /predict, /explain and /model_maps, which run the same work and raise.

    ``state`` receives the explanation the Experts tab draws; ``files`` records each session's
    uploads and outputs.
    """
    work = _Work(rt, files)
    _wire_api(work, case, experts, state)
    chain = _analysis_chain(work, case, experts, state)
    chain(case.analyse.click)
    for i, btn in enumerate(case.examples):
        loaded = btn.click(
            partial(cb.load_example, rt, i),
            None,
            [case.scan, case.note, *case.attrs],
            api_visibility="private",
            queue=False,
        )
        chain(loaded.then)
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
