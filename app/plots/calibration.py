"""The reliability diagram of the fairness panel: observed glaucoma rate against the probability.

Built from plain per-group curves computed by :mod:`app.views` (no metrics here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.plots.style import colour, empty_figure, unit_square

__all__ = ["reliability_diagram"]


def reliability_diagram(curves: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One line per group: each non-empty probability bin's mean prediction (x) and observed rate
    (y), marker area growing with the bin's count; ``curves``: name, index, n, ece,
    mean_predicted, observed, count."""
    title = "Calibration by group (10 bins)"
    if not curves:
        return empty_figure("No group has members in this set.", height=360, title=title)
    fig = unit_square(
        title,
        "Predicted probability (bin mean)",
        "Observed glaucoma rate",
        diagonal="perfect calibration",
    )
    for i, cv in enumerate(curves):
        pts = [
            (p, o, c)
            for p, o, c in zip(cv["mean_predicted"], cv["observed"], cv["count"], strict=True)
            if c
        ]
        ece = cv.get("ece")
        label = f"{cv['name']} (n={cv['n']}, ECE {ece:.3f})" if ece is not None else cv["name"]
        fig.add_trace(
            go.Scatter(
                x=[p for p, _, _ in pts],
                y=[o for _, o, _ in pts],
                mode="lines+markers",
                name=label,
                line={"color": colour(cv.get("index", i)), "width": 2},
                marker={"size": [min(6 + c**0.5, 22) for _, _, c in pts]},
                customdata=[c for _, _, c in pts],
                hovertemplate=f"{cv['name']}<br>predicted %{{x:.2f}}, observed %{{y:.2f}}"
                "<br>%{customdata} cases<extra></extra>",
            )
        )
    return fig
