"""The Model card tab: the checkpoint's card and the assets' report (static markdown)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import card
from app.runtime import Runtime

__all__ = ["CardTab", "build_card_tab"]


@dataclass(frozen=True)
class CardTab:
    """The Model card tab's components (nothing is wired: they are drawn once)."""

    model_card: gr.Markdown
    report: gr.Markdown


def build_card_tab(rt: Runtime) -> CardTab:
    """Lay out the Model card tab (inside a ``gr.Tab``)."""
    model_card = gr.Markdown(card.model_card(rt), elem_id="model-card")
    with gr.Accordion("Report (assets/REPORT.md)", open=rt.report_md is not None):
        report = gr.Markdown(card.report_markdown(rt), elem_id="report")
    return CardTab(model_card=model_card, report=report)
