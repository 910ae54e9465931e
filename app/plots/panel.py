"""Figures of the fairness panel (Fairness and Cohort tabs): ROC, confusion, rates, expert load.

Builders take plain data computed by :mod:`app.views` from ``fairmoe`` reports: no metrics here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.plots.style import (
    EXPERT_COLOURS,
    colour,
    empty_figure,
    layout,
    small_multiples,
    unit_square,
)

__all__ = ["confusion_matrices", "expert_load", "group_rates", "roc_curves"]


# Each group's operating point gets its own symbol and size (largest first), so coinciding points
# stay visible and a reader without colour vision can still tell them apart.
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star")


def _roc_traces(i: int, cv: Mapping[str, Any]) -> list[go.Scatter]:
    """One group's ROC curve and its operating point; a one-class group keeps a legend entry."""
    col = colour(cv.get("index", i))
    auc = cv.get("auc")
    label = (
        f"{cv['name']} (n={cv['n']}, AUC {auc:.2f})"
        if auc is not None
        else f"{cv['name']} (n={cv['n']}, AUC undefined: one class)"
    )
    traces = [
        go.Scatter(
            x=cv.get("fpr") or [None],
            y=cv.get("tpr") or [None],
            mode="lines",
            name=label,
            line={"color": col, "width": 2},
            legendgroup=cv["name"],
            hovertemplate=f"{cv['name']}<br>FPR %{{x:.3f}}, TPR %{{y:.3f}}<extra></extra>",
        )
    ]
    pt = cv.get("point")
    if pt is not None and None not in pt:
        traces.append(
            go.Scatter(
                x=[pt[0]],
                y=[pt[1]],
                mode="markers",
                name=f"{cv['name']}: operating point",
                showlegend=False,
                legendgroup=cv["name"],
                marker={
                    "size": max(17 - 3 * i, 8),
                    "symbol": _SYMBOLS[i % len(_SYMBOLS)],
                    "color": col,
                    "opacity": 0.9,
                    "line": {"color": "white", "width": 1.5},
                },
                hovertemplate=f"<b>{cv['name']}</b> (n={cv['n']})<br>threshold "
                f"{cv.get('threshold', 0):.3f}<br>FPR %{{x:.3f}}, TPR %{{y:.3f}}<extra></extra>",
            )
        )
    return traces


def roc_curves(curves: Sequence[Mapping[str, Any]], overall: Mapping[str, Any] | None) -> go.Figure:
    """ROC curve per group with its operating point; ``curves``: name, fpr, tpr, point, auc, n."""
    fig = unit_square(
        "ROC by group, operating points marked", "False positive rate", "True positive rate"
    )
    if overall and overall.get("fpr"):
        fig.add_trace(
            go.Scatter(
                x=overall["fpr"],
                y=overall["tpr"],
                mode="lines",
                name="everyone",
                line={"color": "#888", "dash": "dash", "width": 1.5},
            )
        )
    for i, cv in enumerate(curves):
        fig.add_traces(_roc_traces(i, cv))
    markers = [t for t in fig.data if t.mode == "markers"]
    fig.data = tuple(t for t in fig.data if t.mode != "markers") + tuple(markers)  # on top
    return fig


def confusion_matrices(groups: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One 2x2 confusion matrix per group (rows: truth, columns: prediction)."""
    title = "Confusion matrix by group (rows: truth, columns: prediction)"
    if not groups:
        return empty_figure("No group has members in this set.", height=260, title=title)
    titles = [f"{g['name']} (n={g['n']}, t={g['threshold']:.3f})" for g in groups]
    panels, refs = small_multiples(1, len(groups), titles, hgap=0.08)
    traces = []
    for i, (g, (xr, yr)) in enumerate(zip(groups, refs, strict=True)):
        z = [[g["tn"], g["fp"]], [g["fn"], g["tp"]]]
        n = max(g["n"], 1)
        text = [[f"{v}<br>{v / n:.0%}" for v in row] for row in z]
        traces.append(
            go.Heatmap(
                z=z,
                x=["pred. no", "pred. yes"],
                y=["true no", "true yes"],
                text=text,
                texttemplate="%{text}",
                colorscale=[[0, "#F7FBFF"], [1, colour(i)]],
                showscale=False,
                xaxis=xr,
                yaxis=yr,
                hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
            )
        )
        k = xr[1:]
        panels[f"yaxis{k}"]["autorange"] = "reversed"
    # the top margin holds the figure title above the panel titles
    fig_layout = layout(
        295, title={"text": title}, margin={"l": 60, "r": 10, "t": 75, "b": 30}, **panels
    )
    return go.Figure(data=traces, layout=fig_layout)


def _error_bars(
    groups: Sequence[Mapping[str, Any]], vals: Sequence[float], key: str, cis: Mapping[str, Any]
) -> dict[str, Any]:
    """Asymmetric error bars drawing the given intervals around the bars."""
    lo, hi = [], []
    for g, v in zip(groups, vals, strict=True):
        ci = (cis.get(g["name"]) or {}).get(key)
        lo.append(max(v - ci["low"], 0) if ci else 0)
        hi.append(max(ci["high"] - v, 0) if ci else 0)
    return {"type": "data", "array": hi, "arrayminus": lo, "visible": True}


def group_rates(
    groups: Sequence[Mapping[str, Any]], cis: Mapping[str, Mapping[str, Any]] | None = None
) -> go.Figure:
    """TPR, FPR and selection rate per group; bootstrap intervals as error bars when given."""
    if not groups:
        return empty_figure(
            "No group has members in this set.", height=320, title="Rates at the threshold"
        )
    fig = go.Figure(
        layout=layout(
            330,
            barmode="group",
            yaxis={"range": [0, 1.05], "title": "rate"},
            legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
            title={"text": "Rates at the threshold", "font": {"size": 14}},
        )
    )
    names = [f"{g['name']} (n={g['n']})" for g in groups]
    for key, label, col in (
        ("tpr", "TPR", "#0072B2"),
        ("fpr", "FPR", "#D55E00"),
        ("selection_rate", "Selection rate", "#009E73"),
    ):
        vals = [g[key] if g[key] is not None else 0.0 for g in groups]
        err = None
        if cis is not None and key in ("tpr", "fpr"):
            err = _error_bars(groups, vals, key, cis)
        fig.add_trace(
            go.Bar(
                x=names,
                y=vals,
                name=label,
                marker_color=col,
                error_y=err,
                hovertemplate=label + " %{y:.3f}<extra>%{x}</extra>",
            )
        )
    return fig


def expert_load(
    loads: Mapping[str, Sequence[float]],
    sizes: Mapping[str, int],
    measure: str = "mean share of patches kept",
) -> go.Figure:
    """Stacked bars per group: each image expert's mean gate weight per patch, or (older score
    files without gate columns) its share of patch tokens kept; ``measure`` names which."""
    title = f"Image-expert load by group ({measure})"
    if not loads:
        return empty_figure(
            "No expert loads: the scores file has no load_e* columns (plain CLIP/FairCLIP "
            "or an older run).",
            height=300,
            title=title,
        )
    groups = list(loads)
    n_exp = len(next(iter(loads.values())))
    palette = EXPERT_COLOURS
    fig = go.Figure(
        layout=layout(
            360,
            title={"text": title},
            barmode="stack",
            yaxis={"title": measure},
            legend={"orientation": "v", "x": 1.02},
        )
    )
    x = [f"{g} (n={sizes.get(g, 0)})" for g in groups]
    for e in range(n_exp):
        fig.add_trace(
            go.Bar(
                x=x,
                y=[loads[g][e] for g in groups],
                name=f"expert {e}",
                marker_color=palette[e % len(palette)],
                hovertemplate=f"expert {e}: " + "%{y:.3f}<extra>%{x}</extra>",
            )
        )
    return fig
