"""app.overlay: attribution PNGs drawn on the one shared colour scale."""

from __future__ import annotations

import numpy as np

from app.overlay import overlay_rgb


def test_overlay_uses_the_given_scale():
    pixels = np.full((64, 64), 128, np.uint8)
    grid = np.zeros((4, 4))
    grid[0, 0], grid[3, 3] = 2.0, -1.0
    rgb = overlay_rgb(pixels, grid, scale=2.0)
    assert rgb.shape == (448, 448, 3)
    assert rgb[5, 5, 0] > rgb[5, 5, 2]  # strongest positive: red
    assert rgb[-5, -5, 2] > rgb[-5, -5, 0]  # negative: blue
    assert tuple(rgb[200, 5]) == (128, 128, 128)  # zero: the scan untouched
    weaker = overlay_rgb(pixels, grid, scale=4.0)
    assert weaker[5, 5, 0] < rgb[5, 5, 0]  # same value, larger shared scale: fainter
