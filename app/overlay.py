"""Drawings on the scan: attribution overlays (PNG, for /explain) and routing per expert.

Every overlay of one explanation uses the same colour scale (``scale`` = max |value| over all
experts), so a faint map means a weak expert, not a badly normalised one. Routing drawings mark
each patch of the grid: kept by the expert, chosen but over its capacity, or kept by no expert.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "heat_rgb",
    "overlay_png",
    "overlay_rgb",
    "overlay_sheet_png",
    "routing_rgb",
    "unkept_rgb",
]

NEGATIVE = np.array([33, 102, 172], np.float32)  # blue: pushes away from glaucoma
POSITIVE = np.array([178, 24, 43], np.float32)  # red: pushes towards glaucoma
MAX_ALPHA = 0.75  # at |value| == scale; the scan stays visible under the strongest patch
OUT_PX = 448  # overlays are upscaled (nearest) so patches stay crisp in a gallery
# Routing marks (Okabe-Ito, told apart by colour-blind readers): blue fill = kept by the expert
# (stronger for a larger gate weight), vermillion cross = chosen but over capacity, dark = kept
# by no expert (its expert output is zero).
KEPT = (0, 114, 178)
CAPACITY = (213, 94, 0)
UNKEPT = (25, 25, 25)
ROUTING_PX = 192  # side of one routing drawing: 24 px per patch of an 8x8 grid
SHEET_TILE = 192  # side of one overlay in the sheet: twice the shipped model's 96 px input
SHEET_LABEL = 18  # caption strip above each tile
SHEET_COLUMNS = 6
SHEET_GAP = 4  # white between tiles


def _overlay_layer(grid: Any, scale: float, side: int) -> Image.Image:
    """The (side, side) RGBA patch layer: red/blue by sign, opacity by |value| / scale, upscaled
    by nearest neighbour so patch borders stay crisp."""
    g = np.asarray(grid, dtype=np.float32)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"attribution grid must be square, got shape {g.shape}")
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    v = np.clip(g / scale, -1.0, 1.0)[..., None]  # (g, g, 1)
    colour = np.where(v >= 0, POSITIVE, NEGATIVE)  # (g, g, 3)
    alpha = np.abs(v) * MAX_ALPHA * 255
    cells = np.concatenate([colour, alpha], axis=-1).round().astype(np.uint8)  # (g, g, 4)
    return Image.fromarray(cells, "RGBA").resize((side, side), Image.NEAREST)


def overlay_rgb(pixels: np.ndarray, grid: Sequence[Sequence[float]], scale: float) -> np.ndarray:
    """(OUT_PX, OUT_PX, 3) uint8: the grayscale scan with a red/blue patch overlay."""
    layer = _overlay_layer(grid, scale, OUT_PX)
    scan = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGB")
    scan = scan.resize((OUT_PX, OUT_PX), Image.BILINEAR)
    # compositing runs in C
    return np.asarray(Image.alpha_composite(scan.convert("RGBA"), layer).convert("RGB"))


def overlay_png(
    pixels: np.ndarray, grid: Sequence[Sequence[float]], scale: float, path: str | Path
) -> Path:
    """Write :func:`overlay_rgb` as a PNG to ``path`` (fast compression: these are temporary)."""
    path = Path(path)
    Image.fromarray(overlay_rgb(pixels, grid, scale)).save(path, format="PNG", compress_level=1)
    return path


def _compact_rgb(pixels: np.ndarray, grid: Any, scale: float, side: int) -> Image.Image:
    """The overlay drawn at the model's resolution, then upscaled to ``side`` without
    interpolation: the model sees no more than its input (e.g. 96 px), so a bilinear 448 px scan
    only made the file larger."""
    layer = _overlay_layer(grid, scale, pixels.shape[0])
    scan = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGBA")
    return Image.alpha_composite(scan, layer).convert("RGB").resize((side, side), Image.NEAREST)


def _tile_origin(k: int, columns: int) -> tuple[int, int]:
    return (k % columns) * (SHEET_TILE + SHEET_GAP), (k // columns) * (SHEET_TILE + SHEET_LABEL)


@lru_cache(maxsize=8)
def _sheet_template(captions: tuple[str, ...], columns: int) -> Image.Image:
    """The white sheet with its captions: the same for every explanation of a model, so the
    text is drawn once (~3 of the sheet's ~18 ms)."""
    rows = -(-len(captions) // columns)
    cols = min(columns, len(captions))
    size = (cols * (SHEET_TILE + SHEET_GAP) - SHEET_GAP, rows * (SHEET_TILE + SHEET_LABEL))
    sheet = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, caption in enumerate(captions):
        x, y = _tile_origin(k, columns)
        draw.text((x + 4, y + 3), caption, fill=(0, 0, 0))
    return sheet


def overlay_sheet_png(
    pixels: np.ndarray,
    maps: Sequence[tuple[str, Any]],
    scale: float,
    path: str | Path,
    *,
    columns: int = SHEET_COLUMNS,
) -> Path:
    """All of an explanation's overlays in ONE PNG: a grid of tiles, each captioned, read left
    to right and top to bottom. One file instead of one per expert: each costs a client an HTTP
    request, and under load those requests cost the server more than drawing."""
    sheet = _sheet_template(tuple(caption for caption, _ in maps), columns).copy()
    for k, (_, grid) in enumerate(maps):
        x, y = _tile_origin(k, columns)
        sheet.paste(_compact_rgb(pixels, grid, scale, SHEET_TILE), (x, y + SHEET_LABEL))
    path = Path(path)
    # zlib's fastest level: 11 ms instead of 16 at level 3 for 7% more bytes, on the server's
    # busiest path (benchmarks/bench_load.py)
    sheet.save(path, format="PNG", compress_level=1)
    return path


def _scan_rgba(pixels: np.ndarray, size: int) -> Image.Image:
    scan = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGB")
    return scan.resize((size, size), Image.BILINEAR).convert("RGBA")


def _cells(mask: np.ndarray, size: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of the True cells of a (g, g) mask on a size x size image."""
    g = mask.shape[0]
    edges = [round(i * size / g) for i in range(g + 1)]
    return [(edges[c], edges[r], edges[c + 1] - 1, edges[r + 1] - 1) for r, c in np.argwhere(mask)]


def _grid_lines(draw: ImageDraw.ImageDraw, g: int, size: int) -> None:
    for i in range(1, g):
        v = round(i * size / g)
        draw.line([(v, 0), (v, size)], fill=(255, 255, 255, 70))
        draw.line([(0, v), (size, v)], fill=(255, 255, 255, 70))


def routing_rgb(
    pixels: np.ndarray,
    kept: Sequence[Sequence[int]],
    capacity_dropped: Sequence[Sequence[int]] | None = None,
    weights: Sequence[Sequence[float]] | None = None,
    *,
    wmax: float = 1.0,
    size: int = ROUTING_PX,
) -> np.ndarray:
    """(size, size, 3) uint8: one expert's routing drawn on the scan over the patch grid.

    Kept patches get a blue fill (alpha 0.3-0.75, growing with the gate weight / ``wmax``);
    capacity-dropped patches a vermillion outline and cross; all other patches stay plain.
    """
    k = np.asarray(kept, dtype=bool)
    g = k.shape[0]
    w = np.asarray(weights, dtype=float) if weights is not None else np.ones_like(k, float)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    wmax = wmax if wmax and np.isfinite(wmax) and wmax > 0 else 1.0
    for (r, c), box in zip(np.argwhere(k), _cells(k, size), strict=True):
        alpha = 0.3 + 0.45 * float(np.clip(w[r, c] / wmax, 0.0, 1.0))
        draw.rectangle(box, fill=(*KEPT, round(alpha * 255)))
    if capacity_dropped is not None:
        for x0, y0, x1, y1 in _cells(np.asarray(capacity_dropped, dtype=bool), size):
            width = max(2, size // (12 * g))
            draw.rectangle((x0, y0, x1, y1), outline=(*CAPACITY, 255), width=width)
            draw.line([(x0, y0), (x1, y1)], fill=(*CAPACITY, 255), width=width)
            draw.line([(x0, y1), (x1, y0)], fill=(*CAPACITY, 255), width=width)
    _grid_lines(draw, g, size)
    return np.asarray(Image.alpha_composite(_scan_rgba(pixels, size), layer).convert("RGB"))


def unkept_rgb(
    pixels: np.ndarray, dropped: Sequence[Sequence[int]], *, size: int = ROUTING_PX
) -> np.ndarray:
    """(size, size, 3) uint8: the patches kept by no expert darkened on the scan."""
    d = np.asarray(dropped, dtype=bool)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for box in _cells(d, size):
        draw.rectangle(box, fill=(*UNKEPT, 190))
    _grid_lines(draw, d.shape[0], size)
    return np.asarray(Image.alpha_composite(_scan_rgba(pixels, size), layer).convert("RGB"))


def heat_rgb(
    pixels: np.ndarray, grid: Sequence[Sequence[float]], scale: float, *, size: int = ROUTING_PX
) -> np.ndarray:
    """(size, size, 3) uint8: the red/blue attribution overlay at a small size (for figures)."""
    g = np.asarray(grid, dtype=np.float32)
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    v = np.clip(g / scale, -1.0, 1.0)[..., None]
    cells = np.concatenate([np.where(v >= 0, POSITIVE, NEGATIVE), np.abs(v) * MAX_ALPHA * 255], -1)
    layer = Image.fromarray(cells.round().astype(np.uint8), "RGBA").resize(
        (size, size), Image.NEAREST
    )
    return np.asarray(Image.alpha_composite(_scan_rgba(pixels, size), layer).convert("RGB"))
