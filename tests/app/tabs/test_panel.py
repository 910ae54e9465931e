"""app.tabs.panel: one fairness panel, laid out under an id prefix, filled in panel_view's order."""

from __future__ import annotations

import gradio as gr

from app.tabs.panel import build_fairness_panel

PARTS = ("summary", "ci", "groups", "roc", "rates", "confusion", "load")


def test_panel_ids_follow_the_prefix():
    with gr.Blocks():
        panel = build_fairness_panel("cohort")
    assert [getattr(panel, p).elem_id for p in PARTS] == [f"cohort-{p}" for p in PARTS]
    assert panel.load.is_rendered


def test_outputs_are_in_panel_view_order():
    with gr.Blocks():
        panel = build_fairness_panel("x")
    shown = [panel.summary, panel.groups, panel.roc, panel.confusion, panel.rates]
    assert panel.outputs() == [*shown, panel.reliability]
    assert panel.outputs(load=True) == [*panel.outputs(), panel.load]


def test_the_load_plot_can_be_placed_later():
    with gr.Blocks() as demo:
        panel = build_fairness_panel("fair", place_load=False)
        assert not panel.load.is_rendered
        gr.Markdown("in between")
        panel.load.render()
    ids = [c.get("props", {}).get("elem_id") for c in demo.get_config_file()["components"]]
    assert ids.index("fair-load") > ids.index("fair-confusion")
