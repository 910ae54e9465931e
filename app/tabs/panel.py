"""The fairness panel the Fairness and Cohort tabs both show, built and wired in one place.

Summary table with a confidence-interval button, group table, ROC, rates, confusion matrices and
the expert load per group. Element ids are ``<prefix>-summary``, ``<prefix>-ci``,
``<prefix>-groups``, ``<prefix>-roc``, ``<prefix>-rates``, ``<prefix>-confusion``,
``<prefix>-reliability`` and ``<prefix>-load`` (the browser tests select by them). :func:`app.callbacks.panel_view` fills it,
in the order of :meth:`FairnessPanel.outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import callbacks as cb
from fairmoe.schema import OPERATING_POINT

__all__ = ["FairnessPanel", "build_fairness_panel", "build_threshold_sliders"]

THRESHOLD_INFO = "Calibrated probability at or above which a case is called glaucoma."


def build_threshold_sliders(
    prefix: str, *, label: str = "Threshold (all groups)"
) -> tuple[gr.Radio, gr.Slider, tuple[gr.Slider, ...]]:
    """Single/per-group mode, the single threshold and ``cb.MAX_GROUPS`` per-group sliders (the
    unused ones hidden), with element ids ``<prefix>-mode``, ``<prefix>-threshold``,
    ``<prefix>-g<j>``."""
    with gr.Row():
        mode = gr.Radio(
            ["single", "per group"],
            value="single",
            label="Thresholds",
            elem_id=f"{prefix}-mode",
            scale=1,
        )
        threshold = gr.Slider(
            0,
            1,
            value=OPERATING_POINT,
            step=0.001,
            label=label,
            elem_id=f"{prefix}-threshold",
            info=THRESHOLD_INFO,
            scale=3,
        )
    with gr.Row():
        groups = tuple(
            gr.Slider(
                0,
                1,
                value=OPERATING_POINT,
                step=0.001,
                label=f"Threshold: group {j}",
                elem_id=f"{prefix}-g{j}",
                visible=j < 3,
                info="used in 'per group' mode",
            )
            for j in range(cb.MAX_GROUPS)
        )
    return mode, threshold, groups


@dataclass(frozen=True)
class FairnessPanel:
    """The panel's components."""

    summary: gr.Markdown
    ci: gr.Button  # computes the threshold-dependent bootstrap intervals on demand
    groups: gr.Markdown
    roc: gr.Plot
    rates: gr.Plot
    confusion: gr.Plot
    reliability: gr.Plot  # calibration by group
    load: gr.Plot

    def outputs(self, load: bool = False) -> list:
        """What ``panel_view(..., load=load)`` returns, in its order."""
        shown = [self.summary, self.groups, self.roc, self.confusion, self.rates, self.reliability]
        return [*shown, self.load] if load else shown


def build_fairness_panel(prefix: str, *, place_load: bool = True) -> FairnessPanel:
    """Lay out the panel with element ids ``<prefix>-...``.

    With ``place_load=False`` the expert-load plot is made but not placed: the caller puts it
    where it belongs with ``panel.load.render()``.
    """
    with gr.Row(equal_height=False):
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        ci = gr.Button(
            "Confidence intervals", size="sm", elem_id=f"{prefix}-ci", scale=0, min_width=180
        )
    groups = gr.Markdown(elem_id=f"{prefix}-groups")
    with gr.Row(equal_height=False):
        roc = gr.Plot(show_label=False, elem_id=f"{prefix}-roc")
        rates = gr.Plot(show_label=False, elem_id=f"{prefix}-rates")
    with gr.Row(equal_height=False):
        confusion = gr.Plot(show_label=False, elem_id=f"{prefix}-confusion")
        reliability = gr.Plot(show_label=False, elem_id=f"{prefix}-reliability")
    load = gr.Plot(show_label=False, elem_id=f"{prefix}-load", render=place_load)
    return FairnessPanel(
        summary=summary,
        ci=ci,
        groups=groups,
        roc=roc,
        rates=rates,
        confusion=confusion,
        reliability=reliability,
        load=load,
    )
