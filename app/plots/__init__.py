"""Every plotly figure of the app, one module per place it is shown; each has an explicit height.

Builders take plain data (lists, dicts, numpy arrays) computed elsewhere: no metrics here.
:mod:`~app.plots.style` (template, colours, grids), :mod:`~app.plots.case`,
:mod:`~app.plots.experts`, :mod:`~app.plots.panel` and :mod:`~app.plots.calibration` (the fairness panel of the Fairness and Cohort
tabs) and :mod:`~app.plots.fairness` (comparisons across runs).
"""

from __future__ import annotations

from app.plots.calibration import reliability_diagram
from app.plots.case import probability_bar
from app.plots.experts import attribution_overlays, feature_gates, routing_maps
from app.plots.fairness import model_comparison, tradeoff
from app.plots.panel import confusion_matrices, expert_load, group_rates, roc_curves
from app.plots.style import GROUP_COLOURS, distinguished, empty_figure

# Colour is never the only cue: the series of these figures also differ in dash, symbol or pattern.
feature_gates = distinguished(feature_gates)
model_comparison = distinguished(model_comparison)
tradeoff = distinguished(tradeoff)
expert_load = distinguished(expert_load)
group_rates = distinguished(group_rates)
roc_curves = distinguished(roc_curves)
reliability_diagram = distinguished(reliability_diagram)

__all__ = [
    "GROUP_COLOURS",
    "attribution_overlays",
    "confusion_matrices",
    "empty_figure",
    "expert_load",
    "feature_gates",
    "group_rates",
    "model_comparison",
    "probability_bar",
    "reliability_diagram",
    "roc_curves",
    "routing_maps",
    "tradeoff",
]
