"""How hard each loss term pulls: gradient norms per term, on the routers and on the whole model.

Measured on the first step of each epoch (one extra backward pass per term, no optimiser step)
and logged in the run's history: this is how the fairness loss's weight is judged against the
contrastive loss it is added to.
"""

from __future__ import annotations

import math

import torch

__all__ = ["router_parameters", "term_gradient_norms"]


def router_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters of every MoE gate (the token MoEs' and the feature MoEs' ``router``)."""
    return [p for n, p in model.named_parameters() if ".router." in f".{n}" and p.requires_grad]


def _norm(term: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))


def term_gradient_norms(terms: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, float]:
    """``grad_routers/<term>`` and ``grad_all/<term>``: L2 norms of each weighted term's gradient."""
    routers = router_parameters(model)
    everything = [p for p in model.parameters() if p.requires_grad]
    out: dict[str, float] = {}
    for name, term in terms.items():
        if not term.requires_grad:
            continue
        if routers:
            out[f"grad_routers/{name}"] = _norm(term, routers)
        out[f"grad_all/{name}"] = _norm(term, everything)
    return out
