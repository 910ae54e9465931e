"""The look every figure shares: colours, a small template, layouts and small-multiple grids.

Each figure gets an explicit height from :func:`layout` (autosize has rendered at zero).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "BAR_PATTERNS",
    "EXPERT_COLOURS",
    "GROUP_COLOURS",
    "GROUP_DASHES",
    "GROUP_SYMBOLS",
    "PANEL_PX",
    "colour",
    "distinguish",
    "distinguished",
    "empty_figure",
    "grid_shape",
    "layout",
    "small_multiples",
    "square_panels",
]

# Okabe-Ito, distinguishable with the common colour-vision deficiencies; ordered so the first
# three (most attributes have two or three groups) reach 3:1 against white (WCAG 1.4.11).
GROUP_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
# Paul Tol's colour-blind-safe qualitative palette (plotly's "Safe"), one colour per image expert
EXPERT_COLOURS = (
    "#332288",
    "#CC6677",
    "#117733",
    "#DDCC77",
    "#88CCEE",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#882255",
    "#661100",
    "#6699CC",
    "#888888",
)
# Colour is never the only cue: :func:`distinguish` gives the i-th series of a figure the i-th
# line dash, marker symbol or bar pattern too, which keeps groups and experts apart in grayscale.
# "dot" stays free for reference lines (the ROC diagonal). Not in the template: plotly copies and
# validates a template's trace entries into every figure, about 1.7 ms each.
GROUP_DASHES = ("solid", "dash", "dashdot", "longdash", "longdashdot", "5px,2px,1px,2px")
GROUP_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x")
BAR_PATTERNS = ("", "/", ".", "x", "\\", "+")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PANEL_PX = 190  # height of one small-multiple row
_GRID = "#E5EAF0"

# plotly_white's look in a small template: the stock one is deep-copied into every figure (7 ms).
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


def distinguish(fig: go.Figure) -> go.Figure:
    """Give each line, marker and bar series without its own dash, symbol or pattern the next
    one of :data:`GROUP_DASHES`, :data:`GROUP_SYMBOLS` or :data:`BAR_PATTERNS` (in place)."""
    k = {"scatter": 0, "bar": 0}
    for t in fig.data:
        if t.type == "scatter":
            mode = t.mode or "lines+markers"
            lines = "lines" in mode and t.line.dash is None
            markers = "markers" in mode and t.marker.symbol is None
            if lines:
                t.line.dash = GROUP_DASHES[k["scatter"] % len(GROUP_DASHES)]
            if markers:
                t.marker.symbol = GROUP_SYMBOLS[k["scatter"] % len(GROUP_SYMBOLS)]
            k["scatter"] += lines or markers
        elif t.type == "bar" and t.marker.pattern.shape is None:
            t.marker.pattern = {
                "shape": BAR_PATTERNS[k["bar"] % len(BAR_PATTERNS)],
                "solidity": 0.3,
            }
            k["bar"] += 1
    return fig


def distinguished(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """``builder`` whose figures go through :func:`distinguish`."""

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> go.Figure:
        return distinguish(builder(*args, **kwargs))

    return build


def unit_square(
    title: str, x_title: str, y_title: str, *, diagonal: str | None = None
) -> go.Figure:
    """A 400 px square [0, 1] x [0, 1] figure with its dotted diagonal (ROC, reliability);
    ``diagonal`` names the diagonal in the legend, else it has no entry."""
    fig = go.Figure(
        layout=layout(
            400,
            xaxis={"title": x_title, "range": [-0.01, 1.01], "constrain": "domain"},
            yaxis={"title": y_title, "range": [-0.01, 1.01], "scaleanchor": "x"},
            legend={"orientation": "v", "x": 1.02, "y": 0.0, "yanchor": "bottom"},
            title={"text": title, "font": {"size": 14}},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#bbb"},
            name=diagonal or "",
            showlegend=diagonal is not None,
            hoverinfo="skip",
        )
    )
    return fig


def colour(i: int) -> str:
    """Group (or series) ``i``'s colour."""
    return GROUP_COLOURS[i % len(GROUP_COLOURS)]


def empty_figure(message: str, *, height: int = 200, title: str | None = None) -> go.Figure:
    """A blank figure that says why there is nothing to show, under the ``title`` its full
    version would have (the page's figure summary reads both)."""
    fig = go.Figure(layout=layout(height, title={"text": title} if title else {}))
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": "#4A4A4A"},  # 8.9:1 on white
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
