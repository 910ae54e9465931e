"""app.plots.style: the shared look; every figure has an explicit height (autosize rendered 0)."""

from __future__ import annotations

import plotly.graph_objects as go

from app import plots
from app.plots.style import distinguish, empty_figure, grid_shape, small_multiples


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


def test_series_differ_without_colour():
    """Colour is never the only cue: each group curve and each bar series gets its own dash,
    symbol or pattern; explicitly styled traces (the ROC diagonal) keep theirs."""
    curves = [
        {
            "name": n,
            "n": 10,
            "auc": 0.8,
            "fpr": [0, 0.5, 1],
            "tpr": [0, 0.7, 1],
            "point": [0.5, 0.7],
        }
        for n in ("Asian", "Black", "White")
    ]
    fig = plots.roc_curves(curves, None)
    lines = [t for t in fig.data if t.mode == "lines" and t.name]
    assert len({t.line.dash for t in lines}) == len(lines) == 3
    assert fig.data[0].line.dash == "dot"  # the diagonal
    symbols = [t.marker.symbol for t in fig.data if t.mode == "markers"]
    assert len(set(symbols)) == len(symbols) == 3
    bars = distinguish(go.Figure([go.Bar(x=[1], y=[i]) for i in range(4)]))
    assert len({t.marker.pattern.shape for t in bars.data}) == 4


def test_empty_figure_keeps_the_title_it_is_given():
    assert empty_figure("x", title="Rates").layout.title.text == "Rates"
    assert empty_figure("x").layout.title.text is None
