"""Where the image token MoE sits and how it routes: block, upcycling noise, renormalised gates."""

from __future__ import annotations

import pytest
import torch

from fairmoe.data.pixels import normalize_scan
from fairmoe.influence import expert_diversity
from fairmoe.model import create_model, get_config
from fairmoe.ood.features import layer_features, layer_names


def _model(pool: str = "avg", **moe):
    torch.manual_seed(0)
    overrides = {"vision.pool_type": pool, **{f"moe.{k}": v for k, v in moe.items()}}
    return create_model(get_config("tiny", **overrides), method="fairmoe").eval()


def _pixels(n: int = 3) -> torch.Tensor:
    return torch.randint(
        0, 255, (n, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("block", [0, -2])
def test_an_earlier_block_holds_the_moe_and_the_walks_agree(block: int) -> None:
    model = _model(image_block=block)
    blocks = model.clip.visual.transformer.resblocks
    assert model.image_moe_block == 0 and blocks[0].mlp is model.token_moe_img
    assert not hasattr(blocks[1].mlp, "route")  # the last block keeps its MLP
    x = normalize_scan(_pixels())
    with torch.no_grad():
        h = model.image_trunk(x)
        emb, routing = model.image_head(h)
        contrib, _ = model.image_expert_contributions(h)
        via, _ = model.image_head(h, contributions=contrib)
        feats = layer_features(model, _pixels())
    assert routing["token_img"].kept.shape == (3, 17, 10)
    torch.testing.assert_close(via, emb)  # per-expert contributions sum to the MoE output
    torch.testing.assert_close(model.encode_image(x), emb)
    assert layer_names(model) == ("trunk", "embedding") == tuple(feats)
    with torch.no_grad():
        unnormalised = model.encode_image(x, normalize=False).double().numpy()
    torch.testing.assert_close(torch.as_tensor(feats["embedding"]), torch.as_tensor(unnormalised))


def test_a_block_outside_the_tower_is_refused() -> None:
    with pytest.raises(ValueError, match="image_block=2 is not a block of the 2-block"):
        _model(image_block=2)


def test_upcycling_noise_diversifies_the_copied_experts() -> None:
    assert expert_diversity(_model()) == pytest.approx(1.0)
    noisy = _model(expert_noise=0.1)
    div = expert_diversity(noisy)
    assert 0.9 < div < 0.999  # near copies of the MLP, no longer identical
    x = normalize_scan(_pixels())
    with torch.no_grad():
        contrib, _ = noisy.image_expert_contributions(noisy.image_trunk(x))
    outs = contrib.sum(dim=2)  # (B, E, D): experts now answer differently
    assert (outs[:, 0] - outs[:, 1]).abs().max() > 1e-4


def test_renormalised_gates_of_a_fully_kept_token_sum_to_one() -> None:
    x = normalize_scan(_pixels())
    with torch.no_grad():
        plain = _model().image_expert_contributions(_model().image_trunk(x))[1]
        model = _model(renormalize=True, capacity=3.4)  # every expert can keep every token
        r = model.image_expert_contributions(model.image_trunk(x))[1]
    sums = r.weights.sum(-1)
    assert r.kept.sum(-1).eq(3).all()
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert plain.weights.sum(-1).max() < 0.99  # the paper's unnormalised top-k probabilities
    small = _model(renormalize=True, capacity=0.5)  # capacity drops some requests
    with torch.no_grad():
        r = small.image_expert_contributions(small.image_trunk(x))[1]
    partial = r.kept.sum(-1) < 3
    assert partial.any() and (r.weights.sum(-1)[partial] < 1 - 1e-6).all()


def test_a_router_temperature_below_one_makes_the_gates_decisive() -> None:
    x = normalize_scan(_pixels())
    with torch.no_grad():
        warm, cold = _model(), _model(router_temperature=0.1)
        r1 = warm.image_expert_contributions(warm.image_trunk(x))[1]
        r2 = cold.image_expert_contributions(cold.image_trunk(x))[1]
    torch.testing.assert_close(r2.logits, r1.logits * 10)  # same router, logits divided by 0.1
    assert r2.probs.max(-1).values.mean() > r1.probs.max(-1).values.mean()
    with pytest.raises(ValueError, match="router_temperature"):
        _model(router_temperature=0.0)
