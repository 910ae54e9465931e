"""PNG overlays of attribution maps on the scan, for the /explain endpoint and downloads.

Every overlay of one explanation uses the same colour scale (``scale`` = max |value| over all
experts), so a faint map means a weak expert, not a badly normalised one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["overlay_png", "overlay_rgb"]

NEGATIVE = np.array([33, 102, 172], np.float32)  # blue: pushes away from glaucoma
POSITIVE = np.array([178, 24, 43], np.float32)  # red: pushes towards glaucoma
MAX_ALPHA = 0.75  # at |value| == scale; the scan stays visible under the strongest patch
OUT_PX = 448  # overlays are upscaled (nearest) so patches stay crisp in a gallery


def overlay_rgb(pixels: np.ndarray, grid: Sequence[Sequence[float]], scale: float) -> np.ndarray:
    """(OUT_PX, OUT_PX, 3) uint8: the grayscale scan with a red/blue patch overlay."""
    g = np.asarray(grid, dtype=np.float32)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"attribution grid must be square, got shape {g.shape}")
    scan = Image.fromarray(np.asarray(pixels, np.uint8)).convert("RGB")
    scan = scan.resize((OUT_PX, OUT_PX), Image.BILINEAR)
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    v = np.clip(g / scale, -1.0, 1.0)[..., None]  # (g, g, 1)
    colour = np.where(v >= 0, POSITIVE, NEGATIVE)  # (g, g, 3)
    alpha = np.abs(v) * MAX_ALPHA * 255
    cells = np.concatenate([colour, alpha], axis=-1).round().astype(np.uint8)  # (g, g, 4)
    # nearest-neighbour upscaling keeps patch borders crisp; compositing runs in C
    layer = Image.fromarray(cells, "RGBA").resize((OUT_PX, OUT_PX), Image.NEAREST)
    return np.asarray(Image.alpha_composite(scan.convert("RGBA"), layer).convert("RGB"))


def overlay_png(
    pixels: np.ndarray, grid: Sequence[Sequence[float]], scale: float, path: str | Path
) -> Path:
    """Write :func:`overlay_rgb` as a PNG to ``path`` (fast compression: these are temporary)."""
    path = Path(path)
    Image.fromarray(overlay_rgb(pixels, grid, scale)).save(path, format="PNG", compress_level=1)
    return path
