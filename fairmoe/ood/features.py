"""Pooled image-tower features at several depths, for the novelty scores.

The image tower is run block by block here instead of through forward hooks: hooks are state on
the shared model, and a request served on another thread at the same time would run through
them (the app serves several threads from one model). ``tests/fairmoe/test_ood.py`` checks that
this walk gives exactly ``model.image_trunk`` and ``model.image_head``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor, nn

from fairmoe.data.fairvlmed import normalize_scan

__all__ = ["layer_features", "layer_names", "tower_fingerprint"]


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the features :func:`layer_features` returns, shallow to deep.

    ``blockK``: mean patch token after block K; ``trunk``: after the MoE block's attention
    (what the token MoE routes; block K = the MoE block's index + 1 is then left out);
    ``embedding``: the projected image feature before
    L2-normalisation (its norm carries information that the normalised embedding drops).
    """
    n = len(model.clip.visual.transformer.resblocks)
    at = model.image_moe_block
    before = (f"block{k}" for k in range(1, at + 1))
    after = (f"block{k}" for k in range(at + 2, n))
    return (*before, "trunk", *after, "embedding")


def _patch_pool(tokens: Tensor) -> Tensor:
    """Mean and standard deviation over the patch tokens (token 0 is CLS): (B, 2D).

    The spread is second-order pooling: a texture can keep the mean of a scan's tokens while
    spreading them very differently (a checkerboard, noise, a blank frame).
    """
    patches = tokens[:, 1:].float()
    return torch.cat([patches.mean(1), patches.std(1)], dim=-1)


@torch.inference_mode()
def layer_features(model: nn.Module, pixels: Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Features (B, D_layer) at each of :func:`layer_names` for uint8 pixels (B, S, S).

    ``pixels`` is the model input (``preprocess_scan`` output); the walk mirrors
    ``FairMoECLIP.image_trunk`` then ``image_head(normalize=False)``.
    """
    device = next(model.parameters()).device
    x = normalize_scan(torch.as_tensor(pixels).to(device))
    x = model.image_tokens(x)
    blocks, at = model.clip.visual.transformer.resblocks, model.image_moe_block
    out = {}
    for k, block in enumerate(blocks, start=1):
        if k - 1 == at:  # the MoE block: its input h is the trunk, then the MoE
            h = x + block.ls_1(block.attention(q_x=block.ln_1(x), attn_mask=None))
            out["trunk"] = _patch_pool(h)
            x, _ = model.image_moe_output(h)
        else:
            x = block(x, attn_mask=None)
            if k < len(blocks):
                out[f"block{k}"] = _patch_pool(x)
    out["embedding"], _ = model.image_pool(x, normalize=False)
    return {k: t.float().cpu().numpy().astype(np.float64) for k, t in out.items()}


def tower_fingerprint(model: nn.Module) -> str:
    """sha256 of the image tower's weights rounded to fp16, as checkpoints store them.

    A detector belongs to one model: its references are that model's features. The fp16 rounding
    makes the in-memory model of a training run and its reloaded checkpoint give the same value.
    """
    h = hashlib.sha256()
    state = model.state_dict()
    for key in sorted(state):
        if key.startswith(("clip.visual.", "feat_moe_img.")):
            t = state[key].detach().cpu()
            t = t.to(torch.float16) if t.is_floating_point() else t
            h.update(key.encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()
