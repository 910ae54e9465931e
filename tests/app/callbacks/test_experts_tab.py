"""app.callbacks.experts_tab: /explain's overlays and the Experts views, on the test assets."""

from __future__ import annotations

import pytest
from PIL import Image

from app.callbacks import experts_tab as cb
from tests.app.checked import accepted_scans, camera_photo, checked_assets


def test_explain_overlays_and_experts_view(runtime, assets_dir):
    result, gallery, state = cb.explain(
        runtime, str(assets_dir / "examples" / "case1.png"), "IOP 21"
    )
    att = result["attributions"]
    # one sheet of overlays (sum + 10 experts: 6 columns x 2 rows of 192 px tiles + captions)
    assert len(gallery) == 1
    path, caption = gallery[0]
    assert Image.open(path).size == (6 * 196 - 4, 2 * (192 + 18))  # 4 px between tiles
    assert "All experts (sum), Expert 0," in caption and "Expert 9;" in caption
    assert "whole_model" not in att  # /model_maps brings those, on the same slot, after
    choices = cb.expert_choices(runtime)
    waiting = cb.experts_view(state, choices[:3])[0]
    assert "Computing the whole-model" in waiting.layout.annotations[0].text
    scan = str(assets_dir / "examples" / "case1.png")
    maps, state = cb.model_maps(runtime, scan, state, session="s1")
    assert set(maps) == {"assessable", "whole_model", "occlusion"}
    assert maps["assessable"]["checked"] is False  # the test model has no assessability check
    assert state["upload"] == scan  # what the scan editor checks its edits against
    assert cb.model_maps(runtime, scan, None, session="s1")[0] is maps  # cached by the scan
    assert "whole_model" not in result["attributions"]  # the cached explanation is not changed
    att = state["result"]["attributions"]
    whole, overlays, routing, gates, highlights, summary = cb.experts_view(state, choices[:3])
    heat = [t for t in overlays.data if t.type == "heatmap"]
    assert len(heat) == 3  # one per shown map
    assert all(t.coloraxis == "coloraxis" for t in heat)  # ONE shared colour scale
    assert (
        overlays.layout.coloraxis.cmax
        == -overlays.layout.coloraxis.cmin
        == pytest.approx(att["scale"])
    )
    # routing drawn on the scan: 10 experts + kept by no expert, each with a hover layer
    assert len([t for t in routing.data if t.type == "image"]) == 11
    assert [t.name for t in whole.data if t.type == "heatmap"] == [None, None]  # IG, occlusion
    scale = max(att["whole_model"]["scale"], att["occlusion"]["scale"])
    assert whole.layout.coloraxis.cmax == pytest.approx(scale)  # both maps on one scale
    assert list(gates.data[0].x) == [f"Feature expert {j}" for j in range(len(gates.data[0].x))]
    assert "Where the model as a whole looks" in summary
    assert gates.layout.height and routing.layout.height and overlays.layout.height
    assert [tok for tok, _ in highlights] == [tok for tok, _ in result["note_attributions"]]
    assert all(-1 <= v <= 1 for _, v in highlights)
    assert "10 image experts" in summary
    shown, *first = cb.experts_first_view(state)
    assert shown[0] == "All experts (sum)" and len(shown) == 4
    assert len([t for t in first[1].data if t.type == "heatmap"]) == 4


def test_experts_view_for_plain_clip(runtime, assets_dir):
    from fairmoe.inference import Predictor

    clip = Predictor(assets_dir / "model" / "clip-race-tiny-s0.json")
    res = clip.explain(str(assets_dir / "examples" / "case1.png"), "note")
    state = {"result": res, "pixels": clip.scan_pixels(str(assets_dir / "examples" / "case1.png"))}
    whole, overlays, routing, gates, _, summary = cb.experts_view(state, [])
    assert "no experts" in summary
    assert "no experts" in routing.layout.annotations[0].text
    assert len([t for t in overlays.data if t.type == "heatmap"]) == 1
    assert len([t for t in whole.data if t.type == "heatmap"]) == 2  # model-agnostic maps
    assert "no router" in cb.router_health_md(clip.meta.routing_health, clip.n_experts)


def _health(top: float, kept: list[float], none: float = 0.1) -> dict:
    overall = {
        "n_tokens": 6400,
        "top_expert": 3,
        "top_expert_share": top,
        "kept_entropy": 0.5,
        "none_share": none,
        "kept_share": kept,
        "collapsed": False,
    }
    return {"token_img": {"overall": overall, "groups": {}}}


def test_router_health_warns_only_for_a_collapsed_router():
    spread = [0.12, 0.15, 0.2, 0.18, 0.1, 0.14, 0.16, 0.13, 0.17, 0.15]
    healthy = cb.router_health_md(_health(0.16, spread), 10)
    assert "healthy" in healthy and "collapsed" not in healthy and "16%" in healthy
    one_expert = cb.router_health_md(_health(0.79, spread), 10)
    assert "collapsed" in one_expert and "79%" in one_expert
    empty = [0.3, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.005]
    six_empty = cb.router_health_md(_health(0.3, empty), 10)
    assert "collapsed" in six_empty and "7 of 10 experts" in six_empty
    assert "unknown" in cb.router_health_md(None, 10)  # old checkpoint: no routing_health
    assert "unknown" in cb.router_health_md({"token_img": {"overall": {"n_tokens": 0}}}, 10)


def test_router_health_of_the_loaded_model_matches_its_metadata(runtime):
    h = runtime.predictor.meta.routing_health["token_img"]["overall"]
    md = cb.router_health_md(runtime.predictor.meta.routing_health, runtime.predictor.n_experts)
    assert f"{h['top_expert_share']:.0%}" in md
    assert ("collapsed" in md) == (
        h["top_expert_share"] > 0.5
        or h["collapsed"]
        or sum(v < 0.01 for v in h["kept_share"]) > 5
        or h["none_share"] > 0.5
    )


def test_expert_load_by_gate_weight_with_a_fallback(runtime):
    import dataclasses

    import numpy as np

    ss = runtime.model_scores
    assert ss.gate_loads is not None
    fig, note = cb.load_by_group(ss, "race")
    codes = ss.attrs["race"]
    first = fig.data[0]
    group = next(g for i, g in enumerate(("Asian", "Black", "White")) if (codes == i).any())
    assert first.name.startswith(group)
    i = ("Asian", "Black", "White").index(group)
    np.testing.assert_allclose(first.y, ss.gate_loads[codes == i].mean(axis=0))
    assert "gate weight" in note and fig.layout.yaxis.title.text == "mean gate weight per patch"
    old = dataclasses.replace(ss, gate_loads=None)  # an older scores file: load_e* only
    fig, note = cb.load_by_group(old, "race")
    np.testing.assert_allclose(fig.data[0].y, ss.loads[codes == i].mean(axis=0))
    assert "no gate weights" in note


def test_without_experts_sentence_tells_the_probabilities_apart() -> None:
    from app.callbacks.influence import _without_experts

    assert "would be 40% instead of 96%" in _without_experts(0.40, 0.96)
    assert "would be 96.2% instead of 96.4%" in _without_experts(0.9621, 0.9638)
    assert "would stay at 96%" in _without_experts(0.96381, 0.96384)


@pytest.fixture(scope="module")
def checked_rt(assets_dir, data_dir):
    """The test assets' runtime with an assessability check fitted for its model."""
    from app.callbacks.serving import shutdown
    from app.runtime import load_runtime

    rt = load_runtime(checked_assets(assets_dir, data_dir), warm_up=False)
    yield rt
    shutdown(rt)


def test_a_refused_scan_is_answered_by_its_refusal_alone(checked_rt, tmp_path):
    photo = tmp_path / "operator.png"
    camera_photo(photo)
    result, gallery, state = cb.explain(checked_rt, str(photo), "IOP 25", session="r")
    assert result["assessable"]["assessable"] is False and result["assessable"]["reasons"]
    assert result["decision"] is None
    assert result["attributions"] is None and result["note_attributions"] is None
    assert gallery == []  # no overlay sheet drawn
    assert state["result"] is result and state["upload"] == str(photo)
    maps, after = cb.model_maps(checked_rt, str(photo), state, session="r")
    assert maps["assessable"]["assessable"] is False
    assert maps["whole_model"] is None and maps["occlusion"] is None
    assert after is state  # nothing is merged into a refusal


def test_the_scan_editors_edits_are_checked_against_the_upload(checked_rt, data_dir):
    from app.callbacks import editor

    (scan,) = accepted_scans(checked_rt.predictor, data_dir, 1)
    result, _, state = cb.explain(checked_rt, str(scan))
    assert result["assessable"]["assessable"] and result["attributions"] is not None
    same = editor._explain(checked_rt, state["pixels"], state["upload"])
    assert same["assessable"]["assessable"] and same["decision"] == result["decision"]
    glare = editor.apply_edits(state["pixels"], None, 3.0, 1.0, 0.0)  # over-exposed
    edited = editor._explain(checked_rt, glare, state["upload"])
    assert edited["assessable"]["assessable"] is False
    assert {"exposure", "field_of_view"} & set(edited["assessable"]["failed_checks"])
    assert edited["decision"] is None and edited["attributions"] is None
    assert edited["probability"] == pytest.approx(
        checked_rt.predictor.predict(glare)["probability"], abs=1e-6
    )  # the model saw the edited pixels
    orig = editor._with_maps(checked_rt, result, state["pixels"], state["upload"])
    assert {"whole_model", "occlusion"} <= set(orig["attributions"])


def test_the_experts_influence_is_a_figure_and_a_minor_one_says_so() -> None:
    from app.callbacks.influence import (
        NO_PATCH_INFLUENCE,
        colour_scale,
        influence,
        influence_text,
        tile_label,
    )
    from fairmoe.influence import scan_influence

    grid = [[1e-4] * 8 for _ in range(8)]
    att = {"logit": 3.0, "logit_without_experts": 2.97, "probability_without_experts": 0.9512,
           "influence": scan_influence(3.0, 2.97), "scale": 1e-4, "total": grid,
           "patch_experts_reach_output": True}  # fmt: skip
    delta, share = influence(att)
    assert delta == pytest.approx(0.03) and share == pytest.approx(0.01)
    text = influence_text(att, 0.9526)
    assert "carry under 5% of this scan's log-odds (1.0%)" in text and "+0.030" in text
    assert "would be 95.1% instead of 95.3%" in text and NO_PATCH_INFLUENCE not in text
    # a faint map is drawn faint: full colour is never below an even share of 5% of the log-odds
    assert colour_scale(att) == pytest.approx(0.05 * 3.0 / 64)
    assert tile_label("Expert 3", grid, 3.0) == "Expert 3 (+0.2% of log-odds)"
    strong = {**att, "logit_without_experts": 1.0, "influence": scan_influence(3.0, 1.0),
              "scale": 0.2}  # fmt: skip
    assert "carry under" not in influence_text(strong, 0.95) and colour_scale(strong) == 0.2
    cls = {**strong, "patch_experts_reach_output": False}
    assert NO_PATCH_INFLUENCE in influence_text(cls, 0.95)


def test_the_models_influence_line_states_the_test_figures_against_the_goals(runtime) -> None:
    from app.callbacks.influence import influence_health_md

    def report(delta: float, delta_auc: float) -> dict:
        return {"silenced": {"n": 1801, "mean_abs_delta_logit": delta, "mean_abs_logit": 1.34,
                             "delta_auc": delta_auc},
                "routing": {"median_over_capacity_share": 0.45, "mean_kept_gate": 0.107}}  # fmt: skip

    weak = influence_health_md(report(0.027, 0.00004))
    assert "carry little of the decision" in weak and "0.027" in weak and "45%" in weak
    assert "carry the decision" in influence_health_md(report(0.6, 0.0))
    assert "carry the decision" in influence_health_md(report(0.1, 0.06))
    assert "unknown" in influence_health_md(None)
    text = cb.what_is_an_expert(runtime.predictor.model)
    blocks = runtime.predictor.model.config.vision.layers
    at = runtime.predictor.model.image_moe_block + 1
    assert ("last transformer block" in text) == (at == blocks)
