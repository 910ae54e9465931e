"""The Experts tab: attributions on the scan, routing maps, feature gates and note tokens.

Filled by the Case tab's analysis chain (``experts_first_view`` on the explanation in the
per-user state); here only the choice of maps to show is wired.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import callbacks as cb
from app.events import LIVE
from app.runtime import Runtime

__all__ = ["ExpertsTab", "build_experts_tab", "wire_experts"]


@dataclass(frozen=True)
class ExpertsTab:
    """The Experts tab's components that events read or write."""

    summary: gr.Markdown
    shown: gr.CheckboxGroup
    attribution: gr.Plot
    routing: gr.Plot
    gates: gr.Plot
    note: gr.HighlightedText
    gallery: gr.Gallery
    json: gr.JSON  # what /explain returned

    @property
    def views(self) -> list:
        """What ``experts_view`` draws, in its order."""
        return [self.attribution, self.routing, self.gates, self.note, self.summary]


def build_experts_tab(rt: Runtime) -> ExpertsTab:
    """Lay out the Experts tab (inside a ``gr.Tab``)."""
    choices = cb.expert_choices(rt)
    summary = gr.Markdown("Analyse a scan on the **Case** tab first.", elem_id="experts-summary")
    shown = gr.CheckboxGroup(
        choices,
        value=choices[: min(len(choices), 5)],
        label="Show attributions of",
        elem_id="experts-shown",
    )
    gr.Markdown("#### Attributions on the scan (one colour scale shared by all experts)")
    attribution = gr.Plot(show_label=False, elem_id="experts-attribution")
    gr.Markdown(
        "#### Image token MoE: gate weights of the patches each expert kept\n"
        "Crosses: patches the expert was chosen for but dropped by its capacity (when the model "
        "reports them). Last panel: patches no expert kept, whose expert output is zero."
    )
    routing = gr.Plot(show_label=False, elem_id="experts-routing")
    with gr.Row(equal_height=False):
        gates = gr.Plot(show_label=False, elem_id="experts-gates")
        note = gr.HighlightedText(
            label="Note tokens coloured by attribution (scan-note similarity)",
            show_legend=False,
            combine_adjacent=False,
            elem_id="experts-note",
        )
    with gr.Accordion("Overlay PNGs and raw answer (what /explain returns)", open=False):
        gallery = gr.Gallery(
            label="Attribution overlays on the scan", columns=6, height=260, object_fit="contain"
        )
        raw = gr.JSON(label="explain", max_height=400)
    return ExpertsTab(
        summary=summary,
        shown=shown,
        attribution=attribution,
        routing=routing,
        gates=gates,
        note=note,
        gallery=gallery,
        json=raw,
    )


def wire_experts(experts: ExpertsTab, state: gr.State) -> None:
    """Ticking experts on or off redraws the views from the explanation in ``state``."""
    experts.shown.change(cb.experts_view, [state, experts.shown], experts.views, **LIVE)
