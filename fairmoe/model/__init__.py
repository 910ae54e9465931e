"""Fair-MoE model: open_clip backbone configs, token and feature MoEs, the FairMoECLIP wrapper."""

from __future__ import annotations

from fairmoe.model.clip import (
    FairMoECLIP,
    ModelOutput,
    Routing,
    create_model,
    load_model,
    load_pretrained_weights,
)
from fairmoe.model.config import (
    FeatureMoEConfig,
    ModelConfig,
    MoEConfig,
    TextConfig,
    VisionConfig,
    get_config,
    list_configs,
)
from fairmoe.model.moe import FeatureMoE, FeatureRouting, TokenMoE, TokenRouting

__all__ = [
    "FairMoECLIP",
    "FeatureMoE",
    "FeatureMoEConfig",
    "FeatureRouting",
    "ModelConfig",
    "ModelOutput",
    "MoEConfig",
    "Routing",
    "TextConfig",
    "TokenMoE",
    "TokenRouting",
    "VisionConfig",
    "create_model",
    "get_config",
    "list_configs",
    "load_model",
    "load_pretrained_weights",
]
