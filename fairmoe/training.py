"""The training loop for CLIP, FairCLIP and Fair-MoE: CPU, one GPU, or DDP under torchrun.

Protocol choices that differ from the reference code, and why:
- model selection on the validation split (the references pick the best epoch on test);
- fp32 master weights with bf16 autocast on CUDA (the references' fp16 weights crash for lambda >= 1e-5);
- deterministic data order from the seed; a temperature fitted on validation for calibrated probabilities.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from fairmoe import losses, metrics
from fairmoe.checkpoint import save_checkpoint, sha256_file
from fairmoe.data.fairvlmed import normalize_scan
from fairmoe.data.tensors import SplitTensors, load_split
from fairmoe.model import METHODS, create_model, get_config
from fairmoe.model import glaucoma_probability as model_probability
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES, PROMPTS

__all__ = [
    "METHOD_SPECS",
    "TrainConfig",
    "evaluate_cosines",
    "fit_temperature",
    "glaucoma_probability",
    "train",
]


@dataclass(frozen=True)
class MethodSpec:
    """What a method adds to plain CLIP training."""

    moe: bool  # FO-MoE layers in the model
    distance: bool  # FairCLIP's Sinkhorn distance term
    gate_variance: bool  # FOL's dispersion terms over the MoE gates


# What each of the methods named in fairmoe.model.METHODS trains with.
METHOD_SPECS: dict[str, MethodSpec] = {
    "clip": MethodSpec(moe=False, distance=False, gate_variance=False),
    "fairclip": MethodSpec(moe=False, distance=True, gate_variance=False),
    "fairmoe": MethodSpec(moe=True, distance=True, gate_variance=True),
}


@dataclass(frozen=True)
class TrainConfig:
    method: Literal["clip", "fairclip", "fairmoe"] = "fairmoe"
    attribute: str = "race"  # one of ATTRIBUTE_NAMES, or "all" (our extension: FOL over all four)
    model: str = "tiny"  # a preset of fairmoe.model.list_configs()
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-4  # from-scratch CLIP collapsed at 5e-4 and learned at 1e-4 (DESIGN.md probe)
    weight_decay: float = 0.1
    warmup_fraction: float = 0.1  # one-cycle: linear warm-up, then cosine decay
    group_batches: Literal["separate", "inbatch"] = "separate"  # reference: separate, no_grad
    fairness_scale: float = 1.0  # multiplies the default fairness weights (the trade-off sweep)
    loss: losses.LossConfig = field(default_factory=losses.LossConfig)
    select_on: Literal["auc", "es_auc"] = "auc"  # validation metric for model selection
    # Training text: "note" = the summary (the references' default); "label" = the class prompt
    # (FairCLIP's text_source='label'); "mixed" = the class prompt for a random `prompt_mix` share
    # of each batch. A CLIP trained from scratch in a few hundred CPU steps never links notes to
    # the zero-shot prompts on its own; mixing anchors them (used for the CPU-trained assets).
    text_source: Literal["note", "label", "mixed"] = "note"
    pretrained: str | None = None  # local OpenAI/open_clip weights file (vit-b-16), never a hub
    prompt_mix: float = 0.5
    seed: int = 0
    limit: int | None = None  # cap samples per split (smoke runs)
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.method not in METHOD_SPECS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {METHODS}")
        if self.attribute != "all" and self.attribute not in ATTRIBUTES:
            raise ValueError(
                f"unknown attribute {self.attribute!r}; expected one of {ATTRIBUTE_NAMES} or 'all'"
            )

    @property
    def attributes(self) -> tuple[str, ...]:
        return ATTRIBUTE_NAMES if self.attribute == "all" else (self.attribute,)

    @property
    def n_groups(self) -> int:
        """Feature-MoE experts: one per group of the attribute (the largest count for 'all')."""
        return max(ATTRIBUTES[a].n_groups for a in self.attributes)


# ----------------------------------------------------------------------------- distributed helpers


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(t: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 with gradients flowing back to each rank's slice."""
    rank, world = _world()
    if world == 1:
        return t
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(t), dim=0)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class Encoded:
    """A split encoded by the image tower: features, prompt cosines, expert loads."""

    features: np.ndarray  # (N, E) normalised image embeddings
    cosines: np.ndarray  # (N, 2) to the prompts; index 1 is glaucoma
    loads: np.ndarray | None  # (N, M1) share of patch tokens each image expert kept (fairmoe)


@torch.no_grad()
def encode_split(
    model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int = 256
) -> Encoded:
    model.eval()
    prompts = model.encode_prompts().float()  # (2, E)
    feats, loads = [], []
    for i in range(0, len(data), batch_size):
        x = normalize_scan(data.pixels[i : i + batch_size].to(device))
        with _autocast(device):
            f, routing = model.encode_image_with_routing(x)
        feats.append(f.float().cpu())
        if "token_img" in routing:
            loads.append(routing["token_img"].kept[:, 1:].float().mean(1).cpu())  # (B, M1)
    features = torch.cat(feats)
    return Encoded(
        features.numpy(),
        (features @ prompts.cpu().T).numpy(),
        torch.cat(loads).numpy() if loads else None,
    )


def evaluate_cosines(
    model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """(N, 2) cosine similarities of each scan to the two prompts (index 1: glaucoma)."""
    return encode_split(model, data, device, batch_size).cosines


def ood_reference(features: np.ndarray, quantile: float = 0.99) -> dict[str, Any]:
    """Per-dimension mean/std of validation embeddings and the quantile of their z-distance.

    The app flags a scan whose RMS z-score distance exceeds this threshold as unlike training.
    """
    mean, std = features.mean(0), features.std(0) + 1e-6
    dist = np.sqrt((((features - mean) / std) ** 2).mean(1))
    return {
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "threshold": float(np.quantile(dist, quantile)),
        "quantile": quantile,
    }


def glaucoma_probability(cosines: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """numpy front of ``fairmoe.model.glaucoma_probability`` (softmax(cos / T)[:, 1])."""
    p = model_probability(
        torch.from_numpy(np.asarray(cosines, dtype=np.float64)), temperature=temperature
    )
    return p.numpy()


def fit_temperature(cosines: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising validation log-loss; keeps the 0.5 boundary and every AUC."""
    d = cosines[:, 1] - cosines[:, 0]
    y = labels.astype(np.float64)

    def nll(log_t: float) -> float:
        z = np.clip(d / math.exp(log_t), -60, 60)
        return float(np.mean(np.logaddexp(0, z) - y * z))

    lo, hi = math.log(1e-4), math.log(100.0)
    for _ in range(80):  # golden-section search on log T (log-loss is unimodal in 1/T)
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if nll(m1) < nll(m2):
            hi = m2
        else:
            lo = m1
    return float(math.exp((lo + hi) / 2))


def _attrs_dict(data: SplitTensors) -> dict[str, np.ndarray]:
    return {a: data.attribute(a).numpy() for a in ATTRIBUTE_NAMES}


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


# ----------------------------------------------------------------------------- the loss of one step


def _training_text(
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


def _fairness_loss(
    cfg: TrainConfig, batch: _Side, groups: list[_Side]
) -> tuple[torch.Tensor, dict[str, float]]:
    lc = cfg.loss
    weight = cfg.fairness_scale
    group_dists = [g.dist for g in groups]
    if METHOD_SPECS[cfg.method].gate_variance:
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


class _Side(NamedTuple):
    """What the fairness terms compare: similarity values (N,) and gate weights per MoE."""

    dist: torch.Tensor
    routing: dict[str, _Gates]


def _side(cfg: TrainConfig, img, txt, scale, routing: dict[str, torch.Tensor]) -> _Side:
    dist = losses.similarity_distribution(img, txt, scale, form=cfg.loss.distance_form)
    return _Side(dist, {k: _Gates(w) for k, w in routing.items()})


def _group_sides(
    cfg: TrainConfig,
    model: torch.nn.Module,
    train: SplitTensors,
    group_index: list[np.ndarray],
    rng: np.random.Generator,
    batch_idx: np.ndarray,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]],
    device: torch.device,
) -> list[_Side]:
    """The group side of each group of the trained attribute(s)."""
    rank, world = _world()
    sides = []
    if cfg.group_batches == "inbatch":  # group members of the batch itself, with gradients
        img, txt, scale, routing = batch
        for members in group_index:
            mask = torch.from_numpy(np.isin(batch_idx, members)).to(img.device)
            if int(mask.sum()) >= 2:
                sides.append(
                    _side(
                        cfg, img[mask], txt[mask], scale, {k: w[mask] for k, w in routing.items()}
                    )
                )
        return sides
    size = cfg.loss.group_batch_size
    for members in group_index:
        # The reference's separate group batches under no_grad. Same generator on every rank:
        # identical group batches; each rank encodes its slice and the slices are gathered.
        idx = rng.choice(members, size=size, replace=len(members) < size)
        local = torch.from_numpy(np.array_split(idx, world)[rank]).to(train.pixels.device)
        with torch.no_grad():
            x = normalize_scan(train.pixels[local].to(device))
            with _autocast(device):
                g = model(x, train.tokens[local].to(device))
            routing = {k: _gather(r.weights.float()) for k, r in g.routing.items()}
            sides.append(
                _side(
                    cfg,
                    _gather(g.image_features.float()),
                    _gather(g.text_features.float()),
                    g.logit_scale.float(),
                    routing,
                )
            )
    return sides


# ----------------------------------------------------------------------------- train


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def _select_score(cfg: TrainConfig, report: dict[str, Any]) -> float:
    if cfg.select_on == "auc":
        return report["auc"] if report["auc"] is not None else 0.0
    vals = [report["attributes"][a]["es_auc"] for a in cfg.attributes]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else 0.0


def _save_resume(path: Path, model, optimizer, scheduler, epoch: int, state: dict) -> None:
    """Everything needed to resume: fp32 weights, optimizer moments (safetensors), JSON state."""
    path.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        path / "model.safetensors",
    )
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0:
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = float(v)
    save_file(tensors or {"_empty": torch.zeros(1)}, path / "optimizer.safetensors")
    meta = dict(state, epoch=epoch, optimizer_scalars=scalars, scheduler=scheduler.state_dict())
    tmp = path / "state.json.tmp"
    tmp.write_text(json.dumps(meta, default=float))
    tmp.replace(path / "state.json")


def _load_resume(path: Path, model, optimizer, scheduler) -> dict:
    meta = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(path / "model.safetensors"))
    tensors = load_file(path / "optimizer.safetensors")
    opt = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key == "_empty":
            continue
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta["optimizer_scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = torch.tensor(v)
    opt["state"] = state
    optimizer.load_state_dict(opt)
    scheduler.load_state_dict(meta["scheduler"])
    return meta


def run_name(cfg: TrainConfig) -> str:
    scale = "" if cfg.fairness_scale == 1.0 else f"-x{cfg.fairness_scale:g}"
    return f"{cfg.method}-{cfg.attribute}-{cfg.model}{scale}-s{cfg.seed}"


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
    rank, world = _world()
    out_dir = Path(out_dir)
    name = name or run_name(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    spec = METHOD_SPECS[cfg.method]
    model_cfg = get_config(cfg.model)
    model = create_model(
        model_cfg, method=cfg.method, n_groups=cfg.n_groups, pretrained=cfg.pretrained
    ).to(device)
    tok = model.tokenizer()
    size = model_cfg.vision.image_size
    t0 = time.perf_counter()
    kw = dict(image_size=size, tokenizer=tok, cache_dir=cache_dir, limit=cfg.limit)
    train_data = load_split(data_root, "training", **kw)
    val_data = load_split(data_root, "validation", **kw)
    test_data = load_split(data_root, "test", **kw)
    load_s = time.perf_counter() - t0
    if device.type == "cuda":  # keep the data on the GPU: host-side batching starves it
        train_data = train_data.to(device)
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # an expert that keeps no token of a local batch gets no gradient
            find_unused_parameters=spec.moe,
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_data) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(total, max(1, int(cfg.warmup_fraction * total)))
    )
    prompt_tokens = tok(list(PROMPTS)).to(train_data.tokens.device)  # (2, 77)
    group_index = [
        np.flatnonzero(train_data.attribute(a).cpu().numpy() == c)
        for a in cfg.attributes
        for c in range(ATTRIBUTES[a].n_groups)
    ]
    group_index = [g for g in group_index if len(g) > 0]
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -1.0, "epoch": -1, "state": None}
    start_epoch = 0
    resume_dir = out_dir / f"{name}.resume"
    if resume and (resume_dir / "state.json").is_file():
        meta = _load_resume(resume_dir, model, optimizer, scheduler)
        start_epoch, history = meta["epoch"] + 1, meta["history"]
        best = {"score": meta["best_score"], "epoch": meta["best_epoch"], "state": None}
        best_file = resume_dir / "best.safetensors"
        if best_file.is_file():
            best["state"] = load_file(best_file)
    train_t = 0.0
    images_seen = 0
    for epoch in range(start_epoch, cfg.epochs):
        ddp_model.train()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(train_data))
        tick = time.perf_counter()
        sums: dict[str, float] = {}
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{name} epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for step in bar:
            batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            local = np.array_split(batch, world)[rank]
            li = torch.from_numpy(local).to(train_data.pixels.device)
            x = normalize_scan(train_data.pixels[li].to(device))
            tokens = _training_text(cfg, train_data, li, prompt_tokens, rng).to(device)
            with _autocast(device):
                out = ddp_model(x, tokens)
            # Gathered across ranks with gradients: the loss sees the whole global batch.
            img, txt = _gather(out.image_features.float()), _gather(out.text_features.float())
            scale = out.logit_scale.float()
            loss = losses.clip_contrastive_loss(img, txt, scale)
            parts = {"clip": float(loss.detach())}
            if spec.distance or spec.gate_variance:
                routing = {k: _gather(r.weights.float()) for k, r in out.routing.items()}
                groups = _group_sides(
                    cfg,
                    model,
                    train_data,
                    group_index,
                    rng,
                    batch,
                    (img, txt, scale, routing),
                    device,
                )
                fair, fparts = _fairness_loss(cfg, _side(cfg, img, txt, scale, routing), groups)
                loss = loss + fair
                parts.update(fparts)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():  # CLIP's clamp keeps the logit scale below 100
                model.clip.logit_scale.clamp_(0, math.log(100))
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if rank == 0 and step % 10 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        train_t += time.perf_counter() - tick
        images_seen += steps_per_epoch * cfg.batch_size
        cos = evaluate_cosines(model, val_data, device, cfg.eval_batch_size)
        report = metrics.evaluate(
            val_data.labels.numpy(), glaucoma_probability(cos), _attrs_dict(val_data)
        )
        score = _select_score(cfg, report)
        row = {k: v / steps_per_epoch for k, v in sums.items()}
        row.update(epoch=epoch + 1, val_auc=report["auc"], val_select=score)
        history.append(row)
        if rank == 0 and progress:
            tqdm.write(
                f"{name} epoch {epoch + 1}: "
                + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float))
            )
        if score > best["score"]:
            best = {
                "score": score,
                "epoch": epoch + 1,
                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            }
        if rank == 0:
            _save_resume(
                resume_dir,
                model,
                optimizer,
                scheduler,
                epoch,
                {"history": history, "best_score": best["score"], "best_epoch": best["epoch"]},
            )
            if best["state"] is not None:
                save_file(best["state"], resume_dir / "best.safetensors")
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    val_enc = encode_split(model, val_data, device, cfg.eval_batch_size)
    val_cos = val_enc.cosines
    temperature = fit_temperature(val_cos, val_data.labels.numpy())
    test_enc = encode_split(model, test_data, device, cfg.eval_batch_size)
    test_cos = test_enc.cosines
    test_p = glaucoma_probability(test_cos, temperature)
    test_report = metrics.evaluate(test_data.labels.numpy(), test_p, _attrs_dict(test_data))
    val_report = metrics.evaluate(
        val_data.labels.numpy(), glaucoma_probability(val_cos, temperature), _attrs_dict(val_data)
    )
    result = {
        "name": name,
        "best_epoch": best["epoch"],
        "temperature": temperature,
        "test": test_report,
        "validation": val_report,
        "history": history,
        "train_seconds": train_t,
        "images_per_second": images_seen / train_t if train_t > 0 else None,
        "data_load_seconds": load_s,
        "ood": ood_reference(val_enc.features),
    }
    if rank == 0:
        splits = {"training": train_data, "validation": val_data, "test": test_data}
        _write_outputs(
            cfg,
            model,
            model_cfg,
            out_dir,
            name,
            result,
            splits,
            test_enc,
            test_p,
            device,
            data_root,
        )
    return result


def _write_scores(path: Path, data: SplitTensors, enc: Encoded, probability: np.ndarray) -> None:
    """Test-set scores: id, label, calibrated score, raw cosines, attributes, expert loads."""
    loads = enc.loads if enc.loads is not None else np.zeros((len(data), 0))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["id", "label", "score", "cos_non_glaucoma", "cos_glaucoma", *ATTRIBUTE_NAMES]
            + [f"load_e{e}" for e in range(loads.shape[1])]
        )
        for i, sid in enumerate(data.ids):
            w.writerow(
                [sid, int(data.labels[i]), f"{probability[i]:.6f}"]
                + [f"{c:.6f}" for c in enc.cosines[i]]
                + [int(v) for v in data.attrs[i]]
                + [f"{v:.4f}" for v in loads[i]]
            )


def _write_outputs(
    cfg: TrainConfig,
    model: torch.nn.Module,
    model_cfg: Any,
    out_dir: Path,
    name: str,
    result: dict[str, Any],
    splits: dict[str, SplitTensors],
    test_enc: Encoded,
    test_p: np.ndarray,
    device: torch.device,
    data_root: str | Path,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = out_dir / f"{name}.scores.csv"
    _write_scores(scores, splits["test"], test_enc, test_p)
    resolved = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg)}
    (out_dir / f"{name}.config.json").write_text(json.dumps(resolved, indent=2))
    (out_dir / f"{name}.metrics.json").write_text(json.dumps(result, indent=2))
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    meta = {
        "config": dataclasses.asdict(model_cfg),
        "method": cfg.method,
        "attribute": cfg.attribute,
        "n_groups": cfg.n_groups,
        "seed": cfg.seed,
        "train_config": dataclasses.asdict(cfg),
        "calibration": {"temperature": result["temperature"], "fitted_on": "validation"},
        "best_epoch": result["best_epoch"],
        "data": {k: v.summary for k, v in splits.items()},
        "data_synthetic": (Path(data_root) / "SYNTHETIC.md").is_file(),
        "ood": result["ood"],
        "metrics": {"test": result["test"], "validation": result["validation"]},
        "device": dev,
        "world_size": _world()[1],
        "train_seconds": result["train_seconds"],
        "scores_file": scores.name,
        "scores_sha256": sha256_file(scores),
    }
    save_checkpoint(model, out_dir, name, metadata=meta)
    if os.environ.get("FAIRMOE_KEEP_RESUME") != "1":
        import shutil

        shutil.rmtree(out_dir / f"{name}.resume", ignore_errors=True)
