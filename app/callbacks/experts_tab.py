"""Handlers of the Experts tab: /explain (overlay PNGs) and the attribution and routing views."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app import plots
from app.callbacks.common import clean_note, scan_source, user_error
from app.callbacks.serving import serving
from app.overlay import MAX_ALPHA, NEGATIVE, OUT_PX, POSITIVE, overlay_png
from app.runtime import Runtime
from fairmoe.inference import InputError, load_scan

__all__ = [
    "compact_overlay_png",
    "default_shown",
    "expert_choices",
    "experts_first_view",
    "experts_view",
    "explain",
]

SUM = "All experts (sum)"
NO_EXPERTS = "Attribution (no experts)"


def compact_overlay_png(pixels: np.ndarray, grid: Any, scale: float, path: str | Path) -> Path:
    """The overlay of :func:`app.overlay.overlay_rgb`, drawn at the model's resolution and then
    upscaled without interpolation: ~20 kB instead of ~100 kB, in a third of the time.

    The model sees no more than its input (e.g. 96 px), so a bilinear 448 px scan only made the
    file larger, and every byte goes to each client of /explain. A 256-colour palette would
    halve the size again but bands the scan's grey gradients visibly.
    """
    g = np.asarray(grid, dtype=np.float32)
    side = pixels.shape[0]
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    v = np.clip(g / scale, -1.0, 1.0)[..., None]
    cells = np.concatenate(
        [np.where(v >= 0, POSITIVE, NEGATIVE), np.abs(v) * MAX_ALPHA * 255], axis=-1
    )
    layer = Image.fromarray(cells.round().astype(np.uint8), "RGBA").resize(
        (side, side), Image.NEAREST
    )
    scan = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGBA")
    image = Image.alpha_composite(scan, layer).convert("RGB")
    image.resize((OUT_PX, OUT_PX), Image.NEAREST).save(path, format="PNG", compress_level=3)
    return Path(path)


def _overlays(rt: Runtime, result: dict[str, Any], pixels: np.ndarray) -> list:
    """[(png path, caption)]: the sum (or the one plain map) first, then one per expert."""
    att = result["attributions"]
    maps = [(SUM if att["experts"] else NO_EXPERTS, att["total"])]
    maps += [(f"Expert {i}", m) for i, m in enumerate(att["experts"])]
    legacy = serving(rt).legacy
    draw = overlay_png if legacy else compact_overlay_png
    gallery = []
    for i, (caption, grid) in enumerate(maps):
        if legacy or i == 0:
            path = rt.new_output_path("overlay", ".png")  # prunes old outputs: a folder scan
        else:  # once per explanation is enough; the folder holds thousands of files under load
            fd, name = tempfile.mkstemp(prefix="overlay-", suffix=".png", dir=rt.out_dir)
            os.close(fd)
            path = Path(name)
        draw(pixels, grid, att["scale"], path)
        gallery.append((str(path), caption))
    return gallery


def explain(
    rt: Runtime, image: Any, note: Any = None, *, session: str | None = None
) -> tuple[dict[str, Any], list, dict]:
    """predict() plus Captum attributions; overlay PNGs share one colour scale.

    Returns (JSON, gallery [(png path, caption)], per-user state {"result", "pixels"}). With a
    ``session``, a scan and note it already explained come from its cache (same answer, same
    files) instead of running Integrated Gradients again.
    """
    source = scan_source(image)
    note = clean_note(note)
    srv = serving(rt)
    key = None if srv.legacy else srv.cache.key(source, note)
    hit = srv.cache.get(session, key)
    if hit is not None and all(Path(p).is_file() for p, _ in hit[1]):
        return hit
    try:
        scan = load_scan(source)
        result = srv.explain(scan, note)
        pixels = rt.predictor.scan_pixels(scan)
    except InputError as e:
        raise user_error(str(e)) from None
    result["model"] = rt.model_name
    out = (result, _overlays(rt, result, pixels), {"result": result, "pixels": pixels})
    srv.cache.put(session, key, out)
    return out


def _all_zero(att: dict[str, Any]) -> bool:
    grids = [att["total"], *att["experts"]]
    return not any(v for g in grids for row in g for v in row)


def _moe_summary(r: dict[str, Any], scale_text: str) -> str:
    """What the attributions of a model with image experts say."""
    att = r["attributions"]
    per = att.get("per_expert_sum") or []
    top = sorted(range(len(per)), key=lambda i: -abs(per[i]))[:3]
    return (
        f"**{len(r['experts'])} image experts**; {r['n_dropped']} of {r['grid'] ** 2} patches "
        "were kept by no expert (filtered out). Attributions: Integrated Gradients of the "
        f"calibrated glaucoma log-odds with respect to each expert's output ({scale_text}). "
        f"With all experts silent the probability would be "
        f"{att['probability_without_experts']:.0%} instead of {r['probability']:.0%}. "
        "Largest expert shares of that change (CLS token included): "
        + ", ".join(f"expert {i} ({per[i]:+.3f})" for i in top)
        + f". Convergence delta {att['convergence_delta']:.2g}."
    )


def _note_highlights(r: dict[str, Any]) -> list[tuple[str, float]]:
    """Note tokens with their attributions scaled into -1..1 for gr.HighlightedText."""
    notes = r.get("note_attributions") or []
    peak = max((abs(v) for _, v in notes), default=0.0) or 1.0
    return [(tok, round(v / peak, 3)) for tok, v in notes]


def experts_view(state: dict[str, Any] | None, shown: Sequence[str] | None) -> tuple:
    """(attribution figure, routing figure, feature-gate figure, note highlights, summary)."""
    if not state:
        blank = plots.empty_figure("Analyse a scan on the Case tab first.", height=200)
        return blank, blank, blank, [], ""
    r, pixels = state["result"], state["pixels"]
    att = r["attributions"]
    shown_set = set(shown or [])
    zero = _all_zero(att)
    scale_text = (
        "every patch attribution is exactly zero"
        if zero
        else f"one shared colour scale, max |value| {att['scale']:.3g}; red pushes towards "
        "glaucoma, blue away"
    )
    if att["experts"]:
        maps = {k: v for k, v in [(SUM, att["total"])] if k in shown_set}
        maps |= {
            f"Expert {i}": m for i, m in enumerate(att["experts"]) if f"Expert {i}" in shown_set
        }
        routing = plots.routing_maps(r["experts"], r["dropped_patches"], r["grid"])
        summary = _moe_summary(r, scale_text)
    else:
        maps = {NO_EXPERTS: att["total"]}
        routing = plots.empty_figure(
            "Plain CLIP checkpoint: there are no experts to route.", height=200
        )
        summary = (
            "This checkpoint is **plain CLIP: it has no experts**. The map shows Integrated "
            f"Gradients of the calibrated glaucoma log-odds on the last block's tokens "
            f"({scale_text})."
        )
    if zero:
        summary += (
            "\n\n> All patch maps are zero. When the model pools the CLS token, the last "
            "block's per-patch outputs never reach the score, so only the CLS token carries the "
            "experts' effect (see the shares above)."
        )
    fg = r.get("feature_gates") or {}
    gates = plots.feature_gates(fg.get("image"), fg.get("text"), fg.get("names") or [])
    overlays = plots.attribution_overlays(pixels, maps, att["scale"])
    return overlays, routing, gates, _note_highlights(r), summary


def default_shown(state: dict[str, Any] | None, n: int = 3) -> list[str]:
    """The sum plus the ``n`` experts with the largest patch attributions (others stay off)."""
    if not state:
        return []
    att = state["result"]["attributions"]
    if not att["experts"]:
        return [NO_EXPERTS]
    mass = [float(np.abs(np.asarray(m)).sum()) for m in att["experts"]]
    top = sorted(range(len(mass)), key=lambda i: -mass[i])[:n]
    return [SUM] + [f"Expert {i}" for i in sorted(top)]


def experts_first_view(state: dict[str, Any] | None) -> tuple:
    """After a new explanation: pick the experts worth showing, then draw (see experts_view)."""
    shown = default_shown(state)
    return shown, *experts_view(state, shown)


def expert_choices(rt: Runtime) -> list[str]:
    """The maps the loaded model can show: the sum and each expert, or the one plain map."""
    n = rt.predictor.n_experts
    return ([SUM] + [f"Expert {i}" for i in range(n)]) if n else [NO_EXPERTS]
