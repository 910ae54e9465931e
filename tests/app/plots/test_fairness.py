"""app.plots.fairness: models side by side and the trade-off sweep."""

from __future__ import annotations

import pytest

from app import plots
from app.plots.fairness import model_comparison, tradeoff

METRICS = ("AUC", "ES-AUC", "DPD", "DEOdds")


def _rows(n: int = 5) -> list[dict]:
    families = ["Fair-MoE (race) [small], no capacity dropping", "CLIP [small]"]
    return [
        {
            "family": families[i % 2] + f" {i}",
            **{m: {"mean": 0.1 * (j + 1), "std": 0.01} for j, m in enumerate(METRICS)},
        }
        for i in range(n)
    ]


def _points() -> list[dict]:
    sweep = [
        {"x": 0.1 - s / 50, "y": 0.8, "x_std": 0.01, "y_std": 0.01, "label": f"x{s}", "scale": s}
        for s in (0, 1, 2)
    ]
    return [{**p, "series": "Fair-MoE", "kind": "sweep"} for p in sweep] + [
        {**sweep[0], "series": "CLIP", "kind": "reference"},
        {**sweep[1], "series": "Fair-MoE", "kind": "loaded"},
    ]


def test_every_comparison_figure_has_an_explicit_height():
    figs = [model_comparison([], ["AUC"], "race"), tradeoff([], "DPD", "race")]
    figs += [model_comparison(_rows(n), METRICS, "race") for n in (1, 5, 12)]
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)


@pytest.mark.parametrize(
    "fig",
    [
        model_comparison([], METRICS, "race"),
        model_comparison(_rows(), METRICS, "race"),
        tradeoff([], "DPD", "race"),
        tradeoff(_points(), "DPD", "race"),
        tradeoff(_points(), "ES-AUC", "gender"),
    ],
)
def test_every_comparison_figure_has_a_title(fig):
    """The page's figure summary starts with the title; without one plotly's editor placeholder
    ("Click to enter Plot title") is all there is."""
    assert fig.layout.title.text and "Click to enter" not in fig.layout.title.text


def test_comparison_legend_clears_the_panel_titles():
    """The legend sits at the bottom of the figure, under the value axes; the panel titles
    ("Higher is better", "Lower is better") above the panels: they cannot overlap."""
    fig = plots.model_comparison(_rows(), METRICS, "race")
    legend, margin = fig.layout.legend, fig.layout.margin
    assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == (
        "h",
        "container",
        0,
        "bottom",
    )
    notes = {a.text: a for a in fig.layout.annotations}
    assert {"Higher is better →", "Lower is better ←"} <= set(notes)
    for a in notes.values():
        assert (a.yref, a.y, a.yanchor) == ("paper", 1, "bottom")  # above the plot area
    # the bottom margin holds the value ticks, their title and a legend row
    assert margin.b >= 80 and margin.t >= 60


def test_comparison_model_names_read_horizontally():
    """Models down the left (horizontal bars, names at angle 0, first model on top as in the
    table), named once: not rotated 90 degrees under each panel."""
    rows = _rows()
    fig = model_comparison(rows, METRICS, "race")
    assert {t.orientation for t in fig.data} == {"h"}
    assert list(fig.data[0].y) == [r["family"].replace(" [", "<br>[") for r in rows]
    y1, y2 = fig.layout.yaxis, fig.layout.yaxis2
    assert y1.tickangle == 0 and y1.showticklabels and y1.autorange == "reversed"
    assert y2.matches == "y" and y2.showticklabels is False
    assert fig.layout.height >= 46 * len(rows)  # a row of bars per model grows the figure


def test_tradeoff_better_arrow_is_above_the_points():
    """The 'better' arrow is drawn in the margin above the plot area (head and label), not
    across the points and their error bars; it points up-left for a gap (lower is better) and
    up-right for ES-AUC."""
    for metric, points_left in (("DPD", True), ("ES-AUC", False)):
        fig = tradeoff(_points(), metric, "race")
        (arrow,) = [a for a in fig.layout.annotations if a.text == "better"]
        assert (arrow.xref, arrow.axref, arrow.yref, arrow.y) == ("x domain",) * 2 + ("y domain", 1)
        assert arrow.showarrow and arrow.yshift > 0  # the head: above the plot's top edge
        # the label sits at the tail, ay px below the head and 8 px (half a line) above the plot
        assert 0 < arrow.ay <= arrow.yshift - 8
        assert (arrow.ax > arrow.x) == points_left  # the tail right of the head: pointing left
        assert min(arrow.x, arrow.ax) > 0.5 and max(arrow.x, arrow.ax) < 1  # top-right corner
        assert fig.layout.margin.t >= arrow.yshift + 20  # the head and the title fit above
