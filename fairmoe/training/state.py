"""The run's state across epochs: learning-rate schedule, best model on validation, resume files.

An interrupted run resumes from ``NAME.resume/`` (fp32 weights and optimizer moments as
safetensors, the rest as JSON); it is deleted once the run's outputs are written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = ["BestModel", "RunState", "lr_lambda", "load_resume", "save_resume"]


def lr_lambda(total: int, warmup: int):
    """One-cycle: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass
class BestModel:
    """The best epoch so far by the validation selection score, and its weights (CPU copy)."""

    score: float = -1.0
    epoch: int = -1
    state: dict[str, torch.Tensor] | None = None

    def offer(self, score: float, epoch: int, model: torch.nn.Module) -> bool:
        """Keep ``model``'s weights if ``score`` beats the best; True when it did."""
        if score <= self.score:
            return False
        self.score, self.epoch = score, epoch
        self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True


@dataclass
class RunState:
    """Where a run stands: next epoch, per-epoch history, best model."""

    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: BestModel = field(default_factory=BestModel)


def save_resume(path: Path, model, optimizer, scheduler, epoch: int, run: RunState) -> None:
    """Everything needed to resume: fp32 weights, optimizer moments (safetensors), JSON state."""
    path.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        path / "model.safetensors",
    )
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0:
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = float(v)
    save_file(tensors or {"_empty": torch.zeros(1)}, path / "optimizer.safetensors")
    meta = {
        "history": run.history,
        "best_score": run.best.score,
        "best_epoch": run.best.epoch,
        "epoch": epoch,
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict(),
    }
    tmp = path / "state.json.tmp"
    tmp.write_text(json.dumps(meta, default=float))
    tmp.replace(path / "state.json")
    if run.best.state is not None:
        save_file(run.best.state, path / "best.safetensors")


def load_resume(path: Path, model, optimizer, scheduler) -> RunState:
    """Restore model, optimizer and scheduler from ``path``; the run state to continue from."""
    meta = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(path / "model.safetensors"))
    tensors = load_file(path / "optimizer.safetensors")
    opt = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key == "_empty":
            continue
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta["optimizer_scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = torch.tensor(v)
    opt["state"] = state
    optimizer.load_state_dict(opt)
    scheduler.load_state_dict(meta["scheduler"])
    best = BestModel(meta["best_score"], meta["best_epoch"])
    best_file = path / "best.safetensors"
    if best_file.is_file():
        best.state = load_file(best_file)
    return RunState(meta["epoch"] + 1, meta["history"], best)
