"""Captum explanations of a model (no Predictor): per-expert maps, completeness, plain CLIP, notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairmoe.calibration import glaucoma_logit
from fairmoe.data.pixels import normalize_scan
from fairmoe.explain import (
    attribute_experts,
    attribute_note,
    attribute_whole_model,
    note_phrases,
    occlusion_map,
)
from fairmoe.inference import Predictor
from fairmoe.model import create_model, get_config


def _scan() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(20, 230, (664, 512), dtype=np.uint8)


def _model(method: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = get_config("tiny", **{"vision.pool_type": "avg"})  # patch tokens reach the score
    model = create_model(cfg, method=method, n_groups=3).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_explain_shares_one_scale_and_is_complete(predictor: Predictor) -> None:
    e = predictor.explain(_scan(), "no glaucoma, healthy rim", n_steps=32)
    att = e["attributions"]
    maps = np.array(att["experts"])  # (E, g, g)
    assert maps.shape == (10, 4, 4)
    assert att["scale"] == pytest.approx(np.abs(maps).max())  # one scale for every expert
    # completeness of IG: the attributions add up to the change of the log-odds
    total = sum(att["per_expert_sum"])
    assert total == pytest.approx(att["logit"] - att["logit_without_experts"], abs=1e-3)
    assert e["note_attributions"] and isinstance(e["note_attributions"][0][0], str)
    g = predictor.grid  # beside the expert maps: whole-model IG and occlusion, one grid each
    for key in ("whole_model", "occlusion"):
        grid = np.array(att[key]["map"])
        assert grid.shape == (g, g) and np.isfinite(grid).all()
        assert att[key]["scale"] == pytest.approx(np.abs(grid).max() or 1.0)
    assert att["occlusion"]["logit"] == pytest.approx(att["logit"], abs=1e-4)
    # the same maps on their own (what /model_maps serves), and an explanation without them
    alone = predictor.model_maps(_scan(), n_steps=32)
    assert set(alone) == {"assessable", "whole_model", "occlusion"}
    for key in ("whole_model", "occlusion"):
        np.testing.assert_allclose(alone[key]["map"], att[key]["map"], atol=1e-5)
    bare = predictor.explain(_scan(), None, n_steps=32, model_maps=False)["attributions"]
    assert "whole_model" not in bare and "occlusion" not in bare
    np.testing.assert_allclose(bare["experts"], att["experts"], atol=1e-6)


def test_expert_attributions_of_a_bare_model_add_up() -> None:
    model = _model("fairmoe")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        prompts = model.encode_prompts()
    att = attribute_experts(model, x, prompts=prompts, temperature=0.1, n_steps=32)
    with torch.no_grad():
        logit = glaucoma_logit(model.encode_image(x), prompts, 0.1)
    assert att["logit"] == pytest.approx(float(logit[0]), abs=1e-5)
    assert np.array(att["experts"]).shape == (10, model.grid, model.grid)
    # the sum map is the experts' maps added up; a silent expert (keeps nothing) has a zero map
    np.testing.assert_allclose(np.sum(att["experts"], axis=0), att["total"], atol=1e-6)
    assert sum(att["per_expert_sum"]) == pytest.approx(
        att["logit"] - att["logit_without_experts"], abs=1e-3
    )
    assert att["convergence_delta"] < 1e-2


def test_plain_clip_gets_one_map_and_no_experts() -> None:
    model = _model("clip")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        prompts = model.encode_prompts()
    att = attribute_experts(model, x, prompts=prompts, temperature=1.0, n_steps=16)
    assert att["experts"] == [] and np.array(att["total"]).shape == (model.grid, model.grid)
    assert att["scale"] == pytest.approx(np.abs(att["total"]).max() or 1.0)


def test_note_attributions_are_the_similarity_lost_without_each_phrase() -> None:
    model = _model("fairmoe").eval()
    x = torch.randn(1, 3, 64, 64)
    tok = model.tokenizer()
    text = "cup to disc ratio 0.8, inferior notch. iop 21"
    tokens = tok([text])
    pieces = attribute_note(model, x, tokens)
    assert [p for p, _ in pieces] == model.token_strings(tokens)
    phrases = note_phrases([p for p, _ in pieces])
    words = ["".join(pieces[i][0] for i in ph).strip() for ph in phrases]
    assert words == ["cup to disc ratio 0 . 8 ,", "inferior notch .", "iop 2 1"]
    with torch.no_grad():
        image = model.encode_image(x)
        full = float((model.encode_text(tokens) * image).sum())
        cut = float((model.encode_text(tok(["cup to disc ratio 0.8, iop 21"])) * image).sum())
    second = [v for i, (_, v) in enumerate(pieces) if i in phrases[1]]
    assert len(set(second)) == 1  # every token of a phrase carries the phrase's value
    assert second[0] == pytest.approx(full - cut, abs=1e-5)  # deletion, by hand


def _direct_occlusion(model, x, prompts, temperature, grid):  # noqa: ANN001, ANN202
    """The occlusion map by hand: one masked forward pass per patch, no batching."""
    p = x.shape[-1] // grid
    fill = x.mean((-2, -1), keepdim=True)[0]
    out = np.zeros((grid, grid))
    with torch.no_grad():
        base = float(glaucoma_logit(model.encode_image(x), prompts, temperature)[0])
        for r in range(grid):
            for c in range(grid):
                m = x.clone()
                m[0, :, r * p : (r + 1) * p, c * p : (c + 1) * p] = fill
                out[r, c] = base - float(
                    glaucoma_logit(model.encode_image(m), prompts, temperature)[0]
                )
    return out


@pytest.mark.parametrize("method", ["fairmoe", "clip"])
def test_occlusion_equals_masked_forward_passes(method: str) -> None:
    model = _model(method)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        prompts = model.encode_prompts()
    oracle = _direct_occlusion(model, x, prompts, 0.1, model.grid)
    for batch in (3, 64):  # batched passes score each masked scan on its own
        occ = occlusion_map(model, x, prompts=prompts, temperature=0.1, batch_size=batch)
        np.testing.assert_allclose(occ["map"], oracle, atol=1e-4)
    assert np.abs(oracle).max() > 0  # masking a patch changes the score of this model
    assert occ["scale"] == pytest.approx(np.abs(oracle).max(), rel=1e-4)


@pytest.mark.parametrize("method", ["fairmoe", "clip"])
def test_whole_model_map_is_complete(method: str) -> None:
    model = _model(method)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        prompts = model.encode_prompts()
    att = attribute_whole_model(model, x, prompts=prompts, temperature=0.1, n_steps=64)
    black = torch.zeros(64, 64, dtype=torch.uint8)
    with torch.no_grad():
        logits = glaucoma_logit(
            model.encode_image(torch.cat([x, normalize_scan(black)[None]])), prompts, 0.1
        )
    change = float(logits[0] - logits[1])
    assert att["logit"] == pytest.approx(float(logits[0]), abs=1e-5)
    assert att["logit_baseline"] == pytest.approx(float(logits[1]), abs=1e-5)
    assert np.array(att["map"]).shape == (model.grid, model.grid)
    gap = abs(float(np.sum(att["map"])) - change)
    assert att["convergence_delta"] == pytest.approx(gap, abs=1e-4)  # the gap is reported as is
    if method == "clip":  # smooth: the patch sums add up to the change from the black scan
        assert gap <= 0.02 * abs(change) + 1e-3
    # (top-k routing is piecewise constant: a path crossing a routing change converges slowly)


@pytest.mark.parametrize(("pool", "block"), [("tok", -1), ("avg", -1), ("tok", 0), ("avg", 0)])
def test_patch_experts_reach_the_embedding_unless_cls_pooled_after_the_last_block(
    pool: str, block: int
) -> None:
    """The paper's placement (CLS pooling, token MoE in the last block): silencing every patch
    token's expert output leaves the image embedding exactly unchanged; average pooling, or a
    later block's attention (the MoE in block 0 of 2), carries it."""
    torch.manual_seed(0)
    cfg = get_config("tiny", **{"vision.pool_type": pool, "moe.image_block": block})
    model = create_model(cfg, method="fairmoe", n_groups=3).eval()
    for p in model.parameters():  # the experts start as copies: make their outputs differ
        p.data.add_(0.05 * torch.randn_like(p))
    paper = pool == "tok" and block == -1
    assert model.patch_experts_reach_output is not paper
    x = normalize_scan(torch.randint(0, 255, (2, 64, 64), dtype=torch.uint8))
    with torch.no_grad():
        h = model.image_trunk(x)
        contrib, _ = model.image_expert_contributions(h)
        full = model.image_head(h, contributions=contrib)[0]
        patches_silent = contrib.clone()
        patches_silent[:, :, 1:] = 0.0  # token 0 is the CLS token
        silenced = model.image_head(h, contributions=patches_silent)[0]
    if paper:
        assert torch.equal(full, silenced)
    else:
        assert (full - silenced).abs().max() > 1e-4


def test_a_notes_prefix_up_to_its_end_encodes_as_the_whole_context() -> None:
    model = _model("fairmoe").eval()
    tokens = model.tokenizer()(["cup to disc ratio 0.8", "normal optic nerve, no glaucoma today"])
    end = int((tokens != 0).sum(1).max())
    with torch.no_grad():
        whole = model.encode_text(tokens)
        prefix = model.encode_text(tokens[:, :end], prefix=True)
    torch.testing.assert_close(prefix, whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 77\)"):
        model.encode_text(tokens[:, :end])  # only on purpose


def test_expert_steps_stop_once_the_maps_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import fairmoe.explain as explain

    model = _model("fairmoe")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        prompts = model.encode_prompts()
    kw = {"prompts": prompts, "temperature": 0.1, "n_steps": 16}
    att = attribute_experts(model, x, **kw)
    change = abs(att["logit"] - att["logit_without_experts"])
    allowed = max(explain.GAP_RELATIVE * change, explain.GAP_FLOOR)
    assert explain.MIN_STEPS <= att["n_steps"] <= 16
    assert att["convergence_delta"] <= allowed or att["n_steps"] == 16
    monkeypatch.setattr(explain, "GAP_FLOOR", 0.0)  # never complete enough: every step allowed
    monkeypatch.setattr(explain, "GAP_RELATIVE", 0.0)
    assert attribute_experts(model, x, **kw)["n_steps"] == 16
    assert attribute_experts(model, x, **{**kw, "n_steps": 2})["n_steps"] == 2  # never more
