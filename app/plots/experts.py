"""Figures of the Experts tab: attribution overlays, routing on the scan, gates, load per group."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from app.overlay import ROUTING_PX, routing_rgb, unkept_rgb
from app.plots.style import (
    GROUP_COLOURS,
    PANEL_PX,
    empty_figure,
    grid_shape,
    layout,
    small_multiples,
    square_panels,
)

__all__ = [
    "attribution_overlays",
    "expert_load_by_group",
    "feature_gates",
    "routing_maps",
    "tile_uri",
]

# red: pushes towards glaucoma, blue: away from it; zero is transparent so the scan shows through
ATTRIBUTION_SCALE = [
    [0.0, "rgba(33,102,172,0.85)"],
    [0.25, "rgba(103,169,207,0.55)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.75, "rgba(239,138,98,0.55)"],
    [1.0, "rgba(178,24,43,0.85)"],
]
# a figure title above small-multiple panel titles (or a legend row) needs this much more top
_TITLE_PX = 25
BACKGROUND_PX = 112  # scans drawn under overlays are downsampled to this (the heat map is coarser)


def tile_uri(rgb: np.ndarray) -> str:
    """A JPEG data URI of an RGB drawing: figures carry their images (no files to track).

    JPEG at quality 90 is ~4x smaller than PNG for a scan under an overlay (11 routing panels:
    ~70 kB instead of ~300 kB per figure) with no visible change at this size.
    """
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _hover_trace(text: np.ndarray, cell: float, xr: str, yr: str) -> go.Heatmap:
    """An invisible heat map over a drawn panel: hovering a patch says what happened to it."""
    return go.Heatmap(
        z=np.zeros(text.shape),
        text=text,
        x0=cell / 2 - 0.5,
        dx=cell,
        y0=cell / 2 - 0.5,
        dy=cell,
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
        showscale=False,
        hovertemplate="%{text}<extra></extra>",
        xaxis=xr,
        yaxis=yr,
    )


def _expert_hover(e: Mapping[str, Any]) -> np.ndarray:
    kept = np.asarray(e["kept"], dtype=bool)
    cap = e.get("capacity_dropped")
    cap = np.asarray(cap if cap is not None else np.zeros_like(kept), dtype=bool)
    w = np.asarray(e["weights"], dtype=float)
    text = np.full(kept.shape, "not chosen by this expert", dtype=object)
    text[cap] = "chosen (top-k) but over this expert's capacity: dropped"
    for r, c in np.argwhere(kept):
        text[r, c] = f"kept, gate {w[r, c]:.3f}"
    return text


def routing_maps(
    pixels: np.ndarray,
    experts: Sequence[Mapping[str, Any]],
    dropped: Sequence[Sequence[int]] | None,
    grid: int,
) -> go.Figure:
    """Per expert, on the scan: the patches it kept (blue, stronger for a larger gate) and those
    it was chosen for but dropped by its capacity (vermillion cross); a last panel darkens the
    patches no expert kept (their expert output is zero)."""
    n = len(experts) + (1 if dropped is not None else 0)
    title = "Patches each image expert kept (blue) or dropped over its capacity (cross)"
    if n == 0:
        return empty_figure("This model has no image experts to route.", height=200, title=title)
    rows, cols = grid_shape(n)
    titles = [
        f"Expert {e['id']}: {e['kept_patches']} kept"
        + (
            f", {int(np.sum(cap))} over cap."
            if (cap := e.get("capacity_dropped")) is not None
            else ""
        )
        for e in experts
    ]
    if dropped is not None:
        titles.append(f"Kept by no expert: {int(np.sum(dropped))}")
    panels, refs = small_multiples(rows, cols, titles)
    wmax = max((float(np.max(e["weights"])) for e in experts), default=1.0) or 1.0
    cell = ROUTING_PX / grid
    traces: list[Any] = []
    for e, (xr, yr) in zip(experts, refs, strict=False):
        rgb = routing_rgb(pixels, e["kept"], e.get("capacity_dropped"), e["weights"], wmax=wmax)
        traces.append(go.Image(source=tile_uri(rgb), hoverinfo="skip", xaxis=xr, yaxis=yr))
        traces.append(_hover_trace(_expert_hover(e), cell, xr, yr))
    if dropped is not None:
        xr, yr = refs[len(experts)]
        d = np.asarray(dropped, dtype=bool)
        traces.append(
            go.Image(source=tile_uri(unkept_rgb(pixels, d)), hoverinfo="skip", xaxis=xr, yaxis=yr)
        )
        text = np.where(d, "kept by no expert: no expert output", "kept by at least one expert")
        traces.append(_hover_trace(text.astype(object), cell, xr, yr))
    square_panels(panels, rows * cols, ROUTING_PX)
    fig_layout = layout(
        PANEL_PX * rows + 50 + _TITLE_PX,
        title={"text": title},
        margin={"l": 10, "r": 10, "t": 40 + _TITLE_PX, "b": 10},
        showlegend=False,
        **panels,
    )
    return go.Figure(data=traces, layout=fig_layout)


def _png_data_uri(pixels: np.ndarray, size: int) -> str:
    img = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if img.width > size:
        img = img.resize((size, size), Image.BILINEAR)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def attribution_overlays(
    pixels: np.ndarray,
    maps: Mapping[str, Sequence[Sequence[float]]],
    scale: float,
) -> go.Figure:
    """Attribution maps over the scan, all on ONE colour scale [-scale, scale]."""
    title = "Attribution on the scan (log-odds; red: towards glaucoma, blue: away from it)"
    if not maps:
        return empty_figure("Select at least one expert to show its attributions.", title=title)
    s = int(pixels.shape[0])
    rows, cols = grid_shape(len(maps), 4)
    panels, refs = small_multiples(rows, cols, list(maps))
    uri = _png_data_uri(pixels, BACKGROUND_PX)
    step = s / min(s, BACKGROUND_PX)  # scan pixels per background pixel
    scale = float(scale) if scale and math.isfinite(scale) and scale > 0 else 1e-9
    traces: list[Any] = []
    for (name, grid), (xr, yr) in zip(maps.items(), refs, strict=False):
        z = np.asarray(grid, dtype=float)
        cell = s / z.shape[0]  # scan pixels per patch
        traces.append(
            go.Image(
                source=uri,
                x0=step / 2 - 0.5,
                dx=step,
                y0=step / 2 - 0.5,
                dy=step,
                hoverinfo="skip",
                xaxis=xr,
                yaxis=yr,
            )
        )
        traces.append(
            go.Heatmap(
                z=z,
                x0=cell / 2 - 0.5,
                dx=cell,
                y0=cell / 2 - 0.5,
                dy=cell,
                coloraxis="coloraxis",
                xaxis=xr,
                yaxis=yr,
                hovertemplate="%{z:.4f}<extra>" + name + "</extra>",
            )
        )
    square_panels(panels, rows * cols, s)
    fig_layout = layout(
        230 * rows + 60 + _TITLE_PX,
        title={"text": title},
        coloraxis={
            "colorscale": ATTRIBUTION_SCALE,
            "cmin": -scale,
            "cmax": scale,
            "colorbar": {"title": {"text": "log-odds"}, "thickness": 12},
        },
        margin={"l": 10, "r": 10, "t": 40 + _TITLE_PX, "b": 10},
        **panels,
    )
    return go.Figure(data=traces, layout=fig_layout)


def feature_gates(
    image: Sequence[float] | None, text: Sequence[float] | None, names: Sequence[str]
) -> go.Figure:
    """Feature-MoE gate weights per expert (``names``: "Feature expert 0", ...)."""
    if image is None and text is None:
        return empty_figure(
            "This model has no feature MoE.", height=220, title="Feature-MoE gate weights"
        )
    fig = go.Figure(layout=layout(260, barmode="group", yaxis={"range": [0, 1], "title": "gate"}))
    for label, vals, colour in (("scan", image, "#0072B2"), ("note", text, "#E69F00")):
        if vals is not None:
            fig.add_trace(
                go.Bar(
                    x=list(names),
                    y=list(vals),
                    name=label,
                    marker_color=colour,
                    text=[f"{v:.2f}" for v in vals],
                    textposition="outside",
                )
            )
    fig.update_layout(
        title={"text": "Feature-MoE gate weights", "font": {"size": 14}},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


def expert_load_by_group(
    values: Mapping[str, Sequence[float]], sizes: Mapping[str, int], *, measure: str
) -> go.Figure:
    """Grouped bars: per image expert, one bar per group of ``measure`` (its axis title)."""
    title = f"Image-expert load by group ({measure})"
    if not values:
        return empty_figure("No expert loads in this model's test scores.", height=260, title=title)
    n_exp = len(next(iter(values.values())))
    fig = go.Figure(
        layout=layout(
            300 + _TITLE_PX,
            title={"text": title},
            barmode="group",
            yaxis={"title": measure},
            # the legend on a row of its own, between the title and the bars
            legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
            margin={"l": 50, "r": 20, "t": 40 + _TITLE_PX, "b": 40},
        )
    )
    x = [f"Expert {e}" for e in range(n_exp)]
    for i, (g, vals) in enumerate(values.items()):
        fig.add_trace(
            go.Bar(
                x=x,
                y=list(vals),
                name=f"{g} (n={sizes.get(g, 0)})",
                marker_color=GROUP_COLOURS[i % len(GROUP_COLOURS)],
                hovertemplate=f"{g}: " + "%{y:.4f}<extra>%{x}</extra>",
            )
        )
    return fig
