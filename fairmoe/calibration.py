"""Calibration shared by training and inference: temperature, glaucoma probability, OOD reference.

The references (FairCLIP, Fair-MoE) take a softmax over the raw cosines of a scan to the two
prompts, so their probabilities huddle near 0.5. Training fits a temperature T on validation;
``softmax(cos / T)`` keeps the 0.5 boundary (it rescales cos_glaucoma - cos_non around 0) and every
AUC, and inference shows that calibrated number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "OODReference",
    "fit_temperature",
    "glaucoma_logit",
    "glaucoma_probability",
]

ArrayLike = TypeVar("ArrayLike", torch.Tensor, np.ndarray)

_LOG_T_RANGE = (math.log(1e-4), math.log(100.0))  # temperatures searched; cosines lie in [-1, 1]
_SEARCH_STEPS = 80  # golden-section steps: the bracket shrinks to ~1e-16 of its width
_STD_FLOOR = 1e-6  # keeps a constant embedding dimension from dividing by zero


def glaucoma_probability(cosines: ArrayLike, *, temperature: float = 1.0) -> ArrayLike:
    """P(glaucoma) = softmax(cos / temperature)[:, 1] over the two prompts' cosines (B, 2).

    Takes and returns a tensor, or a numpy array (computed in float64 through the same code).
    """
    if isinstance(cosines, torch.Tensor):
        return (cosines / temperature).softmax(dim=-1)[:, 1]
    as_tensor = torch.from_numpy(np.asarray(cosines, dtype=np.float64))
    return glaucoma_probability(as_tensor, temperature=temperature).numpy()


def glaucoma_logit(
    features: torch.Tensor, prompts: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Calibrated log-odds of glaucoma (B,): (cos_glaucoma - cos_non) / T; sigmoid = probability."""
    cos = features @ prompts.T  # (B, 2)
    return (cos[:, 1] - cos[:, 0]) / temperature


def fit_temperature(cosines: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising validation log-loss; keeps the 0.5 boundary and every AUC."""
    d = cosines[:, 1] - cosines[:, 0]
    y = labels.astype(np.float64)

    def nll(log_t: float) -> float:
        z = np.clip(d / math.exp(log_t), -60, 60)
        return float(np.mean(np.logaddexp(0, z) - y * z))

    lo, hi = _LOG_T_RANGE
    for _ in range(_SEARCH_STEPS):  # golden-section search on log T (log-loss is unimodal in 1/T)
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if nll(m1) < nll(m2):
            hi = m2
        else:
            lo = m1
    return float(math.exp((lo + hi) / 2))


@dataclass(frozen=True)
class OODReference:
    """Per-dimension mean/std of validation embeddings and a quantile of their RMS z-distance.

    A scan whose distance exceeds ``threshold`` is flagged as unlike the training data.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    threshold: float
    quantile: float

    @classmethod
    def fit(cls, features: np.ndarray, quantile: float) -> OODReference:
        mean, std = features.mean(0), features.std(0) + _STD_FLOOR
        dist = np.sqrt((((features - mean) / std) ** 2).mean(1))
        return cls(
            tuple(mean.round(6).tolist()),
            tuple(std.round(6).tolist()),
            float(np.quantile(dist, quantile)),
            quantile,
        )

    def distance(self, feature: torch.Tensor) -> float:
        """RMS z-distance of one embedding (E,) from the validation mean."""
        mean = torch.tensor(self.mean)
        std = torch.tensor(self.std).clamp_min(_STD_FLOOR)
        return float(((feature.cpu() - mean) / std).pow(2).mean().sqrt())

    def is_novel(self, feature: torch.Tensor) -> bool:
        return self.distance(feature) > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "threshold": self.threshold,
            "quantile": self.quantile,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OODReference:
        return cls(
            tuple(float(v) for v in data["mean"]),
            tuple(float(v) for v in data["std"]),
            float(data["threshold"]),
            float(data.get("quantile", 0.99)),
        )
