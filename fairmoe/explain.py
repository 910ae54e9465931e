"""Captum attributions per expert: which patches each image expert used for the glaucoma score.

Integrated Gradients runs on the image token MoE's per-expert contributions (B, E, T, D), with the
trunk output h computed once: only the last block's tail, the pooling and the heads run per step,
so a whole explanation costs about one backbone pass. The baseline is "every expert silent" (zero
contributions); the attributions of all experts add up to the score change (completeness), which is
why they share one colour scale. Plain CLIP checkpoints get one map, from IG on h itself.
"""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from fairmoe.calibration import glaucoma_logit
from fairmoe.model import FairMoECLIP
from fairmoe.model.clip import EOT, SOT

__all__ = ["attribute_experts", "attribute_note"]


def _maps(model: FairMoECLIP, attr: torch.Tensor) -> list[list[list[float]]]:
    """(E, T) token attributions -> E patch grids (CLS dropped)."""
    g = model.grid
    return attr[:, 1:].reshape(attr.shape[0], g, g).tolist()


def attribute_experts(
    model: FairMoECLIP,
    x: torch.Tensor,
    *,
    prompts: torch.Tensor,
    temperature: float,
    n_steps: int = 16,
) -> dict[str, Any]:
    """IG of the calibrated glaucoma logit w.r.t. each image expert's contribution, per patch.

    ``x`` (1, 3, S, S) is the normalised scan, ``prompts`` (2, E) the prompt features.
    """
    temp = temperature
    with torch.no_grad():
        h = model.image_trunk(x)  # (1, T, D)
    if model.token_moe_img is None:

        def from_h(hh: torch.Tensor) -> torch.Tensor:
            return glaucoma_logit(model.image_head(hh)[0], prompts, temp)

        ig = IntegratedGradients(from_h)
        attr, delta = ig.attribute(
            h, baselines=torch.zeros_like(h), n_steps=n_steps, return_convergence_delta=True
        )
        total = attr[0].sum(-1, keepdim=True).T  # (1, T)
        grid = _maps(model, total)[0]
        scale = max(abs(v) for row in grid for v in row) or 1.0
        return {
            "experts": [],
            "total": grid,
            "scale": scale,
            "convergence_delta": float(delta.abs().max()),
            "target": "calibrated glaucoma log-odds",
        }
    with torch.no_grad():
        contrib, _ = model.image_expert_contributions(h)  # (1, E, T, D)

    def from_contrib(c: torch.Tensor) -> torch.Tensor:
        hh = h.expand(c.shape[0], -1, -1)
        return glaucoma_logit(model.image_head(hh, contributions=c)[0], prompts, temp)

    ig = IntegratedGradients(from_contrib)
    attr, delta = ig.attribute(
        contrib,
        baselines=torch.zeros_like(contrib),
        n_steps=n_steps,
        internal_batch_size=n_steps,
        return_convergence_delta=True,
    )
    per_expert = attr[0].sum(-1)  # (E, T): channels summed, sign kept
    experts = _maps(model, per_expert)
    total = _maps(model, per_expert.sum(0, keepdim=True))[0]
    scale = float(per_expert[:, 1:].abs().max()) or 1.0  # one scale for all experts
    with torch.no_grad():
        full = glaucoma_logit(model.image_head(h)[0], prompts, temp)
        silent = glaucoma_logit(
            model.image_head(h, contributions=torch.zeros_like(contrib))[0], prompts, temp
        )
    return {
        "experts": experts,
        "total": total,
        "scale": scale,
        "per_expert_sum": per_expert.sum(-1).tolist(),  # each expert's share of the change
        "logit": float(full[0]),
        "logit_without_experts": float(silent[0]),
        "probability_without_experts": float(torch.sigmoid(silent[0])),  # = softmax(cos/T)[1]
        "convergence_delta": float(delta.abs().max()),
        "target": "calibrated glaucoma log-odds",
    }


def attribute_note(
    model: FairMoECLIP, x: torch.Tensor, tokens: torch.Tensor, *, n_steps: int = 16
) -> list[tuple[str, float]]:
    """IG over the note's token embeddings of its cosine similarity to the scan."""
    with torch.no_grad():
        image = model.encode_image(x)  # (1, E)

    def similarity(tok: torch.Tensor) -> torch.Tensor:
        return (model.encode_text(tok) * image).sum(-1)

    baseline = torch.where((tokens == SOT) | (tokens == EOT), tokens, torch.zeros_like(tokens))
    lig = LayerIntegratedGradients(similarity, model.clip.token_embedding)
    attr = lig.attribute(tokens, baselines=baseline, n_steps=n_steps, internal_batch_size=n_steps)
    values = attr[0].sum(-1)  # (77,)
    ids = tokens[0].tolist()
    pieces = model.token_strings(tokens)
    positions = [i for i, t in enumerate(ids) if t not in (0, SOT, EOT)]
    return [(p, float(values[i])) for p, i in zip(pieces, positions, strict=True)]
