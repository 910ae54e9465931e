"""app.callbacks.editor: edits of the model input, patch clicks, and the edited scan's answer."""

from __future__ import annotations

import numpy as np

from app.callbacks import experts_tab
from app.callbacks.editor import (
    DEFAULTS,
    apply_edits,
    editor_view,
    mask_from_names,
    patch_names,
    patches_of_mask,
    toggle_patch,
)
from app.theme import icon


def test_apply_edits_masks_with_mean_grey_and_leaves_the_rest():
    px = np.arange(64 * 64, dtype=np.int64).reshape(64, 64) % 200
    px = px.astype(np.uint8)
    mask = np.zeros((4, 4), int)
    mask[0, 1] = 1
    out = apply_edits(px, mask, *DEFAULTS)
    assert (out[:16, 16:32] == round(float(px.mean()))).all()
    np.testing.assert_array_equal(
        np.delete(out[:16], np.s_[16:32], axis=1), np.delete(px[:16], np.s_[16:32], axis=1)
    )
    np.testing.assert_array_equal(out[16:], px[16:])
    assert apply_edits(px, None, 1.5, 1.0, 0.0).mean() > px.mean()  # brighter
    assert apply_edits(px, None, 1.0, 0.5, 0.0).std() < px.std()  # less contrast
    assert (
        np.abs(np.diff(apply_edits(px, None, 1.0, 1.0, 2.0).astype(float))).mean()
        < np.abs(np.diff(px.astype(float))).mean()
    )  # blur smooths


def test_toggle_patch_maps_display_pixels_to_patches():
    m = toggle_patch(None, (383, 0), 4)  # top-right corner of the 384 px display
    assert np.argwhere(np.array(m)).tolist() == [[0, 3]]
    assert not np.array(toggle_patch(m, (300, 50), 4)).any()  # same patch again: unmasked


def test_edited_scan_is_scored_beside_the_original(runtime, assets_dir):
    result, _, state = experts_tab.explain(runtime, str(assets_dir / "examples" / "case1.png"))
    image, text, fig = editor_view(runtime, state, None, *DEFAULTS)
    assert image.shape == (384, 384, 3) and "Unedited" in text
    mask = toggle_patch(None, (10, 10), result["grid"])
    image, text, fig = editor_view(runtime, state, mask, 1.4, 1.0, 0.0)
    edited = runtime.predictor.predict(apply_edits(state["pixels"], mask, 1.4, 1.0, 0.0))
    row = next(line for line in text.splitlines() if line.startswith("| Probability"))
    assert f"| {result['probability']:.0%} | **{edited['probability']:.0%}**" in row
    assert "1 patch masked, brightness x1.40" in text
    assert f"| Patches kept by no expert | {result['n_dropped']} | {edited['n_dropped']} |" in text
    assert len([t for t in fig.data if t.type == "image"]) == 6
    assert editor_view(runtime, None, None, *DEFAULTS)[0] is None  # nothing analysed yet


def test_patches_picked_by_name_are_the_clicked_ones():
    """The keyboard picker and a click on the scan describe the same mask."""
    names = patch_names(4)
    assert len(names) == 16 and names[0] == "row 1, column 1" and names[-1] == "row 4, column 4"
    clicked = toggle_patch(None, (383, 0), 4)  # top-right patch
    assert patches_of_mask(clicked, 4) == ["row 1, column 4"]
    assert mask_from_names(["row 1, column 4"], 4) == clicked
    both = mask_from_names(["row 2, column 1", "row 1, column 4", "nonsense"], 4)
    assert patches_of_mask(both, 4) == ["row 1, column 4", "row 2, column 1"]  # row by row
    assert mask_from_names(None, 4) == [[0] * 4] * 4 and patches_of_mask(None, 4) == []


def test_an_edit_the_model_cannot_explain_is_said_not_raised(runtime, assets_dir, monkeypatch):
    """The error goes into the editor's answer (no toast, no error badge on the scan)."""
    from app.callbacks import editor
    from app.callbacks.common import user_error

    _, _, state = experts_tab.explain(runtime, str(assets_dir / "examples" / "case1.png"))

    def fail(*_):
        raise user_error("The explanation process stopped; try again.")

    monkeypatch.setattr(editor, "_explain", fail)
    image, text, fig = editor_view(runtime, state, None, 1.3, 1.0, 0.0)
    assert image.shape == (384, 384, 3)
    assert text.startswith(f"{icon('warn')} The explanation process stopped") and len(fig.data) == 0


def test_sliders_update_on_any_change_latest_value_only(runtime):
    """A typed value and the arrow keys change a slider without a release: .change, not
    .release, re-runs the edit, and only the latest value runs."""
    import gradio as gr

    from app.tabs.editor import build_editor, wire_editor

    with gr.Blocks() as demo:
        state = gr.State(None)
        ed = build_editor(runtime)
        wire_editor(runtime, ed, state)
    config = demo.get_config_file()
    sliders = {ed.brightness._id, ed.contrast._id, ed.blur._id}
    deps = [d for d in config["dependencies"] if {t[0] for t in d["targets"]} & sliders]
    assert len(deps) == 1, deps
    assert sorted(t[1] for t in deps[0]["targets"]) == ["change"] * 3
    assert deps[0]["trigger_mode"] == "always_last"
    assert deps[0]["api_visibility"] == "private"
