"""Every plotly figure of the app; each has an explicit height (autosize has rendered at zero).

Builders take plain data (lists, dicts, numpy arrays) computed elsewhere: no metrics here.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

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
    "roc_curves",
    "routing_maps",
    "tradeoff",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
GROUP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
# plotly's colour-blind-safe qualitative palette ("Safe"), one colour per image expert
EXPERT_COLOURS = (
    "#88CCEE",
    "#CC6677",
    "#DDCC77",
    "#117733",
    "#332288",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#882255",
    "#661100",
    "#6699CC",
    "#888888",
)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# red: pushes towards glaucoma, blue: away from it; zero is transparent so the scan shows through
ATTRIBUTION_SCALE = [
    [0.0, "rgba(33,102,172,0.85)"],
    [0.25, "rgba(103,169,207,0.55)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.75, "rgba(239,138,98,0.55)"],
    [1.0, "rgba(178,24,43,0.85)"],
]
GATE_SCALE = "Viridis"
PANEL_PX = 190  # height of one small-multiple row
BACKGROUND_PX = 112  # scans drawn under overlays are downsampled to this (the heat map is coarser)


# plotly_white's look in a small template: the stock one is deep-copied into every figure (7 ms).
_GRID = "#E5EAF0"
TEMPLATE = go.layout.Template(
    layout={
        "colorway": list(GROUP_COLOURS),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "closest",
        "title": {"x": 0.01, "xanchor": "left", "font": {"size": 14}},
        "xaxis": {
            "gridcolor": _GRID,
            "zerolinecolor": _GRID,
            "linecolor": _GRID,
            "ticks": "",
            "automargin": True,
        },
        "yaxis": {
            "gridcolor": _GRID,
            "zerolinecolor": _GRID,
            "linecolor": _GRID,
            "ticks": "",
            "automargin": True,
        },
        "legend": {"bgcolor": "rgba(255,255,255,0.6)"},
    }
)


def _layout(height: int, **kw: Any) -> dict[str, Any]:
    base = {
        "height": height,
        "template": TEMPLATE,
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    base.update(kw)
    return base


def _colour(i: int) -> str:
    return GROUP_COLOURS[i % len(GROUP_COLOURS)]


def empty_figure(message: str, *, height: int = 200) -> go.Figure:
    """A blank figure that says why there is nothing to show."""
    fig = go.Figure(layout=_layout(height))
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": "#555"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# ----------------------------------------------------------------------------- case


def probability_bar(p: float, threshold: float, *, height: int = 130) -> go.Figure:
    """The calibrated probability on a 0-1 scale with the operating point marked."""
    colour = "#B2182B" if p >= threshold else "#2166AC"
    fig = go.Figure(layout=_layout(height, margin={"l": 20, "r": 20, "t": 30, "b": 30}))
    fig.add_trace(go.Bar(x=[1], y=[""], orientation="h", marker_color="#E8ECEF", hoverinfo="skip"))
    fig.add_trace(
        go.Bar(
            x=[p],
            y=[""],
            orientation="h",
            marker_color=colour,
            hovertemplate="P(glaucoma) = %{x:.3f}<extra></extra>",
        )
    )
    fig.add_vline(
        x=threshold,
        line_dash="dash",
        line_color="#333",
        annotation_text=f"operating point {threshold:.2f}",
        annotation_position="top",
    )
    fig.update_layout(barmode="overlay", showlegend=False)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", fixedrange=True)
    fig.update_yaxes(fixedrange=True)
    return fig


# ----------------------------------------------------------------------------- experts


def _grid_layout(n: int, max_cols: int = 5) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def _unit(lo: float, hi: float) -> list[float]:
    return [min(max(round(lo, 9), 0.0), 1.0), min(max(round(hi, 9), 0.0), 1.0)]


def _panels(
    rows: int, cols: int, titles: Sequence[str], *, hgap: float = 0.02, vgap: float = 0.08
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Axes and title annotations of a rows x cols grid (make_subplots costs ~7 ms a figure)."""
    layout: dict[str, Any] = {}
    refs, notes = [], []
    w = (1 - hgap * (cols - 1)) / cols
    h = (1 - vgap * (rows - 1)) / rows
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        k = "" if i == 0 else str(i + 1)
        x0, y1 = c * (w + hgap), 1 - r * (h + vgap)
        # rounding: 1 - 2 * 0.46 - 0.08 is -5.6e-17, which plotly refuses as a domain
        layout[f"xaxis{k}"] = {"domain": _unit(x0, x0 + w), "anchor": f"y{k}"}
        layout[f"yaxis{k}"] = {"domain": _unit(y1 - h, y1), "anchor": f"x{k}"}
        refs.append((f"x{k}", f"y{k}"))
        if i < len(titles):
            notes.append(
                {
                    "text": titles[i],
                    "x": x0 + w / 2,
                    "y": y1,
                    "xref": "paper",
                    "yref": "paper",
                    "xanchor": "center",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 11},
                }
            )
    layout["annotations"] = notes
    return layout, refs


def _square(layout: dict[str, Any], n_panels: int, extent: float) -> None:
    """Hide the axes of image-like panels and keep their pixels square (row 0 on top)."""
    for i in range(n_panels):
        k = "" if i == 0 else str(i + 1)
        layout[f"xaxis{k}"].update(range=[-0.5, extent - 0.5], visible=False, constrain="domain")
        layout[f"yaxis{k}"].update(
            range=[extent - 0.5, -0.5], visible=False, scaleanchor=f"x{k}", constrain="domain"
        )


def routing_maps(
    experts: Sequence[Mapping[str, Any]],
    dropped: Sequence[Sequence[int]] | None,
    grid: int,
) -> go.Figure:
    """Per expert: gate weights of the patches it kept; capacity-dropped patches as crosses.

    A last panel highlights the patches no expert kept (their expert output is zero).
    """
    n = len(experts) + (1 if dropped is not None else 0)
    rows, cols = _grid_layout(n)
    titles = [
        f"Expert {e['id']}: {e['kept_patches']} kept, gate {e['gate_mean']:.2f}" for e in experts
    ]
    if dropped is not None:
        titles.append(f"No expert kept ({int(np.sum(dropped))})")
    panels, refs = _panels(rows, cols, titles)
    wmax = max((float(np.max(e["weights"])) for e in experts), default=1.0) or 1.0
    traces: list[Any] = []
    for i, e in enumerate(experts):
        kept = np.asarray(e["kept"], dtype=bool)
        w = np.where(kept, np.asarray(e["weights"], dtype=float), np.nan)
        xr, yr = refs[i]
        traces.append(
            go.Heatmap(
                z=w,
                coloraxis="coloraxis",
                xgap=1,
                ygap=1,
                xaxis=xr,
                yaxis=yr,
                hovertemplate="row %{y}, col %{x}<br>gate %{z:.3f}<extra>expert "
                + str(e["id"])
                + "</extra>",
            )
        )
        cap = e.get("capacity_dropped")
        if cap is not None:
            yy, xx = np.nonzero(np.asarray(cap, dtype=bool))
            traces.append(
                go.Scatter(
                    x=xx,
                    y=yy,
                    mode="markers",
                    marker={"symbol": "x", "color": "#D55E00"},
                    name="dropped by capacity",
                    showlegend=i == 0,
                    xaxis=xr,
                    yaxis=yr,
                    hovertemplate="chosen but over capacity<extra></extra>",
                )
            )
    if dropped is not None:
        xr, yr = refs[len(experts)]
        traces.append(
            go.Heatmap(
                z=np.asarray(dropped, dtype=float),
                colorscale=[[0, "#F2F2F2"], [1, "#D55E00"]],
                zmin=0,
                zmax=1,
                showscale=False,
                xgap=1,
                ygap=1,
                xaxis=xr,
                yaxis=yr,
                hovertemplate="row %{y}, col %{x}: %{z}<extra>no expert kept</extra>",
            )
        )
    _square(panels, rows * cols, grid)
    layout = _layout(
        PANEL_PX * rows + 70,
        coloraxis={
            "colorscale": GATE_SCALE,
            "cmin": 0,
            "cmax": wmax,
            "colorbar": {"title": {"text": "gate"}, "thickness": 12},
        },
        legend={"orientation": "h", "y": -0.05},
        margin={"l": 10, "r": 10, "t": 40, "b": 20},
        plot_bgcolor="#EEF1F4",  # shows the patch grid of an expert that kept nothing
        **panels,
    )
    return go.Figure(data=traces, layout=layout)


def _png_data_uri(pixels: np.ndarray, size: int) -> str:
    img = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if img.width > size:
        img = img.resize((size, size), Image.BILINEAR)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def attribution_overlays(
    pixels: np.ndarray,
    maps: Mapping[str, Sequence[Sequence[float]]],
    scale: float,
) -> go.Figure:
    """Attribution maps over the scan, all on ONE colour scale [-scale, scale]."""
    if not maps:
        return empty_figure("Select at least one expert to show its attributions.")
    s = int(pixels.shape[0])
    rows, cols = _grid_layout(len(maps), 4)
    panels, refs = _panels(rows, cols, list(maps))
    uri = _png_data_uri(pixels, BACKGROUND_PX)
    step = s / min(s, BACKGROUND_PX)  # scan pixels per background pixel
    scale = float(scale) if scale and math.isfinite(scale) and scale > 0 else 1e-9
    traces: list[Any] = []
    for (name, grid), (xr, yr) in zip(maps.items(), refs, strict=False):
        z = np.asarray(grid, dtype=float)
        cell = s / z.shape[0]  # scan pixels per patch
        traces.append(
            go.Image(
                source=uri,
                x0=step / 2 - 0.5,
                dx=step,
                y0=step / 2 - 0.5,
                dy=step,
                hoverinfo="skip",
                xaxis=xr,
                yaxis=yr,
            )
        )
        traces.append(
            go.Heatmap(
                z=z,
                x0=cell / 2 - 0.5,
                dx=cell,
                y0=cell / 2 - 0.5,
                dy=cell,
                coloraxis="coloraxis",
                xaxis=xr,
                yaxis=yr,
                hovertemplate="%{z:.4f}<extra>" + name + "</extra>",
            )
        )
    _square(panels, rows * cols, s)
    layout = _layout(
        230 * rows + 60,
        coloraxis={
            "colorscale": ATTRIBUTION_SCALE,
            "cmin": -scale,
            "cmax": scale,
            "colorbar": {"title": {"text": "log-odds"}, "thickness": 12},
        },
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        **panels,
    )
    return go.Figure(data=traces, layout=layout)


def feature_gates(
    image: Sequence[float] | None, text: Sequence[float] | None, names: Sequence[str]
) -> go.Figure:
    """Feature-MoE gate weights (one expert per group of the trained attribute)."""
    if image is None and text is None:
        return empty_figure("This model has no feature MoE.", height=220)
    fig = go.Figure(layout=_layout(260, barmode="group", yaxis={"range": [0, 1], "title": "gate"}))
    for label, vals, colour in (("scan", image, "#0072B2"), ("note", text, "#E69F00")):
        if vals is not None:
            fig.add_trace(
                go.Bar(
                    x=list(names),
                    y=list(vals),
                    name=label,
                    marker_color=colour,
                    text=[f"{v:.2f}" for v in vals],
                    textposition="outside",
                )
            )
    fig.update_layout(
        title={"text": "Feature-MoE gate weights", "font": {"size": 14}},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


# ----------------------------------------------------------------------------- fairness


def roc_curves(curves: Sequence[Mapping[str, Any]], overall: Mapping[str, Any] | None) -> go.Figure:
    """ROC curve per group with its operating point; ``curves``: name, fpr, tpr, point, auc, n."""
    fig = go.Figure(
        layout=_layout(
            400,
            xaxis={"title": "False positive rate", "range": [-0.01, 1.01], "constrain": "domain"},
            yaxis={"title": "True positive rate", "range": [-0.01, 1.01], "scaleanchor": "x"},
            legend={"orientation": "v", "x": 1.02, "y": 0.0, "yanchor": "bottom"},
            title={"text": "ROC by group, operating points marked", "font": {"size": 14}},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#bbb"},
            showlegend=False,
            hoverinfo="skip",
        )
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
        colour = _colour(cv.get("index", i))
        auc = cv.get("auc")
        label = (
            f"{cv['name']} (n={cv['n']}, AUC {auc:.2f})"
            if auc is not None
            else (f"{cv['name']} (n={cv['n']}, AUC n/a)")
        )
        if cv.get("fpr"):
            fig.add_trace(
                go.Scatter(
                    x=cv["fpr"],
                    y=cv["tpr"],
                    mode="lines",
                    name=label,
                    line={"color": colour, "width": 2},
                    legendgroup=cv["name"],
                )
            )
        pt = cv.get("point")
        if pt is not None and None not in pt:
            fig.add_trace(
                go.Scatter(
                    x=[pt[0]],
                    y=[pt[1]],
                    mode="markers",
                    showlegend=False,
                    legendgroup=cv["name"],
                    marker={"size": 13, "color": colour, "line": {"color": "white", "width": 2}},
                    hovertemplate=f"{cv['name']}<br>threshold {cv.get('threshold', 0):.3f}"
                    "<br>FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>",
                )
            )
    return fig


def confusion_matrices(groups: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One 2x2 confusion matrix per group (rows: truth, columns: prediction)."""
    if not groups:
        return empty_figure("No group has members in this set.", height=260)
    titles = [f"{g['name']} (n={g['n']}, t={g['threshold']:.3f})" for g in groups]
    panels, refs = _panels(1, len(groups), titles, hgap=0.08)
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
                colorscale=[[0, "#F7FBFF"], [1, _colour(i)]],
                showscale=False,
                xaxis=xr,
                yaxis=yr,
                hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
            )
        )
        k = xr[1:]
        panels[f"yaxis{k}"]["autorange"] = "reversed"
    layout = _layout(270, margin={"l": 60, "r": 10, "t": 50, "b": 30}, **panels)
    return go.Figure(data=traces, layout=layout)


def group_rates(
    groups: Sequence[Mapping[str, Any]], cis: Mapping[str, Mapping[str, Any]] | None = None
) -> go.Figure:
    """TPR, FPR and selection rate per group; bootstrap intervals as error bars when given."""
    if not groups:
        return empty_figure("No group has members in this set.", height=320)
    fig = go.Figure(
        layout=_layout(
            330,
            barmode="group",
            yaxis={"range": [0, 1.05], "title": "rate"},
            legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
            title={"text": "Rates at the threshold", "font": {"size": 14}},
        )
    )
    names = [f"{g['name']} (n={g['n']})" for g in groups]
    for key, label, colour in (
        ("tpr", "TPR", "#0072B2"),
        ("fpr", "FPR", "#D55E00"),
        ("selection_rate", "Selection rate", "#009E73"),
    ):
        vals = [g[key] if g[key] is not None else 0.0 for g in groups]
        err = None
        if cis is not None and key in ("tpr", "fpr"):
            lo, hi = [], []
            for g, v in zip(groups, vals, strict=True):
                ci = (cis.get(g["name"]) or {}).get(key)
                lo.append(max(v - ci["low"], 0) if ci else 0)
                hi.append(max(ci["high"] - v, 0) if ci else 0)
            err = {"type": "data", "array": hi, "arrayminus": lo, "visible": True}
        fig.add_trace(
            go.Bar(
                x=names,
                y=vals,
                name=label,
                marker_color=colour,
                error_y=err,
                hovertemplate=label + " %{y:.3f}<extra>%{x}</extra>",
            )
        )
    return fig


# ----------------------------------------------------------------------------- comparisons


def model_comparison(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], attribute: str
) -> go.Figure:
    """Grouped bars of metrics per model family; error bars = std over seeds."""
    if not rows:
        return empty_figure("No runs to compare.", height=320)
    fig = go.Figure(
        layout=_layout(
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
                marker_color=_colour(j),
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
        layout=_layout(
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
                marker={"size": 11, "color": _colour(i)},
                line={"color": _colour(i), "width": 1},
                customdata=[p["label"] for p in pts],
                hovertemplate="%{customdata}<br>" + x_name + " %{x:.3f}<br>AUC %{y:.3f}"
                "<extra></extra>",
            )
        )
    return fig


def expert_load(loads: Mapping[str, Sequence[float]], sizes: Mapping[str, int]) -> go.Figure:
    """Stacked bars: mean share of patch tokens each image expert kept, per group."""
    if not loads:
        return empty_figure(
            "No expert loads: the scores file has no load_e* columns (plain CLIP/FairCLIP "
            "or an older run).",
            height=300,
        )
    groups = list(loads)
    n_exp = len(next(iter(loads.values())))
    palette = EXPERT_COLOURS
    fig = go.Figure(
        layout=_layout(
            360,
            barmode="stack",
            yaxis={"title": "mean share of patches kept"},
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
