"""The scan editor on the Experts tab: click patches to mask them, brightness, contrast and blur,
a reset; the edited scan's probability, routing and attributions beside the original's."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from app.callbacks.editor import (
    DEFAULTS,
    editor_view,
    mask_from_names,
    patch_names,
    patches_of_mask,
    toggle_patch,
)
from app.events import model_events
from app.runtime import Runtime

__all__ = ["Editor", "build_editor", "wire_editor"]


@dataclass(frozen=True)
class Editor:
    """The scan editor's components that events read or write."""

    image: gr.Image
    patches: gr.Dropdown  # the keyboard's way to mask: patches picked by row and column
    brightness: gr.Slider
    contrast: gr.Slider
    blur: gr.Slider
    reset: gr.Button
    result: gr.Markdown
    compare: gr.Plot
    mask: gr.State  # (grid, grid) 0/1 of the masked patches


def build_editor(rt: Runtime) -> Editor:
    """Lay out the editor (inside the Experts tab)."""
    gr.Markdown(
        "#### Scan editor: change the scan, see what the model does\n"
        "Click a patch to mask it (filled with the scan's mean grey, as in the occlusion map); "
        "click again to unmask, or pick patches by row and column in the list below the scan "
        "(type to search, Enter to add). The edits apply to what the model sees."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=280):
            image = gr.Image(
                label="Edited scan (click a patch)",
                type="numpy",
                interactive=False,
                height=384,
                buttons=[],
                elem_id="editor-image",
            )
            grid = rt.predictor.grid
            patches = gr.Dropdown(
                patch_names(grid),
                value=[],
                multiselect=True,
                label=f"Masked patches (row and column, 1-{grid} from the top left)",
                elem_id="editor-patches",
            )
            brightness = gr.Slider(
                0.3,
                2.0,
                DEFAULTS[0],
                step=0.05,
                label="Brightness (x)",
                elem_id="editor-brightness",
            )
            contrast = gr.Slider(
                0.3, 2.0, DEFAULTS[1], step=0.05, label="Contrast (x)", elem_id="editor-contrast"
            )
            blur = gr.Slider(
                0.0,
                6.0,
                DEFAULTS[2],
                step=0.5,
                label="Blur (radius, model pixels)",
                elem_id="editor-blur",
            )
            reset = gr.Button("Reset edits", size="sm", elem_id="editor-reset")
        with gr.Column(scale=6):
            result = gr.Markdown(
                "Analyse a scan on the **Case** tab first.", elem_id="editor-result"
            )
            compare = gr.Plot(show_label=False, elem_id="editor-compare")
    return Editor(
        image, patches, brightness, contrast, blur, reset, result, compare, gr.State(None)
    )


def wire_editor(rt: Runtime, ed: Editor, state: gr.State) -> None:
    """Clicks and sliders re-run the edited scan on the explanation queue slot; a new analysed
    scan (``state``) or Reset clears the edits."""
    inputs = [state, ed.mask, ed.brightness, ed.contrast, ed.blur]
    outputs = [ed.image, ed.result, ed.compare]
    view = partial(editor_view, rt)
    # the progress shows on the answer only: the scan stays clickable while an edit runs
    run = {
        **model_events(rt.config)["explain"],
        "api_visibility": "private",
        "show_progress_on": [ed.result, ed.compare],
    }

    grid = rt.predictor.grid

    def click(st: dict | None, mask: Any, evt: gr.SelectData) -> tuple:
        if not st or not evt.index or None in evt.index[:2]:  # a click beside the picture
            return mask, patches_of_mask(mask, grid)
        mask = toggle_patch(mask, evt.index, int(st["result"]["grid"]))
        return mask, patches_of_mask(mask, grid)

    def pick(names: list[str] | None) -> list:
        return mask_from_names(names, grid)

    def reset() -> tuple:
        return None, [], *DEFAULTS

    quick = {"queue": False, "api_visibility": "private"}
    ed.image.select(click, [state, ed.mask], [ed.mask, ed.patches], **quick).then(
        view, inputs, outputs, **run
    )
    # .input, not .change: the picker updated by a click must not fire again
    ed.patches.input(pick, [ed.patches], [ed.mask], **quick).then(view, inputs, outputs, **run)
    sliders = [ed.brightness, ed.contrast, ed.blur]
    # .change, not .release: a typed value and the arrow keys count as much as a drag. Only the
    # latest value runs (always_last), so a drag costs one explanation at a time, not one a step.
    gr.on([s.change for s in sliders], view, inputs, outputs, trigger_mode="always_last", **run)
    for trigger in (ed.reset.click, state.change):
        trigger(reset, None, [ed.mask, ed.patches, *sliders], **quick).then(
            view, inputs, outputs, **run
        )
