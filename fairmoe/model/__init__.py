"""Fair-MoE model: open_clip backbone configs, token and feature MoEs, the FairMoECLIP wrapper."""

from __future__ import annotations

from fairmoe.model.clip import (
    METHODS,
    FairMoECLIP,
    Method,
    ModelOutput,
    Routing,
    create_model,
    glaucoma_probability,
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
    "METHODS",
    "FairMoECLIP",
    "FeatureMoE",
    "FeatureMoEConfig",
    "FeatureRouting",
    "Method",
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
    "glaucoma_probability",
    "list_configs",
    "load_pretrained_weights",
]
