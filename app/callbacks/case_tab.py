"""Handlers of the Case tab: /predict, the upload preview, examples and the case view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app import plots, views
from app.callbacks.common import (
    clean_note,
    numpy_free,
    scan_name,
    scan_source,
    user_error,
    user_message,
)
from app.callbacks.serving import serving
from app.runtime import Runtime
from app.text import not_assessable_markdown, operating_point_text, scan_line
from app.theme import icon
from fairmoe.inference import InputError, load_scan
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES
from fairmoe.wording import is_refused

__all__ = [
    "NOT_GIVEN",
    "PREVIEW_PX",
    "analyse",
    "analysing_view",
    "attribute_choices",
    "case_view",
    "context_view",
    "display_pixels",
    "inspect_upload",
    "load_example",
    "predict",
    "preview",
    "upload_view",
]

NOT_GIVEN = -1  # dropdown value of an attribute the user did not choose
PREVIEW_PX = 224  # smaller model inputs are upscaled for display
BAR_PX = 130  # height of the probability bar and of the blank figure in its place


def predict(rt: Runtime, image: Any, note: Any = None) -> dict[str, Any]:
    """Calibrated glaucoma probability, decision, routing summary and warnings for one scan.

    Concurrent calls share one forward pass (see :mod:`app.callbacks.serving`).
    """
    try:
        result = serving(rt).predict(scan_source(image), clean_note(note))
    except InputError as e:
        raise user_error(str(e)) from None
    result["model"] = rt.model_name
    return result


def attribute_choices(attr: str) -> list[tuple[str, int]]:
    """Dropdown choices of an attribute: "not given", then its groups by code."""
    return [("not given", NOT_GIVEN)] + [(g, i) for i, g in enumerate(ATTRIBUTES[attr].groups)]


def _attr_codes(values: Sequence[Any]) -> dict[str, int | None]:
    out = {}
    for a, v in zip(ATTRIBUTE_NAMES, values, strict=True):
        out[a] = None if v is None or v == "" or int(v) == NOT_GIVEN else int(v)
    return out


def inspect_upload(rt: Runtime, image: Any) -> tuple:
    """On upload: preview what the model will see; a FairVLMed .npz fills note and attributes."""
    if image is None:
        return None, gr.update(), *(gr.update() for _ in ATTRIBUTE_NAMES), ""
    try:
        scan = load_scan(scan_source(image))
    except InputError as e:
        raise user_error(str(e)) from None
    preview = rt.predictor.scan_pixels(scan)
    h, w = scan.image.shape
    info = f"Scan {w}x{h} px; the model sees the centre square resized to {preview.shape[0]} px."
    preview = display_pixels(preview)
    if scan.source_kind != "npz":
        return preview, gr.update(), *(gr.update() for _ in ATTRIBUTE_NAMES), info
    attrs = scan.attrs or {}
    if scan.label is not None:
        info += f" The file's label: **{'glaucoma' if scan.label else 'no glaucoma'}**."
    return (
        preview,
        scan.note or "",
        *(attrs.get(a, NOT_GIVEN) for a in ATTRIBUTE_NAMES),
        info + " Note and attributes were filled in from the .npz file.",
    )


def upload_view(rt: Runtime, image: Any) -> tuple:
    """On upload: (note, *attributes, info, message). A file that cannot be read leaves the form
    as it is and says why in the message area: no error badge on the form's fields."""
    try:
        _, *rest = inspect_upload(rt, image)  # the preview itself comes from the scan's change
    except gr.Error as e:
        return *(gr.update() for _ in range(1 + len(ATTRIBUTE_NAMES))), "", user_message(e)
    return *rest, ""


def preview(rt: Runtime, image: Any) -> np.ndarray | None:
    """What the model will see, or None (a bad file is reported by the upload handler)."""
    if not image:
        return None
    try:
        return display_pixels(rt.predictor.scan_pixels(load_scan(scan_source(image))))
    except (InputError, gr.Error):
        return None


def display_pixels(pixels: np.ndarray, size: int = PREVIEW_PX) -> np.ndarray:
    """The model's input upscaled for display (a 64 px input would be a thumbnail)."""
    if pixels.shape[0] >= size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.NEAREST))


def load_example(rt: Runtime, index: int) -> tuple:
    """(file, note, race, gender, ethnicity, language) of example ``index``."""
    ex = rt.examples[index]
    return str(ex.file), ex.note, *(ex.attrs.get(a, NOT_GIVEN) for a in ATTRIBUTE_NAMES)


def context_view(rt: Runtime, *attr_values: Any) -> str:
    """How the loaded model did on test patients of the chosen groups (markdown)."""
    return views.subgroup_context(rt.model_scores, _attr_codes(attr_values), rt.predictor.threshold)


def analysing_view(image: Any) -> tuple:
    """(headline, probability figure, meaning, warnings, message) while a scan is analysed: the
    previous result goes, so nothing on screen belongs to another scan."""
    head = f"### Analysing ...\n{scan_line(scan_name(image))}"
    return head, plots.empty_figure("Analysing ...", height=BAR_PX), "", "", ""


def analyse(rt: Runtime, image: Any, note: Any, *attr_values: Any) -> tuple:
    """The Analyse button in the browser: (/predict's JSON or None, headline, probability figure,
    meaning, warnings, context, message). A user error is not raised but shown in the message
    area, with every part of the result cleared."""
    try:
        result = numpy_free(predict(rt, image, note))
    except gr.Error as e:
        head = f"### Not analysed\n{scan_line(scan_name(image))}: see the message under *Analyse*."
        blank = plots.empty_figure("Not analysed.", height=BAR_PX)
        return None, head, blank, "", "", "", user_message(e)
    return result, *case_view(rt, result, *attr_values, scan=scan_name(image)), ""


def case_view(
    rt: Runtime, result: dict[str, Any] | None, *attr_values: Any, scan: str | None = None
) -> tuple:
    """(headline markdown, probability figure, meaning markdown, warnings markdown, context);
    the headline names the ``scan`` (its file name) when given."""
    if not result:
        return "", plots.empty_figure("No scan analysed yet.", height=BAR_PX), "", "", ""
    p, t = result["probability"], result["threshold"]
    assessed = result.get("assessable") or {}
    if not is_refused(assessed):
        said = views.confidence_text(
            rt.model_scores, _attr_codes(attr_values), p, t, result["uncertainty"]
        )
        head = (
            f"### Probability of glaucoma: {p:.0%}\n"
            f"**Decision: {result['decision']}** ({'at or above' if p >= t else 'below'} the "
            f"operating point {t:.2f}). {said}"
        )
        fig = plots.probability_bar(p, t)
    else:  # no bar: a drawn probability reads as a confident number
        head = not_assessable_markdown(p, assessed)
        fig = plots.empty_figure(
            "Probability not shown: not assessable by this model.", height=BAR_PX
        )
    warns = result.get("warnings") or []
    warnings_md = (
        "\n".join(f"- {icon('warn')} {w}" for w in warns) if warns else "No warnings for this scan."
    )
    meaning = operating_point_text(t)
    if (result.get("note") or {}).get("text"):
        meaning += (
            "\n\nThe note was read but does not change the decision: the decision uses the "
            "scan only, as in the Fair-MoE evaluation."
        )
    if scan:
        head += "\n\n" + scan_line(scan)
    return head, fig, meaning, warnings_md, context_view(rt, *attr_values)
