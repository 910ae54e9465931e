"""The loss of one training step: CLIP contrastive plus the method's fairness terms."""

from __future__ import annotations

import math
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

__all__ = ["StepContext", "optimizer_step", "step_loss", "training_text"]


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
    """Gathered gate weights in the shape the FOL reads (``.weights``, ``.real``)."""

    weights: torch.Tensor  # (N, T, E) token MoE or (N, E) feature MoE
    real: torch.Tensor | None  # (N, T) routed tokens of a token MoE (text: not padding)


def _gathered(routing: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Gate weights (and routed-token masks) of every MoE, gathered across ranks."""
    out = {}
    for k, r in routing.items():
        real = getattr(r, "real", None)
        real = gather(real.to(torch.uint8)).bool() if real is not None else None
        out[k] = (gather(r.weights.float()), real)
    return out


class _Side(NamedTuple):
    """What the fairness terms compare: similarity values (N,) and gate weights per MoE."""

    dist: torch.Tensor
    routing: dict[str, _Gates]


def _side(cfg: TrainConfig, img, txt, scale, routing: dict[str, tuple]) -> _Side:
    dist = losses.similarity_distribution(img, txt, scale, form=cfg.loss.distance_form)
    return _Side(dist, {k: _Gates(w, real) for k, (w, real) in routing.items()})


def _fairness_terms(
    cfg: TrainConfig, batch: _Side, groups: list[_Side]
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The method's weighted fairness terms (``fol_dispersion``, ``distance``) and log parts."""
    lc = cfg.loss
    weight = cfg.fairness_scale
    group_dists = [g.dist for g in groups]
    terms: dict[str, torch.Tensor] = {}
    if method_spec(cfg.method).gate_variance:
        parts = losses.fol_terms(
            batch.routing,
            [g.routing for g in groups],
            batch.dist,
            group_dists,
            variant=lc.fol_variant,
            blur=lc.blur,
            normalize_groups=lc.normalize_groups,
        )
        terms["fol_dispersion"] = lc.lambda_moe * weight * losses.fol_dispersion(parts)
    else:
        parts = {
            "distance": losses.fairclip_distance(
                batch.dist, group_dists, blur=lc.blur, normalize_groups=lc.normalize_groups
            )
        }
    terms["distance"] = lc.lambda_distance * weight * parts["distance"]
    logs = {k: float(v.detach()) for k, v in parts.items()}
    if "fol_dispersion" in terms:
        logs["fol"] = float(sum(terms.values()).detach())
    return terms, logs


class _Router(NamedTuple):
    """A token MoE's gate outputs gathered across ranks (what the router losses read)."""

    probs: torch.Tensor  # (N, T, E)
    logits: torch.Tensor  # (N, T, E)
    real: torch.Tensor  # (N, T)


def _router_terms(cfg: TrainConfig, routing: dict, top_k: int) -> dict[str, torch.Tensor]:
    """Load balance (and the optional z-loss) of each token MoE over the global batch, weighted."""
    terms: dict[str, torch.Tensor] = {}
    for key in ("token_img", "token_txt"):
        local = routing.get(key)
        if local is None:
            continue
        r = _Router(
            gather(local.probs.float()),
            gather(local.logits.float()),
            gather(local.real.to(torch.uint8)).bool(),
        )
        if cfg.loss.lambda_balance > 0:
            balance = losses.load_balance_loss(r, top_k=top_k)
            terms[f"balance_{key}"] = cfg.loss.lambda_balance * balance
        if cfg.loss.lambda_z > 0:
            terms[f"z_{key}"] = cfg.loss.lambda_z * losses.router_z_loss(r)
    return terms


def _inbatch_sides(
    ctx: StepContext, batch_idx: np.ndarray, batch: tuple, routing: dict[str, torch.Tensor]
) -> list[_Side]:
    """Group members of the batch itself, with gradients (our ``--group-batches inbatch``)."""
    img, txt, scale = batch
    sides = []
    for members in ctx.group_index:
        mask = torch.from_numpy(np.isin(batch_idx, members)).to(img.device)
        if int(mask.sum()) >= 2:
            gates = {
                k: (w[mask], real[mask] if real is not None else None)
                for k, (w, real) in routing.items()
            }
            sides.append(_side(ctx.cfg, img[mask], txt[mask], scale, gates))
    return sides


@torch.no_grad()
def _separate_sides(ctx: StepContext, rng: np.random.Generator) -> list[_Side]:
    """The reference's separate group batches, under no_grad, reading ``cfg.group_text``.

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
        if ctx.cfg.group_text == "training":  # the training batch's text source and mix
            tokens = training_text(ctx.cfg, ctx.train, local, ctx.prompt_tokens, rng)
        else:
            tokens = ctx.train.tokens[local]
        with autocast(ctx.device):
            g = ctx.model(x, tokens.to(ctx.device))
        img, txt = gather(g.image_features.float()), gather(g.text_features.float())
        sides.append(_side(ctx.cfg, img, txt, g.logit_scale.float(), _gathered(g.routing)))
    return sides


def step_loss(
    ctx: StepContext, batch_idx: np.ndarray, rng: np.random.Generator
) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    """Loss of the global batch ``batch_idx`` (this rank encodes its slice), its logged parts,
    and its weighted terms as tensors (``clip``, router and fairness terms; they sum to the
    loss) so that their gradients can be measured one by one."""
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
    terms = {"clip": losses.clip_contrastive_loss(img, txt, scale)}
    parts = {"clip": float(terms["clip"].detach())}
    router = _router_terms(cfg, out.routing, ctx.model.config.moe.top_k)
    terms.update(router)
    parts.update({k: float(v.detach()) for k, v in router.items()})
    spec = method_spec(cfg.method)
    if spec.distance or spec.gate_variance:
        routing = _gathered(out.routing)
        if cfg.group_batches == "inbatch":
            groups = _inbatch_sides(ctx, batch_idx, (img, txt, scale), routing)
        else:
            groups = _separate_sides(ctx, rng)
        fair, fparts = _fairness_terms(cfg, _side(cfg, img, txt, scale, routing), groups)
        terms.update(fair)
        parts.update(fparts)
    loss = sum(terms.values())
    return loss, parts, terms


def optimizer_step(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
) -> None:
    """One update from ``loss``: backward, gradient-norm clip, optimiser and schedule step, and
    CLIP's clamp of the learned logit scale.

    The one place this sequence lives: training and ``measure_gradients`` both call it, so the
    gradients measured after a few steps are those of training at the same point.
    ``model`` is the bare model (under DDP, ``loss`` comes from its wrapper).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        model.clip.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
