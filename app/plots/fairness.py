"""Figures of the Fairness tab across runs: models side by side and the trade-off sweep.

The panel's figures (ROC, confusion, rates, expert load) are in :mod:`app.plots.panel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.plots.style import colour, empty_figure, layout

__all__ = ["model_comparison", "tradeoff"]


def model_comparison(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], attribute: str
) -> go.Figure:
    """Grouped bars of metrics per model family; error bars = std over seeds."""
    if not rows:
        return empty_figure("No runs to compare.", height=320)
    fig = go.Figure(
        layout=layout(
            380,
            barmode="group",
            yaxis={"title": "value", "range": [0, 1.05]},
            legend={"orientation": "h", "y": 1.1, "x": 1, "xanchor": "right"},
            margin={"l": 50, "r": 20, "t": 60, "b": 60},
        )
    )
    for j, m in enumerate(metrics):
        means = [r[m]["mean"] if r[m]["mean"] is not None else 0.0 for r in rows]
        stds = [r[m]["std"] or 0.0 for r in rows]
        fig.add_trace(
            go.Bar(
                x=[r["family"].replace(" [", "<br>[") for r in rows],  # config on its own line
                y=means,
                name=m,
                marker_color=colour(j),
                error_y={"type": "data", "array": stds, "visible": any(stds)},
                hovertemplate=m + " %{y:.3f}<extra>%{x}</extra>",
            )
        )
    return fig


def tradeoff(points: Sequence[Mapping[str, Any]], x_name: str, attribute: str) -> go.Figure:
    """Accuracy-fairness trade-off: x = a fairness metric, y = AUC, one point per run."""
    if not points:
        return empty_figure(
            "runs.json has no fairness-weight sweep (fairness_scale != 1).", height=360
        )
    fig = go.Figure(
        layout=layout(
            380,
            xaxis={"title": f"{x_name} ({attribute})"},
            yaxis={"title": "AUC"},
            legend={"orientation": "h", "y": -0.2},
        )
    )
    by_family: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        by_family.setdefault(p["series"], []).append(p)
    for i, (series, pts) in enumerate(by_family.items()):
        pts = sorted(pts, key=lambda p: p["scale"])
        fig.add_trace(
            go.Scatter(
                x=[p["x"] for p in pts],
                y=[p["y"] for p in pts],
                mode="lines+markers+text",
                name=series,
                text=[f"x{p['scale']:g}" for p in pts],
                textposition="top center",
                marker={"size": 11, "color": colour(i)},
                line={"color": colour(i), "width": 1},
                customdata=[p["label"] for p in pts],
                hovertemplate="%{customdata}<br>" + x_name + " %{x:.3f}<br>AUC %{y:.3f}"
                "<extra></extra>",
            )
        )
    return fig
