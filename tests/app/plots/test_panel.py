"""app.plots.panel: the fairness panel's figures, empty and in every group count."""

from __future__ import annotations

from app.plots.calibration import reliability_diagram
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


def test_every_panel_figure_has_a_title():
    """The page's figure summary starts with the title; without one plotly's editor placeholder
    ("Click to enter Plot title") is all there is. Empty figures keep their title too."""
    groups = [
        {
            "name": "a",
            "n": 4,
            "threshold": 0.5,
            "tn": 1,
            "fp": 1,
            "fn": 1,
            "tp": 1,
            "tpr": 0.5,
            "fpr": 0.5,
            "selection_rate": 0.5,
        }
    ]
    curve = {
        "name": "a",
        "n": 4,
        "ece": 0.1,
        "mean_predicted": [0.2],
        "observed": [0.3],
        "count": [4],
    }
    figs = [
        roc_curves([], None),
        confusion_matrices([]),
        confusion_matrices(groups),
        group_rates([]),
        group_rates(groups),
        expert_load({}, {}),
        expert_load({"a": [0.4, 0.6]}, {"a": 4}),
        reliability_diagram([]),
        reliability_diagram([curve]),
    ]
    for fig in figs:
        assert fig.layout.title.text and "Click to enter" not in fig.layout.title.text


def test_confusion_title_sits_above_the_panel_titles():
    groups = [
        {"name": f"g{i}", "n": 4, "threshold": 0.5, "tn": 1, "fp": 1, "fn": 1, "tp": 1}
        for i in range(3)
    ]
    fig = confusion_matrices(groups)
    # panel titles take the ~20 px just above the panels; the figure title the rest of the margin
    assert fig.layout.margin.t >= 70
    assert all(a.y == 1 and a.yanchor == "bottom" for a in fig.layout.annotations)
