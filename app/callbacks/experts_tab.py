"""Handlers of the Experts tab: /explain (overlay PNGs) and the attribution and routing views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app import plots
from app.callbacks.common import CaseState, clean_note, scan_source, user_error
from app.callbacks.influence import (
    MINOR_INFLUENCE,
    colour_scale,
    influence_text,
    tile_label,
)
from app.callbacks.serving import serving
from app.overlay import overlay_sheet_png
from app.plots.experts import expert_load_by_group, routing_maps
from app.runtime import Runtime
from app.text import not_assessable_markdown, scan_line
from app.theme import icon
from fairmoe.inference import InputError, load_scan
from fairmoe.schema import attribute
from fairmoe.scores import ScoreSet
from fairmoe.wording import is_refused
from fairmoe.worker import WorkerError

__all__ = [
    "default_shown",
    "expert_choices",
    "expert_load_view",
    "experts_blank",
    "experts_first_view",
    "experts_view",
    "explain",
    "load_by_group",
    "model_maps",
    "router_health_md",
    "what_is_an_expert",
    "with_model_maps",
]

SUM = "All experts (sum)"
NO_EXPERTS = "Attribution (no experts)"
WHOLE = "Whole model (IG over pixels)"
OCCLUSION = "Occlusion (log-odds drop)"
SHEET_CAPTION = "Attribution overlays, one colour scale"
NOT_YET = "No scan explained yet: analyse one on the **Case** tab."


def _overlays(rt: Runtime, result: dict[str, Any], pixels: np.ndarray) -> list:
    """[(png path, caption)]: one sheet with the sum (or the one plain map) and every expert."""
    att = result["attributions"]
    maps = [(SUM if att["experts"] else NO_EXPERTS, att["total"])]
    maps += [(f"Expert {i}", m) for i, m in enumerate(att["experts"])]
    path = rt.new_output_path("overlays", ".png")
    overlay_sheet_png(pixels, maps, att["scale"], path)
    names = ", ".join(c for c, _ in maps)
    return [(str(path), f"{SHEET_CAPTION} ({names}; left to right, top to bottom)")]


def explain(
    rt: Runtime, image: Any, note: Any = None, *, session: str | None = None
) -> tuple[dict[str, Any], list, dict]:
    """predict() plus Captum attributions; overlay PNGs share one colour scale.

    Returns (JSON, gallery [(png path, caption)], per-user state {"result", "pixels", "upload"
    (the scan's file, which the scan editor's edits are checked against)}). With a
    ``session``, a scan and note it already explained come from its cache (same answer, same
    files) instead of running Integrated Gradients again. A scan that is not assessable gets
    the refusal (``attributions: None``) and no overlays.
    """
    source = scan_source(image)
    note = clean_note(note)
    srv = serving(rt)
    key = srv.cache.key(source, note)
    hit = srv.cache.get(session, key)
    if hit is not None and all(Path(p).is_file() for p, _ in hit[1]):
        return hit
    try:
        scan = load_scan(source)
        result = srv.explain(scan, note)
        pixels = rt.predictor.scan_pixels(scan)
    except (InputError, WorkerError) as e:
        raise user_error(str(e)) from None
    result["model"] = rt.model_name
    state = CaseState({"result": result, "pixels": pixels, "upload": str(source)})
    gallery = _overlays(rt, result, pixels) if result["attributions"] is not None else []
    out = (result, gallery, state)
    srv.cache.put(session, key, out)
    return out


def model_maps(
    rt: Runtime, image: Any, state: Mapping[str, Any] | None = None, *, session: str | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(/model_maps' JSON: whole-model IG and occlusion of the scan with its ``assessable``
    verdict, the per-user state with them merged into its explanation). Cached per session by
    the scan's bytes alone: the note plays no part in the maps. A scan that is not assessable
    gets ``whole_model: None, occlusion: None``."""
    source = scan_source(image)
    srv = serving(rt)
    key = srv.maps_cache.key(source, None)
    maps = srv.maps_cache.get(session, key)
    if maps is None:
        try:
            maps = srv.model_maps(load_scan(source))
        except (InputError, WorkerError) as e:
            raise user_error(str(e)) from None
        srv.maps_cache.put(session, key, maps)
    return maps, with_model_maps(state, maps)


def with_model_maps(
    state: Mapping[str, Any] | None, maps: dict[str, Any]
) -> Mapping[str, Any] | None:
    """A copy of the state with ``maps`` in its explanation's attributions (the cached
    explanation itself is shared by the session's later hits, so it is never changed). A
    refused scan's state (no attributions) or maps stay as they are."""
    if not state or "result" not in state or state["result"].get("attributions") is None:
        return state
    drawn = {k: maps[k] for k in ("whole_model", "occlusion") if maps.get(k) is not None}
    if not drawn:
        return state
    result = dict(state["result"])
    result["attributions"] = {**result["attributions"], **drawn}
    return CaseState({**state, "result": result})


def _all_zero(att: dict[str, Any]) -> bool:
    grids = [att["total"], *att["experts"]]
    return not any(v for g in grids for row in g for v in row)


def _moe_summary(r: dict[str, Any], scale_text: str) -> str:
    """What the attributions of a model with image experts say."""
    att = r["attributions"]
    per = att.get("per_expert_sum") or []
    top = sorted(range(len(per)), key=lambda i: -abs(per[i]))[:3]
    return (
        influence_text(att, r["probability"])
        + f"\n\n**{len(r['experts'])} image experts**; {r['n_dropped']} of {r['grid'] ** 2} "
        "patches were kept by no expert (filtered out). Attributions: Integrated Gradients of "
        f"the calibrated glaucoma log-odds with respect to each expert's output ({scale_text}). "
        "Largest expert shares of the change (CLS token included): "
        + ", ".join(f"expert {i} ({per[i]:+.3f})" for i in top)
        + f". Convergence delta {att['convergence_delta']:.2g}"
        + (f" after {att['n_steps']} steps." if att.get("n_steps") else ".")
    )


def _note_highlights(r: dict[str, Any]) -> list[tuple[str, float]]:
    """Note tokens with their attributions scaled into -1..1 for gr.HighlightedText."""
    notes = r.get("note_attributions") or []
    peak = max((abs(v) for _, v in notes), default=0.0) or 1.0
    return [(tok, round(v / peak, 3)) for tok, v in notes]


def _model_maps(pixels: np.ndarray, att: dict[str, Any], failed: bool = False) -> Any:
    """Whole-model IG and occlusion side by side, on one scale (both are log-odds)."""
    whole, occ = att.get("whole_model"), att.get("occlusion")
    if failed and (not whole or not occ):
        return plots.empty_figure(
            "No whole-model maps: see the message on the Case tab.", height=200
        )
    if not whole or not occ:
        return plots.empty_figure("Computing the whole-model and occlusion maps ...", height=200)
    maps = {WHOLE: whole["map"], OCCLUSION: occ["map"]}
    return plots.attribution_overlays(pixels, maps, max(whole["scale"], occ["scale"]))


def _model_maps_text(att: dict[str, Any]) -> str:
    whole, occ = att.get("whole_model"), att.get("occlusion")
    if not whole or not occ:
        return ""
    m = np.asarray(occ["map"])
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    return (
        f"\n\n**Where the model as a whole looks** (left): Integrated Gradients over the pixels "
        f"from a black scan, summed per patch; the patches add up to {whole['sum']:+.2f} of the "
        f"log-odds change {whole['logit'] - whole['logit_baseline']:+.2f} (gap "
        f"{whole['convergence_delta']:.2g}). **Occlusion** (right, any model): the log-odds drop "
        f"when a patch is filled with the scan's mean grey; largest {m.max():+.2f} at row {r}, "
        f"column {c}. Red: the patch pushes towards glaucoma."
    )


def experts_blank(summary: str = NOT_YET) -> tuple:
    """``experts_view`` with no explanation: blank figures, no note, ``summary``."""
    blank = plots.empty_figure("No scan explained.", height=200)
    return blank, blank, blank, blank, [], summary


def _heading(state: Mapping[str, Any]) -> str:
    """The scan the maps belong to, and the refusal banner when the model cannot assess it."""
    r = state["result"]
    head = scan_line(state.get("scan")) + "\n\n" if state.get("scan") else ""
    assessed = r.get("assessable") or {}
    if is_refused(assessed):
        head += not_assessable_markdown(r["probability"], assessed) + "\n\n"
    return head


def experts_view(state: Mapping[str, Any] | None, shown: Sequence[str] | None) -> tuple:
    """(whole-model figure, expert attribution figure, routing figure, feature-gate figure,
    note highlights, summary): the order of ``ExpertsTab.views``. The summary names the scan
    (``state["scan"]``) and shows the refusal banner of a scan that is not assessable."""
    if not state:
        return experts_blank()
    r, pixels = state["result"], state["pixels"]
    att = r.get("attributions")
    if att is None:  # refused: no map of a scan the model cannot read is computed or drawn
        refused = plots.empty_figure("Not assessable by this model: no maps.", height=200)
        text = _heading(state) + "No maps are drawn for a scan the model cannot assess."
        return refused, refused, refused, refused, [], text
    shown_set = set(shown or [])
    zero = _all_zero(att)
    scale_text = (
        "every patch attribution is exactly zero"
        if zero
        else f"one shared colour scale, full colour at {colour_scale(att):.3g} log-odds per "
        f"patch, never below an even share of {MINOR_INFLUENCE:.0%} of the log-odds (largest "
        f"patch {att['scale']:.3g}); red pushes towards glaucoma, blue away"
    )
    if att["experts"]:
        logit = float(att["logit"])
        maps = {tile_label(k, v, logit): v for k, v in [(SUM, att["total"])] if k in shown_set}
        maps |= {
            tile_label(f"Expert {i}", m, logit): m
            for i, m in enumerate(att["experts"])
            if f"Expert {i}" in shown_set
        }
        routing = routing_maps(pixels, r["experts"], r["dropped_patches"], r["grid"])
        summary = _moe_summary(r, scale_text)
    else:
        maps = {NO_EXPERTS: att["total"]}
        routing = plots.empty_figure(
            "Plain CLIP checkpoint: there are no experts to route.", height=200
        )
        summary = (
            "This checkpoint is **plain CLIP: it has no experts**. The map shows Integrated "
            f"Gradients of the calibrated glaucoma log-odds on the image tokens at the block "
            f"where a Fair-MoE model would route them "
            f"({scale_text})."
        )
    if zero:
        summary += (
            "\n\n> All patch maps are zero. When the model pools the CLS token and its experts "
            "sit in the last block, their per-patch outputs never reach the score, so only the "
            "CLS token carries the experts' effect (see the shares above)."
        )
    summary = _heading(state) + summary + _model_maps_text(att)
    fg = r.get("feature_gates") or {}
    n_feat = len(fg.get("image") or fg.get("text") or [])
    names = fg.get("names") or [f"Feature expert {j}" for j in range(n_feat)]
    gates = plots.feature_gates(fg.get("image"), fg.get("text"), names)
    overlays = plots.attribution_overlays(pixels, maps, colour_scale(att))
    whole = _model_maps(pixels, att, failed=bool(state.get("maps_failed")))
    return whole, overlays, routing, gates, _note_highlights(r), summary


def default_shown(state: Mapping[str, Any] | None, n: int = 3) -> list[str]:
    """The sum plus the ``n`` experts with the largest patch attributions (others stay off)."""
    att = state["result"].get("attributions") if state else None
    if att is None:  # nothing explained, or a refused scan: no maps to show
        return []
    if not att["experts"]:
        return [NO_EXPERTS]
    mass = [float(np.abs(np.asarray(m)).sum()) for m in att["experts"]]
    top = sorted(range(len(mass)), key=lambda i: -mass[i])[:n]
    return [SUM] + [f"Expert {i}" for i in sorted(top)]


def experts_first_view(state: Mapping[str, Any] | None) -> tuple:
    """After a new explanation: pick the experts worth showing, then draw (see experts_view)."""
    shown = default_shown(state)
    return shown, *experts_view(state, shown)


def expert_choices(rt: Runtime) -> list[str]:
    """The maps the loaded model can show: the sum and each expert, or the one plain map."""
    n = rt.predictor.n_experts
    return ([SUM] + [f"Expert {i}" for i in range(n)]) if n else [NO_EXPERTS]


# A router is reported as collapsed when its first choices pile on one expert, or most experts
# keep (almost) nothing: then the per-expert maps say little about anatomy.
TOP_SHARE_COLLAPSED = 0.5
EMPTY_EXPERT_SHARE = 0.01  # an expert keeping under 1% of the patches counts as empty


def what_is_an_expert(model: Any) -> str:
    """What an expert is, naming the block of the loaded model's image tower it sits in."""
    layers, block = model.config.vision.layers, model.image_moe_block + 1
    where = (
        "last transformer block" if block == layers else f"transformer block {block} of {layers}"
    )
    return (
        "An **expert** is one of the small feed-forward networks that replace the MLP of the "
        f"image encoder's {where}: a router sends each patch of the scan to its "
        "top-k experts, each expert keeps at most its capacity of patches, and a patch kept by "
        "no expert passes on without expert output."
    )


def router_health_md(health: dict[str, Any] | None, n_experts: int) -> str:
    """The loaded model's router health (RunMetadata.routing_health), stated plainly."""
    if not n_experts:
        return "**Router health:** plain CLIP has no router and no experts."
    h = ((health or {}).get("token_img") or {}).get("overall") or {}
    if not h.get("n_tokens"):
        return (
            "**Router health: unknown.** This checkpoint's metadata has no routing health "
            "(it was trained before the figures were recorded), so nothing here says whether "
            "its router spreads patches over the experts or has collapsed onto a few."
        )
    top, ent, none = h["top_expert_share"], h["kept_entropy"], h["none_share"]
    kept = h.get("kept_share") or []
    empty = sum(1 for v in kept if v < EMPTY_EXPERT_SHARE)
    figures = (
        f"top-expert share {top:.0%} (expert {h['top_expert']}'s share of first choices; "
        f"{1 / n_experts:.0%} if even), kept-load entropy {ent:.2f} (1 = even load, 0 = one "
        f"expert), {none:.0%} of patches kept by no expert, {empty} of {len(kept) or n_experts} "
        f"experts empty; over {h['n_tokens']:,} test patches."
    )
    reasons = []
    if top > TOP_SHARE_COLLAPSED or h.get("collapsed"):
        reasons.append(f"one expert is the first choice of {top:.0%} of the patches")
    if kept and empty > len(kept) / 2:
        reasons.append(f"{empty} of {len(kept)} experts keep (almost) no patches")
    if none > 0.5:
        reasons.append(f"{none:.0%} of the patches are kept by no expert")
    if reasons:
        return (
            icon("warn")
            + "**The router has collapsed:** "
            + "; ".join(reasons)
            + ". The experts are not "
            "sharing the work, so the per-expert maps below show little about anatomy; read the "
            "whole-model and occlusion maps instead. Figures: " + figures
        )
    return (
        icon("ok") + "**Router healthy:** patches are spread over the experts. Figures: " + figures
    )


def expert_load_view(rt: Runtime, attr: str) -> tuple[Any, str]:
    """(grouped bars, caption) of :func:`load_by_group` on the loaded model's test scores."""
    return load_by_group(rt.model_scores, attr)


def load_by_group(ss: ScoreSet | None, attr: str) -> tuple[Any, str]:
    """(grouped bars, caption): each expert's mean gate weight per group of ``attr``; the share
    of patches kept (with a note saying so) when the scores have no gate columns."""
    if ss is None or (ss.gate_loads is None and ss.loads is None):
        fig = plots.empty_figure("No expert loads: plain CLIP, or no cached test scores.")
        return fig, ""
    by_gate = ss.gate_loads is not None
    values = ss.gate_loads if by_gate else ss.loads
    a, codes = attribute(attr), ss.attrs[attr]
    means = {
        g: values[codes == i].mean(axis=0).tolist()
        for i, g in enumerate(a.groups)
        if (codes == i).any()
    }
    sizes = {g: int((codes == i).sum()) for i, g in enumerate(a.groups)}
    measure = "mean gate weight per patch" if by_gate else "share of patches kept"
    fig = expert_load_by_group(means, sizes, measure=measure)
    note = (
        "Mean gate weight each expert gives a patch, per group (test split): where the router "
        "sends the groups' patches, weighted by how much it trusts each expert."
        if by_gate
        else icon("warn")
        + "These test scores have no gate weights (`gate_e*` columns; older run), so "
        "this shows the share of patches each expert kept instead: patch counts can look "
        "balanced when the gates are not."
    )
    return fig, note
