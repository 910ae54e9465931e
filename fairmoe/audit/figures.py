"""Plotly figure JSON built by hand (fairmoe never imports plotly) and plotly.js read from disk.

The audit embeds plotly.js itself, read from the installed plotly package's data folder, so the
file opens offline. Without plotly the audit falls back to inline SVG curves.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fairmoe.metrics.result import ReliabilityCurve

__all__ = [
    "plotly_js",
    "reliability_figure",
    "reliability_svg",
    "roc_figure",
    "roc_svg",
    "routing_figure",
    "script_json",
]

# Okabe-Ito (colour-vision-safe), as the app's figures; one symbol per group so that coinciding
# operating points stay distinguishable.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star")


def plotly_js() -> str | None:
    """The text of plotly.min.js from the installed plotly package, or None without it."""
    spec = importlib.util.find_spec("plotly")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def script_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no '<' can end the element or open a comment."""
    return (
        json.dumps(obj, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def roc_figure(curves: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """ROC per group with its operating point; ``curves`` from ``audit_data``'s ``roc``."""
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": [0, 1],
            "y": [0, 1],
            "mode": "lines",
            "hoverinfo": "skip",
            "line": {"dash": "dot", "color": "#bbb"},
            "showlegend": False,
        }
    ]
    markers = []
    for i, c in enumerate(curves):
        overall = c["name"] == "everyone"
        col = "#888" if overall else COLOURS[(i - 1) % len(COLOURS)]
        auc = "undefined (one class)" if c["auc"] is None else f"{c['auc']:.3f}"
        label = f"{c['name']} (AUC {auc})" if overall else f"{c['name']} (n={c['n']}, AUC {auc})"
        data.append(
            {
                "type": "scatter",
                "x": c["fpr"] or [None],
                "y": c["tpr"] or [None],
                "mode": "lines",
                "name": label,
                "legendgroup": c["name"],
                "line": {
                    "color": col,
                    "width": 1.5 if overall else 2,
                    "dash": "dash" if overall else "solid",
                },
            }
        )
        if c.get("point"):
            markers.append(
                {
                    "type": "scatter",
                    "x": [c["point"][0]],
                    "y": [c["point"][1]],
                    "mode": "markers",
                    "cliponaxis": False,  # an operating point at FPR 0 or TPR 1 stays whole
                    "showlegend": False,
                    "legendgroup": c["name"],
                    "marker": {
                        "size": max(17 - 3 * (i - 1), 8),
                        "color": col,
                        "opacity": 0.9,
                        "symbol": SYMBOLS[(i - 1) % len(SYMBOLS)],
                        "line": {"color": "white", "width": 1.5},
                    },
                    "hovertemplate": f"{c['name']}: threshold {c['threshold']:.3f}"
                    "<br>FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>",
                }
            )
    layout = {
        "height": 440,
        "title": {"text": "ROC by group, operating points marked"},
        "xaxis": _unit_axis("False positive rate"),
        "yaxis": _unit_axis("True positive rate") | {"scaleanchor": "x"},
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    }
    return {"data": data + markers, "layout": layout}


def _unit_axis(title: str) -> dict[str, Any]:
    """An axis of a rate or probability: exactly 0 to 1. A square plot (``scaleanchor``) in a
    wide page shrinks its domain ("constrain": "domain") instead of widening the range past
    0..1, which plotly's default does (an ROC x axis ran from -0.5 to 1.6)."""
    return {"title": {"text": title}, "range": [0, 1], "constrain": "domain"}


def reliability_figure(
    name: str, curve: ReliabilityCurve, everyone: ReliabilityCurve, *, colour: str = COLOURS[0]
) -> dict[str, Any]:
    """A group's reliability diagram: observed glaucoma rate against the mean predicted
    probability of each non-empty bin (marker area ~ cases in it), everyone's dashed, the
    diagonal of perfect calibration dotted."""
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": [0, 1],
            "y": [0, 1],
            "mode": "lines",
            "hoverinfo": "skip",
            "line": {"dash": "dot", "color": "#bbb"},
            "showlegend": False,
        }
    ]
    for label, c, col, dash in (("everyone", everyone, "#888", "dash"), (name, curve, colour, "")):
        x, y, n = _bins(c)
        own = c is curve
        data.append(
            {
                "type": "scatter",
                "x": x or [None],
                "y": y or [None],
                "customdata": n,
                "mode": "lines+markers" if own else "lines",
                "cliponaxis": False,
                "name": label,
                "line": {"color": col, "width": 2 if own else 1.5, "dash": dash or "solid"},
                "marker": {"color": col, "size": [min(6 + v**0.5, 22) for v in n]},
                "hovertemplate": f"{label}: predicted %{{x:.2f}}, observed %{{y:.2f}}"
                " (%{customdata} cases)<extra></extra>",
            }
        )
    layout = {
        "height": 320,
        "title": {"text": name, "font": {"size": 14}},
        "xaxis": _unit_axis("Mean predicted probability"),
        "yaxis": _unit_axis("Observed glaucoma rate") | {"scaleanchor": "x"},
        "showlegend": False,
        "hovermode": "closest",
        "margin": {"l": 55, "r": 10, "t": 40, "b": 45},
    }
    return {"data": data, "layout": layout}


def _bins(c: ReliabilityCurve) -> tuple[list[float], list[float], list[int]]:
    """(mean predicted, observed, count) of the non-empty bins."""
    rows = [
        (p, o, n)
        for p, o, n in zip(c.mean_predicted, c.observed, c.count, strict=True)
        if n and p is not None and o is not None
    ]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def reliability_svg(curve: ReliabilityCurve, *, colour: str = COLOURS[0], size: int = 220) -> str:
    """A reliability diagram as inline SVG (the fallback when plotly.js is not installed)."""
    x, y, n = _bins(curve)
    pts = " ".join(f"{a * size:.1f},{(1 - b) * size:.1f}" for a, b in zip(x, y, strict=True))
    dots = "".join(
        f'<circle cx="{a * size:.1f}" cy="{(1 - b) * size:.1f}" r="{min(2 + c**0.5 / 2, 9):.1f}" '
        f'fill="{colour}"/>'
        for a, b, c in zip(x, y, n, strict=True)
    )
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img">'
        f'<rect width="{size}" height="{size}" fill="white" stroke="#ccc"/>'
        f'<line x1="0" y1="{size}" x2="{size}" y2="0" stroke="#bbb" stroke-dasharray="3"/>'
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>{dots}</svg>'
    )


def routing_figure(health: Mapping[str, Any]) -> dict[str, Any]:
    """Bars: each image expert's share of kept patches and its mean gate weight (test split)."""
    o = health["overall"]
    names = [f"expert {e}" for e in range(len(o["kept_share"]))]
    data = [
        {"type": "bar", "x": names, "y": o["kept_share"], "name": "share of patches kept"},
        {"type": "bar", "x": names, "y": o["gate_share"], "name": "mean gate weight"},
    ]
    layout = {
        "height": 320,
        "barmode": "group",
        "title": {"text": "Image token MoE: expert load"},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    }
    return {"data": data, "layout": layout}


def roc_svg(curves: Sequence[Mapping[str, Any]], size: int = 360) -> str:
    """The ROC curves as inline SVG (the fallback when plotly.js is not installed)."""
    parts = [
        f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img">',
        f'<rect width="{size}" height="{size}" fill="white" stroke="#ccc"/>',
    ]
    for i, c in enumerate(curves):
        if not c["fpr"]:
            continue
        col = "#888" if c["name"] == "everyone" else COLOURS[(i - 1) % len(COLOURS)]
        pts = " ".join(
            f"{x * size:.1f},{(1 - y) * size:.1f}" for x, y in zip(c["fpr"], c["tpr"], strict=True)
        )
        parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="{pts}"/>')
    return "".join(parts) + "</svg>"
