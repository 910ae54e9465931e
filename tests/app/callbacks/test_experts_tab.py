"""app.callbacks.experts_tab: /explain's overlays and the Experts views, on the test assets."""

from __future__ import annotations

import pytest
from PIL import Image

from app.callbacks import experts_tab as cb


def test_explain_overlays_and_experts_view(runtime, assets_dir):
    result, gallery, state = cb.explain(
        runtime, str(assets_dir / "examples" / "case1.png"), "IOP 21"
    )
    att = result["attributions"]
    assert len(gallery) == runtime.predictor.n_experts + 1
    for path, _caption in gallery:
        assert Image.open(path).size == (448, 448)
    choices = cb.expert_choices(runtime)
    overlays, routing, gates, highlights, summary = cb.experts_view(state, choices[:3])
    heat = [t for t in overlays.data if t.type == "heatmap"]
    assert len(heat) == 3  # one per shown map
    assert all(t.coloraxis == "coloraxis" for t in heat)  # ONE shared colour scale
    assert (
        overlays.layout.coloraxis.cmax
        == -overlays.layout.coloraxis.cmin
        == pytest.approx(att["scale"])
    )
    assert len([t for t in routing.data if t.type == "heatmap"]) == 11  # 10 experts + dropped
    assert gates.layout.height and routing.layout.height and overlays.layout.height
    assert [tok for tok, _ in highlights] == [tok for tok, _ in result["note_attributions"]]
    assert all(-1 <= v <= 1 for _, v in highlights)
    assert "10 image experts" in summary
    shown, *first = cb.experts_first_view(state)
    assert shown[0] == "All experts (sum)" and len(shown) == 4
    assert len([t for t in first[0].data if t.type == "heatmap"]) == 4


def test_experts_view_for_plain_clip(runtime, assets_dir):
    from fairmoe.inference import Predictor

    clip = Predictor(assets_dir / "model" / "clip-race-tiny-s0.json")
    res = clip.explain(str(assets_dir / "examples" / "case1.png"), "note")
    state = {"result": res, "pixels": clip.scan_pixels(str(assets_dir / "examples" / "case1.png"))}
    overlays, routing, gates, _, summary = cb.experts_view(state, [])
    assert "no experts" in summary
    assert "no experts" in routing.layout.annotations[0].text
    assert len([t for t in overlays.data if t.type == "heatmap"]) == 1
