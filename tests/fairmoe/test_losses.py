"""Losses against hand computations, 1-D optimal transport and a real tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fairmoe.losses import (
    LossConfig,
    clip_contrastive_loss,
    fairclip_distance,
    fairness_oriented_loss,
    gate_variance_term,
    load_balance_loss,
    similarity_distribution,
    sinkhorn_distance,
)
from fairmoe.model import FeatureRouting, TokenRouting, create_model


def _features(n: int = 6, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    return img.requires_grad_(True), txt


def test_contrastive_matches_hand_computation() -> None:
    img, txt = _features()
    scale = torch.tensor(10.0)
    logits = (10.0 * img @ txt.T).detach().numpy().astype(np.float64)

    def xent(m: np.ndarray) -> float:
        return float(np.mean([math.log(np.exp(row).sum()) - row[i] for i, row in enumerate(m)]))

    expected = 0.5 * (xent(logits) + xent(logits.T))
    loss = clip_contrastive_loss(img, txt, scale)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert img.grad.abs().sum() > 0


def test_similarity_distribution_forms() -> None:
    img, txt = _features()
    scale = torch.tensor(3.0)
    li = scale * img @ txt.T
    lt = li.T
    matched = similarity_distribution(img, txt, scale, form="matched")
    torch.testing.assert_close(matched, 3.0 * (img * txt).sum(-1))
    corr = similarity_distribution(img, txt, scale, form="correlation")
    torch.testing.assert_close(corr, torch.diag(li @ lt.T))  # the reference code's formula
    with pytest.raises(ValueError, match="unknown form"):
        similarity_distribution(img, txt, scale, form="cosine")  # type: ignore[arg-type]


def test_identical_clouds_have_zero_divergence_without_pykeops() -> None:
    # pykeops is not installed here: the tensorized backend runs in pure torch.
    x = torch.randn(40)
    assert sinkhorn_distance(x, x.clone(), blur=1e-4).abs().item() < 1e-5


@pytest.mark.parametrize("shift", [0.5, 2.0])
def test_sinkhorn_of_shifted_cloud_is_half_shift_squared(shift: float) -> None:
    x = torch.randn(64, generator=torch.Generator().manual_seed(0))
    d = sinkhorn_distance(x, x + shift, blur=1e-3)
    assert d.item() == pytest.approx(shift**2 / 2, rel=1e-3)


def test_sinkhorn_matches_exact_1d_transport() -> None:
    """Equal-size 1-D clouds: W2^2 / 2 = mean((sort x - sort y)^2) / 2 (exact optimal transport)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, generator=g, dtype=torch.float64)
    y = 0.5 * torch.randn(50, generator=g, dtype=torch.float64) + 1.0
    exact = 0.5 * ((x.sort().values - y.sort().values) ** 2).mean().item()
    assert sinkhorn_distance(x, y, blur=1e-2, scaling=0.95).item() == pytest.approx(exact, rel=2e-3)
    # geomloss's default epsilon-scaling (FairCLIP's setting) stops a few percent short
    assert sinkhorn_distance(x, y, blur=1e-3).item() == pytest.approx(exact, rel=5e-2)


def test_fairclip_distance() -> None:
    x = torch.rand(32, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert fairclip_distance(x, [x.detach(), x.detach()], blur=1e-4, normalize_groups=False) < 1e-5
    groups = [torch.rand(20) + 1, torch.rand(24)]
    d = fairclip_distance(x, groups, blur=1e-4, normalize_groups=False)
    manual = sum(sinkhorn_distance(x, g, blur=1e-4) for g in groups)
    torch.testing.assert_close(d, manual)
    dn = fairclip_distance(x, groups, blur=1e-4, normalize_groups=True)
    torch.testing.assert_close(
        dn, sum(sinkhorn_distance(x, g / g.sum(), blur=1e-4) for g in groups)
    )
    d.backward()
    assert x.grad.abs().sum() > 0


def test_gate_variance_term_hand_case() -> None:
    batch = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], requires_grad=True)
    group = torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    vb = np.var(batch.detach().numpy(), axis=0, ddof=1)
    vg = np.var(group.numpy(), axis=0, ddof=1)
    total = gate_variance_term(batch, [group, group], reduction="sum")
    assert total.item() == pytest.approx(2 * ((vb - vg) ** 2).sum(), rel=1e-5)
    mean = gate_variance_term(batch, [group], reduction="mean")
    assert mean.item() == pytest.approx((vb.mean() - vg.mean()) ** 2, rel=1e-5)
    total.backward()
    assert batch.grad.abs().sum() > 0


def test_gate_variance_term_zero_for_identical_distributions() -> None:
    w = torch.rand(3, 17, 10).softmax(-1)  # token MoE weights (B, T, E) -> rows B*T
    shuffled = w.reshape(-1, 10)[torch.randperm(51)]  # same rows, other order and shape
    assert gate_variance_term(w, [shuffled, w], reduction="sum").item() == pytest.approx(
        0, abs=1e-12
    )
    other = torch.rand(40, 10).softmax(-1) ** 2
    assert gate_variance_term(w, [other], reduction="sum").item() > 0


def _token_routing(probs: torch.Tensor, weights: torch.Tensor, kept: torch.Tensor) -> TokenRouting:
    """A TokenRouting with every token routed (no padding)."""
    real = torch.ones(probs.shape[:-1], dtype=torch.bool)
    return TokenRouting(probs, weights, kept, ~kept.any(-1), probs.log(), real)


def _routing(batch: torch.Tensor) -> dict[str, TokenRouting | FeatureRouting]:
    """A full routing dict whose weights are given (B, T, E) / (B, E) slices of ``batch``."""
    tok = batch.softmax(-1)  # (B, T, E)
    feat = tok[:, 0, :3].softmax(-1)
    kept = tok > 0
    return {
        "token_img": _token_routing(tok, tok, kept),
        "token_txt": _token_routing(tok * 2, tok * 2, kept),
        "feat_img": FeatureRouting(feat, feat),
        "feat_txt": FeatureRouting(feat * 3, feat * 3),
    }


def test_fol_zero_for_identical_groups_and_positive_otherwise() -> None:
    logits = torch.randn(8, 5, 10, requires_grad=True)
    batch = _routing(logits)
    dist = torch.randn(8)
    same = _routing(logits.detach())
    loss, parts = fairness_oriented_loss(
        batch, [same, same], dist, [dist, dist], variant="paper", lambda_moe=1.0,
        lambda_distance=1.0, blur=1e-4,
    )  # fmt: skip
    assert abs(loss.item()) < 1e-5
    assert set(parts) == {
        "var_token_img",
        "var_token_txt",
        "var_feat_img",
        "var_feat_txt",
        "distance",
        "fol",
    }
    other = _routing(3 * torch.randn(8, 5, 10))
    loss, parts = fairness_oriented_loss(
        batch, [other, same], dist, [dist + 1, dist], variant="paper", lambda_moe=1.0,
        lambda_distance=1.0, blur=1e-4,
    )  # fmt: skip
    assert all(parts[k] > 0 for k in parts)
    assert parts["distance"] == pytest.approx(0.5, rel=1e-3)  # one group shifted by 1
    loss.backward()
    assert logits.grad.abs().sum() > 0


def test_fol_reference_variant() -> None:
    logits = torch.randn(8, 5, 10)
    batch, other = _routing(logits), _routing(2 * torch.randn(8, 5, 10))
    dist = torch.randn(8)
    loss, parts = fairness_oriented_loss(
        batch, [other], dist, [dist], variant="reference", lambda_moe=0.5,
        lambda_distance=2.0, blur=1e-4,
    )  # fmt: skip
    assert set(parts) == {"var_token_txt", "var_feat_txt", "load", "distance", "fol"}
    rows = [
        batch[k].weights.reshape(-1, batch[k].weights.shape[-1]) for k in ("token_txt", "feat_txt")
    ]
    load = sum(r.var(0).mean() for r in rows)
    assert parts["load"] == pytest.approx(load.item(), rel=1e-5)
    expected = (
        0.5 * (parts["var_token_txt"] + parts["var_feat_txt"] - load.item())
        + 2.0 * parts["distance"]
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_fol_on_plain_clip_is_distance_only() -> None:
    dist = torch.randn(8, requires_grad=True)
    loss, parts = fairness_oriented_loss(
        {}, [{}, {}], dist, [dist.detach() + 1, dist.detach()], variant="paper", lambda_moe=1.0,
        lambda_distance=1.0, blur=1e-4,
    )  # fmt: skip
    assert set(parts) == {"distance", "fol"}
    assert loss.item() == pytest.approx(0.5, rel=1e-3)


def test_fol_on_a_real_model_reaches_the_gates() -> None:
    torch.manual_seed(0)
    model = create_model("tiny", method="fairmoe")
    tok = model.tokenizer()

    words = [
        "glaucoma",
        "normal",
        "cup",
        "disc",
        "ratio",
        "optic",
        "nerve",
        "rim",
        "thinning",
        "pressure",
        "field",
        "loss",
    ]

    def run(seed: int, shift: float):
        g = torch.Generator().manual_seed(seed)
        notes = [
            " ".join(words[int(i)] for i in torch.randint(12, (8,), generator=g)) for _ in range(6)
        ]
        return model(torch.randn(6, 3, 64, 64, generator=g) + shift, tok(notes))

    out = run(0, 0.0)
    with torch.no_grad():  # group side without gradients, as in the reference
        groups = [run(1, 0.0), run(2, 1.0)]
    cfg = LossConfig()

    def dist(o):
        return similarity_distribution(
            o.image_features, o.text_features, o.logit_scale, form=cfg.distance_form
        )

    loss, parts = fairness_oriented_loss(
        out.routing, [g.routing for g in groups], dist(out), [dist(g) for g in groups],
        variant=cfg.fol_variant, lambda_moe=cfg.lambda_moe, lambda_distance=cfg.lambda_distance,
        blur=cfg.blur, normalize_groups=cfg.normalize_groups,
    )  # fmt: skip
    assert torch.isfinite(loss) and all(v > 0 for v in parts.values()), parts
    loss.backward()
    for moe in (model.token_moe_img, model.token_moe_txt, model.feat_moe_img, model.feat_moe_txt):
        assert moe.router[0].weight.grad.abs().sum() > 0


def test_load_balance_loss() -> None:
    uniform = torch.full((2, 7, 10), 0.1)
    r = _token_routing(uniform, uniform, uniform > 0)
    assert load_balance_loss(r, top_k=3).item() == pytest.approx(1.0)
    # every token prefers experts 0 and 1 (prob 0.45 each): f = 1/2 each, P = 0.45 each
    probs = torch.tensor([0.45, 0.45] + [0.1 / 8] * 8).expand(2, 7, 10)
    r = _token_routing(probs, probs, probs > 0)
    assert load_balance_loss(r, top_k=2).item() == pytest.approx(10 * 2 * 0.5 * 0.45)


def test_loss_config_presets() -> None:
    ref = LossConfig.reference()
    assert (ref.fol_variant, ref.lambda_moe, ref.distance_form, ref.normalize_groups) == (
        "reference",
        1e-4,
        "correlation",
        True,
    )
    assert LossConfig().fol_variant == "paper" and not LossConfig().normalize_groups
