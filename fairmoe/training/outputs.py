"""What a finished run writes (rank 0): scores CSV, resolved config, metrics, checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairmoe.checkpoint import RunMetadata, save_checkpoint, sha256_file
from fairmoe.data.tensors import SplitTensors
from fairmoe.model.config import ModelConfig
from fairmoe.scores import ScoreSet, write_scores
from fairmoe.training.config import TrainConfig
from fairmoe.training.distributed import world
from fairmoe.training.evaluation import Encoded, attrs_dict

__all__ = ["RunResult", "write_outputs"]


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A finished run: the JSON-ready result (``result``) and what its files are made from."""

    name: str
    result: dict[str, Any]  # train() returns this dict (and writes it as NAME.metrics.json)
    splits: dict[str, SplitTensors]
    test_encoded: Encoded
    test_probability: np.ndarray


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def write_outputs(
    cfg: TrainConfig,
    model: torch.nn.Module,
    run: RunResult,
    out_dir: Path,
    *,
    device: torch.device,
    data_root: str | Path,
) -> Path:
    """Write NAME.scores.csv, NAME.config.json, NAME.metrics.json and the checkpoint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    test, result = run.splits["test"], run.result
    scores = out_dir / f"{run.name}.scores.csv"
    ids = list(test.ids)
    labels = test.labels.numpy()
    write_scores(
        scores,
        ScoreSet(
            run.name,
            ids,
            labels,
            run.test_probability,
            attrs_dict(test),
            run.test_encoded.loads,
            run.test_encoded.cosines,
            run.test_encoded.gate_loads,
        ),
    )
    model_cfg: ModelConfig = model.config
    resolved = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg)}
    (out_dir / f"{run.name}.config.json").write_text(json.dumps(resolved, indent=2))
    (out_dir / f"{run.name}.metrics.json").write_text(json.dumps(result, indent=2))
    meta = RunMetadata(
        method=cfg.method,
        config=dataclasses.asdict(model_cfg),
        attribute=cfg.attribute,
        n_groups=cfg.n_groups,
        seed=cfg.seed,
        train_config=dataclasses.asdict(cfg),
        temperature=result["temperature"],
        calibration_fitted_on="validation",
        best_epoch=result["best_epoch"],
        data={k: v.summary for k, v in run.splits.items()},
        data_synthetic=(Path(data_root) / "SYNTHETIC.md").is_file(),
        ood=result["ood"],
        metrics={"test": result["test"], "validation": result["validation"]},
        device=_device_name(device),
        world_size=world()[1],
        train_seconds=result["train_seconds"],
        routing_health=result["routing_health"],
        influence=result.get("influence"),
        scores_file=scores.name,
        scores_sha256=sha256_file(scores),
    )
    path = save_checkpoint(model, out_dir, run.name, metadata=meta)
    if os.environ.get("FAIRMOE_KEEP_RESUME") != "1":
        shutil.rmtree(out_dir / f"{run.name}.resume", ignore_errors=True)
    return path
