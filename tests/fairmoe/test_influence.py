"""fairmoe.influence: silencing the image experts, one at a time, and the per-scan routing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairmoe.inference import Predictor
from fairmoe.influence import expert_diversity, influence_report
from fairmoe.model import create_model, get_config


def _scans(n: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(20, 230, (n, size, size), dtype=torch.uint8, generator=g)


def test_silencing_matches_the_explanation_and_routing_figures_are_bounded(
    predictor: Predictor,
) -> None:
    model = predictor.model
    px = _scans(12, model.config.vision.image_size)
    labels = np.array([0, 1] * 6)
    race = np.array([0, 1, 2, -1] * 3)
    rep = influence_report(
        model, px, labels, predictor.prompts, predictor.temperature, {"race": race},
        {"race": ("Asian", "Black", "White")}, batch=5,
    )  # fmt: skip
    assert rep is not None and rep["silenced"]["n"] == 12
    assert len(rep["leave_one_out"]) == predictor.n_experts
    r = rep["routing"]
    assert 0 <= r["median_over_capacity_share"] <= 1 and 0 < r["mean_top1_gate"] <= 1
    assert 0 <= r["mean_gate_entropy"] <= 1 and 1 <= r["median_distinct_experts"] <= 10
    assert set(rep["by_group"]["race"]) == {"Asian", "Black", "White"}  # unknown left out
    assert rep["by_group"]["race"]["Asian"]["n"] == 3
    # the per-epoch pass: the same overall figures without leaving each expert out
    quick = influence_report(model, px, labels, predictor.prompts, predictor.temperature,
                             batch=5, leave_one_out=False)  # fmt: skip
    assert quick["leave_one_out"] == [] and "by_group" not in quick
    assert quick["silenced"] == rep["silenced"] and quick["routing"] == rep["routing"]
    # the same scan explained: its silenced log-odds are the report's
    att = predictor.explain(px[0].numpy(), None, n_steps=8, model_maps=False)["attributions"]
    one = influence_report(model, px[:1], labels[:1], predictor.prompts, predictor.temperature)
    inf = att["influence"]
    assert inf["share"] == pytest.approx(abs(inf["delta_logit"]) / abs(att["logit"]), rel=1e-5)
    assert one["silenced"]["mean_abs_delta_logit"] == pytest.approx(
        abs(inf["delta_logit"]), abs=1e-4
    )


def test_identical_experts_have_diversity_one_and_plain_clip_has_no_report() -> None:
    torch.manual_seed(0)
    cfg = get_config("tiny")
    moe = create_model(cfg, method="fairmoe", n_groups=3)
    assert expert_diversity(moe) == pytest.approx(1.0)  # copies of the pretrained MLP
    with torch.no_grad():
        moe.token_moe_img.experts[0].c_fc.weight.mul_(-1)
    assert expert_diversity(moe) < 1.0
    clip = create_model(cfg, method="clip", n_groups=3)
    assert expert_diversity(clip) is None
    px = _scans(2, cfg.vision.image_size)
    assert influence_report(clip, px, np.array([0, 1]), torch.zeros(2, 8), 1.0) is None


def test_disc_patches_follow_the_preprocessing_crop() -> None:
    from fairmoe.influence import disc_patch_mask

    # a 664 x 512 scan at 96 px: scale 0.1875, 124 rows, 14 cropped on top; 12 px patches, 8 x 8
    mask = disc_patch_mask((256.0, (14 + 48) / 0.1875), 10.0, (664, 512), 96, 8)
    assert mask.reshape(8, 8)[4, 4] and mask.reshape(8, 8)[3, 3]  # the corner point (48, 48)
    assert mask.sum() == 4  # a small disc on a grid corner touches the four patches around it
    edge = disc_patch_mask((5.0, 332.0), 30.0, (664, 512), 96, 8).reshape(8, 8)
    assert edge[:, 0].any() and not edge[:, 2:].any()


def test_content_routing_is_a_distribution_and_its_information_is_bounded(
    predictor: Predictor,
) -> None:
    from fairmoe.influence import content_routing

    model = predictor.model
    px = _scans(6, model.config.vision.image_size)
    disc = np.zeros((6, model.grid**2), bool)
    disc[:, :3] = True
    r = content_routing(model, px, disc, batch=4)
    assert r["n_disc_patches"] == 18 and r["n_background_patches"] == 6 * model.grid**2 - 18
    assert sum(r["disc_first_expert"]) == pytest.approx(1, abs=1e-3)
    assert 0 <= r["mutual_information_bits"] <= r["patch_type_entropy_bits"] + 1e-9
