"""Figures of the Experts tab: attribution overlays, routing maps and feature-MoE gates."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from app.plots.style import (
    PANEL_PX,
    empty_figure,
    grid_shape,
    layout,
    small_multiples,
    square_panels,
)

__all__ = ["attribution_overlays", "feature_gates", "routing_maps"]

# red: pushes towards glaucoma, blue: away from it; zero is transparent so the scan shows through
ATTRIBUTION_SCALE = [
    [0.0, "rgba(33,102,172,0.85)"],
    [0.25, "rgba(103,169,207,0.55)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.75, "rgba(239,138,98,0.55)"],
    [1.0, "rgba(178,24,43,0.85)"],
]
GATE_SCALE = "Viridis"
BACKGROUND_PX = 112  # scans drawn under overlays are downsampled to this (the heat map is coarser)


def _expert_traces(e: Mapping[str, Any], xr: str, yr: str, *, legend: bool) -> list[Any]:
    """One expert's panel: gate weights of its kept patches; capacity-dropped ones as crosses."""
    kept = np.asarray(e["kept"], dtype=bool)
    w = np.where(kept, np.asarray(e["weights"], dtype=float), np.nan)
    traces: list[Any] = [
        go.Heatmap(
            z=w,
            coloraxis="coloraxis",
            xgap=1,
            ygap=1,
            xaxis=xr,
            yaxis=yr,
            hovertemplate="row %{y}, col %{x}<br>gate %{z:.3f}<extra>expert "
            + str(e["id"])
            + "</extra>",
        )
    ]
    cap = e.get("capacity_dropped")
    if cap is not None:
        yy, xx = np.nonzero(np.asarray(cap, dtype=bool))
        traces.append(
            go.Scatter(
                x=xx,
                y=yy,
                mode="markers",
                marker={"symbol": "x", "color": "#D55E00"},
                name="dropped by capacity",
                showlegend=legend,
                xaxis=xr,
                yaxis=yr,
                hovertemplate="chosen but over capacity<extra></extra>",
            )
        )
    return traces


def _unkept_trace(dropped: Sequence[Sequence[int]], xr: str, yr: str) -> go.Heatmap:
    """The panel of patches no expert kept."""
    return go.Heatmap(
        z=np.asarray(dropped, dtype=float),
        colorscale=[[0, "#F2F2F2"], [1, "#D55E00"]],
        zmin=0,
        zmax=1,
        showscale=False,
        xgap=1,
        ygap=1,
        xaxis=xr,
        yaxis=yr,
        hovertemplate="row %{y}, col %{x}: %{z}<extra>no expert kept</extra>",
    )


def routing_maps(
    experts: Sequence[Mapping[str, Any]],
    dropped: Sequence[Sequence[int]] | None,
    grid: int,
) -> go.Figure:
    """Per expert: gate weights of the patches it kept; capacity-dropped patches as crosses.

    A last panel highlights the patches no expert kept (their expert output is zero).
    """
    n = len(experts) + (1 if dropped is not None else 0)
    rows, cols = grid_shape(n)
    titles = [
        f"Expert {e['id']}: {e['kept_patches']} kept, gate {e['gate_mean']:.2f}" for e in experts
    ]
    if dropped is not None:
        titles.append(f"No expert kept ({int(np.sum(dropped))})")
    panels, refs = small_multiples(rows, cols, titles)
    wmax = max((float(np.max(e["weights"])) for e in experts), default=1.0) or 1.0
    traces: list[Any] = []
    for i, e in enumerate(experts):
        traces += _expert_traces(e, *refs[i], legend=i == 0)
    if dropped is not None:
        traces.append(_unkept_trace(dropped, *refs[len(experts)]))
    square_panels(panels, rows * cols, grid)
    fig_layout = layout(
        PANEL_PX * rows + 70,
        coloraxis={
            "colorscale": GATE_SCALE,
            "cmin": 0,
            "cmax": wmax,
            "colorbar": {"title": {"text": "gate"}, "thickness": 12},
        },
        legend={"orientation": "h", "y": -0.05},
        margin={"l": 10, "r": 10, "t": 40, "b": 20},
        plot_bgcolor="#EEF1F4",  # shows the patch grid of an expert that kept nothing
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
    if not maps:
        return empty_figure("Select at least one expert to show its attributions.")
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
        230 * rows + 60,
        coloraxis={
            "colorscale": ATTRIBUTION_SCALE,
            "cmin": -scale,
            "cmax": scale,
            "colorbar": {"title": {"text": "log-odds"}, "thickness": 12},
        },
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        **panels,
    )
    return go.Figure(data=traces, layout=fig_layout)


def feature_gates(
    image: Sequence[float] | None, text: Sequence[float] | None, names: Sequence[str]
) -> go.Figure:
    """Feature-MoE gate weights (one expert per group of the trained attribute)."""
    if image is None and text is None:
        return empty_figure("This model has no feature MoE.", height=220)
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
