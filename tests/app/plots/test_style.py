"""app.plots.style: the shared look; every figure has an explicit height (autosize rendered 0)."""

from __future__ import annotations

from app import plots
from app.plots.style import empty_figure, grid_shape, small_multiples


def test_empty_figure_has_an_explicit_height():
    fig = empty_figure("x")
    assert isinstance(fig.layout.height, int) and fig.layout.height > 0
    assert fig.layout.annotations[0].text == "x"


def test_small_multiple_domains_stay_in_the_unit_square():
    for n in range(1, 12):
        rows, cols = grid_shape(n)
        panels, refs = small_multiples(rows, cols, [f"t{i}" for i in range(n)])
        assert len(refs) == rows * cols >= n
        domains = [v["domain"] for k, v in panels.items() if k.startswith(("xaxis", "yaxis"))]
        assert all(0 <= lo <= hi <= 1 for lo, hi in domains)


def test_package_reexports_every_builder():
    assert set(plots.__all__) <= set(dir(plots))
