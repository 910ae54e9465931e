"""Event handlers as plain functions of (runtime, inputs): the UI binds them, tests call them.

The four public endpoints (``predict``, ``explain``, ``fairness``, ``cohort``) return JSON-ready
data; the ``*_view`` functions turn that data into what the UI shows. User mistakes become
``gr.Error`` with the Predictor's message; anything else is our bug and propagates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app import plots, views
from app.overlay import overlay_png
from app.runtime import Runtime
from app.text import STRATEGY_LABELS, operating_point_text
from fairmoe.cohort import CohortError, CohortResult, score_cohort
from fairmoe.inference import InputError, load_scan
from fairmoe.metrics import STRATEGIES
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES, OPERATING_POINT
from fairmoe.scores import ScoreSet, write_scores

__all__ = [
    "MAX_GROUPS",
    "NOT_GIVEN",
    "PREVIEW_PX",
    "attribute_choices",
    "bad_rows_table",
    "case_view",
    "cohort",
    "cohort_view",
    "context_view",
    "display_pixels",
    "expert_choices",
    "default_shown",
    "experts_first_view",
    "experts_view",
    "explain",
    "fairness",
    "fairness_select",
    "fairness_strategy",
    "fairness_tradeoff",
    "fairness_update",
    "inspect_upload",
    "load_example",
    "models",
    "numpy_free",
    "predict",
    "preview",
    "upload_path",
]

MAX_GROUPS = max(a.n_groups for a in ATTRIBUTES.values())  # per-group sliders the UI pre-builds
NOT_GIVEN = -1  # dropdown value of an attribute the user did not choose
PREVIEW_PX = 224  # smaller model inputs are upscaled for display


def _error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


def upload_path(value: Any) -> str | None:
    """The server-side path of an uploaded file value (str, or a client payload dict)."""
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if value else None


def _source(image: Any) -> str:
    """The uploaded file's path (gr.File gives a str; a raw client payload may be a dict)."""
    if isinstance(image, dict):
        image = image.get("path")
    if image is None or str(image).strip() == "":
        raise _error("Upload a scan first: PNG, JPEG or TIFF, or a FairVLMed .npz file.")
    if not Path(image).exists():  # uploads go when their session ends or after an hour
        raise _error(
            f"{Path(image).name} is no longer on the server (uploads are deleted when a session "
            "ends, and after an hour); upload it again."
        )
    return str(image)


def _note(note: Any) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str):
        raise _error("The note must be text.")
    return note if note.strip() else None


# ----------------------------------------------------------------------------- public endpoints


def predict(rt: Runtime, image: Any, note: Any = None) -> dict[str, Any]:
    """Calibrated glaucoma probability, decision, routing summary and warnings for one scan."""
    try:
        result = rt.predictor.predict(_source(image), _note(note))
    except InputError as e:
        raise _error(str(e)) from None
    result["model"] = rt.model_name
    return result


def explain(rt: Runtime, image: Any, note: Any = None) -> tuple[dict[str, Any], list, dict]:
    """predict() plus Captum attributions; overlay PNGs share one colour scale.

    Returns (JSON, gallery [(png path, caption)], per-user state {"result", "pixels"}).
    """
    source = _source(image)
    try:
        scan = load_scan(source)
        result = rt.predictor.explain(scan, _note(note))
        pixels = rt.predictor.scan_pixels(scan)
    except InputError as e:
        raise _error(str(e)) from None
    result["model"] = rt.model_name
    att = result["attributions"]
    maps = [("All experts (sum)" if att["experts"] else "Attribution (no experts)", att["total"])]
    maps += [(f"Expert {i}", m) for i, m in enumerate(att["experts"])]
    gallery = []
    for caption, grid in maps:
        path = rt.new_output_path("overlay", ".png")
        overlay_png(pixels, grid, att["scale"], path)
        gallery.append((str(path), caption))
    return result, gallery, {"result": result, "pixels": pixels}


def fairness(
    rt: Runtime, model: str, attribute: str = "race", threshold: float = OPERATING_POINT
) -> dict:
    """AUC, ES-AUC, DPD, DEOdds and per-group n/AUC/TPR/FPR of a run's test scores."""
    try:
        run = rt.run(model)
    except KeyError as e:
        raise _error(str(e.args[0])) from None
    if attribute not in ATTRIBUTE_NAMES:
        raise _error(f"unknown attribute {attribute!r}; choose one of {', '.join(ATTRIBUTE_NAMES)}")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise _error(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    if not (math.isfinite(t) and 0 <= t <= 1):
        raise _error(f"threshold must be between 0 and 1, got {threshold!r}")
    out = views.fairness_json(run.scores, attribute, t)
    out["model"] = run.name
    return out


def models(rt: Runtime) -> list[dict[str, Any]]:
    """The runs the fairness endpoint knows, with the loaded model marked."""
    return [
        {
            "name": r.name,
            "label": r.label,
            "method": r.method,
            "attribute": r.attribute,
            "seed": r.seed,
            "fairness_scale": r.fairness_scale,
            "n_test": r.scores.n,
            "loaded": r.name == rt.default_run,
        }
        for r in rt.runs.values()
    ]


def _write_cohort_csv(rt: Runtime, result: CohortResult) -> str:
    """The scores CSV of the scored rows, plus row, file, decision, warnings and every bad row
    with its reason in ``error``."""
    path = rt.new_output_path("cohort-scores", ".csv")
    extra = {k: [r[k] for r in result.rows] for k in ("row", "file", "decision", "warnings")}
    extra["error"] = [""] * len(result.rows)
    failed = [
        {"id": b["file"], "row": b["row"], "file": b["file"], "error": b["reason"]}
        for b in result.bad
    ]
    write_scores(path, result.scores, extra=extra, failed=failed)
    return str(path)


def cohort(
    rt: Runtime, upload: Any, progress: Callable[[float, str], Any] | None = None
) -> tuple[dict[str, Any], str, ScoreSet | None]:
    """Score a zipped cohort; returns (JSON summary, scores CSV path, ScoreSet for the views)."""
    if isinstance(upload, dict):
        upload = upload.get("path")
    if not upload:
        raise _error("Upload a .zip of the cohort (FairVLMed layout, or a CSV with its images).")
    try:
        result = score_cohort(rt.predictor, Path(upload), progress=progress)
    except CohortError as e:
        raise _error(str(e)) from None
    if not result.rows:
        reasons = "; ".join(f"row {b['row']} ({b['file']}): {b['reason']}" for b in result.bad[:5])
        raise _error(f"No row of the cohort could be scored. First problems: {reasons}")
    ss = result.scores
    rep = ss.report(rt.predictor.threshold)
    summary = {
        "model": rt.model_name,
        "layout": result.layout,
        "n_scored": len(result.rows),
        "n_bad": len(result.bad),
        "bad_rows": result.bad,
        "threshold": rt.predictor.threshold,
        "auc": rep["auc"],
        "accuracy": rep["accuracy"],
        "attributes": {
            a: {k: sec[k] for k in ("es_auc", "dpd", "deodds", "n_unknown")}
            | {
                "groups": [
                    {k: g[k] for k in ("name", "n", "auc", "tpr", "fpr")} for g in sec["groups"]
                ]
            }
            for a, sec in rep["attributes"].items()
        },
    }
    return summary, _write_cohort_csv(rt, result), ss


# ----------------------------------------------------------------------------- case tab


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
        scan = load_scan(_source(image))
    except InputError as e:
        raise _error(str(e)) from None
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


def preview(rt: Runtime, image: Any) -> np.ndarray | None:
    """What the model will see, or None (a bad file is reported by the upload handler)."""
    if not image:
        return None
    try:
        return display_pixels(rt.predictor.scan_pixels(load_scan(_source(image))))
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
    return views.subgroup_context(rt.model_scores, _attr_codes(attr_values), rt.predictor.threshold)


def case_view(rt: Runtime, result: dict[str, Any] | None, *attr_values: Any) -> tuple:
    """(headline markdown, probability figure, meaning markdown, warnings markdown, context)."""
    if not result:
        return "", plots.empty_figure("No scan analysed yet.", height=130), "", "", ""
    p, t = result["probability"], result["threshold"]
    head = (
        f"### Probability of glaucoma: {p:.0%}\n"
        f"**Decision: {result['decision']}** ({'at or above' if p >= t else 'below'} the "
        f"operating point {t:.2f}). {result['uncertainty']}"
    )
    warns = result.get("warnings") or []
    warnings_md = "\n".join(f"- ⚠️ {w}" for w in warns) if warns else "No warnings for this scan."
    sim = (result.get("note") or {}).get("similarity_to_scan")
    meaning = operating_point_text(t)
    if sim is not None:
        meaning += (
            f"\n\nThe note was read but does not change the decision (it is scan-only, as in the "
            f"Fair-MoE evaluation); its cosine similarity to the scan is {sim:.2f}."
        )
    return (
        head,
        plots.probability_bar(p, t),
        meaning,
        warnings_md,
        context_view(rt, *attr_values),
    )


def _all_zero(att: dict[str, Any]) -> bool:
    grids = [att["total"], *att["experts"]]
    return not any(v for g in grids for row in g for v in row)


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
        maps = {k: v for k, v in [("All experts (sum)", att["total"])] if k in shown_set}
        maps |= {
            f"Expert {i}": m for i, m in enumerate(att["experts"]) if f"Expert {i}" in shown_set
        }
        routing = plots.routing_maps(r["experts"], r["dropped_patches"], r["grid"])
        per = att.get("per_expert_sum") or []
        top = sorted(range(len(per)), key=lambda i: -abs(per[i]))[:3]
        summary = (
            f"**{len(r['experts'])} image experts**; {r['n_dropped']} of {r['grid'] ** 2} patches "
            "were kept by no expert (filtered out). Attributions: Integrated Gradients of the "
            f"calibrated glaucoma log-odds with respect to each expert's output ({scale_text}). "
            f"With all experts silent the probability would be "
            f"{att['probability_without_experts']:.0%} instead of {r['probability']:.0%}. "
            "Largest expert shares of that change (CLS token included): "
            + ", ".join(f"expert {i} ({per[i]:+.3f})" for i in top)
            + f". Convergence delta {att['convergence_delta']:.2g}."
        )
    else:
        maps = {"Attribution (no experts)": att["total"]}
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
    notes = r.get("note_attributions") or []
    peak = max((abs(v) for _, v in notes), default=0.0) or 1.0
    highlights = [(tok, round(v / peak, 3)) for tok, v in notes]
    overlays = plots.attribution_overlays(pixels, maps, att["scale"])
    return overlays, routing, gates, highlights, summary


def default_shown(state: dict[str, Any] | None, n: int = 3) -> list[str]:
    """The sum plus the ``n`` experts with the largest patch attributions (others stay off)."""
    if not state:
        return []
    att = state["result"]["attributions"]
    if not att["experts"]:
        return ["Attribution (no experts)"]
    mass = [float(np.abs(np.asarray(m)).sum()) for m in att["experts"]]
    top = sorted(range(len(mass)), key=lambda i: -mass[i])[:n]
    return ["All experts (sum)"] + [f"Expert {i}" for i in sorted(top)]


def experts_first_view(state: dict[str, Any] | None) -> tuple:
    """After a new explanation: pick the experts worth showing, then draw (see experts_view)."""
    shown = default_shown(state)
    return shown, *experts_view(state, shown)


def expert_choices(rt: Runtime) -> list[str]:
    n = rt.predictor.n_experts
    return (
        (["All experts (sum)"] + [f"Expert {i}" for i in range(n)])
        if n
        else ["Attribution (no experts)"]
    )


# ----------------------------------------------------------------------------- fairness tab


def _group_slider_updates(attr: str, values: Sequence[float] | None = None) -> list:
    a = ATTRIBUTES[attr]
    out = []
    for j in range(MAX_GROUPS):
        if j < a.n_groups:
            v = OPERATING_POINT if values is None else float(values[j])
            out.append(gr.update(visible=True, label=f"Threshold: {a.groups[j]}", value=v))
        else:
            out.append(gr.update(visible=False))
    return out


def fairness_select(rt: Runtime, model: str, attr: str, tradeoff_metric: str) -> tuple:
    """On model or attribute change: group sliders, comparison, trade-off and expert load."""
    run = rt.run(model)
    rows, table_md = views.comparison(list(rt.runs.values()), attr)
    return (
        *_group_slider_updates(attr),
        plots.model_comparison(rows, views.COMPARE_METRICS, attr),
        table_md,
        plots.tradeoff(
            views.tradeoff_points(list(rt.runs.values()), attr, tradeoff_metric),
            tradeoff_metric,
            attr,
        ),
        views.load_view(run.scores, attr),
    )


def fairness_tradeoff(rt: Runtime, attr: str, metric: str) -> Any:
    return plots.tradeoff(views.tradeoff_points(list(rt.runs.values()), attr, metric), metric, attr)


def _view_tuple(view: views.FairnessView) -> tuple:
    return view.summary_md, view.groups_md, view.roc, view.confusion, view.rates


def fairness_update(
    ss: ScoreSet, attr: str, mode: str, single: float, *groups: float, compute_ci: bool = False
) -> tuple:
    """(summary, group table, ROC, confusion matrices, rates) from cached scores only."""
    threshold = views.resolve_thresholds(attr, mode, single, groups)  # type: ignore[arg-type]
    return _view_tuple(views.fairness_view(ss, attr, threshold, compute_ci=compute_ci))


def fairness_strategy(ss: ScoreSet, attr: str, strategy: str, cost_ratio: float) -> tuple:
    """(mode, single threshold, *group thresholds) chosen by fairmoe.metrics.choose_thresholds."""
    if strategy not in STRATEGIES:
        raise _error(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    try:
        cost = float(cost_ratio)
        if not (math.isfinite(cost) and cost > 0):
            raise ValueError
    except (TypeError, ValueError):
        raise _error("The cost ratio must be a positive number (e.g. 4).") from None
    t = ss.choose(attr, strategy, cost)
    mode = "single" if strategy == "single" else "per group"
    padded = [*t, *([OPERATING_POINT] * (MAX_GROUPS - len(t)))]
    return (
        mode,
        t[0],
        *padded,
        f"Thresholds set by **{STRATEGY_LABELS[strategy]}** (cost ratio {cost:g}).",
    )


# ----------------------------------------------------------------------------- cohort tab


def cohort_view(
    ss: ScoreSet | None, attr: str, threshold: float, *, compute_ci: bool = False
) -> tuple:
    """(summary, group table, ROC, confusion, rates, expert load) of the user's scored cohort."""
    if ss is None:
        blank = plots.empty_figure("Score a cohort first.", height=200)
        return "", "", blank, blank, blank, blank
    view = views.fairness_view(ss, attr, float(threshold), compute_ci=compute_ci)
    return (*_view_tuple(view), views.load_view(ss, attr))


def bad_rows_table(summary: dict[str, Any] | None) -> list[list[Any]]:
    return [[b["row"], b["file"], b["reason"]] for b in (summary or {}).get("bad_rows", [])]


def attribute_choices(attr: str) -> list[tuple[str, int]]:
    return [("not given", NOT_GIVEN)] + [(g, i) for i, g in enumerate(ATTRIBUTES[attr].groups)]


def numpy_free(obj: Any) -> Any:
    """JSON-safe copy (numpy scalars/arrays to Python) for gr.JSON outputs."""
    if isinstance(obj, dict):
        return {k: numpy_free(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [numpy_free(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
