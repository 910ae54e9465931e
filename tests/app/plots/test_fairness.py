"""app.plots.fairness: models side by side and the trade-off sweep."""

from __future__ import annotations

from app.plots.fairness import model_comparison, tradeoff


def test_every_comparison_figure_has_an_explicit_height():
    figs = [model_comparison([], ["AUC"], "race"), tradeoff([], "DPD", "race")]
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)
