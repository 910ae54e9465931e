"""Offline theme, CSS and accessibility script: system font stacks only (a GoogleFont would be
fetched from a CDN).

The theme meets WCAG 2.1 AA contrast (4.5:1 for text): Gradio's Soft theme draws labels, helper
text, primary buttons and selected choices in teal-500 or slate-400, which reach only 2.2-2.6:1.
:data:`JS` (``app/accessibility.js``) runs once per page and fixes what Gradio's markup gets wrong
(ARIA on placeholders, upload names, alt text, dropdowns left open by Tab) and gives every figure a
text summary. :func:`icon` gives Markdown status icons drawn by the CSS, not emoji fonts.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import gradio as gr

__all__ = ["CSS", "FONT_STACK", "ICONS", "JS", "MONO_STACK", "icon", "launch_style", "theme"]

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

# Status icons drawn by CSS, not emoji (which need a colour-emoji font many systems lack): name ->
# (24 px SVG path, filled even-odd so the inner marks are holes, colour). Each colour reaches 3:1
# or more on white and on the amber and slate panels (WCAG 1.4.11).
ICONS = {
    # no entry: a disc with a bar cut out (red-700, 6.5:1)
    "refuse": ("M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM6 10.5h12v3H6z", "#B91C1C"),
    # a triangle with an exclamation mark (amber-800, 7.1:1)
    "warn": ("M12 1.5 23.5 21.5H.5zM10.8 8.5h2.4v6.5h-2.4zM10.8 16.5h2.4v2.4h-2.4z", "#92400E"),
    # a disc with an i (slate-600, 7.6:1)
    "info": (
        "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM10.8 10h2.4v7.5h-2.4zM10.8 6h2.4v2.4h-2.4z",
        "#475569",
    ),
    # a disc with a check mark cut out (green-700, 5.0:1)
    "ok": (
        "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM10.5 14.4 7.2 11.1 5.5 12.8l5 5 8-8-1.7-1.7z",
        "#15803D",
    ),
}


def icon(name: str) -> str:
    """The inline markup of status icon ``name`` (:data:`ICONS`) for a Markdown component: an
    empty span, which screen readers skip, so the text beside it must say what it means
    (Gradio's sanitiser keeps ``class`` but drops ``aria-hidden``)."""
    if name not in ICONS:
        raise KeyError(f"no icon {name!r}; one of {sorted(ICONS)}")
    return f'<span class="fm-icon fm-icon-{name}"></span>'


def _icon_css() -> str:
    rules = [
        ".fm-icon { display: inline-block; width: 1.1em; height: 1.1em; margin-right: 0.3em;"
        " vertical-align: -0.18em; background-color: var(--fm-icon-colour);"
        " -webkit-mask: var(--fm-icon) center / contain no-repeat;"
        " mask: var(--fm-icon) center / contain no-repeat; }",
        # forced colours (Windows high contrast) would drop the background: use the text colour
        "@media (forced-colors: active) { .fm-icon { forced-color-adjust: none;"
        " background-color: CanvasText; } }",
    ]
    for name, (path, colour) in ICONS.items():
        svg = (
            "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'>"
            f"<path fill-rule='evenodd' d='{path}'/></svg>"
        )
        rules.append(
            f'.fm-icon-{name} {{ --fm-icon: url("data:image/svg+xml,{quote(svg)}");'
            f" --fm-icon-colour: {colour}; }}"
        )
    return "\n".join(rules)


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
/* nothing to show yet, no empty frame: the Case tab's warnings before a scan is analysed, the
   file outputs before a file is made */
.gr-group:has(#case-warnings .md:empty),
:is(#fair-audit-file, #cohort-audit-file, #cohort-csv):has(> .empty) {{ display: none !important; }}
/* figure summaries and data tables for screen readers (app/accessibility.js) */
.fm-sr-only {{ position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }}
/* at 200% zoom a 1280 px window is 640 CSS px wide: rows wrap instead of overflowing */
@media (max-width: 720px) {{
  .row, .form {{ flex-wrap: wrap !important; }}
  .row > * {{ min-width: min(100%, 240px) !important; }}
}}
{_icon_css()}
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
