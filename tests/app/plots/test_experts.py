"""app.plots.experts and app.plots.editor: every figure in every small-multiple layout."""

from __future__ import annotations

import numpy as np

from app.plots.editor import edit_comparison, editor_image
from app.plots.experts import (
    attribution_overlays,
    expert_load_by_group,
    feature_gates,
    routing_maps,
)


def test_every_experts_figure_has_an_explicit_height():
    px = np.zeros((32, 32), np.uint8)
    figs = [
        feature_gates([0.2, 0.8], None, ["Feature expert 0", "Feature expert 1"]),
        attribution_overlays(px, {}, 1.0),
        expert_load_by_group({"A": [0.1, 0.2], "B": [0.2, 0.1]}, {"A": 3}, measure="gate"),
        expert_load_by_group({}, {}, measure="gate"),
        routing_maps(px, [], None, 4),
    ]
    for n in range(1, 12):  # every small-multiple layout the expert views can take
        maps = {f"Expert {i}": np.ones((4, 4)) for i in range(n)}
        figs.append(attribution_overlays(px, maps, 1.0))
        experts = [
            {
                "id": i,
                "kept_patches": 1,
                "gate_mean": 0.1,
                "kept": np.eye(4, dtype=int),
                "capacity_dropped": np.zeros((4, 4), int),
                "weights": np.eye(4),
            }
            for i in range(n)
        ]
        fig = routing_maps(px, experts, np.zeros((4, 4)), 4)
        assert len([t for t in fig.data if t.type == "image"]) == n + 1  # + kept by no expert
        figs.append(fig)
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)


def test_editor_figures():
    px = np.full((64, 64), 100, np.uint8)
    mask = np.zeros((4, 4), int)
    mask[1, 2] = 1
    img = editor_image(px, mask, 4)
    assert img.shape == (384, 384, 3)
    assert img[96 + 2, 192 + 48, 0] > img[96 + 2, 192 + 48, 2]  # masked patch outlined
    assert tuple(img[48, 48]) == (100, 100, 100)  # other patches untouched inside
    res = {
        "dropped_patches": np.zeros((4, 4)).tolist(),
        "attributions": {
            k: {"map": np.ones((4, 4)), "scale": 1.0} for k in ("whole_model", "occlusion")
        },
    }
    fig = edit_comparison(px, px, res, res)
    assert len([t for t in fig.data if t.type == "image"]) == 6  # 2 rows x 3 maps
    assert fig.layout.height > 0


def test_every_experts_figure_has_a_title():
    """The page's figure summary starts with the title; without one plotly's editor placeholder
    ("Click to enter Plot title") is all there is. Empty figures keep their title too."""
    px = np.zeros((32, 32), np.uint8)
    expert = {
        "id": 0,
        "kept_patches": 1,
        "gate_mean": 0.1,
        "kept": np.eye(4, dtype=int),
        "capacity_dropped": np.zeros((4, 4), int),
        "weights": np.eye(4),
    }
    figs = [
        feature_gates(None, None, []),
        feature_gates([0.2, 0.8], None, ["Feature expert 0", "Feature expert 1"]),
        attribution_overlays(px, {}, 1.0),
        attribution_overlays(px, {"Expert 0": np.ones((4, 4))}, 1.0),
        expert_load_by_group({}, {}, measure="gate"),
        expert_load_by_group({"A": [0.1, 0.2]}, {"A": 3}, measure="gate"),
        routing_maps(px, [], None, 4),
        routing_maps(px, [expert], np.zeros((4, 4)), 4),
    ]
    for fig in figs:
        assert fig.layout.title.text and "Click to enter" not in fig.layout.title.text
    # the figure title gets its own room above the small-multiple titles
    assert figs[3].layout.margin.t >= 60 and figs[-1].layout.margin.t >= 60
