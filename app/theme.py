"""Offline theme, CSS and accessibility script: system font stacks only (a GoogleFont would be
fetched from a CDN).

The theme meets WCAG 2.1 AA contrast (4.5:1 for text): Gradio's Soft theme draws labels, helper
text, primary buttons and selected choices in teal-500 or slate-400, which reach only 2.2-2.6:1.
:data:`JS` (``app/accessibility.js``) runs once per page and fixes what Gradio's markup gets wrong
(ARIA on placeholders, upload names, alt text) and gives every figure a text summary.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

__all__ = ["CSS", "FONT_STACK", "JS", "MONO_STACK", "launch_style", "theme"]

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

# teal-700 (#0F766E): 5.5:1 against white, used for focus rings and as the accent
FOCUS = "#0F766E"

CSS = f"""
#header h1 {{ margin-bottom: 0.2rem; font-weight: 600; letter-spacing: -0.01em; }}
/* amber-900 on amber-50: 8.9:1 */
.disclaimer {{ display: inline-block; margin-top: 0.3rem; padding: 2px 10px; border-radius: 6px;
              background: #FFF7E6; color: #6B3F00; font-size: 0.92rem; }}
#case-result h3 {{ font-size: 1.7rem; margin: 0.2rem 0 0.4rem 0; }}
#fair-summary table, #fair-groups table {{ font-variant-numeric: tabular-nums; }}
abbr[title] {{ text-decoration: underline dotted; cursor: help; }}
/* a visible focus ring on everything a keyboard reaches (Gradio only recolours some borders) */
:is(a, button, input, select, textarea, summary, [role=tab], [role=button], [role=option],
    [tabindex]):focus-visible {{
  outline: 3px solid {FOCUS} !important; outline-offset: 2px; }}
input[type=range]:focus-visible {{ outline-offset: 4px; }}
/* note tokens: Gradio paints them with up to fully saturated red/purple; a light veil keeps the
   dark text at 4.5:1 or more */
.score-token .text {{ background: rgba(255, 255, 255, 0.3); color: #111; }}
/* figure summaries and data tables for screen readers (app/accessibility.js) */
.fm-sr-only {{ position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }}
/* at 200% zoom a 1280 px window is 640 CSS px wide: rows wrap instead of overflowing */
@media (max-width: 720px) {{
  .row, .form {{ flex-wrap: wrap !important; }}
  .row > * {{ min-width: min(100%, 240px) !important; }}
}}
"""

JS = (Path(__file__).with_name("accessibility.js")).read_text(encoding="utf-8")


def theme() -> gr.themes.Base:
    """A calm clinical look: teal accents, slate neutrals, system fonts, AA contrast."""
    base = gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="slate",
        neutral_hue="slate",
        font=FONT_STACK,
        font_mono=MONO_STACK,
    )
    return base.set(
        # text on white or slate-50: slate-600 is 7.6:1 (slate-400 was 2.6:1)
        body_text_color_subdued="*neutral_600",
        input_placeholder_color="*neutral_500",
        # labels sit on teal-100: teal-800 is 6.9:1 (teal-500 was 2.2:1)
        block_label_text_color="*primary_800",
        block_title_text_color="*primary_800",
        # white on teal-700 is 5.5:1 (on teal-500 2.5:1)
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_border_color="*primary_700",
        button_primary_border_color_hover="*primary_800",
        checkbox_background_color_selected="*primary_700",
        checkbox_border_color_focus="*primary_700",
        checkbox_label_background_fill_selected="*primary_700",
        slider_color="*primary_700",
        color_accent="*primary_700",
        link_text_color="*primary_700",
        link_text_color_hover="*primary_800",
        link_text_color_visited="*primary_800",
        link_text_color_active="*primary_800",
        input_border_color_focus="*primary_700",
        # dark mode: light text on slate-900
        body_text_color_subdued_dark="*neutral_300",
        block_label_text_color_dark="*primary_100",
        block_title_text_color_dark="*primary_100",
    )


def launch_style() -> dict[str, object]:
    """The ``demo.launch`` keywords that style the page: theme, CSS and the accessibility script."""
    return {"theme": theme(), "css": CSS, "js": JS}
