"""The training config: one frozen dataclass whose fields say why they have their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fairmoe import losses
from fairmoe.methods import Method, method_spec
from fairmoe.model.config import ModelConfig, get_config
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES

__all__ = ["TrainConfig", "run_name"]


@dataclass(frozen=True)
class TrainConfig:
    method: Method = "fairmoe"  # a method of fairmoe.methods.METHODS
    attribute: str = "race"  # one of ATTRIBUTE_NAMES, or "all" (our extension: FOL over all four)
    model: str = "tiny"  # a preset of fairmoe.model.list_configs()
    # Overrides of the preset (dotted keys, e.g. ("moe.capacity", 3.4)): ablations change one
    # knob of the model without a new preset.
    model_overrides: tuple[tuple[str, Any], ...] = ()
    tag: str = ""  # appended to the run name, to tell ablations and data variants apart
    epochs: int = 10  # the epoch best on validation is kept
    batch_size: int = 64  # the global batch (split across DDP ranks): contrastive negatives
    lr: float = (
        1e-4  # a from-scratch CLIP probe (GPU, batch 256) collapsed at 5e-4 and learned at 1e-4
    )
    weight_decay: float = 0.1  # AdamW's decoupled weight decay
    # Learning rate of the token MoEs (routers and experts) as a multiple of `lr`: experts copied
    # from a pretrained MLP barely move from it in a short fine-tune at the backbone's rate.
    moe_lr_scale: float = 1.0
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
    # A local plain-CLIP checkpoint to start from (ours, open_clip or OpenAI weights), as the
    # paper fine-tunes a pretrained CLIP; None trains from scratch. Never a hub download.
    init: str | None = None
    prompt_mix: float = 0.5  # the share of each batch given the class prompt ("mixed")
    # Text of the separate group batches the fairness terms compare: "notes" (the reference
    # code and release 2: always the notes, whatever the training batch reads) or "training"
    # (the same `text_source` and prompt mix as the training batch, so that the distance
    # compares groups, not a mix of prompts with notes).
    group_text: Literal["notes", "training"] = "notes"
    # How the summary is cut to 180 characters: "clean" folds white space first; "fairclip" is
    # FairCLIP's cut to the letter (for the paper protocol on the real data).
    note_cut: Literal["clean", "fairclip"] = "clean"
    seed: int = 0  # model init, data order and group batches
    limit: int | None = None  # cap samples per split (smoke runs)
    eval_batch_size: int = 256  # encoding only (no gradients): larger than training's
    grad_clip_norm: float = 1.0  # global gradient-norm clip: keeps early from-scratch steps sane
    # CLIP clamps its learned logit scale below 100 (exp of the log scale) to keep training stable.
    max_logit_scale: float = 100.0
    # The OOD reference flags scans farther from the validation mean than this share of
    # validation scans (1% of in-distribution scans get the warning).
    ood_quantile: float = 0.99

    def __post_init__(self) -> None:
        method_spec(self.method)  # raises for an unknown method, listing the valid ones
        if self.attribute != "all" and self.attribute not in ATTRIBUTES:
            raise ValueError(
                f"unknown attribute {self.attribute!r}; expected one of {ATTRIBUTE_NAMES} or 'all'"
            )

    @property
    def attributes(self) -> tuple[str, ...]:
        return ATTRIBUTE_NAMES if self.attribute == "all" else (self.attribute,)

    def model_config(self) -> ModelConfig:
        """The preset with this run's overrides."""
        return get_config(self.model, **dict(self.model_overrides))

    @property
    def n_groups(self) -> int:
        """Feature-MoE experts: one per group of the attribute (the largest count for 'all')."""
        return max(ATTRIBUTES[a].n_groups for a in self.attributes)


def run_name(cfg: TrainConfig) -> str:
    scale = "" if cfg.fairness_scale == 1.0 else f"-x{cfg.fairness_scale:g}"
    tag = f"-{cfg.tag}" if cfg.tag else ""
    return f"{cfg.method}-{cfg.attribute}-{cfg.model}{scale}{tag}-s{cfg.seed}"
