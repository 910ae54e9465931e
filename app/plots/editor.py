"""Figures of the scan editor: the editable scan with its patch grid, and original vs edited maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from app.overlay import CAPACITY, ROUTING_PX, heat_rgb, unkept_rgb
from app.plots.experts import tile_uri
from app.plots.style import PANEL_PX, empty_figure, layout, small_multiples, square_panels

__all__ = ["DISPLAY_PX", "edit_comparison", "editor_image"]

DISPLAY_PX = 384  # the clickable scan: big enough to hit a patch of an 8x8 grid


def editor_image(pixels: np.ndarray, mask: Any, grid: int) -> np.ndarray:
    """(DISPLAY_PX, DISPLAY_PX, 3) uint8: the edited scan, its patch grid, masked patches outlined."""
    img = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGB")
    img = img.resize((DISPLAY_PX, DISPLAY_PX), Image.NEAREST)
    draw = ImageDraw.Draw(img, "RGBA")
    edges = [round(i * DISPLAY_PX / grid) for i in range(grid + 1)]
    for v in edges[1:-1]:
        draw.line([(v, 0), (v, DISPLAY_PX)], fill=(255, 255, 255, 90))
        draw.line([(0, v), (DISPLAY_PX, v)], fill=(255, 255, 255, 90))
    m = np.asarray(mask, dtype=bool) if mask is not None else np.zeros((grid, grid), bool)
    for r, c in np.argwhere(m):
        box = (edges[c] + 1, edges[r] + 1, edges[c + 1] - 2, edges[r + 1] - 2)
        draw.rectangle(box, outline=(*CAPACITY, 255), width=3)
    return np.asarray(img)


def _scale(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> float:
    return max((float(x["scale"]) for x in (a, b) if x), default=1.0)


def edit_comparison(
    original_px: np.ndarray,
    edited_px: np.ndarray,
    original: Mapping[str, Any],
    edited: Mapping[str, Any],
) -> go.Figure:
    """Rows original / edited; columns whole-model IG, occlusion and (with experts) the patches
    kept by no expert. Each map type shares one colour scale across the two rows. A scan the
    model cannot assess (``attributions: None``) gets no maps: the figure says so."""
    oa, ea = original.get("attributions"), edited.get("attributions")
    if oa is None or ea is None:
        which = "original scan" if oa is None else "edited scan"
        return empty_figure(f"No maps: the {which} is not assessable by this model.", height=200)
    kinds = [("whole_model", "whole model"), ("occlusion", "occlusion")]
    kinds = [(k, t) for k, t in kinds if oa.get(k) and ea.get(k)]
    routed = original.get("dropped_patches") is not None
    cols = len(kinds) + int(routed)
    if cols == 0:
        return empty_figure("No maps to compare.", height=200)
    titles = []
    for row in ("Original", "Edited"):
        titles += [f"{row}: {t}" for _, t in kinds] + (
            [f"{row}: kept by no expert"] if routed else []
        )
    panels, refs = small_multiples(2, cols, titles)
    tiles = []
    for px, res in ((original_px, original), (edited_px, edited)):
        att = res["attributions"]
        tiles += [heat_rgb(px, att[k]["map"], _scale(oa.get(k), ea.get(k))) for k, _ in kinds]
        if routed:
            tiles.append(unkept_rgb(px, res["dropped_patches"]))
    traces = [
        go.Image(source=tile_uri(t), hoverinfo="skip", xaxis=xr, yaxis=yr)
        for t, (xr, yr) in zip(tiles, refs, strict=False)
    ]
    square_panels(panels, 2 * cols, ROUTING_PX)
    fig_layout = layout(2 * PANEL_PX + 80, margin={"l": 10, "r": 10, "t": 40, "b": 10}, **panels)
    return go.Figure(data=traces, layout=fig_layout)
