"""Feature-space novelty: a Mahalanobis distance per layer, standardised, combined by the maximum.

Each layer gets a Gaussian fitted on reference scans (mean, Ledoit-Wolf shrunk covariance: with a
few thousand scans and up to 2x768 dimensions the sample covariance is ill-conditioned). A
scan's distance at a layer is standardised by the distances of held-out calibration scans
(median and a robust spread), so that layers of different widths and spreads become comparable;
the novelty score is the maximum over layers. Several detectors at different depths are more
robust than one at the output (Anthony & Kamnitsas 2023), and distances in feature space beat the
classifier's confidence at telling unseen inputs apart (Lee et al. 2018).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.covariance import LedoitWolf

__all__ = ["LayerGaussian", "combine", "standardised_distances"]

_SPREAD_FLOOR = 1e-6


@dataclass(frozen=True)
class LayerGaussian:
    """Reference Gaussian of one layer's features and the calibration distances' location/scale."""

    name: str
    mean: np.ndarray  # (D,)
    precision: np.ndarray  # (D, D) inverse of the shrunk covariance
    shrinkage: float  # Ledoit-Wolf's weight on the scaled identity
    centre: float = 0.0  # median calibration distance
    spread: float = 1.0  # robust standard deviation of the calibration distances

    @classmethod
    def fit(cls, name: str, features: np.ndarray) -> LayerGaussian:
        """Mean and shrunk precision of reference features (N, D)."""
        if features.shape[0] < 2:
            raise ValueError(f"layer {name}: need at least 2 reference scans")
        lw = LedoitWolf(assume_centered=False).fit(features)
        return cls(name, lw.location_.copy(), lw.precision_.copy(), float(lw.shrinkage_))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance (N,) of features (N, D) from the reference mean."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, self.precision, d), 0.0))

    def calibrated(self, features: np.ndarray) -> LayerGaussian:
        """This layer with its standardisation fitted on calibration features (N, D).

        The spread is the interquartile range over 1.349 (the standard deviation of a normal):
        a few atypical calibration scans must not widen it.
        """
        dist = self.distance(features)
        q1, med, q3 = np.quantile(dist, [0.25, 0.5, 0.75])
        spread = max(float(q3 - q1) / 1.349, _SPREAD_FLOOR)
        return LayerGaussian(
            self.name, self.mean, self.precision, self.shrinkage, float(med), spread
        )

    def standardised(self, features: np.ndarray) -> np.ndarray:
        """(distance - centre) / spread: ~N(0, 1)-scaled scores, 0 for a typical scan."""
        return (self.distance(features) - self.centre) / self.spread


def standardised_distances(
    layers: Mapping[str, LayerGaussian], features: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Standardised distance (N,) per layer."""
    return {name: g.standardised(features[name]) for name, g in layers.items()}


def combine(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The novelty score (N,): the largest standardised distance over layers."""
    return np.max(np.stack(list(scores.values())), axis=0)
