"""The training loop for CLIP, FairCLIP and Fair-MoE: CPU, one GPU, or DDP under torchrun.

Protocol choices that differ from the reference code, and why:
- model selection on the validation split (the references pick the best epoch on test);
- fp32 master weights with bf16 autocast on CUDA (the references' fp16 weights crash for lambda >= 1e-5);
- deterministic data order from the seed; a temperature fitted on validation for calibrated probabilities.

Modules: ``config`` (TrainConfig), ``step`` (the loss and the update of one step),
``evaluation`` (encoding and reports), ``state`` (schedule, best model, resume), ``outputs``
(files a run writes), ``loop`` (``train``), ``distributed`` (DDP helpers), ``cli`` (train.py's
flags, built from TrainConfig's fields).
"""

from __future__ import annotations

from fairmoe.training.config import TrainConfig, run_name
from fairmoe.training.evaluation import Encoded, encode_split, evaluate_cosines
from fairmoe.training.loop import measure_gradients, train

__all__ = [
    "Encoded",
    "TrainConfig",
    "encode_split",
    "evaluate_cosines",
    "measure_gradients",
    "run_name",
    "train",
]
