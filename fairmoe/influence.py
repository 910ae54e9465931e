"""How much the image experts matter: their influence on the decision and how they route.

Silencing is exact, not a gradient: the image token MoE's per-expert outputs
(``image_expert_contributions``) are zeroed, all together or one expert at a time, and the
calibrated glaucoma log-odds recomputed. Routing is read per scan (patch tokens only; the CLS
token routes too but is not a patch): the share of top-k requests that fall over an expert's
capacity, the mean gate of a patch's first choice, the mean gate applied to a kept expert's output (after
any renormalisation), the normalised entropy of each patch's gate
distribution, and how many distinct experts keep at least one of the scan's patches. Diversity is
the mean pairwise cosine of the experts' flattened parameters (1.0: identical copies).

Routing by content: on synthetic scans the generator knows where the optic disc is, so
``content_routing`` compares how disc patches and background patches choose their first expert
(per-expert distributions and their mutual information; 0 bits: routing ignores the disc).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fairmoe.calibration import glaucoma_logit
from fairmoe.data.pixels import normalize_scan

__all__ = [
    "content_routing",
    "disc_patch_mask",
    "expert_diversity",
    "generator_disc_masks",
    "influence_report",
    "scan_influence",
]

_LOGIT_FLOOR = 1e-6  # a scan at exactly 0 log-odds: its share is the change itself


def scan_influence(logit: float, silenced: float) -> dict[str, float]:
    """One scan's influence of the image experts: the change of the calibrated log-odds they make
    (``logit`` with them, ``silenced`` without) and that change's share of the log-odds."""
    delta = float(logit) - float(silenced)
    return {"delta_logit": delta, "share": abs(delta) / max(abs(float(logit)), _LOGIT_FLOOR)}


def expert_diversity(model: torch.nn.Module) -> float | None:
    """Mean pairwise cosine similarity of the image experts' parameters; None without experts."""
    moe = getattr(model, "token_moe_img", None)
    if moe is None:
        return None
    flat = torch.stack(
        [torch.cat([p.detach().flatten() for p in e.parameters()]) for e in moe.experts]
    )
    flat = torch.nn.functional.normalize(flat.double(), dim=1)
    sim = flat @ flat.T
    n = sim.shape[0]
    return float((sim.sum() - n) / (n * (n - 1))) if n > 1 else 1.0


@torch.no_grad()
def _batch(
    model, pixels: torch.Tensor, prompts: torch.Tensor, temp: float, loo: bool
) -> dict[str, Any]:
    device = next(model.parameters()).device
    h = model.image_trunk(normalize_scan(pixels.to(device)))
    contrib, routing = model.image_expert_contributions(h)
    n_exp = contrib.shape[1]

    def logit(c: torch.Tensor) -> np.ndarray:
        features = model.image_head(h, contributions=c)[0]
        return glaucoma_logit(features, prompts, temp).float().cpu().numpy()

    full = logit(contrib)
    silent = logit(torch.zeros_like(contrib))
    left_out = [  # one more pass of the tower's head per expert: only when asked
        logit(contrib * (torch.arange(n_exp, device=device) != e).view(1, n_exp, 1, 1))
        for e in range(n_exp if loo else 0)
    ]
    left_out = np.stack(left_out, axis=1) if loo else np.empty((len(full), 0))  # (B, E)
    probs, kept = routing.probs[:, 1:].float().cpu(), routing.kept[:, 1:].cpu()  # patches only
    gates = routing.weights[:, 1:].float().cpu()  # what multiplies a kept expert's output; else 0
    k = model.token_moe_img.cfg.top_k
    requests = probs.topk(k, dim=-1).indices  # (B, P, k)
    granted = kept.gather(-1, requests)  # was each request kept?
    entropy = -(probs.clamp_min(1e-12).log() * probs).sum(-1) / math.log(n_exp)
    return {
        "full": full,
        "silent": silent,
        "loo": left_out,
        "over_capacity": (1 - granted.float().mean((1, 2))).numpy(),
        "top1_gate": probs.max(-1).values.mean(1).numpy(),
        "kept_gate": (gates.sum((1, 2)) / kept.sum((1, 2)).clamp_min(1)).numpy(),
        "entropy": entropy.mean(1).numpy(),
        "distinct": kept.any(1).sum(-1).numpy(),
    }


def _per_scan(
    model, pixels: torch.Tensor, prompts, temp: float, batch: int, loo: bool
) -> dict[str, Any]:
    parts = [
        _batch(model, pixels[i : i + batch], prompts, temp, loo)
        for i in range(0, len(pixels), batch)
    ]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score  # ~0.7 s to import: not on the serving path

    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def _figures(s: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    delta = s["full"] - s["silent"]
    auc, auc_silent = _auc(labels, s["full"]), _auc(labels, s["silent"])
    return {
        "n": int(len(labels)),
        "mean_abs_delta_logit": float(np.abs(delta).mean()),
        "mean_abs_logit": float(np.abs(s["full"]).mean()),
        "auc": auc,
        "auc_silenced": auc_silent,
        "delta_auc": None if auc is None or auc_silent is None else auc - auc_silent,
    }


def influence_report(
    model: torch.nn.Module,
    pixels: torch.Tensor,
    labels: np.ndarray,
    prompts: torch.Tensor,
    temperature: float,
    groups: Mapping[str, np.ndarray] | None = None,
    group_names: Mapping[str, tuple[str, ...]] | None = None,
    batch: int = 64,
    leave_one_out: bool = True,
) -> dict[str, Any] | None:
    """Influence and routing figures of a model with image experts on uint8 scans (N, S, S);
    None for a model without them. ``groups``: attribute -> codes (N,), -1 unknown.
    ``leave_one_out=False`` skips silencing each expert alone (one pass per expert) and leaves
    ``leave_one_out`` empty."""
    if getattr(model, "token_moe_img", None) is None:
        return None
    model.eval()
    s = _per_scan(model, pixels, prompts, temperature, batch, leave_one_out)
    labels = np.asarray(labels)
    out: dict[str, Any] = {"silenced": _figures(s, labels)}
    out["leave_one_out"] = [
        {
            "expert": e,
            "mean_abs_delta_logit": float(np.abs(s["full"] - s["loo"][:, e]).mean()),
            "delta_auc": (lambda a, b: None if a is None or b is None else a - b)(
                _auc(labels, s["full"]), _auc(labels, s["loo"][:, e])
            ),
        }
        for e in range(s["loo"].shape[1])
    ]
    out["routing"] = {
        "median_over_capacity_share": float(np.median(s["over_capacity"])),
        "mean_top1_gate": float(s["top1_gate"].mean()),
        "mean_kept_gate": float(s["kept_gate"].mean()),
        "mean_gate_entropy": float(s["entropy"].mean()),
        "median_distinct_experts": float(np.median(s["distinct"])),
    }
    out["expert_diversity"] = expert_diversity(model)
    if groups:
        out["by_group"] = {
            attr: {
                (group_names or {}).get(attr, ())[g] if g < len((group_names or {}).get(attr, ()))
                else str(g): _figures({k: v[codes == g] for k, v in s.items()}, labels[codes == g])
                for g in sorted(set(codes.tolist()) - {-1})
            }
            for attr, codes in groups.items()
        }  # fmt: skip
    return out


def disc_patch_mask(
    disc_xy: tuple[float, float],
    disc_radius: float,
    full_hw: tuple[int, int],
    image_size: int,
    grid: int,
) -> np.ndarray:
    """(grid * grid,) bool: the model's patches that overlap the optic disc, for a disc at
    ``disc_xy`` (x, y) with ``disc_radius`` in the full-resolution scan of ``full_hw`` (H, W),
    after ``preprocess_scan`` (shorter side resized to ``image_size``, centre crop)."""
    h, w = full_hw
    scale = image_size / min(h, w)
    nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    left, top = (nw - image_size) // 2, (nh - image_size) // 2
    cx, cy, r = disc_xy[0] * scale - left, disc_xy[1] * scale - top, disc_radius * scale
    size = image_size / grid
    edges = np.arange(grid) * size
    # distance from the disc centre to the nearest point of each patch square
    dx = np.maximum(np.maximum(edges - cx, 0), cx - (edges + size))
    dy = np.maximum(np.maximum(edges - cy, 0), cy - (edges + size))
    return ((dy[:, None] ** 2 + dx[None, :] ** 2) <= r * r).ravel()


def generator_disc_masks(
    ids: list[str], image_size: int, grid: int, *, seed: int, bias: float
) -> np.ndarray:
    """(N, grid * grid) bool disc masks of synthetic scans ``data_NNNNN.npz`` (NNNNN: the
    generator's sample index), drawn again from the generator's ``seed`` and ``bias``."""
    from fairmoe.data.synthetic.config import SyntheticConfig
    from fairmoe.data.synthetic.sampling import sample_params

    cfg = SyntheticConfig()
    masks = []
    for name in ids:
        p = sample_params(int(name.rsplit(".", 1)[0].split("_")[-1]), seed=seed, bias=bias)
        masks.append(
            disc_patch_mask(p.disc_xy, p.disc_radius, (cfg.height, cfg.width), image_size, grid)
        )
    return np.stack(masks)


@torch.no_grad()
def content_routing(
    model: torch.nn.Module, pixels: torch.Tensor, disc: np.ndarray, batch: int = 64
) -> dict[str, Any] | None:
    """How disc patches and background patches pick their first expert: the distribution over
    experts of each, and their mutual information in bits (with its upper bound, the entropy of
    the patch type). ``disc``: (N, P) bool from :func:`disc_patch_mask`."""
    if getattr(model, "token_moe_img", None) is None:
        return None
    model.eval()
    firsts = []
    for i in range(0, len(pixels), batch):
        h = model.image_trunk(normalize_scan(pixels[i : i + batch].to(model.logit_scale.device)))
        _, routing = model.image_expert_contributions(h)
        firsts.append(routing.probs[:, 1:].argmax(-1).cpu().numpy())  # (B, P) patch tokens
    first = np.concatenate(firsts).ravel()
    kind = np.asarray(disc, bool).ravel()
    n_exp = model.token_moe_img.cfg.n_experts
    joint = np.zeros((2, n_exp))
    np.add.at(joint, (kind.astype(int), first), 1)
    p = joint / joint.sum()
    pk, pe = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    mi = float((p[nz] * np.log2(p[nz] / (pk @ pe)[nz])).sum())
    type_entropy = float(-(pk[pk > 0] * np.log2(pk[pk > 0])).sum())

    def dist(row: np.ndarray) -> list[float]:
        return (row / max(row.sum(), 1)).round(4).tolist()

    return {
        "n_disc_patches": int(joint[1].sum()),
        "n_background_patches": int(joint[0].sum()),
        "disc_first_expert": dist(joint[1]),
        "background_first_expert": dist(joint[0]),
        "mutual_information_bits": mi,
        "patch_type_entropy_bits": type_entropy,
    }
