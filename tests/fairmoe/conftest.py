"""Shared fixtures of the library tests."""

from __future__ import annotations

import pytest
import torch

from fairmoe.checkpoint import RunMetadata, save_checkpoint
from fairmoe.inference import Predictor
from fairmoe.model import create_model, get_config


@pytest.fixture(scope="session")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """An untrained tiny Fair-MoE behind the real Predictor: input paths, not accuracy, are tested."""
    torch.manual_seed(0)
    # average pooling, as `small` and `demo`: with CLS pooling patch tokens never reach the score
    cfg = get_config("tiny", **{"vision.pool_type": "avg"})
    model = create_model(cfg, method="fairmoe", n_groups=3)
    meta = RunMetadata(method="fairmoe", config=cfg.to_dict(), attribute="race", temperature=0.05)
    return Predictor(save_checkpoint(model, tmp_path_factory.mktemp("ckpt"), "m", metadata=meta))
