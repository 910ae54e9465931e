"""The loss of one training step: CLIP contrastive plus the method's fairness terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from fairmoe import losses
from fairmoe.data.fairvlmed import normalize_scan
from fairmoe.data.tensors import SplitTensors
from fairmoe.methods import method_spec
from fairmoe.training.config import TrainConfig
from fairmoe.training.distributed import autocast, gather, world

__all__ = ["StepContext", "step_loss", "training_text"]


@dataclass(frozen=True)
class StepContext:
    """What every step of a run reads: model (and its DDP wrapper), data, prompts, groups."""

    cfg: TrainConfig
    model: torch.nn.Module  # the bare model (group batches run through it under no_grad)
    ddp_model: torch.nn.Module  # the model the training batch runs through (DDP or the same)
    train: SplitTensors
    prompt_tokens: torch.Tensor  # (2, 77) "A photo of [non-]glaucoma"
    group_index: list[np.ndarray]  # training-set members of each group of the attribute(s)
    device: torch.device


def training_text(
    cfg: TrainConfig,
    data: SplitTensors,
    idx: torch.Tensor,
    prompts: torch.Tensor,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Token ids of the batch's training texts, per ``cfg.text_source``."""
    tokens = data.tokens[idx]
    if cfg.text_source == "note":
        return tokens
    labels = data.labels[idx].to(prompts.device)
    as_prompt = prompts[labels]  # (B, 77): "A photo of [non-]glaucoma"
    if cfg.text_source == "label":
        return as_prompt
    mask = torch.from_numpy(rng.random(len(idx)) < cfg.prompt_mix).to(tokens.device)
    return torch.where(mask[:, None], as_prompt, tokens)


class _Gates(NamedTuple):
    """Gathered gate weights in the shape the FOL reads (``.weights``)."""

    weights: torch.Tensor


class _Side(NamedTuple):
    """What the fairness terms compare: similarity values (N,) and gate weights per MoE."""

    dist: torch.Tensor
    routing: dict[str, _Gates]


def _side(cfg: TrainConfig, img, txt, scale, routing: dict[str, torch.Tensor]) -> _Side:
    dist = losses.similarity_distribution(img, txt, scale, form=cfg.loss.distance_form)
    return _Side(dist, {k: _Gates(w) for k, w in routing.items()})


def _fairness_loss(
    cfg: TrainConfig, batch: _Side, groups: list[_Side]
) -> tuple[torch.Tensor, dict[str, float]]:
    lc = cfg.loss
    weight = cfg.fairness_scale
    group_dists = [g.dist for g in groups]
    if method_spec(cfg.method).gate_variance:
        return losses.fairness_oriented_loss(
            batch.routing,
            [g.routing for g in groups],
            batch.dist,
            group_dists,
            variant=lc.fol_variant,
            lambda_moe=lc.lambda_moe * weight,
            lambda_distance=lc.lambda_distance * weight,
            blur=lc.blur,
            normalize_groups=lc.normalize_groups,
        )
    distance = losses.fairclip_distance(
        batch.dist, group_dists, blur=lc.blur, normalize_groups=lc.normalize_groups
    )
    return lc.lambda_distance * weight * distance, {"distance": float(distance.detach())}


def _inbatch_sides(
    ctx: StepContext, batch_idx: np.ndarray, batch: tuple, routing: dict[str, torch.Tensor]
) -> list[_Side]:
    """Group members of the batch itself, with gradients (our ``--group-batches inbatch``)."""
    img, txt, scale = batch
    sides = []
    for members in ctx.group_index:
        mask = torch.from_numpy(np.isin(batch_idx, members)).to(img.device)
        if int(mask.sum()) >= 2:
            gates = {k: w[mask] for k, w in routing.items()}
            sides.append(_side(ctx.cfg, img[mask], txt[mask], scale, gates))
    return sides


@torch.no_grad()
def _separate_sides(ctx: StepContext, rng: np.random.Generator) -> list[_Side]:
    """The reference's separate group batches, under no_grad.

    Same generator on every rank: identical group batches; each rank encodes its slice and the
    slices are gathered.
    """
    rank, size_world = world()
    size = ctx.cfg.loss.group_batch_size
    sides = []
    for members in ctx.group_index:
        idx = rng.choice(members, size=size, replace=len(members) < size)
        local = torch.from_numpy(np.array_split(idx, size_world)[rank]).to(ctx.train.pixels.device)
        x = normalize_scan(ctx.train.pixels[local].to(ctx.device))
        with autocast(ctx.device):
            g = ctx.model(x, ctx.train.tokens[local].to(ctx.device))
        routing = {k: gather(r.weights.float()) for k, r in g.routing.items()}
        img, txt = gather(g.image_features.float()), gather(g.text_features.float())
        sides.append(_side(ctx.cfg, img, txt, g.logit_scale.float(), routing))
    return sides


def step_loss(
    ctx: StepContext, batch_idx: np.ndarray, rng: np.random.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of the global batch ``batch_idx`` (this rank encodes its slice) and its parts."""
    rank, size_world = world()
    cfg, data = ctx.cfg, ctx.train
    local = np.array_split(batch_idx, size_world)[rank]
    li = torch.from_numpy(local).to(data.pixels.device)
    x = normalize_scan(data.pixels[li].to(ctx.device))
    tokens = training_text(cfg, data, li, ctx.prompt_tokens, rng).to(ctx.device)
    with autocast(ctx.device):
        out = ctx.ddp_model(x, tokens)
    # Gathered across ranks with gradients: the loss sees the whole global batch.
    img, txt = gather(out.image_features.float()), gather(out.text_features.float())
    scale = out.logit_scale.float()
    loss = losses.clip_contrastive_loss(img, txt, scale)
    parts = {"clip": float(loss.detach())}
    spec = method_spec(cfg.method)
    if spec.distance or spec.gate_variance:
        routing = {k: gather(r.weights.float()) for k, r in out.routing.items()}
        if cfg.group_batches == "inbatch":
            groups = _inbatch_sides(ctx, batch_idx, (img, txt, scale), routing)
        else:
            groups = _separate_sides(ctx, rng)
        fair, fparts = _fairness_loss(cfg, _side(cfg, img, txt, scale, routing), groups)
        loss = loss + fair
        parts.update(fparts)
    return loss, parts
