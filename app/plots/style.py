"""The look every figure shares: colours, a small template, layouts and small-multiple grids.

Each figure gets an explicit height from :func:`layout` (autosize has rendered at zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "EXPERT_COLOURS",
    "GROUP_COLOURS",
    "PANEL_PX",
    "colour",
    "empty_figure",
    "grid_shape",
    "layout",
    "small_multiples",
    "square_panels",
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
PANEL_PX = 190  # height of one small-multiple row


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


def layout(height: int, **kw: Any) -> dict[str, Any]:
    """A figure layout of ``height`` px in the app's template; ``kw`` overrides."""
    base = {
        "height": height,
        "template": TEMPLATE,
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    base.update(kw)
    return base


def colour(i: int) -> str:
    """Group (or series) ``i``'s colour."""
    return GROUP_COLOURS[i % len(GROUP_COLOURS)]


def empty_figure(message: str, *, height: int = 200) -> go.Figure:
    """A blank figure that says why there is nothing to show."""
    fig = go.Figure(layout=layout(height))
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


def grid_shape(n: int, max_cols: int = 5) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels at most ``max_cols`` wide."""
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def _unit(lo: float, hi: float) -> list[float]:
    return [min(max(round(lo, 9), 0.0), 1.0), min(max(round(hi, 9), 0.0), 1.0)]


def small_multiples(
    rows: int, cols: int, titles: Sequence[str], *, hgap: float = 0.02, vgap: float = 0.08
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Axes and title annotations of a rows x cols grid (make_subplots costs ~7 ms a figure)."""
    panels: dict[str, Any] = {}
    refs, notes = [], []
    w = (1 - hgap * (cols - 1)) / cols
    h = (1 - vgap * (rows - 1)) / rows
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        k = "" if i == 0 else str(i + 1)
        x0, y1 = c * (w + hgap), 1 - r * (h + vgap)
        # rounding: 1 - 2 * 0.46 - 0.08 is -5.6e-17, which plotly refuses as a domain
        panels[f"xaxis{k}"] = {"domain": _unit(x0, x0 + w), "anchor": f"y{k}"}
        panels[f"yaxis{k}"] = {"domain": _unit(y1 - h, y1), "anchor": f"x{k}"}
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
    panels["annotations"] = notes
    return panels, refs


def square_panels(panels: dict[str, Any], n_panels: int, extent: float) -> None:
    """Hide the axes of image-like panels and keep their pixels square (row 0 on top)."""
    for i in range(n_panels):
        k = "" if i == 0 else str(i + 1)
        panels[f"xaxis{k}"].update(range=[-0.5, extent - 0.5], visible=False, constrain="domain")
        panels[f"yaxis{k}"].update(
            range=[extent - 0.5, -0.5], visible=False, scaleanchor=f"x{k}", constrain="domain"
        )
