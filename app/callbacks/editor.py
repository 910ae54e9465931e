"""The scan editor (the What-If Tool's datapoint editor, for images): edit the model's input and
see probability, routing and attributions of the edited scan beside the original's.

Edits act on the pixels the model sees (the centre square, resized). A masked patch is filled
with the edited scan's mean grey, as the occlusion map does, so the occlusion map predicts what
masking one patch here will do.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from app import plots
from app.callbacks.common import user_error, user_message
from app.callbacks.serving import serving
from app.plots.editor import DISPLAY_PX, edit_comparison, editor_image
from app.runtime import Runtime
from app.text import not_assessable_markdown, scan_line
from fairmoe.inference import InputError
from fairmoe.wording import is_refused
from fairmoe.worker import WorkerError

__all__ = [
    "DEFAULTS",
    "apply_edits",
    "editor_view",
    "mask_from_names",
    "patch_names",
    "patches_of_mask",
    "toggle_patch",
]

DEFAULTS = (1.0, 1.0, 0.0)  # brightness factor, contrast factor, blur radius in model pixels
CACHE_SIZE = 16  # explained edits kept: undoing an edit or a repeated event costs nothing
_CACHE: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_LOCK = threading.Lock()


def _mask(mask: Any, grid: int) -> np.ndarray:
    m = np.asarray(mask, dtype=bool) if mask is not None else np.zeros((grid, grid), bool)
    return m if m.shape == (grid, grid) else np.zeros((grid, grid), bool)


def apply_edits(
    pixels: np.ndarray, mask: Any, brightness: float, contrast: float, blur: float
) -> np.ndarray:
    """(S, S) uint8: blur, brightness and contrast (PIL), then masked patches in mean grey."""
    img = Image.fromarray(np.asarray(pixels, np.uint8))
    if blur and blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(float(blur)))
    if brightness is not None and brightness != 1:
        img = ImageEnhance.Brightness(img).enhance(float(brightness))
    if contrast is not None and contrast != 1:
        img = ImageEnhance.Contrast(img).enhance(float(contrast))
    out = np.asarray(img, dtype=np.uint8).copy()
    m = np.asarray(mask, dtype=bool) if mask is not None else np.zeros((1, 1), bool)
    if m.any():
        p = out.shape[0] // m.shape[0]
        fill = round(float(out.mean()))
        for r, c in np.argwhere(m):
            out[r * p : (r + 1) * p, c * p : (c + 1) * p] = fill
    return out


def patch_names(grid: int) -> list[str]:
    """Every patch, named as the keyboard picker lists it: "row 1, column 1" ... (1-based)."""
    return [f"row {r + 1}, column {c + 1}" for r in range(grid) for c in range(grid)]


def mask_from_names(names: Sequence[str] | None, grid: int) -> list:
    """The (grid, grid) 0/1 mask of the patches picked by name (unknown names are ignored)."""
    index = {n: i for i, n in enumerate(patch_names(grid))}
    m = np.zeros(grid * grid, int)
    for n in names or []:
        if n in index:
            m[index[n]] = 1
    return m.reshape(grid, grid).tolist()


def patches_of_mask(mask: Any, grid: int) -> list[str]:
    """The names of the masked patches, row by row: the picker's value for a clicked mask."""
    names = patch_names(grid)
    return [names[i] for i in np.flatnonzero(_mask(mask, grid).ravel())]


def toggle_patch(mask: Any, xy: Sequence[int], grid: int, side: int = DISPLAY_PX) -> list:
    """The mask with the patch under display pixel ``xy`` = (x, y) switched on or off."""
    m = _mask(mask, grid)
    x, y = int(xy[0]), int(xy[1])
    r, c = min(grid - 1, max(0, y * grid // side)), min(grid - 1, max(0, x * grid // side))
    m[r, c] = not m[r, c]
    return m.astype(int).tolist()


def _cached(key: tuple, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()`` once per key among the last CACHE_SIZE (undoing an edit costs nothing);
    its input or explanation-process errors are shown to the user."""
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    try:
        value = compute()
    except (InputError, WorkerError) as e:
        raise user_error(str(e)) from None
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def _with_maps(
    rt: Runtime, orig: dict[str, Any], pixels: np.ndarray, upload: str | None = None
) -> dict[str, Any]:
    """The original's explanation with its whole-model maps: the analysis chain adds them after
    /explain, but an edit can come first (or the state is /explain's alone). A refused scan
    (no attributions) gets none."""
    if orig["attributions"] is None or "whole_model" in orig["attributions"]:
        return orig
    key = (id(rt), "maps", upload, hashlib.sha256(pixels.tobytes()).hexdigest())
    maps = _cached(key, lambda: serving(rt).model_maps(upload or pixels))
    drawn = {k: maps[k] for k in ("whole_model", "occlusion") if maps.get(k) is not None}
    return {**orig, "attributions": {**orig["attributions"], **drawn}}


def _explain(rt: Runtime, pixels: np.ndarray, upload: str | None = None) -> dict[str, Any]:
    """The edited scan's explanation; with the ``upload`` it was edited from, checked for
    assessability as that upload with the edit pasted in (Predictor.prepare's ``edited``)."""
    srv = serving(rt)
    key = (id(rt), upload, hashlib.sha256(pixels.tobytes()).hexdigest())
    steps = srv.explain_steps
    if upload is None:
        return _cached(key, lambda: srv.explainer.explain(pixels, None, n_steps=steps))
    return _cached(key, lambda: srv.explainer.explain(upload, None, edited=pixels, n_steps=steps))


def _edits_text(m: np.ndarray, brightness: float, contrast: float, blur: float) -> str:
    parts = [f"{int(m.sum())} patch{'es' if m.sum() != 1 else ''} masked"] if m.any() else []
    if brightness != 1:
        parts.append(f"brightness x{brightness:.2f}")
    if contrast != 1:
        parts.append(f"contrast x{contrast:.2f}")
    if blur:
        parts.append(f"blur {blur:.1f} px")
    return ", ".join(parts)


def _row(name: str, a: Any, b: Any) -> str:
    return f"| {name} | {a} | {b} |"


def _assessable(r: Mapping[str, Any]) -> bool:
    return not is_refused(r.get("assessable") or {})


def _probability(r: Mapping[str, Any], *, bold: bool = False) -> str:
    """The probability, struck through as unreliable when the model cannot assess the scan."""
    p = f"{r['probability']:.0%}"
    if not _assessable(r):
        return f"~~{p}~~ (not assessable)"
    return f"**{p}**" if bold else p


def _decision(r: Mapping[str, Any]) -> str:
    return r["decision"] if _assessable(r) and r.get("decision") else "none (not assessable)"


def _compare_md(orig: dict[str, Any], edited: dict[str, Any], edits: str) -> str:
    """Original and edited side by side: probability, decision, routing, attribution sums."""
    rows = [
        f"**Edits:** {edits}.",
        "",
        "| | Original | Edited |",
        "|---|---|---|",
        _row(
            "Probability of glaucoma",
            _probability(orig),
            f"{_probability(edited, bold=True)} "
            f"({100 * (edited['probability'] - orig['probability']):+.1f} points)",
        ),
        _row("Decision", _decision(orig), _decision(edited)),
    ]
    if orig.get("experts"):
        ko = np.array([e["kept"] for e in orig["experts"]], dtype=bool)
        ke = np.array([e["kept"] for e in edited["experts"]], dtype=bool)
        rows.append(_row("Patches kept by no expert", orig["n_dropped"], edited["n_dropped"]))
        rows.append(_row("Patch-expert assignments changed", "", int((ko != ke).sum())))
    oa, ea = orig.get("attributions") or {}, edited.get("attributions") or {}  # None: refused
    wo, we = oa.get("whole_model"), ea.get("whole_model")
    if wo and we:
        rows.append(
            _row("Whole-model IG, sum (log-odds)", f"{wo['sum']:+.2f}", f"{we['sum']:+.2f}")
        )
    return "\n".join(rows)


def editor_view(
    rt: Runtime,
    state: Mapping[str, Any] | None,
    mask: Any,
    brightness: float,
    contrast: float,
    blur: float,
) -> tuple:
    """(editable scan image, comparison markdown, comparison figure) of the current edits.

    The markdown names the scan and starts with the refusal banner when the model cannot assess
    it; an edit the model cannot explain is said there too, not raised."""
    if not state:
        blank = plots.empty_figure("Analyse a scan on the Case tab first.", height=200)
        return None, "Analyse a scan on the **Case** tab first, then edit it here.", blank
    orig, pixels = state["result"], np.asarray(state["pixels"], np.uint8)
    grid = int(orig["grid"])
    m = _mask(mask, grid)
    edits = (float(brightness or 1), float(contrast or 1), float(blur or 0))
    edited_px = apply_edits(pixels, m, *edits)
    shown = editor_image(edited_px, m, grid)
    head = scan_line(state.get("scan")) + "\n\n" if state.get("scan") else ""
    if not _assessable(orig):
        head += not_assessable_markdown(orig["probability"], orig.get("assessable") or {})
        head += "\n\n"
    if not m.any() and edits == DEFAULTS:
        said = (
            f"probability of glaucoma **{orig['probability']:.0%}**"
            if _assessable(orig)
            else "not assessable by this model"
        )
        text = (
            f"Unedited scan: {said}. Click a patch to mask it, or move a slider; the edited "
            "scan's answer appears beside this one."
        )
        return shown, head + text, edit_comparison(pixels, pixels, orig, orig)
    try:
        edited = _explain(rt, edited_px, state.get("upload"))
        orig = _with_maps(rt, orig, pixels, state.get("upload"))
    except gr.Error as e:
        blank = plots.empty_figure("The edited scan could not be explained.", height=200)
        return shown, head + user_message(e), blank
    text = _compare_md(orig, edited, _edits_text(m, *edits))
    return shown, head + text, edit_comparison(pixels, edited_px, orig, edited)
