"""app.plots.case: the probability bar."""

from __future__ import annotations

from app.plots.case import probability_bar


def test_probability_bar_has_an_explicit_height():
    fig = probability_bar(0.7, 0.5)
    assert isinstance(fig.layout.height, int) and fig.layout.height > 0
