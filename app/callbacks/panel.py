"""The one view of the fairness panel shared by the Fairness and Cohort tabs."""

from __future__ import annotations

from app import plots, views
from fairmoe.metrics import Thresholds
from fairmoe.scores import ScoreSet

__all__ = ["panel_view"]


def panel_view(
    ss: ScoreSet | None,
    attr: str,
    threshold: Thresholds,
    *,
    compute_ci: bool = False,
    load: bool = False,
    empty: str = "Nothing to show yet.",
) -> tuple:
    """(summary, group table, ROC, confusion, rates, reliability[, expert load]) from the scores.

    The order is ``FairnessPanel.outputs(load)``'s (app.tabs.panel). Without scores (``ss`` None)
    the markdown is empty and every figure says ``empty``.
    """
    if ss is None:
        blank = plots.empty_figure(empty, height=200)
        return ("", "", blank, blank, blank, blank) + ((blank,) if load else ())
    view = views.fairness_view(ss, attr, threshold, compute_ci=compute_ci)
    shown = (
        view.summary_md,
        view.groups_md,
        view.roc,
        view.confusion,
        view.rates,
        view.reliability,
    )
    return (*shown, views.load_view(ss, attr)) if load else shown
