"""The few DDP helpers the loop needs; with one process they are no-ops."""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

__all__ = ["autocast", "gather", "world"]


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather(t: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 with gradients flowing back to each rank's slice."""
    _, size = world()
    if size == 1:
        return t
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(t), dim=0)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA over fp32 master weights (the references' fp16 weights crash for
    lambda >= 1e-5); plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
