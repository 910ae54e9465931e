"""app.callbacks.panel: the one view behind the fairness panel of the Fairness and Cohort tabs."""

from __future__ import annotations

from app import views
from app.callbacks.cohort_tab import cohort_view
from app.callbacks.fairness_tab import fairness_update
from app.callbacks.panel import panel_view
from tests.app.oracle import DEFAULT


def test_panel_view_is_what_both_tabs_show(runtime):
    ss = runtime.run(DEFAULT).scores
    shown = panel_view(ss, "race", 0.4)
    assert len(shown) == 6
    assert "Calibration by group" in shown[5].layout.title.text
    view = views.fairness_view(ss, "race", 0.4)
    assert shown[:2] == (view.summary_md, view.groups_md)
    assert fairness_update(ss, "race", "single", 0.4)[:2] == shown[:2]
    with_load = panel_view(ss, "race", 0.4, load=True)
    assert len(with_load) == 7 and with_load[:2] == shown[:2]
    assert with_load[6].layout.height
    assert cohort_view(ss, "race", 0.4)[:2] == shown[:2]


def test_panel_view_without_scores():
    blank = panel_view(None, "race", 0.5, load=True, empty="Nothing here.")
    assert blank[:2] == ("", "")
    assert all(f.layout.annotations[0].text == "Nothing here." for f in blank[2:])
    assert len(panel_view(None, "race", 0.5)) == 6
    assert cohort_view(None, "race", 0.5)[2].layout.annotations[0].text == "Score a cohort first."
