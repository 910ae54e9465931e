"""app.plots.experts: overlays, routing maps and feature gates in every small-multiple layout."""

from __future__ import annotations

import numpy as np

from app.plots.experts import attribution_overlays, feature_gates, routing_maps


def test_every_experts_figure_has_an_explicit_height():
    figs = [
        feature_gates([0.2, 0.8], None, ["a", "b"]),
        attribution_overlays(np.zeros((32, 32), np.uint8), {}, 1.0),
    ]
    for n in range(1, 12):  # every small-multiple layout the expert views can take
        maps = {f"Expert {i}": np.ones((4, 4)) for i in range(n)}
        figs.append(attribution_overlays(np.zeros((32, 32), np.uint8), maps, 1.0))
        experts = [
            {"id": i, "kept_patches": 1, "gate_mean": 0.1, "kept": np.eye(4), "weights": np.eye(4)}
            for i in range(n)
        ]
        figs.append(routing_maps(experts, np.zeros((4, 4)), 4))
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)
