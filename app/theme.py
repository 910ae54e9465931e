"""Offline theme and CSS: system font stacks only (a GoogleFont would be fetched from a CDN)."""

from __future__ import annotations

import gradio as gr

__all__ = ["CSS", "FONT_STACK", "MONO_STACK", "theme"]

FONT_STACK = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Roboto",
    "Helvetica Neue",
    "Arial",
    "sans-serif",
]
MONO_STACK = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

CSS = """
#header h1 { margin-bottom: 0.2rem; font-weight: 600; letter-spacing: -0.01em; }
.disclaimer { display: inline-block; margin-top: 0.3rem; padding: 2px 10px; border-radius: 6px;
              background: #FFF4E0; color: #7A4A00; font-size: 0.92rem; }
#case-result h3 { font-size: 1.7rem; margin: 0.2rem 0 0.4rem 0; }
#fair-summary table, #fair-groups table { font-variant-numeric: tabular-nums; }
abbr[title] { text-decoration: underline dotted; cursor: help; }
footer { opacity: 0.8; }
"""


def theme() -> gr.themes.Base:
    """A calm clinical look: teal accents, slate neutrals, system fonts."""
    return gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="slate",
        neutral_hue="slate",
        font=FONT_STACK,
        font_mono=MONO_STACK,
    )
