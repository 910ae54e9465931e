"""The two mixtures of experts of Fair-MoE: ``TokenMoE`` (in a block) and ``FeatureMoE`` (on the embedding).

Both return ``(output, routing)``; the routing is a plain return value so that losses and
explanations read it without hooks.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from open_clip.transformer import QuickGELU
from torch import Tensor, nn

from fairmoe.model.config import FeatureMoEConfig, MoEConfig

__all__ = [
    "Expert",
    "FeatureMoE",
    "FeatureRouting",
    "TokenMoE",
    "TokenRouting",
    "capacity_per_expert",
]


class TokenRouting(NamedTuple):
    """Gate decisions of a ``TokenMoE`` for one batch."""

    probs: Tensor  # (B, T, E) softmax gate probabilities, before any mask
    weights: Tensor  # (B, T, E) probs after the top-k and capacity masks (what the FOL uses)
    kept: Tensor  # (B, T, E) bool: expert e processes token t
    dropped: Tensor  # (B, T) bool: a real token no expert kept; its expert output is zero
    logits: Tensor  # (B, T, E) router logits (the z-loss keeps them small)
    real: Tensor  # (B, T) bool: tokens that are routed (False: text padding, never routed)

    def patch_load(self) -> Tensor:
        """(B, E) share of the patch tokens (CLS excluded) each expert kept: its load."""
        return self.kept[:, 1:].float().mean(dim=1)

    def patch_gate_load(self) -> Tensor:
        """(B, E) mean gate weight each expert received over the patch tokens (CLS excluded)."""
        return self.weights[:, 1:].float().mean(dim=1)


class FeatureRouting(NamedTuple):
    """Gate decisions of a ``FeatureMoE`` for one batch."""

    probs: Tensor  # (B, E) softmax gate probabilities
    weights: Tensor  # (B, E) probs after the optional top-k mask (== probs when dense)


class Expert(nn.Module):
    """Linear -> ReLU -> Linear; names match open_clip's MLP so its weights copy over."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.c_proj = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


def _router(dim: int, n_experts: int, act: type[nn.Module]) -> nn.Sequential:
    # Gate MLP of the paper: D -> D/4 -> act -> M.
    return nn.Sequential(nn.Linear(dim, dim // 4), act(), nn.Linear(dim // 4, n_experts))


def _topk_mask(probs: Tensor, k: int) -> Tensor:
    """Bool mask of the k largest entries along the last dim."""
    idx = probs.topk(k, dim=-1).indices
    return torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, idx, True)


def capacity_per_expert(cfg: MoEConfig, n_tokens: int) -> int:
    """Tokens each expert keeps per sample: int(C * T * k1 / M1), at most the real token count."""
    t = cfg.capacity_tokens if cfg.capacity_tokens is not None else n_tokens
    return min(int(cfg.capacity * t * cfg.top_k / cfg.n_experts), n_tokens)


class TokenMoE(nn.Module):
    """Token-choice top-k MoE with expert capacity; replaces the MLP of one encoder block.

    Input is ``ln_2(h)``; the caller adds the residual. Per sample, each expert keeps the ``cap``
    tokens with the largest top-k-masked weight; a token no expert keeps gets zero expert output
    (the paper's "filtering"). Weights are not renormalised after masking unless
    ``cfg.renormalize`` (then divided by the token's top-k probability sum). With
    ``cfg.reference_residual`` the output is ``y - x`` so that the block computes the reference
    code's ``h + y - ln_2(h)``.
    """

    def __init__(self, dim: int, cfg: MoEConfig, *, hidden: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = hidden if hidden is not None else 4 * dim
        self.router = _router(dim, cfg.n_experts, nn.ReLU)
        self.experts = nn.ModuleList(Expert(dim, hidden) for _ in range(cfg.n_experts))

    @classmethod
    def from_mlp(cls, mlp: nn.Module, cfg: MoEConfig) -> TokenMoE:
        """A TokenMoE replacing open_clip ``mlp`` (``c_fc``, ``c_proj``), experts copied from it."""
        dim, hidden = mlp.c_fc.in_features, mlp.c_fc.out_features
        moe = cls(dim, cfg, hidden=hidden)
        moe.to(device=mlp.c_fc.weight.device, dtype=mlp.c_fc.weight.dtype)
        if cfg.expert_init == "copy_mlp":
            with torch.no_grad():
                for expert in moe.experts:
                    expert.c_fc.load_state_dict(mlp.c_fc.state_dict())
                    expert.c_proj.load_state_dict(mlp.c_proj.state_dict())
                    if cfg.expert_noise > 0:  # upcycled copies: break the symmetry
                        for p in expert.parameters():
                            p.add_(torch.randn_like(p) * p.std() * cfg.expert_noise)
        return moe

    def capacity(self, n_tokens: int) -> int:
        return capacity_per_expert(self.cfg, n_tokens)

    def route(self, x: Tensor, real: Tensor | None = None) -> tuple[TokenRouting, Tensor]:
        """Routing of ``x`` (B, T, D) and the kept token indices per expert (B, cap, E).

        ``real`` (B, T) bool marks the tokens to route (text: not padding); the others get no
        expert, take no capacity, and each sample's capacity counts only its real tokens.
        """
        logits = self.router(x) / self.cfg.router_temperature  # (B, T, E)
        probs = logits.softmax(dim=-1)
        b, t, _ = probs.shape
        if real is None:
            real = torch.ones(b, t, dtype=torch.bool, device=x.device)
            caps = None
            cap = self.capacity(t)
        else:
            caps = [self.capacity(int(n)) for n in real.sum(dim=1).tolist()]
            cap = max(caps)
        in_topk = _topk_mask(probs, self.cfg.top_k) & real.unsqueeze(-1)
        masked = probs * in_topk
        index = masked.topk(cap, dim=1).indices  # (B, cap, E): largest weights per expert
        if caps is None:
            in_cap = torch.zeros_like(in_topk).scatter_(1, index, True)
        else:  # a sample with fewer real tokens has a smaller capacity: later slots stay empty
            limit = torch.tensor(caps, device=x.device).view(b, 1, 1)
            slot_ok = torch.arange(cap, device=x.device).view(1, cap, 1) < limit
            in_cap = torch.zeros_like(in_topk).scatter_(1, index, slot_ok.expand_as(index))
        kept = in_topk & in_cap
        weights = probs * kept
        if self.cfg.renormalize:
            weights = weights / (probs * in_topk).sum(dim=-1, keepdim=True).clamp_min(1e-9)
        dropped = real & ~kept.any(dim=-1)
        return TokenRouting(probs, weights, kept, dropped, logits, real), index

    def _expert_outputs(self, x: Tensor, weights: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """Weighted outputs of each expert on its own kept tokens only.

        Returns ``out`` (E, B*cap, D) and ``rows`` (E, B*cap), the rows of x.reshape(B*T, D)
        they belong to. Flat indices keep the index tensors small (no (B, cap, E, D) index).
        """
        b, t, d = x.shape
        n_exp = index.shape[2]
        offset = torch.arange(b, device=x.device).view(b, 1, 1) * t
        rows = (index + offset).permute(2, 0, 1).reshape(n_exp, -1)  # (E, B*cap)
        gathered = x.reshape(b * t, d).index_select(0, rows.reshape(-1)).view(n_exp, -1, d)
        w = weights.reshape(b * t, n_exp).T.gather(1, rows)  # (E, B*cap)
        # Tokens picked by the capacity top-k but outside the token's top-k have w == 0 exactly.
        out = torch.stack([e(gathered[i]) for i, e in enumerate(self.experts)])  # (E, B*cap, D)
        return out * w.unsqueeze(-1), rows

    def contributions(self, x: Tensor, real: Tensor | None = None) -> tuple[Tensor, TokenRouting]:
        """Per-expert weighted contributions (B, E, T, D), zero where an expert does not keep a token.

        Their sum over E is the MoE output (before the reference residual); pass them back as
        ``forward(x, contributions=...)`` to attribute a score to each expert.
        """
        routing, index = self.route(x, real)
        out, rows = self._expert_outputs(x, routing.weights, index)
        b, t, d = x.shape
        n_exp = out.shape[0]
        expert = torch.arange(n_exp, device=x.device).view(n_exp, 1)
        slots = (rows // t * n_exp + expert) * t + rows % t  # rows of the (B, E, T) layout
        # out's dtype, not x's: under autocast they differ; every slot is written at most once.
        contrib = out.new_zeros(b * n_exp * t, d).index_copy(
            0, slots.reshape(-1), out.reshape(-1, d)
        )
        return contrib.view(b, n_exp, t, d), routing

    def forward(
        self, x: Tensor, *, contributions: Tensor | None = None, real: Tensor | None = None
    ) -> tuple[Tensor, TokenRouting]:
        """MoE output (B, T, D) for ``x`` = ln_2(h), and the routing.

        ``contributions`` (B, E, T, D), if given, replaces the experts' computed outputs (the
        routing is still computed from ``x``); used for per-expert attribution. ``real`` (B, T)
        marks the tokens to route (see ``route``).
        """
        if contributions is not None:
            routing, _ = self.route(x, real)
            y = contributions.sum(dim=1)
        else:
            routing, index = self.route(x, real)
            out, rows = self._expert_outputs(x, routing.weights, index)
            b, t, d = x.shape
            y = out.new_zeros(b * t, d).index_add(0, rows.reshape(-1), out.reshape(-1, d))
            y = y.view(b, t, d)
        if self.cfg.reference_residual:
            y = y - x
        return y, routing


class FeatureMoE(nn.Module):
    """Mixture of M2 experts on a projected embedding (B, d); M2 = groups of the trained attribute."""

    def __init__(self, dim: int, n_experts: int, cfg: FeatureMoEConfig) -> None:
        super().__init__()
        if n_experts < 1:
            raise ValueError(f"FeatureMoE needs at least one expert, got n_experts={n_experts}")
        if cfg.top_k is not None and not 1 <= cfg.top_k <= n_experts:
            raise ValueError(f"FeatureMoE: top_k={cfg.top_k} must be in 1..{n_experts} (n_groups)")
        self.cfg = cfg
        self.router = _router(dim, n_experts, QuickGELU)
        self.experts = nn.ModuleList(
            Expert(dim, int(cfg.hidden_ratio * dim)) for _ in range(n_experts)
        )
        if cfg.residual:  # the branch starts at zero: a pretrained embedding passes unchanged
            for e in self.experts:
                nn.init.zeros_(e.c_proj.weight)
                nn.init.zeros_(e.c_proj.bias)

    def route(self, f: Tensor) -> FeatureRouting:
        probs = self.router(f).softmax(dim=-1)  # (B, E)
        if self.cfg.top_k is None:
            return FeatureRouting(probs, probs)
        return FeatureRouting(probs, probs * _topk_mask(probs, self.cfg.top_k))

    def contributions(self, f: Tensor) -> tuple[Tensor, FeatureRouting]:
        """Per-expert weighted outputs (B, E, d); their sum over E is the mixture."""
        routing = self.route(f)
        out = torch.stack([e(f) for e in self.experts], dim=1)  # (B, E, d)
        return out * routing.weights.unsqueeze(-1), routing

    def forward(self, f: Tensor) -> tuple[Tensor, FeatureRouting]:
        contrib, routing = self.contributions(f)
        out = contrib.sum(dim=1)  # (B, d)
        return (f + out if self.cfg.residual else out), routing
