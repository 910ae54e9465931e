"""The Experts tab: router health, whole-model and per-expert attributions, routing on the scan,
feature gates, note tokens, expert load per group, and the scan editor.

Filled by the Case tab's analysis chain (``experts_first_view`` on the explanation in the
per-user state); here the choice of maps, the load's attribute and the editor are wired.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app import callbacks as cb
from app.callbacks.experts_tab import expert_load_view, router_health_md, what_is_an_expert
from app.callbacks.influence import influence_health_md
from app.events import LIVE
from app.runtime import Runtime
from app.tabs.editor import Editor, build_editor, wire_editor
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = ["ExpertsTab", "build_experts_tab", "wire_experts"]


@dataclass(frozen=True)
class ExpertsTab:
    """The Experts tab's components that events read or write."""

    summary: gr.Markdown
    whole: gr.Plot  # whole-model IG and occlusion
    shown: gr.CheckboxGroup
    attribution: gr.Plot
    routing: gr.Plot
    gates: gr.Plot
    note: gr.HighlightedText
    gallery: gr.Gallery
    json: gr.JSON  # what /explain returned
    maps_json: gr.JSON  # what /model_maps returned
    load_attr: gr.Radio
    load: gr.Plot
    load_note: gr.Markdown
    editor: Editor

    @property
    def views(self) -> list:
        """What ``experts_view`` draws, in its order."""
        return [self.whole, self.attribution, self.routing, self.gates, self.note, self.summary]


def _load_section(rt: Runtime) -> tuple[gr.Radio, gr.Plot, gr.Markdown]:
    gr.Markdown("#### Expert load per group (test split of the loaded model)")
    attr = rt.predictor.attribute if rt.predictor.attribute in ATTRIBUTE_NAMES else "race"
    fig, note = expert_load_view(rt, attr)
    radio = gr.Radio(ATTRIBUTE_NAMES, value=attr, label="Groups of", elem_id="experts-load-attr")
    load = gr.Plot(fig, show_label=False, elem_id="experts-load")
    return radio, load, gr.Markdown(note, elem_id="experts-load-note")


def build_experts_tab(rt: Runtime) -> ExpertsTab:
    """Lay out the Experts tab (inside a ``gr.Tab``)."""
    choices = cb.expert_choices(rt)
    meta, model = rt.predictor.meta, rt.predictor.model
    health = router_health_md(meta.routing_health, rt.predictor.n_experts)
    if rt.predictor.n_experts:
        health = what_is_an_expert(model) + "\n\n" + health
        health += "\n\n" + influence_health_md(meta.influence)
    gr.Markdown(health, elem_id="experts-health")
    summary = gr.Markdown("Analyse a scan on the **Case** tab first.", elem_id="experts-summary")
    gr.Markdown("#### Where the model as a whole looks, and what masking each patch does")
    whole = gr.Plot(show_label=False, elem_id="experts-whole")
    shown = gr.CheckboxGroup(
        choices,
        value=choices[: min(len(choices), 5)],
        label="Show attributions of",
        elem_id="experts-shown",
    )
    gr.Markdown("#### Attributions per expert (one colour scale shared by all experts)")
    attribution = gr.Plot(show_label=False, elem_id="experts-attribution")
    gr.Markdown(
        "#### Routing on the scan: which patches each image expert kept\n"
        "Blue: kept by the expert (darker = larger gate weight). Vermillion cross: chosen by the "
        "router's top-k but over the expert's capacity, so dropped. Last panel, dark: patches "
        "no expert kept; their expert output is zero."
    )
    routing = gr.Plot(show_label=False, elem_id="experts-routing")
    gr.Markdown(
        "<small>Feature MoE: one expert per group of the trained attribute, as in the paper, "
        "but its gate sees only the embedding, never the patient's group: feature expert 0 is "
        "not an 'Asian expert'.</small>"
    )
    with gr.Row(equal_height=False):
        gates = gr.Plot(show_label=False, elem_id="experts-gates")
        note = gr.HighlightedText(
            label="Note tokens coloured by attribution of the note's agreement with the scan "
            "(the note never changes the decision)",
            show_legend=False,
            combine_adjacent=False,
            elem_id="experts-note",
        )
    load_attr, load, load_note = _load_section(rt)
    editor = build_editor(rt)
    with gr.Accordion(
        "Overlay PNGs and raw answers (what /explain and /model_maps return)", open=False
    ):
        gallery = gr.Gallery(
            label="Attribution overlays on the scan", columns=6, height=260, object_fit="contain"
        )
        raw = gr.JSON(label="explain", max_height=400)
        maps_raw = gr.JSON(label="model_maps", max_height=300)
    return ExpertsTab(
        summary=summary,
        whole=whole,
        shown=shown,
        attribution=attribution,
        routing=routing,
        gates=gates,
        note=note,
        gallery=gallery,
        json=raw,
        maps_json=maps_raw,
        load_attr=load_attr,
        load=load,
        load_note=load_note,
        editor=editor,
    )


def wire_experts(rt: Runtime, experts: ExpertsTab, state: gr.State) -> None:
    """Ticking experts on or off redraws the views from the explanation in ``state``; the load
    follows its attribute; the editor edits the scan in ``state``."""
    experts.shown.change(cb.experts_view, [state, experts.shown], experts.views, **LIVE)
    experts.load_attr.change(
        partial(expert_load_view, rt),
        [experts.load_attr],
        [experts.load, experts.load_note],
        **LIVE,
    )
    wire_editor(rt, experts.editor, state)
