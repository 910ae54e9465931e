"""``train``: set up, run the epochs (selecting on validation), calibrate, evaluate on test, write."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fairmoe.calibration import OODReference, fit_temperature, glaucoma_probability
from fairmoe.data.tensors import SplitTensors, load_split
from fairmoe.methods import method_spec
from fairmoe.model import create_model
from fairmoe.schema import ATTRIBUTES, PROMPTS
from fairmoe.training.config import TrainConfig, run_name
from fairmoe.training.distributed import world
from fairmoe.training.evaluation import (
    encode_split,
    evaluate_split,
    influence_columns,
    routing_health,
    split_fairness,
    split_influence,
)
from fairmoe.training.gradients import term_gradient_norms
from fairmoe.training.outputs import RunResult, write_outputs
from fairmoe.training.state import RunState, load_resume, lr_lambda, save_resume
from fairmoe.training.step import StepContext, optimizer_step, step_loss

__all__ = ["measure_gradients", "train"]


@dataclass
class _Run:
    """A run set up for training: the step context plus optimiser, schedule and splits."""

    ctx: StepContext
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    val: SplitTensors
    test: SplitTensors
    steps_per_epoch: int
    load_seconds: float


def _setup(cfg: TrainConfig, data_root: Path, device: torch.device, cache_dir) -> _Run:
    """Seeded model, the three splits, optimizer, schedule and the training-set group index."""
    # Every global generator, so that a run never depends on what ran before it in the process.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model_cfg = cfg.model_config()
    model = create_model(model_cfg, method=cfg.method, n_groups=cfg.n_groups, init=cfg.init).to(
        device
    )
    tok = model.tokenizer()
    t0 = time.perf_counter()
    kw = dict(
        image_size=model_cfg.vision.image_size,
        tokenizer=tok,
        cache_dir=cache_dir,
        limit=cfg.limit,
        note_cut=cfg.note_cut,
    )
    train_data, val_data, test_data = (
        load_split(data_root, s, **kw) for s in ("training", "validation", "test")
    )
    load_s = time.perf_counter() - t0
    if device.type == "cuda":  # keep the data on the GPU: host-side batching starves it
        train_data = train_data.to(device)
    ddp_model = model
    if world()[1] > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # an expert that keeps no token of a local batch gets no gradient
            find_unused_parameters=method_spec(cfg.method).has_moe,
        )
    optimizer = torch.optim.AdamW(
        _param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = max(1, len(train_data) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total, max(1, int(cfg.warmup_fraction * total)))
    )
    group_index = [
        np.flatnonzero(train_data.attribute(a).cpu().numpy() == c)
        for a in cfg.attributes
        for c in range(ATTRIBUTES[a].n_groups)
    ]
    ctx = StepContext(
        cfg=cfg,
        model=model,
        ddp_model=ddp_model,
        train=train_data,
        prompt_tokens=tok(list(PROMPTS)).to(train_data.tokens.device),  # (2, 77)
        group_index=[g for g in group_index if len(g) > 0],
        device=device,
    )
    return _Run(ctx, optimizer, scheduler, val_data, test_data, steps_per_epoch, load_s)


def _param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: the token MoEs at ``cfg.moe_lr_scale`` times the learning rate."""
    moes = [m for m in (model.token_moe_img, model.token_moe_txt) if m is not None]
    if cfg.moe_lr_scale == 1.0 or not moes:  # one group: the optimiser state of earlier runs
        return [{"params": list(model.parameters())}]
    moe_params = [p for m in moes for p in m.parameters()]
    moe_ids = {id(p) for p in moe_params}
    rest = [p for p in model.parameters() if id(p) not in moe_ids]
    return [{"params": rest}, {"params": moe_params, "lr": cfg.lr * cfg.moe_lr_scale}]


def _select_score(
    cfg: TrainConfig, report: dict[str, Any], val: SplitTensors, cosines: np.ndarray
) -> float:
    """The validation figure epochs are selected on: AUC, or the mean ES-AUC of the attributes."""
    if cfg.select_on == "auc":
        return report["auc"] if report["auc"] is not None else 0.0
    vals = [split_fairness(val, cosines, a).es_auc for a in cfg.attributes]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else 0.0


def _epoch_order(cfg: TrainConfig, n: int, epoch: int) -> tuple[np.random.Generator, np.ndarray]:
    """The epoch's generator (also drawing its group batches and text mix) and sample order."""
    rng = np.random.default_rng([cfg.seed, epoch])
    return rng, rng.permutation(n)


def _train_epoch(run: _Run, epoch: int, name: str, progress: bool) -> dict[str, float]:
    """One pass over the training split; the mean of each loss part."""
    ctx, cfg = run.ctx, run.ctx.cfg
    ctx.ddp_model.train()
    rng, order = _epoch_order(cfg, len(ctx.train), epoch)
    sums: dict[str, float] = {}
    bar = tqdm(
        range(run.steps_per_epoch),
        desc=f"{name} epoch {epoch + 1}/{cfg.epochs}",
        disable=not progress or world()[0] != 0,
        leave=False,
    )
    grads: dict[str, float] = {}
    for step in bar:
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        loss, parts, terms = step_loss(ctx, batch, rng)
        if step == 0 and world()[1] == 1:  # DDP's reducer expects one backward per step
            grads = term_gradient_norms(terms, ctx.model)
        optimizer_step(loss, ctx.model, run.optimizer, run.scheduler, cfg)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        if world()[0] == 0 and step % 10 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return {k: v / run.steps_per_epoch for k, v in sums.items()} | grads


def _health_columns(health: dict[str, Any]) -> dict[str, float]:
    """The overall router-health figures as flat history columns (printed every epoch)."""
    out = {}
    for moe, rep in health.items():
        h = rep["overall"]
        for key in ("top_expert_share", "kept_entropy", "none_share"):
            out[f"{moe}/{key}"] = h[key]
    return out


def _run_epochs(run: _Run, state: RunState, name: str, resume_dir: Path, progress: bool) -> dict:
    """Train from ``state.start_epoch``, validating and checkpointing for resume after each."""
    ctx, cfg = run.ctx, run.ctx.cfg
    rank = world()[0]
    timing = {"train_seconds": 0.0, "images": 0}
    for epoch in range(state.start_epoch, cfg.epochs):
        tick = time.perf_counter()
        row: dict[str, Any] = _train_epoch(run, epoch, name, progress)
        timing["train_seconds"] += time.perf_counter() - tick
        timing["images"] += run.steps_per_epoch * cfg.batch_size
        enc = encode_split(ctx.model, run.val, ctx.device, cfg.eval_batch_size)
        report = evaluate_split(run.val, enc.cosines)
        score = _select_score(cfg, report, run.val, enc.cosines)
        row.update(epoch=epoch + 1, val_auc=report["auc"], val_select=score)
        health = routing_health(ctx.model, run.val, enc, ctx.device)
        if health:
            row["health"] = health
            row.update(_health_columns(health))
        temperature = fit_temperature(enc.cosines, run.val.labels.numpy())
        quick = split_influence(ctx.model.eval(), run.val, temperature, full=False)
        row.update(influence_columns(quick))
        state.history.append(row)
        if rank == 0 and progress:
            tqdm.write(
                f"{name} epoch {epoch + 1}: "
                + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float))
            )
        state.best.offer(score, epoch + 1, ctx.model)
        if rank == 0:
            save_resume(resume_dir, ctx.model, run.optimizer, run.scheduler, epoch, state)
    return timing


def _finish(run: _Run, state: RunState, name: str, timing: dict) -> RunResult:
    """Best weights back in, temperature fitted on validation, test evaluated."""
    ctx, cfg = run.ctx, run.ctx.cfg
    if state.best.state is not None:
        ctx.model.load_state_dict(state.best.state)
    val_enc = encode_split(ctx.model, run.val, ctx.device, cfg.eval_batch_size)
    temperature = fit_temperature(val_enc.cosines, run.val.labels.numpy())
    test_enc = encode_split(ctx.model, run.test, ctx.device, cfg.eval_batch_size)
    test_p = glaucoma_probability(test_enc.cosines, temperature=temperature)
    seconds = timing["train_seconds"]
    result = {
        "name": name,
        "best_epoch": state.best.epoch,
        "temperature": temperature,
        "test": evaluate_split(run.test, test_enc.cosines, temperature),
        "validation": evaluate_split(run.val, val_enc.cosines, temperature),
        "history": state.history,
        "train_seconds": seconds,
        "images_per_second": timing["images"] / seconds if seconds > 0 else None,
        "data_load_seconds": run.load_seconds,
        "ood": OODReference.fit(val_enc.features, cfg.ood_quantile).to_dict(),
        "routing_health": routing_health(ctx.model, run.test, test_enc, ctx.device),
        "influence": split_influence(ctx.model, run.test, temperature),
    }
    splits = {"training": ctx.train, "validation": run.val, "test": run.test}
    return RunResult(name, result, splits, test_enc, test_p)


def train(
    cfg: TrainConfig,
    data_root: str | Path,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    name: str | None = None,
    cache_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, select on validation, evaluate on test; rank 0 writes the checkpoint and reports."""
    device = torch.device(device)
    out_dir = Path(out_dir)
    name = name or run_name(cfg)
    run = _setup(cfg, Path(data_root), device, cache_dir)
    resume_dir = out_dir / f"{name}.resume"
    state = RunState()
    if resume and (resume_dir / "state.json").is_file():
        state = load_resume(resume_dir, run.ctx.model, run.optimizer, run.scheduler)
    timing = _run_epochs(run, state, name, resume_dir, progress)
    finished = _finish(run, state, name, timing)
    if world()[0] == 0:
        write_outputs(cfg, run.ctx.model, finished, out_dir, device=device, data_root=data_root)
    return finished.result


def measure_gradients(
    cfg: TrainConfig,
    data_root: str | Path,
    *,
    steps: int,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> list[dict[str, float]]:
    """Per-term gradient norms (``term_gradient_norms``), loss parts and the logit scale on each
    of the first ``steps`` steps of a run; for choosing the fairness-loss weights.

    The steps are training's: the same batches epoch after epoch, the same update in between
    (``optimizer_step``), so a row equals what training measures at that step.
    """
    device = torch.device(device)
    run = _setup(cfg, Path(data_root), device, cache_dir)
    ctx = run.ctx
    ctx.ddp_model.train()
    rows = []
    for step in range(steps):
        epoch, i = divmod(step, run.steps_per_epoch)
        if i == 0:
            rng, order = _epoch_order(cfg, len(ctx.train), epoch)
        batch = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        loss, parts, terms = step_loss(ctx, batch, rng)
        scale = {"logit_scale": float(ctx.model.logit_scale.detach())}
        rows.append(term_gradient_norms(terms, ctx.model) | parts | scale)
        optimizer_step(loss, ctx.model, run.optimizer, run.scheduler, cfg)
    return rows
