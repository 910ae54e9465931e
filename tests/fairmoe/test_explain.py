"""Captum explanations of a model (no Predictor): per-expert maps, completeness, plain CLIP, notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairmoe.calibration import glaucoma_logit
from fairmoe.explain import attribute_experts, attribute_note
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


def test_note_attributions_follow_the_tokens() -> None:
    model = _model("fairmoe")
    x = torch.randn(1, 3, 64, 64)
    tokens = model.tokenizer()(["cup to disc ratio 0.8 with inferior notch"])
    pieces = attribute_note(model, x, tokens, n_steps=8)
    assert [p for p, _ in pieces] == model.token_strings(tokens)
    assert all(np.isfinite(v) for _, v in pieces)
