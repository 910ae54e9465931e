"""How much the image experts matter: their influence on the decision and how they route.

Silencing is exact, not a gradient: the image token MoE's per-expert outputs
(``image_expert_contributions``) are zeroed, all together or one expert at a time, and the
calibrated glaucoma log-odds recomputed. Routing is read per scan (patch tokens only; the CLS
token routes too but is not a patch): the share of top-k requests that fall over an expert's
capacity, the mean gate of a patch's first choice, the normalised entropy of each patch's gate
distribution, and how many distinct experts keep at least one of the scan's patches. Diversity is
the mean pairwise cosine of the experts' flattened parameters (1.0: identical copies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from fairmoe.calibration import glaucoma_logit
from fairmoe.data.pixels import normalize_scan

__all__ = ["expert_diversity", "influence_report"]


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
def _batch(model, pixels: torch.Tensor, prompts: torch.Tensor, temp: float) -> dict[str, Any]:
    h = model.image_trunk(normalize_scan(pixels))
    contrib, routing = model.image_expert_contributions(h)
    n_exp = contrib.shape[1]

    def logit(c: torch.Tensor) -> np.ndarray:
        return glaucoma_logit(model.image_head(h, contributions=c)[0], prompts, temp).numpy()

    full = logit(contrib)
    silent = logit(torch.zeros_like(contrib))
    loo = np.stack(
        [logit(contrib * (torch.arange(n_exp) != e).view(1, n_exp, 1, 1)) for e in range(n_exp)],
        axis=1,
    )  # (B, E)
    probs, kept = routing.probs[:, 1:], routing.kept[:, 1:]  # patch tokens only
    k = model.token_moe_img.cfg.top_k
    requests = probs.topk(k, dim=-1).indices  # (B, P, k)
    granted = kept.gather(-1, requests)  # was each request kept?
    entropy = -(probs.clamp_min(1e-12).log() * probs).sum(-1) / math.log(n_exp)
    return {
        "full": full,
        "silent": silent,
        "loo": loo,
        "over_capacity": (1 - granted.float().mean((1, 2))).numpy(),
        "top1_gate": probs.max(-1).values.mean(1).numpy(),
        "kept_gate": ((probs * kept).sum((1, 2)) / kept.sum((1, 2)).clamp_min(1)).numpy(),
        "entropy": entropy.mean(1).numpy(),
        "distinct": kept.any(1).sum(-1).numpy(),
    }


def _per_scan(model, pixels: torch.Tensor, prompts, temp: float, batch: int) -> dict[str, Any]:
    parts = [
        _batch(model, pixels[i : i + batch], prompts, temp) for i in range(0, len(pixels), batch)
    ]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
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
) -> dict[str, Any] | None:
    """Influence and routing figures of a model with image experts on uint8 scans (N, S, S);
    None for a model without them. ``groups``: attribute -> codes (N,), -1 unknown."""
    if getattr(model, "token_moe_img", None) is None:
        return None
    model.eval()
    s = _per_scan(model, pixels, prompts, temperature, batch)
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
