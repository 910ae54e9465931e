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
# model comparison: px per model row (two bars a panel), above the panels (figure title, then
# panel titles) and below them (value ticks and title, then the legend)
_COMPARE_ROW_PX = 46
_COMPARE_TOP = 66
_COMPARE_BOTTOM = 84
# trade-off: how far the "better" arrow rises (px) in the top margin, above the plot
_ARROW_RISE_PX = 20


def model_comparison(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    attribute: str,
    *,
    scenario: str | None = None,
) -> go.Figure:
    """Horizontal grouped bars per model family (models read down the left, as in the table
    beside it), higher-is-better and lower-is-better metrics in separate panels (one scale each,
    so a gap of 0.05 is not read against an AUC of 0.8); error bars = std over seeds. The
    legend sits under the panels, clear of their titles. ``scenario``: the fair-test scenario
    whose test draw the rows are on (None: the main test set)."""
    what = f"accuracy and fairness by model ({attribute})"
    title = f"Scenario {scenario} (its test draw): {what}" if scenario else f"Test-set {what}"
    if not rows:
        return empty_figure("No runs to compare.", height=320, title=title)
    groups = [
        ("Higher is better →", [m for m in metrics if m in _HIGHER]),
        ("Lower is better ←", [m for m in metrics if m not in _HIGHER]),
    ]
    groups = [g for g in groups if g[1]]
    panels, refs = small_multiples(1, len(groups), [t for t, _ in groups], hgap=0.06)
    y = [r["family"].replace(" [", "<br>[") for r in rows]  # config on its own line
    traces = []
    j = 0
    for i, ((_, ms), (xr, yr)) in enumerate(zip(groups, refs, strict=True)):
        for m in ms:
            means = [r[m]["mean"] if r[m]["mean"] is not None else 0.0 for r in rows]
            stds = [r[m]["std"] or 0.0 for r in rows]
            traces.append(
                go.Bar(
                    x=means,
                    y=y,
                    orientation="h",
                    name=m,
                    marker_color=colour(j),
                    error_x={"type": "data", "array": stds, "visible": any(stds)},
                    hovertemplate=m + " %{x:.3f}<extra>%{y}</extra>",
                    xaxis=xr,
                    yaxis=yr,
                )
            )
            j += 1
        panels[f"xaxis{xr[1:]}"].update(rangemode="tozero", title="mean ± std over seeds")
        # first model on top, as in the table; the model names only left of the first panel
        panels[f"yaxis{yr[1:]}"].update(
            autorange="reversed", tickangle=0, showticklabels=i == 0, matches="y" if i else None
        )
    fig_layout = layout(
        _COMPARE_TOP + _COMPARE_ROW_PX * len(rows) + _COMPARE_BOTTOM,
        title={"text": title},
        barmode="group",
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
            "x": 0,
            "xanchor": "left",
        },
        margin={"l": 50, "r": 20, "t": _COMPARE_TOP, "b": _COMPARE_BOTTOM},
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
    """An arrow pointing the way the better models lie (high AUC, and low gap or high ES),
    drawn in the margin above the plot's top-right corner: inside the plot it crossed the points
    and their error bars. The axis titles say the same in words."""
    # across: fractions of the plot's width (plotly pulls a label at a pixel offset from the
    # right edge back towards the arrow head); up: px above the plot's top edge
    head, tail = (0.9, 0.97) if lower_better else (0.97, 0.9)
    fig.add_annotation(
        x=head,
        ax=tail,
        xref="x domain",
        axref="x domain",
        y=1,
        yref="y domain",
        yshift=_ARROW_RISE_PX + 8,
        ay=_ARROW_RISE_PX,  # the label, at the tail, 8 px above the plot
        text="better",
        showarrow=True,
        arrowhead=3,
        arrowwidth=2,
        arrowcolor="#444",
        font={"size": 12, "color": "#444"},  # 9.7:1 on white
    )


def tradeoff(points: Sequence[Mapping[str, Any]], x_name: str, attribute: str) -> go.Figure:
    """Accuracy-fairness trade-off (``app.views_runs.tradeoff_points``): x = a fairness metric,
    y = AUC; sweep points as seed means with std error bars, CLIP/FairCLIP as reference points,
    the loaded run as a star and an arrow, above the plot, towards the better corner."""
    sweep = [p for p in points if p.get("kind", "sweep") == "sweep"]
    title = f"AUC against {x_name} as the fairness weight changes ({attribute})"
    if not sweep:
        return empty_figure(
            "runs.json has no fairness-weight sweep (fairness_scale != 1).",
            height=360,
            title=title,
        )
    lower_better = x_name != "ES-AUC"
    direction = "lower is better" if lower_better else "higher is better"
    fig = go.Figure(
        layout=layout(
            440,
            title={"text": title},
            margin={"l": 50, "r": 20, "t": 60, "b": 40},
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
