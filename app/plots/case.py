"""Figure of the Case tab: the calibrated probability against the operating point."""

from __future__ import annotations

import plotly.graph_objects as go

from app.plots.style import layout

__all__ = ["probability_bar"]


def probability_bar(p: float, threshold: float, *, height: int = 130) -> go.Figure:
    """The calibrated probability on a 0-1 scale with the operating point marked."""
    colour = "#B2182B" if p >= threshold else "#2166AC"
    fig = go.Figure(layout=layout(height, margin={"l": 20, "r": 20, "t": 30, "b": 30}))
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
