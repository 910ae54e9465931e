"""Calibration of probabilities: expected calibration error, reliability curves, bands.

ECE follows Guo et al. 2017 ("On calibration of modern neural networks"): ``ECE_BINS`` equal-width
bins of the predicted probability, ``sum_k n_k / n * |mean(p) - mean(y)|`` over the non-empty bins.
It is computed on the calibrated probability the app shows, so a group's ECE says how far that
number is from what happened to patients of the group who got it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairmoe.metrics._checks import _check_inputs

__all__ = [
    "CONFIDENT_BANDS",
    "ECE_BINS",
    "Band",
    "band_rate",
    "citl",
    "ece",
    "ece_bins",
    "reliability_curve",
]

ECE_BINS = 10  # Guo et al.'s choice; a group of 100 still fills most bins with a few cases
# Scores a clinician reads as confident: the guardrails check each group's observed rate in them.
CONFIDENT_BANDS = ((0.0, 0.2), (0.8, 1.0))


def ece_bins(p: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """(n,) bin index of each probability: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]."""
    return np.clip((np.asarray(p, dtype=np.float64) * n_bins).astype(np.int64), 0, n_bins - 1)


def ece(y: Any, p: Any, *, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error; nan for no cases."""
    if not len(np.asarray(y)):
        return math.nan
    y, p = _check_inputs(y, p)
    b = ece_bins(p, n_bins)
    gap = np.bincount(b, p - y, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y))


def citl(y: Any, p: Any) -> float:
    """Calibration-in-the-large: mean probability minus the observed rate (> 0: over-estimates)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return float(p.mean() - y.mean()) if len(y) else math.nan


def reliability_curve(y: Any, p: Any, *, n_bins: int = ECE_BINS) -> dict[str, list]:
    """Per bin: ``centre``, ``mean_predicted`` and ``observed`` (None where empty), ``count``."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    b = ece_bins(p, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs = np.bincount(b, y, minlength=n_bins) / count
        mean_p = np.bincount(b, p, minlength=n_bins) / count
    return {
        "centre": ((np.arange(n_bins) + 0.5) / n_bins).tolist(),
        "mean_predicted": [
            None if c == 0 else float(v) for c, v in zip(count, mean_p, strict=True)
        ],
        "observed": [None if c == 0 else float(v) for c, v in zip(count, obs, strict=True)],
        "count": count.tolist(),
    }


@dataclass(frozen=True)
class Band:
    """The cases scored in [low, high): how many, and how many of them had glaucoma."""

    low: float
    high: float
    n: int
    n_pos: int

    @property
    def observed(self) -> float | None:
        return self.n_pos / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "n": self.n, "n_pos": self.n_pos}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Band:
        return cls(float(d["low"]), float(d["high"]), int(d["n"]), int(d["n_pos"]))


def band_rate(y: Any, p: Any, low: float, high: float) -> Band:
    """Observed glaucoma rate among cases scored in [low, high) (``high`` >= 1 includes 1.0)."""
    y, p = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.float64)
    m = (p >= low) & ((p < high) if high < 1 else (p <= high))
    return Band(float(low), float(high), int(m.sum()), int(y[m].sum()))
