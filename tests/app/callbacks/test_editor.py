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
