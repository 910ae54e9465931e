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

__all__ = ["plotly_js", "roc_figure", "roc_svg", "routing_figure", "script_json"]

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
        "xaxis": {"title": {"text": "False positive rate"}, "range": [-0.01, 1.01]},
        "yaxis": {
            "title": {"text": "True positive rate"},
            "range": [-0.01, 1.01],
            "scaleanchor": "x",
        },
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    }
    return {"data": data + markers, "layout": layout}


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
