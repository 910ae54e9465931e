"""Losses: CLIP contrastive, FairCLIP's Sinkhorn distance, Fair-MoE's FOL, optional load balance.

The FOL compares the dispersion (variance) of each MoE's gate weights over a batch with that over
per-group batches, plus FairCLIP's distance between the batch's and each group's image-text
similarity distribution. Two variants:
  "paper":     sum over all present MoEs and over experts of (Var_j(batch) - Var_j(group))^2.
  "reference": the released code: text MoEs only, (mean_j Var_j(batch) - mean_j Var_j(group))^2
               (the mean over experts is taken inside the square), and an extra
               -lambda_moe * sum_n mean_j Var_j(batch) term that rewards peaked routing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from geomloss import SamplesLoss
from torch import Tensor

from fairmoe.model.moe import FeatureRouting, TokenRouting

__all__ = [
    "ROUTING_KEYS",
    "LossConfig",
    "clip_contrastive_loss",
    "fairclip_distance",
    "fairness_oriented_loss",
    "gate_variance_term",
    "gate_rows",
    "load_balance_loss",
    "router_z_loss",
    "similarity_distribution",
    "sinkhorn_distance",
]

ROUTING_KEYS: tuple[str, ...] = ("token_img", "token_txt", "feat_img", "feat_txt")
_REFERENCE_KEYS = ("token_txt", "feat_txt")  # the release hooks only the text MoEs


@dataclass(frozen=True)
class LossConfig:
    """Weights and options of the training loss (defaults: the paper's FOL, fp32, fine-tuning).

    The weights are set from measured gradient norms (``benchmarks/bench_gradients.py``: median
    of the first 6 steps of fine-tuning the pretrained `small` CLIP on the biased synthetic data,
    batch 64). With lambda_moe = 100 the FOL's dispersion terms send the routers 0.011, 20% of the
    contrastive loss's 0.054; with lambda_distance = 0.1 the Sinkhorn distance sends the whole
    model about 10% of the contrastive gradient (Fair-MoE 0.31 of 2.9, FairCLIP 0.12 of 1.6).
    Enough to matter (at the previous 0.01 the distance was 1% of the gradient and the weight
    sweep was flat), while the contrastive objective still dominates. The load balance at 0.01
    sends the routers 0.02, about 40% of the contrastive gradient. The references' 1e-4 weights
    were chosen for fp16 fine-tuning of ViT-B/16 with the 'correlation' form (``reference()``).
    """

    fol_variant: Literal["paper", "reference"] = "paper"  # the paper's FOL is our default
    # Gate-variance weight: 20% of the contrastive loss's router gradient at the start of
    # fine-tuning (see above); the terms grow as routing specialises by group.
    lambda_moe: float = 100.0
    # Sinkhorn weight: about 10% of the contrastive gradient on the whole model (see above).
    # Values are logit_scale * cos, so the term grows with the learned scale.
    lambda_distance: float = 0.1
    blur: float = 1e-4  # Sinkhorn blur sigma (eps = sigma^2); FairCLIP/Fair-MoE default
    # "matched": L_ii = scale * cos(image_i, text_i), the papers' description (and A-FairCLIP).
    # "correlation": the reference code's diag(L_I L_T^T) with the group side divided by its sum;
    # its distance is dominated by the scale of c, hence the references' tiny weights.
    distance_form: Literal["correlation", "matched"] = "matched"
    group_batch_size: int = 32  # samples drawn per group and step for the group-side terms
    # Switch-Transformer load balance on each token MoE (Fedus et al.'s 0.01). The references
    # have none, and their routers collapse onto one expert when trained from scratch: at init
    # 35-49% of the (post-LayerNorm, alike) image tokens already prefer one expert, and the
    # contrastive loss barely moves a collapsed router. 0 turns it off (an ablation).
    lambda_balance: float = 0.01
    lambda_z: float = 0.0  # ST-MoE router z-loss weight (1e-3 in the paper); optional

    @property
    def normalize_groups(self) -> bool:
        """Whether the group distributions are divided by their sum (reference 'correlation')."""
        return self.distance_form == "correlation"

    @classmethod
    def reference(cls) -> LossConfig:
        """The released Fair-MoE code's settings (argparse defaults)."""
        return cls(
            fol_variant="reference",
            lambda_moe=1e-4,
            lambda_distance=1e-4,
            blur=1e-4,
            distance_form="correlation",
            group_batch_size=64,
        )


def clip_contrastive_loss(
    image_features: Tensor, text_features: Tensor, logit_scale: Tensor
) -> Tensor:
    """Symmetric InfoNCE of CLIP; features normalised, ``logit_scale`` already exponentiated."""
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def similarity_distribution(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor,
    *,
    form: Literal["correlation", "matched"],
) -> Tensor:
    """Per-sample image-text similarity values (N,) whose distribution FairCLIP aligns.

    "matched": L_ii = scale * cos(image_i, text_i). "correlation": the reference code's
    c = diag(L_I @ L_T^T) = sum_j L_ij L_ji (L_T = L_I^T); the reference then divides the group
    side (only) by its sum, see ``fairclip_distance(normalize_groups=True)``.
    """
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    if form == "matched":
        return logits.diagonal()
    if form == "correlation":
        return (logits * logits.T).sum(dim=1)  # diag(L @ L), without the N x N product
    raise ValueError(f"unknown form {form!r}; expected 'correlation' or 'matched'")


def sinkhorn_distance(
    batch_values: Tensor, group_values: Tensor, *, blur: float, scaling: float = 0.5
) -> Tensor:
    """Debiased Sinkhorn divergence (geomloss, p=2, cost |x-y|^2/2) between two 1-D samples.

    ``scaling`` is geomloss's epsilon-scaling ratio; its default 0.5 (used by FairCLIP) stops
    early and reads a few percent below the exact transport cost; 0.98 converges (slower).
    """
    # backend="tensorized": pure torch, no pykeops needed (clouds are at most a few hundred).
    loss = SamplesLoss(
        "sinkhorn", p=2, blur=blur, scaling=scaling, debias=True, backend="tensorized"
    )
    # fp32 even under autocast: the iterations lose the small divergences in half precision.
    return loss(batch_values.float().reshape(-1, 1), group_values.float().reshape(-1, 1))


def fairclip_distance(
    batch_dist: Tensor, group_dists: Sequence[Tensor], *, blur: float, normalize_groups: bool
) -> Tensor:
    """FairCLIP's term: sum over groups of the Sinkhorn divergence batch vs group."""
    total = batch_dist.new_zeros((), dtype=torch.float32)
    for g in group_dists:
        g = g / g.sum() if normalize_groups else g
        total = total + sinkhorn_distance(batch_dist, g, blur=blur)
    return total


def _rows(weights: Tensor) -> Tensor:
    """Gate weights as fp32 (rows, E): tokens x samples for token MoEs, samples for feature MoEs."""
    # fp32: the squared variance gaps (~1e-7) vanish in bf16.
    return weights.float().reshape(-1, weights.shape[-1])


def gate_rows(routing: TokenRouting | FeatureRouting | Any) -> Tensor:
    """fp32 (rows, E) gate weights of the routed tokens only (text padding left out)."""
    real = getattr(routing, "real", None)
    if real is not None and routing.weights.dim() == 3:
        return routing.weights[real].float()
    return _rows(routing.weights)


def gate_variance_term(
    batch_weights: Tensor,
    group_weights: Sequence[Tensor],
    *,
    reduction: Literal["sum", "mean"],
) -> Tensor:
    """Sum over groups p of the gap between per-expert variances of the batch and of group p.

    Weights are (N, E) or (B, T, E) (flattened to rows). "sum" (paper): sum_p sum_j
    (Var(W[:, j]) - Var(W_p[:, j]))^2. "mean" (reference code): sum_p (mean_j Var(W[:, j]) -
    mean_j Var(W_p[:, j]))^2. Unbiased variance (torch default).
    """
    var_b = _rows(batch_weights).var(dim=0)  # (E,)
    total = var_b.new_zeros(())
    for w in group_weights:
        var_p = _rows(w).var(dim=0)
        if reduction == "sum":
            total = total + ((var_b - var_p) ** 2).sum()
        elif reduction == "mean":
            total = total + (var_b.mean() - var_p.mean()) ** 2
        else:
            raise ValueError(f"unknown reduction {reduction!r}; expected 'sum' or 'mean'")
    return total


RoutingDict = Mapping[str, TokenRouting | FeatureRouting]


def fol_terms(
    batch_routing: RoutingDict,
    group_routings: Sequence[RoutingDict],
    batch_dist: Tensor,
    group_dists: Sequence[Tensor],
    *,
    variant: Literal["paper", "reference"],
    blur: float,
    normalize_groups: bool = False,
) -> dict[str, Tensor]:
    """The FOL's unweighted parts: ``var_<moe>`` per MoE, ``load`` (reference), ``distance``.

    ``batch_routing`` is ``ModelOutput.routing`` of the training batch; ``group_routings`` one
    such dict per group (their forward may run under no_grad, as in the reference). MoEs absent
    from ``batch_routing`` (plain CLIP) are skipped.
    """
    if variant not in ("paper", "reference"):
        raise ValueError(f"unknown FOL variant {variant!r}; expected 'paper' or 'reference'")
    if len(group_routings) != len(group_dists):
        raise ValueError(
            f"{len(group_routings)} group routings but {len(group_dists)} group distributions"
        )
    keys = ROUTING_KEYS if variant == "paper" else _REFERENCE_KEYS
    reduction = "sum" if variant == "paper" else "mean"
    parts: dict[str, Tensor] = {}
    for key in keys:
        if key not in batch_routing:
            continue
        missing = [i for i, r in enumerate(group_routings) if key not in r]
        if missing:
            raise ValueError(f"group routings {missing} lack {key!r} present in the batch routing")
        parts[f"var_{key}"] = gate_variance_term(
            gate_rows(batch_routing[key]),
            [gate_rows(r[key]) for r in group_routings],
            reduction=reduction,
        )
    if variant == "reference":
        zero = batch_dist.new_zeros((), dtype=torch.float32)
        parts["load"] = sum(
            (gate_rows(batch_routing[k]).var(dim=0).mean() for k in keys if k in batch_routing),
            zero,
        )
    parts["distance"] = fairclip_distance(
        batch_dist, group_dists, blur=blur, normalize_groups=normalize_groups
    )
    return parts


def fairness_oriented_loss(
    batch_routing: RoutingDict,
    group_routings: Sequence[RoutingDict],
    batch_dist: Tensor,
    group_dists: Sequence[Tensor],
    *,
    variant: Literal["paper", "reference"],
    lambda_moe: float,
    lambda_distance: float,
    blur: float,
    normalize_groups: bool = False,
) -> tuple[Tensor, dict[str, float]]:
    """Fair-MoE's FOL = lambda_moe * (variance terms [- load term]) + lambda_distance * distance.

    See :func:`fol_terms` for the parts. Returns the loss and its unweighted parts as floats.
    """
    parts = fol_terms(
        batch_routing,
        group_routings,
        batch_dist,
        group_dists,
        variant=variant,
        blur=blur,
        normalize_groups=normalize_groups,
    )
    total = lambda_moe * fol_dispersion(parts) + lambda_distance * parts["distance"]
    logs = {k: float(v.detach()) for k, v in parts.items()}
    logs["fol"] = float(total.detach())
    return total, logs


def fol_dispersion(parts: Mapping[str, Tensor]) -> Tensor:
    """The FOL's gate-dispersion part from :func:`fol_terms`: the variance terms minus the
    reference's load term (zero without MoEs)."""
    zero = parts["distance"].new_zeros(())
    variance = sum((v for k, v in parts.items() if k.startswith("var_")), zero)
    return variance - parts.get("load", zero)


def load_balance_loss(routing: TokenRouting, *, top_k: int) -> Tensor:
    """Switch-Transformer load balance E * sum_e f_e * P_e (1 when perfectly uniform).

    f_e: fraction of the top-k assignments that go to expert e (before capacity); P_e: mean gate
    probability of expert e; both over the routed tokens (text padding left out). Fedus et al.
    (2021) weight it by 0.01; its minimum, reached by uniform routing, is 1.
    """
    probs = routing.probs[routing.real].float()  # (R, E)
    top = probs.topk(top_k, dim=-1).indices
    assigned = torch.zeros_like(probs).scatter_(-1, top, 1.0)
    frac = assigned.mean(dim=0) / top_k  # (E,)
    return probs.shape[-1] * (frac * probs.mean(dim=0)).sum()


def router_z_loss(routing: TokenRouting) -> Tensor:
    """ST-MoE's router z-loss mean(logsumexp(logits)^2) over the routed tokens (Zoph et al. 2022):
    keeps router logits small, so the softmax stays trainable."""
    logits = routing.logits[routing.real].float()  # (R, E)
    return torch.logsumexp(logits, dim=-1).pow(2).mean()
