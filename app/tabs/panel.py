"""The fairness panel the Fairness and Cohort tabs both show, built and wired in one place.

Summary table with a confidence-interval button, group table, ROC, rates, confusion matrices and
the expert load per group. Element ids are ``<prefix>-summary``, ``<prefix>-ci``,
``<prefix>-groups``, ``<prefix>-roc``, ``<prefix>-rates``, ``<prefix>-confusion`` and
``<prefix>-load`` (the browser tests select by them). :func:`app.callbacks.panel_view` fills it,
in the order of :meth:`FairnessPanel.outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

__all__ = ["FairnessPanel", "build_fairness_panel"]


@dataclass(frozen=True)
class FairnessPanel:
    """The panel's components."""

    summary: gr.Markdown
    ci: gr.Button  # computes the threshold-dependent bootstrap intervals on demand
    groups: gr.Markdown
    roc: gr.Plot
    rates: gr.Plot
    confusion: gr.Plot
    load: gr.Plot

    def outputs(self, load: bool = False) -> list:
        """What ``panel_view(..., load=load)`` returns, in its order."""
        shown = [self.summary, self.groups, self.roc, self.confusion, self.rates]
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
    confusion = gr.Plot(show_label=False, elem_id=f"{prefix}-confusion")
    load = gr.Plot(show_label=False, elem_id=f"{prefix}-load", render=place_load)
    return FairnessPanel(
        summary=summary,
        ci=ci,
        groups=groups,
        roc=roc,
        rates=rates,
        confusion=confusion,
        load=load,
    )
