"""Router health of a token MoE: is routing spread over the experts, or has it collapsed?

Three figures per MoE, over the routed tokens (image: patches; text: the note's real tokens):
- ``top_expert_share``: share of tokens whose first choice is the most popular expert (1/E when
  spread evenly, 1.0 when every token prefers one expert: collapse);
- ``kept_entropy``: entropy of the kept assignments over experts / log(E) (1 = even load, 0 = one
  expert does all the work);
- ``none_share``: share of tokens kept by no expert (their expert output is zero). With a
  balanced router almost every token fits in one of its k experts' capacity; a large share
  means collapse, not filtering.
Each is also computed per demographic group, from per-sample counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from fairmoe.model.moe import TokenRouting
from fairmoe.schema import ATTRIBUTES

__all__ = ["COLLAPSE_TOP_SHARE", "RoutingCounts", "health", "health_report"]

# A router whose first choice is one expert for this share of tokens is reported as collapsed.
COLLAPSE_TOP_SHARE = 0.8


@dataclass
class RoutingCounts:
    """Per-sample routing counts of one token MoE (arrays with one row per sample)."""

    top1: np.ndarray  # (N, E) routed tokens whose first choice is expert e
    kept: np.ndarray  # (N, E) routed tokens expert e kept
    gate: np.ndarray  # (N, E) sum of expert e's gate weights over routed tokens
    none: np.ndarray  # (N,) routed tokens kept by no expert
    tokens: np.ndarray  # (N,) routed tokens

    @classmethod
    def from_routing(cls, r: TokenRouting, *, skip_first: bool) -> RoutingCounts:
        """Counts of one batch; ``skip_first`` leaves out token 0 (the image's CLS)."""
        real = r.real.clone()
        if skip_first:
            real[:, 0] = False
        e = r.probs.shape[-1]
        top1 = torch.nn.functional.one_hot(r.probs.argmax(-1), e) * real.unsqueeze(-1)
        kept = r.kept & real.unsqueeze(-1)
        return cls(
            top1.sum(1).cpu().numpy(),
            kept.sum(1).cpu().numpy(),
            (r.weights.float() * real.unsqueeze(-1)).sum(1).cpu().numpy(),
            (r.dropped & real).sum(1).cpu().numpy(),
            real.sum(1).cpu().numpy(),
        )

    @classmethod
    def concat(cls, parts: list[RoutingCounts]) -> RoutingCounts:
        names = [f.name for f in fields(cls)]
        return cls(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))

    def select(self, members: np.ndarray) -> RoutingCounts:
        return RoutingCounts(*(getattr(self, f.name)[members] for f in fields(self)))


def health(c: RoutingCounts) -> dict[str, Any]:
    """The three figures (and the top expert, each expert's kept and gate share) of ``c``."""
    tokens = int(c.tokens.sum())
    if tokens == 0:
        return {"n_tokens": 0}
    top1, kept, gate = c.top1.sum(0), c.kept.sum(0), c.gate.sum(0)
    p = kept / kept.sum() if kept.sum() else np.zeros_like(kept, dtype=float)
    entropy = -sum(float(v) * math.log(v) for v in p if v > 0) / math.log(len(p))
    return {
        "n_tokens": tokens,
        "top_expert": int(top1.argmax()),
        "top_expert_share": float(top1.max() / tokens),
        "kept_entropy": float(entropy),
        "none_share": float(c.none.sum() / tokens),
        "kept_share": (kept / tokens).round(4).tolist(),  # per expert: tokens it kept / tokens
        "gate_share": (gate / tokens).round(4).tolist(),  # per expert: mean gate weight
        "collapsed": bool(top1.max() / tokens >= COLLAPSE_TOP_SHARE),
    }


def health_report(c: RoutingCounts, attrs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Overall health and, per attribute, per group (groups with no sample are left out)."""
    groups: dict[str, dict[str, Any]] = {}
    for name, codes in attrs.items():
        a = ATTRIBUTES[name]
        groups[name] = {
            g: health(c.select(codes == i)) for i, g in enumerate(a.groups) if (codes == i).any()
        }
    return {"overall": health(c), "groups": groups}
