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


def _marks(rgb: np.ndarray, g: int) -> np.ndarray:
    """What the centre pixel of each patch shows: 1 blue (kept), 2 vermillion (over capacity),
    3 dark (kept by no expert), 0 the grayscale scan untouched."""
    side = rgb.shape[0]
    out = np.zeros((g, g), int)
    for r in range(g):
        for c in range(g):
            red, green, blue = (
                int(v) for v in rgb[int((r + 0.5) * side / g), int((c + 0.5) * side / g)]
            )
            if blue > red + 20:
                out[r, c] = 1
            elif red > blue + 20:
                out[r, c] = 2
            elif not red == green == blue:
                out[r, c] = -1  # neither mark nor scan: a drawing error
    return out


def test_routing_drawing_marks_the_predicted_routing(runtime, assets_dir):
    from app.overlay import routing_rgb, unkept_rgb

    scan = str(assets_dir / "examples" / "case1.png")
    result = runtime.predictor.predict(scan)
    pixels = runtime.predictor.scan_pixels(scan)
    g = result["grid"]
    assert result["experts"], "the test model has image experts"
    for e in result["experts"]:
        kept, cap = np.array(e["kept"]), np.array(e["capacity_dropped"])
        assert not (kept & cap).any()
        marks = _marks(routing_rgb(pixels, kept, cap, e["weights"], wmax=1.0), g)
        np.testing.assert_array_equal(marks, kept * 1 + cap * 2)
    unkept = unkept_rgb(pixels, result["dropped_patches"])
    dark = np.array(
        [
            [unkept[int((r + 0.5) * 192 / g), int((c + 0.5) * 192 / g)].max() for c in range(g)]
            for r in range(g)
        ]
    )
    plain = np.asarray(routing_rgb(pixels, np.zeros((g, g)))).astype(int)
    plain_centres = np.array(
        [
            [plain[int((r + 0.5) * 192 / g), int((c + 0.5) * 192 / g)].max() for c in range(g)]
            for r in range(g)
        ]
    )
    dropped = np.array(result["dropped_patches"], dtype=bool)
    assert (dark[dropped] < plain_centres[dropped]).all() or not dropped.any()
    np.testing.assert_array_equal(dark[~dropped], plain_centres[~dropped])
