"""TokenMoE / FeatureMoE against dense and hand-computed references."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fairmoe.model.config import FeatureMoEConfig, MoEConfig
from fairmoe.model.moe import FeatureMoE, TokenMoE, capacity_per_expert

D, T, B = 16, 20, 3


def _moe(seed: int = 0, **cfg: object) -> TokenMoE:
    torch.manual_seed(seed)
    return TokenMoE(D, MoEConfig(**cfg))


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))


def _dense_reference(moe: TokenMoE, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, masked by the routing weights."""
    outs = torch.stack([e(x) for e in moe.experts], dim=2)  # (B, T, E, D)
    return (outs * weights.unsqueeze(-1)).sum(dim=2)


@pytest.mark.parametrize(
    ("n_tokens", "cfg", "expected"),
    [
        (197, MoEConfig(), 47),  # the reference code's value for ViT-B/16
        (77, MoEConfig(), 18),  # int(0.8 * 77 * 3 / 10)
        (77, MoEConfig(capacity_tokens=197), 47),  # reference: 197 hard-coded for text too
        (17, MoEConfig(capacity_tokens=197), 17),  # never more than the tokens there are
        (17, MoEConfig(), 4),
    ],
)
def test_capacity_formula(n_tokens: int, cfg: MoEConfig, expected: int) -> None:
    assert capacity_per_expert(cfg, n_tokens) == expected


def test_routing_masks() -> None:
    moe = _moe()
    x = _x()
    routing, _ = moe.route(x)
    torch.testing.assert_close(routing.probs.sum(-1), torch.ones(B, T))
    # at most top_k non-zero weights per token, and weights are the unrenormalised probs
    assert int((routing.weights > 0).sum(-1).max()) <= moe.cfg.top_k
    assert torch.equal(routing.kept, routing.weights > 0)
    torch.testing.assert_close(routing.weights, routing.probs * routing.kept)
    assert torch.equal(routing.dropped, ~routing.kept.any(-1))
    # capacity holds per sample and expert
    cap = moe.capacity(T)
    assert int(routing.kept.sum(dim=1).max()) <= cap


def test_capacity_keeps_the_largest_weights() -> None:
    moe = _moe()
    routing, _ = moe.route(_x())
    probs = routing.probs.detach()
    cap, k = moe.capacity(T), moe.cfg.top_k
    for b in range(B):
        for e in range(moe.cfg.n_experts):
            # oracle in plain Python: tokens whose top-k includes e, ranked by weight, first cap
            cand = [t for t in range(T) if e in probs[b, t].topk(k).indices.tolist()]
            cand.sort(key=lambda t: -float(probs[b, t, e]))
            assert set(cand[:cap]) == set(routing.kept[b, :, e].nonzero().flatten().tolist())


def test_padding_is_never_routed_and_takes_no_capacity() -> None:
    moe = _moe()
    x = _x()
    real = torch.zeros(B, T, dtype=torch.bool)
    lengths = [20, 9, 4]  # real tokens of each sample, then padding
    for b, n in enumerate(lengths):
        real[b, :n] = True
    routing, _ = moe.route(x, real)
    assert not routing.kept[~real].any() and not routing.weights[~real].any()
    assert not routing.dropped[~real].any()  # padding is not "filtered", it is not a token
    for b, n in enumerate(lengths):
        # capacity counts the sample's real tokens only: int(0.8 * n * 3 / 10)
        cap = capacity_per_expert(moe.cfg, n)
        assert int(routing.kept[b].sum(0).max()) <= cap
        # the real tokens route exactly as a sample of n tokens without padding would
        alone, _ = moe.route(x[b : b + 1, :n])
        assert torch.equal(routing.kept[b, :n], alone.kept[0])
    y, _ = moe(x, real=real)
    assert torch.all(y[~real] == 0)


def test_dispatch_equals_dense_reference() -> None:
    moe = _moe()
    x = _x()
    y, routing = moe(x)
    torch.testing.assert_close(y, _dense_reference(moe, x, routing.weights), atol=1e-6, rtol=0)


def test_dropped_tokens_get_exactly_zero_output() -> None:
    moe = _moe(capacity=0.2)  # cap = int(0.2 * 20 * 3 / 10) = 1: at most 10 tokens kept
    assert moe.capacity(T) == 1
    x = _x()
    y, routing = moe(x)
    assert routing.dropped.sum(-1).min() >= T - moe.cfg.n_experts
    assert torch.all(y[routing.dropped] == 0)
    assert torch.all(y[~routing.dropped].abs().sum(-1) > 0)


def test_zero_capacity_drops_everything() -> None:
    moe = _moe(capacity=0.01)
    y, routing = moe(_x())
    assert moe.capacity(T) == 0 and routing.dropped.all() and torch.all(y == 0)


def test_contributions_sum_to_output_and_override() -> None:
    moe = _moe()
    x = _x()
    y, routing = moe(x)
    contrib, routing2 = moe.contributions(x)
    assert contrib.shape == (B, moe.cfg.n_experts, T, D)
    torch.testing.assert_close(contrib.sum(1), y, atol=1e-6, rtol=0)
    assert torch.equal(routing2.kept, routing.kept)
    not_kept = ~routing.kept.transpose(1, 2)  # (B, E, T)
    assert torch.all(contrib[not_kept] == 0)
    y2, _ = moe(x, contributions=contrib)
    torch.testing.assert_close(y2, y, atol=1e-6, rtol=0)
    # zeroing one expert's contribution removes exactly its share
    contrib0 = contrib.clone()
    contrib0[:, 0] = 0
    y3, _ = moe(x, contributions=contrib0)
    torch.testing.assert_close(y3, y - contrib[:, 0], atol=1e-6, rtol=0)


def test_reference_residual_subtracts_input() -> None:
    x = _x()
    y, _ = _moe()(x)
    y_ref, _ = _moe(reference_residual=True)(x)
    torch.testing.assert_close(y_ref, y - x)


def _open_clip_mlp() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        OrderedDict(c_fc=nn.Linear(D, 4 * D), gelu=nn.GELU(), c_proj=nn.Linear(4 * D, D))
    )


def test_experts_copied_from_mlp() -> None:
    mlp = _open_clip_mlp()
    moe = TokenMoE.from_mlp(mlp, MoEConfig())
    x = _x()
    relu_mlp = mlp.c_proj(F.relu(mlp.c_fc(x)))  # experts use ReLU (reference), not GELU
    for expert in moe.experts:
        assert torch.equal(expert.c_fc.weight, mlp.c_fc.weight)
        assert torch.equal(expert.c_proj.bias, mlp.c_proj.bias)
        torch.testing.assert_close(expert(x), relu_mlp)
    # identical experts: the MoE output is the MLP output scaled by each token's kept weight
    y, routing = moe(x)
    torch.testing.assert_close(y, relu_mlp * routing.weights.sum(-1, keepdim=True))
    # copies, not shared tensors
    assert moe.experts[0].c_fc.weight.data_ptr() != mlp.c_fc.weight.data_ptr()
    rand = TokenMoE.from_mlp(mlp, MoEConfig(expert_init="random"))
    assert not torch.equal(rand.experts[0].c_fc.weight, mlp.c_fc.weight)


def test_gradients_reach_router_and_experts() -> None:
    moe = _moe()
    x = _x().requires_grad_(True)
    y, routing = moe(x)
    (y.pow(2).sum() + routing.weights.var(0).sum()).backward()
    assert moe.router[0].weight.grad.abs().sum() > 0
    assert all(e.c_fc.weight.grad is not None for e in moe.experts)
    assert sum(float(e.c_fc.weight.grad.abs().sum()) for e in moe.experts) > 0
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("top_k", [None, 1, 2])
def test_feature_moe(top_k: int | None) -> None:
    torch.manual_seed(0)
    moe = FeatureMoE(D, 3, FeatureMoEConfig(top_k=top_k))
    f = torch.randn(5, D)
    out, routing = moe(f)
    torch.testing.assert_close(routing.probs.sum(-1), torch.ones(5))
    k = 3 if top_k is None else top_k
    assert int((routing.weights > 0).sum(-1).max()) == k
    expected = sum(routing.weights[:, e : e + 1] * moe.experts[e](f) for e in range(3))
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert moe.router[0].weight.grad.abs().sum() > 0


def test_feature_moe_residual_and_validation() -> None:
    torch.manual_seed(0)
    f = torch.randn(4, D)
    plain = FeatureMoE(D, 2, FeatureMoEConfig())
    res = FeatureMoE(D, 2, FeatureMoEConfig(residual=True))
    torch.testing.assert_close(res(f)[0], f)  # zero-initialised branch: identity at the start
    res.load_state_dict(plain.state_dict())
    torch.testing.assert_close(res(f)[0], plain(f)[0] + f)
    with pytest.raises(ValueError, match="top_k"):
        FeatureMoE(D, 2, FeatureMoEConfig(top_k=3))
    with pytest.raises(ValueError, match="top_k"):
        MoEConfig(n_experts=2, top_k=3)
