"""app.plots.panel: the fairness panel's figures, empty and in every group count."""

from __future__ import annotations

from app.plots.panel import confusion_matrices, expert_load, group_rates, roc_curves


def test_every_panel_figure_has_an_explicit_height():
    figs = [roc_curves([], None), confusion_matrices([]), group_rates([]), expert_load({}, {})]
    for n in range(1, 12):
        groups = [
            {"name": f"g{i}", "n": 4, "threshold": 0.5, "tn": 1, "fp": 1, "fn": 1, "tp": 1}
            for i in range(min(n, 6))
        ]
        figs.append(confusion_matrices(groups))
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)


def test_rates_draw_the_given_intervals():
    groups = [{"name": "a", "n": 10, "tpr": 0.6, "fpr": 0.2, "selection_rate": 0.3}]
    cis = {"a": {"tpr": {"low": 0.5, "high": 0.9}}}
    tpr, fpr, _ = group_rates(groups, cis).data
    assert tpr.error_y.arrayminus[0] == 0.6 - 0.5 and tpr.error_y.array[0] == 0.9 - 0.6
    assert list(fpr.error_y.array) == [0]  # no interval given: no bar
