"""FairMoECLIP: an open_clip CLIP with Fair-MoE's token and feature MoEs, routing as return values.

Module names (stable, hookable):
  clip.visual.{conv1, ln_pre, transformer.resblocks[i], ln_post, proj}   image tower (open_clip)
  clip.{token_embedding, transformer.resblocks[i], ln_final, text_projection}   text tower
  clip.visual.transformer.resblocks[b].mlp, clip.transformer.resblocks[-1].mlp   TokenMoE (fairmoe);
    b = model.image_moe_block (config.moe.image_block; the last block by default, as in the paper)
  feat_moe_img, feat_moe_txt   FeatureMoE (fairmoe)
The encoders are written out here (not open_clip's forward) so that the routing comes back as a
value; ``model.clip.encode_image`` does not work once the MoEs are installed: use ours.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import CLIPTextCfg, CLIPVisionCfg
from open_clip.transformer import text_global_pool
from torch import Tensor, nn

from fairmoe.checkpoint import (
    CheckpointError,
    RunMetadata,
    check_state,
    config_from_dict,
    load_checkpoint,
)
from fairmoe.methods import Method, method_spec
from fairmoe.model.config import ModelConfig, get_config
from fairmoe.model.moe import FeatureMoE, FeatureRouting, TokenMoE, TokenRouting
from fairmoe.model.weights import load_pretrained_weights
from fairmoe.schema import PROMPTS

SOT, EOT = 49406, 49407  # open_clip SimpleTokenizer's start/end-of-text ids (0 pads)

__all__ = [
    "FairMoECLIP",
    "ModelOutput",
    "Routing",
    "create_model",
    "load_model",
    "load_pretrained_weights",
]

Routing = dict[str, TokenRouting | FeatureRouting]  # keys token_img, token_txt, feat_img, feat_txt


@dataclass
class ModelOutput:
    image_features: Tensor  # (B, E) L2-normalised
    text_features: Tensor  # (B, E) L2-normalised
    logit_scale: Tensor  # () already exponentiated: logits = logit_scale * cos
    routing: Routing = field(default_factory=dict)  # empty for plain CLIP


@functools.cache
def _tokenizer(context_length: int) -> open_clip.SimpleTokenizer:
    return open_clip.SimpleTokenizer(context_length=context_length)


def _build_clip(cfg: ModelConfig) -> open_clip.CLIP:
    v, t = cfg.vision, cfg.text
    return open_clip.CLIP(
        embed_dim=cfg.embed_dim,
        vision_cfg=CLIPVisionCfg(
            image_size=v.image_size,
            patch_size=v.patch_size,
            width=v.width,
            layers=v.layers,
            head_width=v.head_width,
            mlp_ratio=v.mlp_ratio,
            pool_type=v.pool_type,
        ),
        text_cfg=CLIPTextCfg(
            context_length=t.context_length,
            vocab_size=t.vocab_size,
            width=t.width,
            heads=t.heads,
            layers=t.layers,
            mlp_ratio=t.mlp_ratio,
        ),
        quick_gelu=cfg.quick_gelu,
        init_logit_scale=cfg.init_logit_scale,
    )


def _run_trunk(blocks: nn.ModuleList, x: Tensor, attn_mask: Tensor | None, at: int) -> Tensor:
    """Blocks before ``at``, then block ``at``'s attention residual: h (B, T, D)."""
    for block in blocks[:at]:
        x = block(x, attn_mask=attn_mask)
    moe_block = blocks[at]
    return x + moe_block.ls_1(moe_block.attention(q_x=moe_block.ln_1(x), attn_mask=attn_mask))


def _finish_block(
    block: nn.Module, h: Tensor, contributions: Tensor | None, real: Tensor | None = None
) -> tuple[Tensor, TokenRouting | None]:
    """The block's MLP (or TokenMoE) residual on h; ``real`` marks tokens to route."""
    z = block.ln_2(h)
    if isinstance(block.mlp, TokenMoE):
        y, routing = block.mlp(z, contributions=contributions, real=real)
    else:
        if contributions is not None:
            raise ValueError("expert contributions given, but this model has no token MoE")
        y, routing = block.mlp(z), None
    return h + block.ls_2(y), routing


class FairMoECLIP(nn.Module):
    """CLIP for the three methods; with ``method='fairmoe'`` it carries the four MoEs."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        method: Method,
        n_groups: int = 3,
        init: str | Path | None = None,
    ) -> None:
        super().__init__()
        spec = method_spec(method)  # raises for an unknown method, listing the valid ones
        if n_groups < 1:
            raise ValueError(f"n_groups must be >= 1 (groups of the attribute), got {n_groups}")
        self.config = config
        self.method = method
        self.n_groups = n_groups
        self.clip = _build_clip(config)
        if init is not None:
            load_pretrained_weights(self.clip, init, config_name=config.name)
        self.feat_moe_img: FeatureMoE | None = None
        self.feat_moe_txt: FeatureMoE | None = None
        layers = config.vision.layers
        if not -layers <= config.moe.image_block < layers:
            raise ValueError(
                f"moe.image_block={config.moe.image_block} is not a block of the {layers}-block "
                "image tower"
            )
        self.image_moe_block = config.moe.image_block % layers
        if spec.token_moe:
            # Installed after loading weights so that the experts start from the trained MLPs.
            for blocks, at in (
                (self.clip.visual.transformer.resblocks, self.image_moe_block),
                (self.clip.transformer.resblocks, -1),
            ):
                blocks[at].mlp = TokenMoE.from_mlp(blocks[at].mlp, config.moe)
        if spec.feature_moe:
            self.feat_moe_img = FeatureMoE(config.embed_dim, n_groups, config.feature_moe)
            self.feat_moe_txt = FeatureMoE(config.embed_dim, n_groups, config.feature_moe)

    # -- accessors ---------------------------------------------------------------------------
    @property
    def token_moe_img(self) -> TokenMoE | None:
        mlp = self.clip.visual.transformer.resblocks[self.image_moe_block].mlp
        return mlp if isinstance(mlp, TokenMoE) else None

    @property
    def token_moe_txt(self) -> TokenMoE | None:
        mlp = self.clip.transformer.resblocks[-1].mlp
        return mlp if isinstance(mlp, TokenMoE) else None

    @property
    def logit_scale(self) -> Tensor:
        """exp(learned log scale), the multiplier of the training logits."""
        return self.clip.logit_scale.exp()

    def tokenizer(self) -> open_clip.SimpleTokenizer:
        """open_clip's SimpleTokenizer (bundled BPE, offline), padding to the context length."""
        return _tokenizer(self.config.text.context_length)

    def token_strings(self, tokens: Tensor) -> list[str]:
        """Readable BPE pieces of one tokenised text, without SOT/EOT/padding."""
        ids = [int(t) for t in tokens.reshape(-1) if int(t) not in (0, SOT, EOT)]
        dec = self.tokenizer().decoder
        return [dec.get(i, "?").replace("</w>", " ") for i in ids]

    @property
    def patch_experts_reach_output(self) -> bool:
        """Whether the image token MoE's patch outputs can change the image embedding.

        With the MoE in the last block and CLS pooling (the paper's setup, preset ``vit-b-16-paper``), nothing
        attends to its output: only the CLS token's experts reach the embedding, and the patch
        experts' maps show routing, not influence. Average pooling, or a later block's attention,
        carries the patches' outputs into the embedding.
        """
        if self.token_moe_img is None:
            return False
        last = self.image_moe_block == self.config.vision.layers - 1
        return self.config.vision.pool_type == "avg" or not last

    @property
    def grid(self) -> int:
        """Patches per side of the image (8 for 96 px at patch 12)."""
        return self.config.vision.image_size // self.config.vision.patch_size

    def metadata(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this model."""
        return {"config": self.config.to_dict(), "method": self.method, "n_groups": self.n_groups}

    # -- image ---------------------------------------------------------------------------------
    def image_tokens(self, images: Tensor) -> Tensor:
        """Patch embeddings with CLS and positions, after ln_pre: the first block's input."""
        v = self.clip.visual
        x = v.conv1(images)  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)  # (B, T, D)
        return v.ln_pre(v.patch_dropout(x))

    def image_trunk(self, images: Tensor) -> Tensor:
        """Tokens right before the MoE block's MLP/MoE (after its attention residual)."""
        blocks = self.clip.visual.transformer.resblocks
        return _run_trunk(blocks, self.image_tokens(images), None, self.image_moe_block)

    def image_head(
        self, h: Tensor, *, contributions: Tensor | None = None, normalize: bool = True
    ) -> tuple[Tensor, Routing]:
        """Complete the image encoder from ``h`` = image_trunk(images).

        ``contributions`` (B, E, T, D) replaces the token MoE's expert outputs, see
        ``image_expert_contributions``.
        """
        x, token_routing = self.image_moe_output(h, contributions=contributions)
        for block in self.clip.visual.transformer.resblocks[self.image_moe_block + 1 :]:
            x = block(x, attn_mask=None)
        f, feat_routing = self.image_pool(x, normalize=normalize)
        routing: Routing = {} if token_routing is None else {"token_img": token_routing}
        return f, {**routing, **feat_routing}

    def image_moe_output(
        self, h: Tensor, *, contributions: Tensor | None = None
    ) -> tuple[Tensor, TokenRouting | None]:
        """The MoE block's output: h plus its MLP's (or token MoE's) residual."""
        return _finish_block(
            self.clip.visual.transformer.resblocks[self.image_moe_block], h, contributions
        )

    def image_pool(self, x: Tensor, *, normalize: bool = True) -> tuple[Tensor, Routing]:
        """The image embedding from the last block's output tokens x (B, T, D)."""
        v = self.clip.visual
        x = v.ln_post(x)
        pooled = x[:, 1:].mean(dim=1) if v.pool_type == "avg" else x[:, 0]  # (B, D)
        f = pooled @ v.proj  # (B, E)
        routing: Routing = {}
        if self.feat_moe_img is not None:
            f, routing["feat_img"] = self.feat_moe_img(f)
        return (F.normalize(f, dim=-1) if normalize else f), routing

    def image_expert_contributions(self, h: Tensor) -> tuple[Tensor, TokenRouting]:
        """Per-expert weighted outputs (B, E, T, D) of the image token MoE at ``h``."""
        if self.token_moe_img is None:
            raise ValueError(f"method {self.method!r} has no token MoE")
        block = self.clip.visual.transformer.resblocks[self.image_moe_block]
        return self.token_moe_img.contributions(block.ln_2(h))

    def encode_image_with_routing(
        self, images: Tensor, *, normalize: bool = True
    ) -> tuple[Tensor, Routing]:
        return self.image_head(self.image_trunk(images), normalize=normalize)

    def encode_image(self, images: Tensor, *, normalize: bool = True) -> Tensor:
        return self.encode_image_with_routing(images, normalize=normalize)[0]

    # -- text ----------------------------------------------------------------------------------
    def _check_tokens(self, tokens: Tensor) -> None:
        n = self.config.text.context_length
        if tokens.ndim != 2 or tokens.shape[1] != n:
            raise ValueError(
                f"text tokens must have shape (B, {n}), got {tuple(tokens.shape)}; "
                "tokenise with model.tokenizer()"
            )

    def text_trunk(self, tokens: Tensor, *, prefix: bool = False) -> Tensor:
        """Text tokens right before the last block's MLP/MoE (B, L, D).

        ``prefix``: ``tokens`` may be the first L < context_length positions (every EOT among
        them); attention is causal, so the EOT features equal the full sequence's up to rounding.
        """
        if not prefix or tokens.ndim != 2 or tokens.shape[1] > self.config.text.context_length:
            self._check_tokens(tokens)
        c, n = self.clip, tokens.shape[1]
        x = c.token_embedding(tokens) + c.positional_embedding[:n]  # (B, L, D)
        mask = c.attn_mask[:n, :n] if c.attn_mask is not None else None
        return _run_trunk(c.transformer.resblocks, x, mask, len(c.transformer.resblocks) - 1)

    def text_head(
        self,
        h: Tensor,
        tokens: Tensor,
        *,
        contributions: Tensor | None = None,
        normalize: bool = True,
    ) -> tuple[Tensor, Routing]:
        """Complete the text encoder from ``h`` = text_trunk(tokens); EOT-token pooling."""
        c = self.clip
        # Padding (id 0) is not routed: it would compete with the note's tokens for capacity.
        real = tokens != 0
        x, token_routing = _finish_block(c.transformer.resblocks[-1], h, contributions, real)
        x = c.ln_final(x)
        f = text_global_pool(x, tokens, c.text_pool_type) @ c.text_projection  # (B, E)
        routing: Routing = {}
        if token_routing is not None:
            routing["token_txt"] = token_routing
        if self.feat_moe_txt is not None:
            f, routing["feat_txt"] = self.feat_moe_txt(f)
        return (F.normalize(f, dim=-1) if normalize else f), routing

    def encode_text_with_routing(
        self, tokens: Tensor, *, normalize: bool = True, prefix: bool = False
    ) -> tuple[Tensor, Routing]:
        return self.text_head(self.text_trunk(tokens, prefix=prefix), tokens, normalize=normalize)

    def encode_text(
        self, tokens: Tensor, *, normalize: bool = True, prefix: bool = False
    ) -> Tensor:
        return self.encode_text_with_routing(tokens, normalize=normalize, prefix=prefix)[0]

    def encode_prompts(self, prompts: Sequence[str] = PROMPTS) -> Tensor:
        """Normalised features (P, E) of the zero-shot prompts (index 1 = glaucoma)."""
        device = self.clip.logit_scale.device
        return self.encode_text(self.tokenizer()(list(prompts)).to(device))

    # -- both ----------------------------------------------------------------------------------
    def forward(self, images: Tensor, tokens: Tensor) -> ModelOutput:
        image_features, image_routing = self.encode_image_with_routing(images)
        text_features, text_routing = self.encode_text_with_routing(tokens)
        return ModelOutput(
            image_features, text_features, self.logit_scale, {**image_routing, **text_routing}
        )

    @staticmethod
    def zero_shot_logits(image_features: Tensor, prompt_features: Tensor) -> Tensor:
        """Cosine similarities (B, P) of images to prompts; the references' zero-shot scores."""
        return F.normalize(image_features, dim=-1) @ F.normalize(prompt_features, dim=-1).T


def create_model(
    config: str | ModelConfig,
    *,
    method: Method,
    n_groups: int = 3,
    init: str | Path | None = None,
) -> FairMoECLIP:
    """Build a model from a preset name or a ModelConfig; ``init``: a local plain-CLIP weights
    file to start from (the experts are then copies of the MLPs they replace)."""
    cfg = get_config(config) if isinstance(config, str) else config
    return FairMoECLIP(cfg, method=method, n_groups=n_groups, init=init)


def load_model(
    checkpoint: str | Path | RunMetadata, *, device: str | torch.device = "cpu"
) -> tuple[FairMoECLIP, RunMetadata]:
    """Build the model a checkpoint's metadata describes and load its weights (fp32), eval mode."""
    state, meta = load_checkpoint(checkpoint)
    try:
        cfg = config_from_dict(ModelConfig, meta.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{meta.path}: config does not describe a model ({e})") from None
    model = create_model(cfg, method=meta.method, n_groups=meta.n_groups)
    expected = model.state_dict()
    check_state(expected, state, meta)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return model.to(device).eval(), meta
