"""Encoding a split with the image tower and evaluating it: zero-shot cosines, reports, loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fairmoe import metrics
from fairmoe.calibration import glaucoma_probability
from fairmoe.data.fairvlmed import normalize_scan
from fairmoe.data.tensors import SplitTensors
from fairmoe.health import RoutingCounts, health_report
from fairmoe.influence import influence_report
from fairmoe.metrics.fairness import fairness_result
from fairmoe.metrics.result import FairnessResult
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES
from fairmoe.training.distributed import autocast

__all__ = [
    "Encoded",
    "attrs_dict",
    "encode_split",
    "evaluate_cosines",
    "evaluate_split",
    "routing_health",
    "split_fairness",
    "text_routing",
]


@dataclass
class Encoded:
    """A split encoded by the image tower: features, prompt cosines, expert loads, routing."""

    features: np.ndarray  # (N, E) normalised image embeddings
    cosines: np.ndarray  # (N, 2) to the prompts; index 1 is glaucoma
    loads: np.ndarray | None  # (N, M1) share of patch tokens each image expert kept (fairmoe)
    gate_loads: np.ndarray | None = None  # (N, M1) mean gate weight of each image expert
    routing: RoutingCounts | None = None  # image token MoE, patch tokens


@torch.no_grad()
def encode_split(
    model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int = 256
) -> Encoded:
    model.eval()
    prompts = model.encode_prompts().float()  # (2, E)
    feats, loads, gates, counts = [], [], [], []
    for i in range(0, len(data), batch_size):
        x = normalize_scan(data.pixels[i : i + batch_size].to(device))
        with autocast(device):
            f, routing = model.encode_image_with_routing(x)
        feats.append(f.float().cpu())
        if "token_img" in routing:
            r = routing["token_img"]
            loads.append(r.patch_load().cpu())  # (B, M1)
            gates.append(r.patch_gate_load().cpu())
            counts.append(RoutingCounts.from_routing(r, skip_first=True))
    features = torch.cat(feats)
    return Encoded(
        features.numpy(),
        (features @ prompts.cpu().T).numpy(),
        torch.cat(loads).numpy() if loads else None,
        torch.cat(gates).numpy() if gates else None,
        RoutingCounts.concat(counts) if counts else None,
    )


@torch.no_grad()
def text_routing(
    model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int = 256
) -> RoutingCounts | None:
    """Routing counts of the text token MoE over the split's notes (None without one)."""
    if getattr(model, "token_moe_txt", None) is None:
        return None
    model.eval()
    counts = []
    for i in range(0, len(data), batch_size):
        with autocast(device):
            _, routing = model.encode_text_with_routing(data.tokens[i : i + batch_size].to(device))
        counts.append(RoutingCounts.from_routing(routing["token_txt"], skip_first=False))
    return RoutingCounts.concat(counts)


def routing_health(
    model: torch.nn.Module, data: SplitTensors, encoded: Encoded, device: torch.device
) -> dict[str, Any] | None:
    """Health of the image and text token MoEs on a split, overall and per group."""
    if encoded.routing is None:
        return None
    attrs = attrs_dict(data)
    out = {"token_img": health_report(encoded.routing, attrs)}
    text = text_routing(model, data, device)
    if text is not None:
        out["token_txt"] = health_report(text, attrs)
    return out


def evaluate_cosines(
    model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """(N, 2) cosine similarities of each scan to the two prompts (index 1: glaucoma)."""
    return encode_split(model, data, device, batch_size).cosines


def attrs_dict(data: SplitTensors) -> dict[str, np.ndarray]:
    return {a: data.attribute(a).numpy() for a in ATTRIBUTE_NAMES}


def split_influence(
    model: torch.nn.Module, data: SplitTensors, temperature: float, *, full: bool = True
) -> dict[str, Any] | None:
    """fairmoe.influence.influence_report on a split (overall and per group of every attribute);
    None for a model without image experts. ``full=False``: the overall figures only, without
    leaving each expert out (the per-epoch log's cheaper pass)."""
    if getattr(model, "token_moe_img", None) is None:
        return None
    was_training = model.training
    with torch.no_grad():
        prompts = model.encode_prompts()
    report = influence_report(
        model,
        data.pixels,
        data.labels.numpy(),
        prompts,
        temperature,
        attrs_dict(data) if full else None,
        {a: ATTRIBUTES[a].groups for a in ATTRIBUTE_NAMES},
        leave_one_out=full,
    )
    model.train(was_training)
    return report


def influence_columns(report: dict[str, Any] | None) -> dict[str, float]:
    """The headline influence figures as flat history columns (printed every epoch)."""
    if report is None:
        return {}
    r = report["routing"]
    return {
        "influence/mean_abs_delta_logit": report["silenced"]["mean_abs_delta_logit"],
        "influence/median_over_capacity": r["median_over_capacity_share"],
        "influence/mean_kept_gate": r["mean_kept_gate"],
    }


def evaluate_split(
    data: SplitTensors, cosines: np.ndarray, temperature: float = 1.0
) -> dict[str, Any]:
    """The fairness report of a split's cosines at ``temperature``."""
    p = glaucoma_probability(cosines, temperature=temperature)
    return metrics.evaluate(data.labels.numpy(), p, attrs_dict(data))


def split_fairness(
    data: SplitTensors, cosines: np.ndarray, attr: str, temperature: float = 1.0
) -> FairnessResult:
    """The typed fairness result of one attribute (or two crossed) of a split's cosines at
    ``temperature`` (no intervals or caveats: :func:`fairmoe.metrics.fairness.fairness_result`)."""
    p = glaucoma_probability(cosines, temperature=temperature)
    return fairness_result(data.labels.numpy(), p, attrs_dict(data), attr)
