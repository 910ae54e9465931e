"""Figures of the Fairness tab across runs: models side by side and the trade-off sweep.

The panel's figures (ROC, confusion, rates, expert load) are in :mod:`app.plots.panel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.plots.style import colour, empty_figure, layout, small_multiples

__all__ = ["model_comparison", "tradeoff"]

# Metrics where a higher value is better; the others (DPD, DEOdds: gaps) are better low.
_HIGHER = ("AUC", "ES-AUC", "ES-ACC", "Accuracy")


def model_comparison(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], attribute: str
) -> go.Figure:
    """Grouped bars per model family, higher-is-better and lower-is-better metrics in separate
    panels (one scale each, so a gap of 0.05 is not read against an AUC of 0.8); error bars =
    std over seeds."""
    if not rows:
        return empty_figure("No runs to compare.", height=320)
    groups = [
        ("Higher is better ↑", [m for m in metrics if m in _HIGHER]),
        ("Lower is better ↓", [m for m in metrics if m not in _HIGHER]),
    ]
    groups = [g for g in groups if g[1]]
    panels, refs = small_multiples(1, len(groups), [t for t, _ in groups], hgap=0.1)
    x = [r["family"].replace(" [", "<br>[") for r in rows]  # config on its own line
    traces = []
    j = 0
    for (_, ms), (xr, yr) in zip(groups, refs, strict=True):
        for m in ms:
            means = [r[m]["mean"] if r[m]["mean"] is not None else 0.0 for r in rows]
            stds = [r[m]["std"] or 0.0 for r in rows]
            traces.append(
                go.Bar(
                    x=x,
                    y=means,
                    name=m,
                    marker_color=colour(j),
                    error_y={"type": "data", "array": stds, "visible": any(stds)},
                    hovertemplate=m + " %{y:.3f}<extra>%{x}</extra>",
                    xaxis=xr,
                    yaxis=yr,
                )
            )
            j += 1
        panels[f"yaxis{yr[1:]}"].update(rangemode="tozero", title="value")
    fig_layout = layout(
        400,
        barmode="group",
        legend={"orientation": "h", "y": 1.18, "x": 1, "xanchor": "right"},
        margin={"l": 50, "r": 20, "t": 70, "b": 70},
        **panels,
    )
    return go.Figure(data=traces, layout=fig_layout)


def _scatter(pts: Sequence[Mapping[str, Any]], name: str, **style: Any) -> go.Scatter:
    return go.Scatter(
        x=[p["x"] for p in pts],
        y=[p["y"] for p in pts],
        name=name,
        error_x={"type": "data", "array": [p["x_std"] for p in pts], "thickness": 1},
        error_y={"type": "data", "array": [p["y_std"] for p in pts], "thickness": 1},
        customdata=[[p["label"], p["x_std"], p["y_std"]] for p in pts],
        hovertemplate="%{customdata[0]}<br>x %{x:.3f} ± %{customdata[1]:.3f}"
        "<br>AUC %{y:.3f} ± %{customdata[2]:.3f}<extra></extra>",
        **style,
    )


def _better_arrow(fig: go.Figure, lower_better: bool) -> None:
    """An arrow in the corner the better models lie towards (high AUC, and low gap or high ES)."""
    x0, x1 = (0.78, 0.95) if not lower_better else (0.22, 0.05)
    fig.add_annotation(
        x=x1,
        y=0.97,
        ax=x0,
        ay=0.8,
        xref="x domain",
        yref="y domain",
        axref="x domain",
        ayref="y domain",
        text="better",
        showarrow=True,
        arrowhead=3,
        arrowwidth=2,
        arrowcolor="#444",
        font={"size": 12, "color": "#444"},
        xanchor="center",
    )


def tradeoff(points: Sequence[Mapping[str, Any]], x_name: str, attribute: str) -> go.Figure:
    """Accuracy-fairness trade-off (``app.views_runs.tradeoff_points``): x = a fairness metric,
    y = AUC; sweep points as seed means with std error bars, CLIP/FairCLIP as reference points,
    the loaded run as a star and an arrow towards the better corner."""
    sweep = [p for p in points if p.get("kind", "sweep") == "sweep"]
    if not sweep:
        return empty_figure(
            "runs.json has no fairness-weight sweep (fairness_scale != 1).", height=360
        )
    lower_better = x_name != "ES-AUC"
    direction = "lower is better" if lower_better else "higher is better"
    fig = go.Figure(
        layout=layout(
            420,
            xaxis={"title": f"{x_name} ({attribute}; {direction})"},
            yaxis={"title": "AUC (higher is better)"},
            legend={"orientation": "h", "y": -0.25},
        )
    )
    by_series: dict[str, list[Mapping[str, Any]]] = {}
    for p in sweep:
        by_series.setdefault(p["series"], []).append(p)
    for i, (series, pts) in enumerate(by_series.items()):
        pts = sorted(pts, key=lambda p: p["scale"])
        fig.add_trace(
            _scatter(
                pts,
                f"{series}: fairness weight sweep",
                mode="lines+markers+text",
                text=[f"x{p['scale']:g}" for p in pts],
                textposition="top center",
                marker={"size": 10, "color": colour(i)},
                line={"color": colour(i), "width": 1},
            )
        )
    symbols = ("square", "diamond", "triangle-up", "cross", "x")
    refs = [p for p in points if p.get("kind") == "reference"]
    for k, p in enumerate(refs):
        fig.add_trace(
            _scatter(
                [p],
                f"{p['series']} (reference)",
                mode="markers",
                marker={"size": 12, "symbol": symbols[k % len(symbols)], "color": "#555"},
            )
        )
    for p in (p for p in points if p.get("kind") == "loaded"):
        fig.add_trace(
            _scatter(
                [p],
                "loaded model",
                mode="markers",
                marker={
                    "size": 20,
                    "symbol": "star",
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "#C00000", "width": 2},
                },
            )
        )
    _better_arrow(fig, lower_better)
    return fig
